import ArgumentParser
import Foundation
import VarStoreCore
import VarStoreHost

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Provision an image from QEMU uefi-vars JSON v2 or an OVMF_VARS.fd, losslessly (times and signer pins included).",
        discussion: "The format is recognised from the content: JSON (also what virt-fw-vars --output-json writes), or an edk2 firmware volume. A provisioning path, not the guest's: variables are written as they are (no signature checks), as one commit — all of them or, if anything is wrong or they do not fit, none. Refused before anything is written: a truncated file, a variable no image can hold (empty name, a signer pin over 255 bytes), attributes or a size the variable service would never store (unless --raw), and more than the image's capacity. Existing variables with the same name and GUID are replaced.")

    @OptionGroup var image: ImageArguments
    @Argument(help: "The JSON or OVMF_VARS.fd file to read.")
    var input: String
    @Flag(help: "Also write variables whose attributes or size the variable service would never store (e.g. 0x1, no BOOTSERVICE_ACCESS). The image can still be read; the firmware may not use them.")
    var raw = false
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("import") {
            let bytes = try HostFile.read(input)
            let variables: [Variable]
            let kind: String
            if bytes.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) == UInt8(ascii: "{") {
                variables = try QEMUJSONStore.load(contentsOf: URL(fileURLWithPath: input))
                kind = "json"
            } else {
                do {
                    variables = try OVMFVarsFile.parse(bytes)
                } catch {
                    // A firmware volume (its _FVH signature is there) that is broken gets its
                    // own problem named; anything else is neither format.
                    guard OVMFVarsFile.isFirmwareVolume(bytes) else {
                        throw CLIError("\(input): neither QEMU JSON nor an edk2 firmware volume (\(describe(error)))")
                    }
                    throw CLIError("\(input): \(describe(error)); nothing was written")
                }
                kind = "ovmf-vars"
            }
            let log = try image.access.openStore()
            do {
                try LUKS2Image.provision(variables, into: log, raw: raw)
            } catch let refusal as Provisioning.Refusal {
                throw CLIError("\(input): \(refusal.description); nothing was written")
            }
            format.done("imported \(variables.count) variables (generation \(log.generation))",
                        [("imported", "\(variables.count)"), ("format", JSONValue.string(kind)), ("generation", "\(log.generation)")])
        }
    }
}
