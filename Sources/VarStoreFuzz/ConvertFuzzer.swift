// libFuzzer target: the host tools' readers of files an operator may get from anywhere —
// edk2's OVMF_VARS.fd (firmware-volume variable store) and QEMU's uefi-vars JSON — built by
// .ci/fuzz with the core and crypto sources, FuzzSupport.swift and the two readers
// (Sources/VarStoreHost/OVMFVarsFile.swift, QEMUJSONStore.swift, with the Provisioning,
// AtomicFile and HostFile helpers they use) as one module.
//
// The first input byte picks the reader; the rest is the file. Beyond "never trap", each
// reader must round-trip what it accepts: a JSON store renders to text that parses back to
// the same variables, and an accepted firmware volume that is also a valid template renders
// those variables back into itself and reads back the same (signer pins included). And
// whatever either reader accepts, a store can hold (StorableVariable's format limits): no
// file an operator is handed can brick an image.

import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = Input(bytes: Array(UnsafeBufferPointer(start: data, count: size)))
    let selector = input.byte()
    let file = input.take(size)
    if selector & 1 == 0 {
        guard let variables = try? QEMUJSONStore.parse(Data(file)) else { return 0 }
        precondition(variables.allSatisfy { StorableVariable.formatProblem($0) == nil }, "JSON reader accepted an unstorable variable")
        let text = QEMUJSONStore.render(variables)
        guard let again = try? QEMUJSONStore.parse(Data(text.utf8)) else {
            preconditionFailure("rendered JSON does not parse")
        }
        precondition(again == variables, "JSON round trip changed the variables")
    } else {
        guard let variables = try? OVMFVarsFile.parse(file) else { return 0 }
        precondition(variables.allSatisfy { StorableVariable.formatProblem($0) == nil }, "fd reader accepted an unstorable variable")
        guard let rendered = try? OVMFVarsFile.render(variables, template: file) else { return 0 }
        precondition(rendered.count == file.count, "the export changed the template's size")
        guard let again = try? OVMFVarsFile.parse(rendered) else { preconditionFailure("an exported store does not parse") }
        precondition(again.filter(\.isNonVolatile) == variables.filter(\.isNonVolatile), "OVMF round trip changed the variables")
    }
    return 0
}
