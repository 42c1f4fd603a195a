import VarStoreCore
import VarStoreCrypto

/// The guest side of the MM variable protocol, as edk2's VariableSmmRuntimeDxe and
/// VirtMmCommunicationDxe drive it: builds request buffers, rings the uefi-vars doorbell
/// through a bus, and decodes replies. Used by the demo, the benchmark and the qtest client;
/// the tests build their bytes independently from the reference layouts.
public struct MMClient {
    /// How the client reaches the device and guest RAM.
    public struct Bus {
        public var read: (UInt64, Int) -> UInt64
        public var write: (UInt64, Int, UInt64) -> Void
        public var readBytes: (UInt64, Int) -> [UInt8]
        public var writeBytes: (UInt64, [UInt8]) -> Void

        public init(read: @escaping (UInt64, Int) -> UInt64, write: @escaping (UInt64, Int, UInt64) -> Void,
                    readBytes: @escaping (UInt64, Int) -> [UInt8], writeBytes: @escaping (UInt64, [UInt8]) -> Void) {
            self.read = read
            self.write = write
            self.readBytes = readBytes
            self.writeBytes = writeBytes
        }
    }

    public let bus: Bus
    public let deviceBase: UInt64
    public let bufferAddress: UInt64
    public let bufferSize: UInt32 = 0x10000

    public init(bus: Bus, deviceBase: UInt64 = UEFIVarsRegister.x86BaseAddress, bufferAddress: UInt64 = 0x10_0000) {
        self.bus = bus
        self.deviceBase = deviceBase
        self.bufferAddress = bufferAddress
    }

    /// edk2 QemuMmio.c VirtMmHwInit: check MAGIC, RESET, BUFFER_SIZE = 64 KiB, DMA address.
    public func initialize() -> Bool {
        guard bus.read(deviceBase + UEFIVarsRegister.magic, 2) == 0x0EF1 else { return false }
        bus.write(deviceBase + UEFIVarsRegister.commandStatus, 2, UInt64(UEFIVarsCommand.reset.rawValue))
        guard bus.read(deviceBase + UEFIVarsRegister.commandStatus, 2) == 0 else { return false }
        bus.write(deviceBase + UEFIVarsRegister.bufferSize, 4, UInt64(bufferSize))
        bus.write(deviceBase + UEFIVarsRegister.dmaBufferAddressLow, 4, bufferAddress & 0xFFFF_FFFF)
        bus.write(deviceBase + UEFIVarsRegister.dmaBufferAddressHigh, 4, bufferAddress >> 32)
        return true
    }

    /// Sends one MM message by DMA; returns the device status and the reply payload.
    public func communicate(guid: EFIGUID, payload: [UInt8]) -> (deviceStatus: UInt16, reply: [UInt8]) {
        let request = Self.request(guid: guid, payload: payload)
        bus.writeBytes(bufferAddress, request)
        bus.write(deviceBase + UEFIVarsRegister.commandStatus, 2, UInt64(UEFIVarsCommand.dmaMM.rawValue))
        let status = UInt16(truncatingIfNeeded: bus.read(deviceBase + UEFIVarsRegister.commandStatus, 2))
        let reply = bus.readBytes(bufferAddress, request.count)
        return (status, Array(reply.dropFirst(MMCommunicateHeader.size)))
    }

    private func smm(_ function: SMMVariableFunction, _ body: [UInt8]) -> (status: EFIStatus, payload: [UInt8]) {
        let (deviceStatus, reply) = communicate(guid: .smmVariableProtocol, payload: Self.smmPayload(function, body))
        guard deviceStatus == 0, let raw = LittleEndian.load(UInt64.self, from: reply, at: 8) else {
            return (.deviceError, [])
        }
        return (EFIStatus(rawValue: raw), Array(reply.dropFirst(16)))
    }

    public func getVariable(_ name: VariableName, _ guid: EFIGUID, dataSize: Int = 4096)
        -> (status: EFIStatus, attributes: UInt32, data: [UInt8]) {
        let (status, reply) = smm(.getVariable, Self.getVariableBody(name, guid, dataSize: dataSize))
        let attributes = LittleEndian.load(UInt32.self, from: reply, at: 32) ?? 0
        let size = Int(LittleEndian.load(UInt64.self, from: reply, at: 16) ?? 0)
        guard status == .success, size <= dataSize else { return (status, attributes, []) }
        let start = 36 + name.wireSize
        return (status, attributes, Array(reply[start ..< start + size]))
    }

    public func setVariable(_ name: VariableName, _ guid: EFIGUID, attributes: UInt32, data: [UInt8]) -> EFIStatus {
        smm(.setVariable, Self.setVariableBody(name, guid, attributes: attributes, data: data)).status
    }

    /// One GetNextVariableName call with an output buffer of `nameBufferSize` bytes.
    public func getNextVariableName(after name: VariableName, _ guid: EFIGUID, nameBufferSize: Int = 1024)
        -> (status: EFIStatus, name: VariableName?, guid: EFIGUID?) {
        let (status, reply) = smm(.getNextVariableName,
                                  Self.getNextVariableNameBody(after: name, guid, nameBufferSize: nameBufferSize))
        guard status == .success, let size = LittleEndian.load(UInt64.self, from: reply, at: 16),
              case .success(let next) = VariableName.parse(reply, at: 24, size: size) else {
            return (status, nil, nil)
        }
        return (status, next, EFIGUID(wire: reply, at: 0))
    }

