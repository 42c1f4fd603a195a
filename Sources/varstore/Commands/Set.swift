import ArgumentParser
import VarStoreCore
import VarStoreHost

struct SetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Set a variable through the variable service, with every rule the firmware would meet.",
        discussion: "Authenticated variables (PK, KEK, db, dbx, …) need a signed update as data (see `varstore sign`) unless the image is in setup mode.")

    @OptionGroup var image: ImageArguments
    @OptionGroup var variable: VariableOptions
    @Option(help: "Attributes (default 0x7, NV|BS|RT; 0x27 for a signed update, 0x67 to append one).")
    var attributes: String = "0x7"
    @Option(name: .customLong("data-file"), help: "The data (or signed update) from a file.")
    var dataFile: String?
    @Option(help: "The data as hex.")
    var hex: String?
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("set") {
            guard let value = UInt32(attributes.hasPrefix("0x") ? String(attributes.dropFirst(2)) : attributes,
                                     radix: attributes.hasPrefix("0x") ? 16 : 10) else {
                throw ValidationError("--attributes '\(attributes)' is not a number")
            }
            let data: [UInt8]
            if let dataFile {
                data = try HostFile.read(dataFile)
            } else if let hex {
                guard let bytes = QEMUJSONStore.hexBytes(hex) else { throw ValidationError("--hex is not hex") }
                data = bytes
            } else {
                throw ValidationError("give --data-file or --hex")
            }
            let log = try image.access.openStore()
            let key = try variable.key()
            try withStagedService(log) { service in
                do {
                    try service.setVariable(key, attributes: value, data: data)
                } catch let status as EFIStatus {
                    throw CLIError("SetVariable returned \(status.name)")
                }
            }
            format.done("", [("status", JSONValue.string("EFI_SUCCESS")), ("generation", "\(log.generation)")])
        }
    }
}
