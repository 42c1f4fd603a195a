import Foundation
import Testing
import VarStoreCore
@testable import VarStoreHost

/// Replays real OVMF boots recorded at QEMU's uefi-vars device (../shared/vectors/ovmf,
/// format UVTRACE1) through our device and compares every reply with QEMU's.
///
/// Where we deliberately follow edk2 instead of QEMU, or where a later issue's feature is not
/// built yet, the reply differs; each such difference has a name and a rule that recognises
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

    /// What QEMU's auth_init does at every reset with no PK enrolled (mm-protocol.md §4.1, the
    /// order read off these traces): (re)create the Secure Boot mode variables at the end of the
    /// list. The Secure Boot issue builds this into the service; until then the harness does it,
    /// so every other reply can be compared byte for byte.
    static func emulateQEMUAuthInit(_ service: VariableService) {
        let bsRt: VariableAttributes = [.bootServiceAccess, .runtimeAccess]
        let nvBs: VariableAttributes = [.nonVolatile, .bootServiceAccess]
        let certTypes = ["c1c41626-504c-4092-aca9-41f936934328", "ff3e5307-9fd0-48c9-85f1-8ad56c701e01",
                         "093e0fae-a6c4-4f50-9f1b-d41e2b89c19a", "3c5766e8-269c-4e34-aa14-ed776e85b3b6",
                         "a5c059a1-94e4-4aa7-87b5-ab155c2bf072"]
        func variable(_ name: String, _ guid: EFIGUID, _ attributes: VariableAttributes, _ data: [UInt8],
                      time: EFITime? = nil) -> Variable {
            Variable(key: VariableKey(guid: guid, name: VariableName(name)!), attributes: attributes, data: data, timestamp: time)
        }
        let customModeNamespace = EFIGUID(text: "c076ec0c-7028-4399-a072-71ee5c448b9f")!
        service.load([
            variable("SetupMode", .globalVariable, bsRt, [1]),
            variable("SignatureSupport", .globalVariable, bsRt, certTypes.flatMap { EFIGUID(text: $0)!.wireBytes }),
            variable("SecureBoot", .globalVariable, bsRt, [0]),
            variable("CustomMode", customModeNamespace, nvBs, [0]),
            variable("VendorKeysNv", .globalVariable, nvBs.union(.timeBasedAuthenticatedWriteAccess), [0], time: .zero),
            variable("VendorKeys", .globalVariable, bsRt, [0]),
        ])
    }

    enum Difference: String, CaseIterable {
        /// edk2 and the UEFI SCT: deleting a variable that does not exist is EFI_NOT_FOUND.
        case deleteOfMissingVariableIsNotFound
    }

    struct Outcome {
        var compared = 0
        var identical = 0
        var explained: [Difference: Int] = [:]
        var unexplained: [String] = []
    }

    /// Which named difference explains `ours` against QEMU's `theirs` for `request`, if any.
    static func explain(request: [UInt8], theirs: [UInt8], theirStatus: UInt16, ours: [UInt8], ourStatus: UInt16) -> Difference? {
        guard ourStatus == theirStatus, request.count >= 40 else { return nil }
        // SET_VARIABLE that deletes (DataSize 0 or Attributes 0): QEMU says SUCCESS, we NOT_FOUND.
        let isDelete = u64(request, 56) == 0 || (request.count >= 76 && u32(request, 72) == 0)
        if u64(request, 24) == 3, isDelete, u64(theirs, 32) == EFIStatus.success.rawValue,
           u64(ours, 32) == EFIStatus.notFound.rawValue,
           Array(theirs[0..<32]) == Array(ours[0..<32]), Array(theirs[40...]) == Array(ours[40...]) {
            return .deleteOfMissingVariableIsNotFound
        }
        return nil
    }

    /// The first few offsets where two replies differ, with QEMU's and our byte.
    static func differences(_ theirs: [UInt8], _ ours: [UInt8]) -> String {
        let offsets = (0..<min(theirs.count, ours.count)).filter { theirs[$0] != ours[$0] }
        return offsets.prefix(6).map { "@\($0): \(theirs[$0])/\(ours[$0])" }.joined(separator: " ")
    }

    static func replay(_ trace: String) throws -> (Outcome, VariableService) {
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
                emulateQEMUAuthInit(service)
            case "REQ ":
                pending = record.payload
                pendingAddress = record.arg
            case "RSP ":
                guard let request = pending else { continue }
                pending = nil
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
                                               ours: ours, ourStatus: ourStatus) {
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
        // Nearly all of the boot is byte-identical to QEMU.
        #expect(outcome.identical * 100 >= outcome.compared * 98, "\(trace): \(outcome.identical)/\(outcome.compared) identical")

        // The non-volatile store ends exactly as QEMU's did, order included.
        let expected = try QEMUJSONStore.load(contentsOf: SharedVectors.url("vectors/ovmf/\(trace).after.json"))
        #expect(service.nonVolatileVariables.map(\.name.text) == expected.map(\.name.text))
        #expect(service.nonVolatileVariables == expected)
    }
}
