import ArgumentParser
import VarStoreCore

struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete a variable through the variable service (authenticated ones need a signed empty update: use set).")

    @OptionGroup var image: ImageArguments
    @OptionGroup var variable: VariableOptions
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("delete") {
            let log = try image.access.openStore()
            let key = try variable.key()
            try withStagedService(log) { service in
                do {
                    try service.setVariable(key, attributes: 0, data: [])
                } catch let status as EFIStatus {
                    throw CLIError("SetVariable returned \(status.name)")
                }
            }
            format.done("", [("status", JSONValue.string("EFI_SUCCESS")), ("generation", "\(log.generation)")])
        }
    }
}
