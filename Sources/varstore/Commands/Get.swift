import ArgumentParser
import VarStoreCore
import VarStoreHost

struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Print a variable's data as hex, or write it to a file.")

    @OptionGroup var image: ImageArguments
    @OptionGroup var variable: VariableOptions
    @Option(help: "Write the raw data here instead of printing hex.")
    var output: String?
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("get") {
            let log = try image.access.openStore()
            let wanted = try variable.key()
            guard let found = log.live.variable(for: wanted) else {
                throw CLIError("no variable \(wanted.name.text) with GUID \(wanted.guid.text)")
            }
            if let output { try HostFile.write(found.data, to: output) }
            var fields = [("name", JSONValue.string(found.name.text)), ("guid", JSONValue.string(found.guid.text)),
                          ("attr", "\(found.attributes.rawValue)"), ("data", JSONValue.string(Hex.string(found.data)))]
            if found.attributes.contains(.timeBasedAuthenticatedWriteAccess) {
                fields.append(("time", JSONValue.string(Hex.string((found.timestamp ?? .zero).bytes))))
            }
            format.done(output == nil ? Hex.string(found.data) : "", fields)
        }
    }
}
