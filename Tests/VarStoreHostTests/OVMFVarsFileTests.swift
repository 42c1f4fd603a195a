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
}
