import Testing
@testable import VarStoreTestSupport
@testable import VarStoreCore
import VarStoreCrypto

/// The SVSM UEFI MM protocol (protocol 4, call 1) and QUERY_PROTOCOL, from the registers
/// (reference svsm.md §3–§6): coconut's checks in order, with its return codes.
@Suite struct SVSMUEFIMMTests {
    static let request: UInt64 = 4 << 32 | 1
    static let page: UInt64 = 0x2000

    func svsm() -> SVSMUEFIMM<FlatMemory, Libcrypto, MemoryJournal> {
        // Guest RAM 0x1000 … 0x21000.
        SVSMUEFIMM(service: VariableService(), memory: FlatMemory())
    }

    func put(_ svsm: SVSMUEFIMM<FlatMemory, Libcrypto, MemoryJournal>, _ bytes: [UInt8], at address: UInt64) {
        let start = Int(address - svsm.memory.base)
        svsm.memory.bytes.replaceSubrange(start ..< start + bytes.count, with: bytes)
    }

    func call(_ svsm: SVSMUEFIMM<FlatMemory, Libcrypto, MemoryJournal>, rax: UInt64 = request, rcx: UInt64, rdx: UInt64) -> SVSMStatus {
        SVSMStatus(rawValue: svsm.call(SVSMCall(rax: rax, rcx: rcx, rdx: rdx)).rax)
    }

    @Test func setAndGetAVariableInPlace() {
        let svsm = svsm()
        let set = mmMessage(WireGUID.smmVariable, smm(3, accessVariable(name: ucs2("Svsm"), dataSize: 3, attributes: 7, data: [1, 2, 3])))
        put(svsm, set, at: Self.page)
        #expect(call(svsm, rcx: Self.page, rdx: 0x1000) == SVSMStatus.success)
        #expect(u64(Array(svsm.memory.bytes[0x1000 ..< 0x1000 + set.count]), 32) == Status.success)
        let get = mmMessage(WireGUID.smmVariable, smm(1, accessVariable(name: ucs2("Svsm"), dataSize: 8) + [UInt8](repeating: 0, count: 8)))
        put(svsm, get, at: Self.page)
        #expect(call(svsm, rcx: Self.page, rdx: UInt64(get.count)) == SVSMStatus.success)
        let reply = Array(svsm.memory.bytes[0x1000 ..< 0x1000 + get.count])
        #expect(u64(reply, 32) == Status.success && u64(reply, 56) == 3)
        #expect(Array(reply[(76 + 10) ..< (76 + 13)]) == [1, 2, 3])
        // Bytes after the message are untouched: the reply is never longer than the request.
        #expect(svsm.memory.bytes[0x1000 + get.count] == 0xCC)
    }

    @Test func checksComeInCoconutsOrder() {
        let svsm = svsm()
        put(svsm, mmMessage(WireGUID.smmVariable, smm(4, [UInt8](repeating: 0, count: 28))), at: Self.page)
        // RCX 0.
        #expect(call(svsm, rcx: 0, rdx: 0x1000) == SVSMStatus.invalidParameter)
        // Outside guest memory, even with a bad size too: the address is checked first.
        #expect(call(svsm, rcx: 0x100000, rdx: 0) == SVSMStatus.invalidAddress)
        // Not page-aligned.
        #expect(call(svsm, rcx: Self.page + 8, rdx: 0x1000) == SVSMStatus.invalidAddress)
        // Smaller than the header, larger than 256 KiB.
        #expect(call(svsm, rcx: Self.page, rdx: 23) == SVSMStatus.invalidParameter)
        #expect(call(svsm, rcx: Self.page, rdx: 256 << 10 + 1) == SVSMStatus.invalidParameter)
        // The size is checked before anything about the end of the buffer.
        #expect(call(svsm, rcx: Self.page, rdx: .max) == SVSMStatus.invalidParameter)
        // MessageLength beyond RDX − 24, and one that overflows when 24 is added.
        put(svsm, mmMessage(WireGUID.smmVariable, [], messageLength: 0x1000 - 23), at: Self.page)
        #expect(call(svsm, rcx: Self.page, rdx: 0x1000) == SVSMStatus.invalidParameter)
        put(svsm, mmMessage(WireGUID.smmVariable, [], messageLength: .max), at: Self.page)
        #expect(call(svsm, rcx: Self.page, rdx: 0x1000) == SVSMStatus.invalidParameter)
        // A buffer whose tail leaves guest memory: the copy-in faults.
        let last: UInt64 = 0x20000
        put(svsm, mmMessage(WireGUID.smmVariable, [], messageLength: 0x2000), at: last)
        #expect(call(svsm, rcx: last, rdx: 0x3000) == SVSMStatus.invalidAddress)
    }

    @Test func unknownCallsAndProtocolsAndQueryProtocol() {
        let svsm = svsm()
        #expect(call(svsm, rax: 4 << 32 | 2, rcx: Self.page, rdx: 0x1000) == SVSMStatus.unsupportedCall)
        #expect(call(svsm, rax: 9 << 32 | 1, rcx: Self.page, rdx: 0x1000) == SVSMStatus.unsupportedProtocol)
        #expect(call(svsm, rax: 0 << 32 | 1, rcx: 0, rdx: 0) == SVSMStatus.unsupportedCall)
        // QUERY_PROTOCOL(4, version 1): min = max = 1; other protocols or versions: 0.
        let query = svsm.call(SVSMCall(rax: 6, rcx: 4 << 32 | 1))
        #expect(query.rax == SVSMStatus.success.rawValue && query.rcx == 1 << 32 | 1)
        #expect(svsm.call(SVSMCall(rax: 6, rcx: 4 << 32 | 2)).rcx == 0)
        #expect(svsm.call(SVSMCall(rax: 6, rcx: 2 << 32 | 1)).rcx == 0)
    }

    @Test func anUnknownMessageGUIDIsAnInvalidRequest() {
        let svsm = svsm()
        put(svsm, mmMessage([UInt8](repeating: 0x77, count: 16), [0]), at: Self.page)
        #expect(call(svsm, rcx: Self.page, rdx: 0x1000) == SVSMStatus.invalidRequest)
    }

    @Test func theRequestIsReadOnce() throws {
        // The service copies the request into its own memory once — a one-byte probe of the
        // address, the header, the body — and parses only that copy.
        let svsm = svsm()
        let set = mmMessage(WireGUID.smmVariable, smm(3, accessVariable(name: ucs2("Once"), dataSize: 1, attributes: 7, data: [5])))
        put(svsm, set, at: Self.page)
        #expect(call(svsm, rcx: Self.page, rdx: UInt64(set.count)) == SVSMStatus.success)
        #expect(svsm.memory.reads == 3)
        #expect(try svsm.service.getVariable(VariableKey(guid: EFIGUID(wire: WireGUID.vendor, at: 0)!, name: VariableName("Once")!)).data == [5])
    }

    @Test func theManifestSaysWhatIsTrue() {
        let service = VariableService()
        #expect(UEFIMMManifest.encode(service, version: 0) == [0, 0, 0, 0, 4, 0, 0, 0])
        let pk = Variable(key: SecureBootVariable.pk, attributes: [.nonVolatile, .bootServiceAccess, .runtimeAccess,
                                                                 .timeBasedAuthenticatedWriteAccess], data: [1], timestamp: .zero)
        service.load([pk])
        let extended = UEFIMMManifest.encode(service, version: 1)
        #expect(extended?.count == 48 && extended?[0] == 1 && extended?[4] == 6)
        #expect(UEFIMMManifest.encode(service, version: 2) == nil)
    }
}
