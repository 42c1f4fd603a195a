import Foundation
import Testing
import VarStoreCore
import VarStoreCrypto
@testable import VarStoreHost

/// Replays real OVMF boots recorded at QEMU's uefi-vars device (../shared/vectors/ovmf,
/// format UVTRACE1) through our device and compares every reply with QEMU's.
///
/// Where we deliberately follow edk2 instead of QEMU, the reply differs; each such difference has a name and a rule that recognises
/// it, and any difference no rule explains fails the test.
@Suite struct OVMFTraceReplayTests {
    struct Record {
        let tag: String
        let seq: UInt32
        let status: UInt16
        let arg: UInt64
        let payload: [UInt8]
    }

    static func records(_ url: URL) throws -> [Record] {
        let bytes = [UInt8](try Data(contentsOf: url))
        guard bytes.count >= 16, String(decoding: bytes[0..<8], as: UTF8.self) == "UVTRACE1" else {
            throw QEMUJSONStore.FormatError("\(url.lastPathComponent): not a UVTRACE1 file")
        }
        var out: [Record] = []
        var offset = 16
        while offset + 24 <= bytes.count {
            let length = Int(u32(bytes, offset + 12))
            guard offset + 24 + length <= bytes.count else { break }
            out.append(Record(tag: String(decoding: bytes[offset..<offset + 4], as: UTF8.self),
                              seq: u32(bytes, offset + 4),
                              status: UInt16(bytes[offset + 10]) | UInt16(bytes[offset + 11]) << 8,
                              arg: u64(bytes, offset + 16),
                              payload: Array(bytes[offset + 24 ..< offset + 24 + length])))
            offset += 24 + length
        }
        return out
    }

    enum Difference: String, CaseIterable {
        /// edk2 and the UEFI SCT: deleting a variable that does not exist is EFI_NOT_FOUND.
        case deleteOfMissingVariableIsNotFound
        /// Enumeration meets a Secure Boot variable that we keep as edk2 and UEFI 2.10 do and
        /// QEMU's auth_init does not: AuditMode and DeployedMode exist (four modes), VendorKeysNv
        /// lives under edk2's GUID (QEMU: the global GUID), and our internal rewrites of an
        /// unchanged value leave CustomMode and VendorKeysNv where they are.
        case secureBootVariableSetFollowsEdk2
        /// VendorKeys reads 1 until keys change through custom mode (edk2); QEMU writes 0.
        case vendorKeysIsValidUntilCustomMode
        /// SignatureSupport lists edk2's six types (SHA-1, SHA-256/384/512, RSA-2048, X.509);
        /// QEMU lists five.
        case signatureSupportListsEdk2Types
    }

    /// The Secure Boot variables whose set, GUID or place in the enumeration differs from
    /// QEMU's (by name: QEMU's VendorKeysNv has another GUID than ours).
    static let secureBootNames: Set<String> = ["AuditMode", "DeployedMode", "VendorKeysNv", "CustomMode",
                                               "SecureBootEnable", "SetupMode", "SecureBoot", "VendorKeys",
                                               "SignatureSupport"]

    /// The UCS-2 name of `size` bytes at `offset`, if it fits.
    static func name(_ bytes: [UInt8], at offset: Int, size: UInt64) -> String? {
        guard size >= 2, size < 1024, offset + Int(size) <= bytes.count else { return nil }
        var units: [UInt16] = []
        var position = offset
        while position + 1 < offset + Int(size) {
            let unit = UInt16(bytes[position]) | UInt16(bytes[position + 1]) << 8
            if unit == 0 { break }
            units.append(unit)
            position += 2
        }
        return String(decoding: units, as: UTF16.self)
    }

    struct Outcome {
        var compared = 0
        var identical = 0
        var explained: [Difference: Int] = [:]
        var unexplained: [String] = []
    }

    /// Which named difference explains `ours` against QEMU's `theirs` for `request`, if any.
    /// `ourNext`: for GET_NEXT_VARIABLE_NAME, the name our service enumerates next, which the
    /// reply does not carry when the caller's buffer is too small for it.
    static func explain(request: [UInt8], theirs: [UInt8], theirStatus: UInt16, ours: [UInt8], ourStatus: UInt16,
                        ourNext: String?) -> Difference? {
        guard ourStatus == theirStatus, request.count >= 40, theirs.count == ours.count else { return nil }
        // SET_VARIABLE that deletes (DataSize 0 or Attributes 0): QEMU says SUCCESS, we NOT_FOUND.
        let isDelete = u64(request, 56) == 0 || (request.count >= 76 && u32(request, 72) == 0)
        if u64(request, 24) == 3, isDelete, u64(theirs, 32) == EFIStatus.success.rawValue,
           u64(ours, 32) == EFIStatus.notFound.rawValue,
           Array(theirs[0..<32]) == Array(ours[0..<32]), Array(theirs[40...]) == Array(ours[40...]) {
            return .deleteOfMissingVariableIsNotFound
        }
        switch u64(request, 24) {
        case 2 where request.count >= 64:
            // GET_NEXT_VARIABLE_NAME: GUID @40, NameSize @56, Name @64.
            let names = [name(request, at: 64, size: u64(request, 56)), name(theirs, at: 64, size: u64(theirs, 56)),
                         name(ours, at: 64, size: u64(ours, 56)), ourNext]
            if names.contains(where: { $0.map(secureBootNames.contains) ?? false }) {
                return .secureBootVariableSetFollowsEdk2
            }
        case 1 where request.count >= 76:
            // GET_VARIABLE: GUID @40, DataSize @56, NameSize @64, Attributes @72, Name @76.
            switch name(request, at: 76, size: u64(request, 64)) {
            case "VendorKeys": return .vendorKeysIsValidUntilCustomMode
            case "SignatureSupport": return .signatureSupportListsEdk2Types
            case let other? where secureBootNames.contains(other): return .secureBootVariableSetFollowsEdk2
            default: break
            }
        default:
            break
        }
        return nil
    }

