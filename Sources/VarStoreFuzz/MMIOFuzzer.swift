// libFuzzer target: arbitrary guest behaviour against the uefi-vars device and the MM
// dispatcher. Built by .ci/fuzz with `swiftc -sanitize=fuzzer,address` from the core's sources
// and crypto sources and FuzzSupport.swift (it is not a SwiftPM target: libFuzzer supplies `main`).
//
// The input is a little program: each step picks a guest action (register write, register
// read, DMA request, PIO request, raw dispatch) and takes its operands from the bytes that
// follow. After every step the harness checks invariants a crash-free run could still break.

/// Mostly real register accesses; sometimes any offset and any size, as a C caller could pass.
func access(_ input: inout Input) -> (UInt64, Int) {
    let selector = input.byte()
    if selector < 240 {
        return (UInt64(input.byte() % 0x24), [1, 2, 4, 8][Int(selector % 4)])
    }
    return (input.u64(), Int(Int8(bitPattern: input.byte())))
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = Input(bytes: Array(UnsafeBufferPointer(start: data, count: size)))
    var configuration = ServiceConfiguration()
    configuration.volatileStorageSize = 0x2000
    configuration.nonVolatileStorageSize = 0x2000
    let service = VariableService(configuration: configuration)
    service.load([
        Variable(key: VariableKey(guid: .globalVariable, name: VariableName("Boot0000")!),
                 attributes: [.nonVolatile, .bootServiceAccess, .runtimeAccess], data: [1, 2, 3]),
        Variable(key: VariableKey(guid: .imageSecurityDatabase, name: VariableName("db")!),
                 attributes: [.nonVolatile, .bootServiceAccess, .runtimeAccess, .timeBasedAuthenticatedWriteAccess],
                 data: [4], timestamp: .zero),
    ])
    let device = UEFIVarsDevice(service: service, memory: FuzzMemory(), usePIO: input.byte() & 1 == 1)
    let bufferAddress = FuzzMemory.base + 0x1000
    device.mmioWrite(offset: 0x04, size: 4, value: 0x10000)
    device.mmioWrite(offset: 0x08, size: 4, value: bufferAddress)

    var steps = 0
    while !input.atEnd && steps < 64 {
        steps += 1
        switch input.byte() % 7 {
        case 0:
            let (offset, size) = access(&input)
            device.mmioWrite(offset: offset, size: size, value: input.u64())
        case 1:
            let (offset, size) = access(&input)
            _ = device.mmioRead(offset: offset, size: size)
        case 2, 3:
            // A DMA request: a real header GUID most of the time, then the fuzzer's bytes.
            let guids: [EFIGUID] = [.smmVariableProtocol, .varCheckPolicyHandler, .endOfDxeEvent, .exitBootServicesEvent]
            let selector = input.byte()
            let length = Int(input.u16())
            var message = selector < 200 ? guids[Int(selector) % guids.count].wireBytes : input.take(16)
            message += input.take(8 + length)
            let start = Int(bufferAddress - FuzzMemory.base)
            device.memory.bytes.replaceSubrange(start ..< start + message.count, with: message)
            let written = device.memory.bytes
            device.mmioWrite(offset: 0x02, size: 2, value: 2)
            // Nothing outside the request's own bytes may change in guest memory.
            // MessageLength as the device finds it in guest memory (a short message leaves an
            // earlier request's bytes in place).
            let declared = LittleEndian.load(UInt64.self, from: written, at: start + 16).flatMap { CheckedSize.add($0, 24) } ?? 0
            let limit = min(start + max(Int(min(declared, 0x10000)), message.count), written.count)
            precondition(device.memory.bytes[..<start] == written[..<start], "wrote before the request")
            precondition(device.memory.bytes[limit...] == written[limit...], "wrote past the request")
        case 4:
            // A PIO request streamed through the window.
            let words = input.take(Int(input.u16() % 512) * 4)
            device.mmioWrite(offset: 0x02, size: 2, value: 4)
            var index = 0
            while index + 4 <= words.count {
                let value = UInt64(words[index]) | UInt64(words[index + 1]) << 8 | UInt64(words[index + 2]) << 16 | UInt64(words[index + 3]) << 24
                device.mmioWrite(offset: 0x10, size: 4, value: value)
                index += 4
            }
            _ = device.mmioRead(offset: 0x18, size: 4)
            device.mmioWrite(offset: 0x02, size: 2, value: 3)
            device.mmioWrite(offset: 0x02, size: 2, value: 4)
            for _ in 0 ..< words.count / 4 { _ = device.mmioRead(offset: 0x10, size: 4) }
        case 6:
            // The SVSM transport into the same service: a request in guest memory (or none),
            // mostly well-formed registers, sometimes any.
            let svsm = SVSMUEFIMM(service: service, memory: device.memory)
            let guids: [EFIGUID] = [.smmVariableProtocol, .varCheckPolicyHandler, .endOfDxeEvent]
            let length = Int(input.u16())
            let message = guids[Int(input.byte()) % guids.count].wireBytes + input.take(8 + length)
            let page = FuzzMemory.base + 0x2000
            let start = Int(page - FuzzMemory.base)
            svsm.memory.bytes.replaceSubrange(start ..< start + message.count, with: message)
            let selector = input.byte()
            let rax: UInt64 = selector < 200 ? 4 << 32 | 1 : (selector < 220 ? 6 : input.u64())
            let rcx: UInt64 = selector % 4 == 0 ? input.u64() : page
            let rdx: UInt64 = selector % 3 == 0 ? input.u64() : UInt64(message.count)
            let before = svsm.memory.bytes
            _ = svsm.call(SVSMCall(rax: rax, rcx: rcx, rdx: rdx))
            // Nothing outside [RCX, RCX + RDX) may change.
            if rcx >= FuzzMemory.base, rcx - FuzzMemory.base <= UInt64(before.count) {
                let low = Int(rcx - FuzzMemory.base)
                let high = rdx <= UInt64(before.count - low) ? low + Int(rdx) : before.count
                precondition(svsm.memory.bytes[..<low] == before[..<low], "wrote before the SVSM buffer")
                precondition(svsm.memory.bytes[high...] == before[high...], "wrote past the SVSM buffer")
            } else {
                precondition(svsm.memory.bytes == before, "wrote outside guest RAM")
            }
            device.memory = svsm.memory
        default:
            // The dispatcher on a buffer of any capacity, as another transport might hand it.
            let capacity = Int(input.u16() % 4096)
            var buffer = input.take(24 + capacity)
            buffer += [UInt8](repeating: 0, count: 24 + capacity - buffer.count)
            let length = buffer.count
            _ = MMDispatcher.dispatch(&buffer, service: service)
            precondition(buffer.count == length, "dispatch changed the buffer size")
        }
        checkInvariants(service)
    }
    return 0
}
