import ArgumentParser
import Foundation
import VarStoreHost

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write an image's non-volatile variables as QEMU uefi-vars JSON v2, or as an OVMF_VARS.fd.",
        discussion: "With --template the output is an edk2 OVMF_VARS.fd in the template's layout (its firmware-volume header and size; the FTW write queue is erased so the firmware replays nothing over the store); otherwise QEMU's JSON. The file is replaced atomically.")

    @OptionGroup var image: ImageArguments
    @Argument(help: "The file to write.")
    var output: String
    @Option(help: "Write an OVMF_VARS.fd in this template's layout (e.g. /usr/share/OVMF/OVMF_VARS_4M.fd).")
    var template: String?
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("export") {
            let log = try image.access.openStore()
            let kind: String
            if let template {
                let bytes = try OVMFVarsFile.render(log.live.all, template: try HostFile.read(template))
                try AtomicFile.write(bytes, to: URL(fileURLWithPath: output))
                kind = "ovmf-vars"
            } else {
                try QEMUJSONStore.save(log.live.all, to: URL(fileURLWithPath: output))
                kind = "json"
            }
            format.done("exported \(log.live.count) variables (generation \(log.generation)) to \(output)",
                        [("exported", "\(log.live.count)"), ("format", JSONValue.string(kind)), ("file", JSONValue.string(output)),
                         ("generation", "\(log.generation)")])
        }
    }
}
