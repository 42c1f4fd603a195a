import Foundation
import Testing
import VarStoreCore
@testable import VarStoreHost

/// OVMF_VARS.fd written into Debian's template and read back: times, attributes and the signer
/// pins of private authenticated variables (through edk2's certdb) survive.
let debianOVMFTemplate = "/usr/share/OVMF/OVMF_VARS_4M.fd"

@Suite(.enabled(if: FileManager.default.fileExists(atPath: debianOVMFTemplate), "Debian's ovmf is not installed"))
struct OVMFVarsFileTests {
    static let template = debianOVMFTemplate

    @Test func variablesTimesAndPinsRoundTrip() throws {
        let vendor = EFIGUID(text: "15edf297-e832-4d30-8200-a525a931e33e")!
        let time = EFITime(year: 2026, month: 3, day: 4, hour: 5, minute: 6, second: 7)
        let variables = [
            Variable(key: VariableKey(guid: .globalVariable, name: VariableName("BootOrder")!),
                     attributes: [.nonVolatile, .bootServiceAccess, .runtimeAccess], data: [0, 0, 1, 0]),
            Variable(key: VariableKey(guid: vendor, name: VariableName("Pinned")!),
                     attributes: [.nonVolatile, .bootServiceAccess, .runtimeAccess, .timeBasedAuthenticatedWriteAccess],
                     data: Array("secret".utf8), timestamp: time, certificateDigest: [UInt8](repeating: 0xAB, count: 32)),
            Variable(key: VariableKey(guid: vendor, name: VariableName("Odd")!),
                     attributes: [.nonVolatile, .bootServiceAccess], data: [1, 2, 3]),
        ]
        let rendered = try OVMFVarsFile.render(variables, template: [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.template))))
        let parsed = try OVMFVarsFile.parse(rendered)
        // certdb comes first, then the variables in order, pins attached again.
        #expect(parsed.map(\.name.text) == ["certdb", "BootOrder", "Pinned", "Odd"])
        #expect(Array(parsed.dropFirst()) == variables)
    }

    @Test func aStoreThatDoesNotFitIsRefused() throws {
        let template = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.template)))
        let big = (0 ..< 40).map { index in
            Variable(key: VariableKey(guid: .globalVariable, name: VariableName("Big\(index)")!),
                     attributes: [.nonVolatile, .bootServiceAccess], data: [UInt8](repeating: 1, count: 8000))
        }
        #expect(throws: OVMFVarsFile.FormatError.self) { _ = try OVMFVarsFile.render(big, template: template) }
        #expect(throws: OVMFVarsFile.FormatError.self) { _ = try OVMFVarsFile.parse([UInt8](repeating: 0, count: 4096)) }
    }

    @Test func aWriteTheTemplateLeftInFlightIsNotCarriedOver() throws {
        // Debian's template: the working block header (EDKII_WORKING_BLOCK_SIGNATURE_GUID,
        // laid out from edk2's FaultTolerantWrite.h) sits after the variable store; a write
        // record in its queue would make the firmware copy the spare block over our store.
        var template = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.template)))
        let signature: [UInt8] = [0x2b, 0x29, 0x58, 0x9e, 0x68, 0x7c, 0x7d, 0x49, 0xa0, 0xce, 0x65, 0x00, 0xfd, 0x9f, 0x1b, 0x95]
        let header = try #require((0 ..< template.count - 32).first { Array(template[$0 ..< $0 + 16]) == signature })
        let queueSize = Int(template[header + 24]) | Int(template[header + 25]) << 8 | Int(template[header + 26]) << 16
        #expect(queueSize > 64)
        // A pending record: header allocated, data not yet complete (bits cleared from 0xFF).
        template.replaceSubrange(header + 32 ..< header + 48, with: [0xFC] + [UInt8](repeating: 0x11, count: 15))
        let rendered = try OVMFVarsFile.render([], template: template)
        #expect(Array(rendered[header ..< header + 32]) == Array(template[header ..< header + 32]))
        #expect(rendered[header + 32 ..< header + 32 + queueSize].allSatisfy { $0 == 0xFF })
        #expect(rendered.count == template.count)
    }

    @Test func aTemplateWhoseStoreIsSmallerThanItsHeaderIsRefusedNotTrapped() throws {
        // Found by the convert fuzzer: a store size below the 28-byte header underflowed.
        var template = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.template)))
        let store = Int(template[0x30]) | Int(template[0x31]) << 8
        template.replaceSubrange(store + 16 ..< store + 20, with: [20, 0, 0, 0])
        #expect(throws: OVMFVarsFile.FormatError.self) { _ = try OVMFVarsFile.render([], template: template) }
    }
}
