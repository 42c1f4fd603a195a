import ArgumentParser
import VarStoreCore
import VarStoreCrypto
import VarStoreHost

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a signed update against an image's current keys without applying it.")

    @OptionGroup var image: ImageArguments
    @OptionGroup var variable: VariableOptions
    @Option(name: .customLong("update"), help: "The signed update (.auth).")
    var update: String
    @Flag(help: "Check it as an APPEND_WRITE update (attributes 0x67).")
    var append = false
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("verify") {
            let log = try image.access.openStore()
            // The same service and rules, over a copy that is thrown away.
            let scratch = VariableService(configuration: imageService(log).configuration, crypto: Libcrypto(),
                                          journal: MemoryJournal(), variables: log.live.all)
            let data = try HostFile.read(update)
            do {
                try scratch.setVariable(try variable.key(), attributes: append ? 0x67 : 0x27, data: data)
                format.done("valid: the update would apply", [("valid", "true")])
            } catch let status as EFIStatus {
                throw CLIError("the update would be refused: \(status.name)")
            }
        }
    }
}