    /// The first few offsets where two replies differ, with QEMU's and our byte.
    static func differences(_ theirs: [UInt8], _ ours: [UInt8]) -> String {
        let offsets = (0..<min(theirs.count, ours.count)).filter { theirs[$0] != ours[$0] }
        return offsets.prefix(6).map { "@\($0): \(theirs[$0])/\(ours[$0])" }.joined(separator: " ")
    }

    static func replay(_ trace: String) throws -> (Outcome, VariableService<Libcrypto, MemoryJournal>) {
        let directory = SharedVectors.url("vectors/ovmf")
        let service = VariableService()
        service.load(try QEMUJSONStore.load(contentsOf: directory.appendingPathComponent("\(trace).before.json")))
        let ram = SparseGuestRAM(size: 1 << 32)
        let device = UEFIVarsDevice(service: service, memory: ram)
        device.mmioWrite(offset: 0x04, size: 4, value: 0x10000)
        var outcome = Outcome()
        var pending: [UInt8]?
        var pendingAddress: UInt64 = 0
        for record in try records(directory.appendingPathComponent("\(trace).bin")) {
            switch record.tag {
            case "OPEN", "HRST":
                service.platformReset()
            case "REQ ":
                pending = record.payload
                pendingAddress = record.arg
            case "RSP ":
                guard let request = pending else { continue }
                pending = nil
                var ourNext: String?
                if request.count >= 64, u64(request, 24) == 2, let guid = EFIGUID(wire: request, at: 40),
                   let text = name(request, at: 64, size: u64(request, 56)), let current = VariableName(text) {
                    ourNext = (try? service.nextVariable(after: VariableKey(guid: guid, name: current)))?.name.text
                }
                try ram.store(request, at: pendingAddress)
                device.mmioWrite(offset: 0x08, size: 4, value: pendingAddress & 0xFFFF_FFFF)
                device.mmioWrite(offset: 0x0C, size: 4, value: pendingAddress >> 32)
                device.mmioWrite(offset: 0x02, size: 2, value: 2)
                let ourStatus = UInt16(device.mmioRead(offset: 0x02, size: 2))
                let ours = try ram.bytes(at: pendingAddress, count: request.count)
                outcome.compared += 1
                if ours == record.payload && ourStatus == record.status {
                    outcome.identical += 1
                } else if let reason = explain(request: request, theirs: record.payload, theirStatus: record.status,
                                               ours: ours, ourStatus: ourStatus, ourNext: ourNext) {
                    outcome.explained[reason, default: 0] += 1
                } else {
                    let function = request.count >= 32 ? u64(request, 24) : 0
                    outcome.unexplained.append("seq \(record.seq): function \(function) device \(record.status)/\(ourStatus) "
                        + "result 0x\(String(request.count >= 40 ? u64(record.payload, 32) : 0, radix: 16))"
                        + "/0x\(String(ours.count >= 40 ? u64(ours, 32) : 0, radix: 16))"
                        + " differing bytes \(Self.differences(record.payload, ours))")
                }
            default:
                break
            }
        }
        return (outcome, service)
    }

    @Test(.enabled(if: SharedVectors.available, "../shared/vectors is not present"),
          arguments: ["a-first-boot-empty", "b-second-boot", "d-setvar-reset", "d2-reload-after-setvar"])
    func everyReplyMatchesQEMUOrANamedDifference(_ trace: String) throws {
        let (outcome, service) = try Self.replay(trace)
        print("\(trace): \(outcome.compared) replies, \(outcome.identical) identical to QEMU's, differences \(outcome.explained.map { "\($0.key.rawValue): \($0.value)" }.sorted())")
        #expect(outcome.compared > 800)
        #expect(outcome.unexplained.isEmpty, "\(trace): \(outcome.unexplained.count) unexplained: \(outcome.unexplained.prefix(20))")
        // Nearly all of the boot is byte-identical to QEMU (about 94% since the Secure Boot
        // variables follow edk2; every other reply is one of the named differences).
        #expect(outcome.identical * 100 >= outcome.compared * 93, "\(trace): \(outcome.identical)/\(outcome.compared) identical")

        // The non-volatile store ends exactly as QEMU's did, order included, apart from the
        // Secure Boot platform variables each implementation keeps its own way.
        let expected = try QEMUJSONStore.load(contentsOf: SharedVectors.url("vectors/ovmf/\(trace).after.json"))
            .filter { !Self.secureBootNames.contains($0.name.text) }
        let ours = service.nonVolatileVariables.filter { !Self.secureBootNames.contains($0.name.text) }
        #expect(ours.map(\.name.text) == expected.map(\.name.text))
        #expect(ours == expected)
        #expect(service.nonVolatileVariables.first { $0.key == SecureBootVariable.customMode }?.data == [0])
        #expect(service.nonVolatileVariables.first { $0.key == SecureBootVariable.vendorKeysNv }?.data == [1])
    }
}