    /// Every (GUID, name) in enumeration order.
    public func enumerate() -> [VariableKey] {
        var keys: [VariableKey] = []
        var name = VariableName.empty
        var guid = EFIGUID(low: 0, high: 0)
        while true {
            let (status, next, nextGuid) = getNextVariableName(after: name, guid)
            guard status == .success, let next, let nextGuid else { return keys }
            keys.append(VariableKey(guid: nextGuid, name: next))
            name = next
            guid = nextGuid
        }
    }

    public func queryVariableInfo(attributes: UInt32) -> (status: EFIStatus, info: StorageInfo?) {
        var body = [UInt8](repeating: 0, count: 24)
        LittleEndian.append(attributes, to: &body)
        let (status, reply) = smm(.queryVariableInfo, body)
        guard status == .success, let maximum = LittleEndian.load(UInt64.self, from: reply, at: 0),
              let remaining = LittleEndian.load(UInt64.self, from: reply, at: 8),
              let largest = LittleEndian.load(UInt64.self, from: reply, at: 16) else { return (status, nil) }
        return (status, .init(maximumVariableStorageSize: maximum, remainingVariableStorageSize: remaining,
                              maximumVariableSize: largest))
    }

    // MARK: Request bytes (what the guest writes to its buffer before ringing the doorbell)

    /// EFI_MM_COMMUNICATE_HEADER followed by `payload`.
    public static func request(guid: EFIGUID, payload: [UInt8]) -> [UInt8] {
        var request = guid.wireBytes
        LittleEndian.append(UInt64(payload.count), to: &request)
        return request + payload
    }

    /// SMM_VARIABLE_COMMUNICATE_HEADER (Function, ReturnStatus 0) followed by `body`.
    public static func smmPayload(_ function: SMMVariableFunction, _ body: [UInt8]) -> [UInt8] {
        var payload: [UInt8] = []
        LittleEndian.append(function.rawValue, to: &payload)
        LittleEndian.append(UInt64(0), to: &payload)
        return payload + body
    }

    /// A whole GET_VARIABLE request with a `dataSize`-byte data area.
    public static func getVariableRequest(_ name: VariableName, _ guid: EFIGUID, dataSize: Int) -> [UInt8] {
        request(guid: .smmVariableProtocol, payload: smmPayload(.getVariable, getVariableBody(name, guid, dataSize: dataSize)))
    }

    /// A whole SET_VARIABLE request.
    public static func setVariableRequest(_ name: VariableName, _ guid: EFIGUID, attributes: UInt32, data: [UInt8]) -> [UInt8] {
        request(guid: .smmVariableProtocol,
                payload: smmPayload(.setVariable, setVariableBody(name, guid, attributes: attributes, data: data)))
    }

    /// A whole GET_NEXT_VARIABLE_NAME request with a `nameBufferSize`-byte name area.
    public static func getNextVariableNameRequest(after name: VariableName, _ guid: EFIGUID, nameBufferSize: Int) -> [UInt8] {
        request(guid: .smmVariableProtocol,
                payload: smmPayload(.getNextVariableName, getNextVariableNameBody(after: name, guid, nameBufferSize: nameBufferSize)))
    }

    static func getVariableBody(_ name: VariableName, _ guid: EFIGUID, dataSize: Int) -> [UInt8] {
        var body = guid.wireBytes
        LittleEndian.append(UInt64(dataSize), to: &body)
        LittleEndian.append(UInt64(name.wireSize), to: &body)
        LittleEndian.append(UInt32(0), to: &body)
        body += name.wireBytes
        body += [UInt8](repeating: 0, count: dataSize)
        return body
    }

    static func setVariableBody(_ name: VariableName, _ guid: EFIGUID, attributes: UInt32, data: [UInt8]) -> [UInt8] {
        var body = guid.wireBytes
        LittleEndian.append(UInt64(data.count), to: &body)
        LittleEndian.append(UInt64(name.wireSize), to: &body)
        LittleEndian.append(attributes, to: &body)
        body += name.wireBytes
        body += data
        return body
    }

    static func getNextVariableNameBody(after name: VariableName, _ guid: EFIGUID, nameBufferSize: Int) -> [UInt8] {
        var body = guid.wireBytes
        let nameBytes = name.wireBytes
        let area = max(nameBufferSize, nameBytes.count)
        LittleEndian.append(UInt64(nameBufferSize), to: &body)
        body += nameBytes + [UInt8](repeating: 0, count: area - nameBytes.count)
        return body
    }

    public func signal(_ function: SMMVariableFunction) -> EFIStatus { smm(function, []).status }

    public static func bus(for machine: QTestMachine) -> Bus {
        Bus(read: { machine.busRead($0, size: $1) },
            write: { machine.busWrite($0, size: $1, value: $2) },
            readBytes: { machine.busReadBytes($0, count: $1) },
            writeBytes: { machine.busWriteBytes($0, $1) })
    }
}
