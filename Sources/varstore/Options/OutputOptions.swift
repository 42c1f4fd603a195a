import ArgumentParser
import VarStoreHost

/// `--json`: one JSON object on stdout instead of text. The only place `--json` output is
/// written; each command lists its keys in spec/cli.md (a contract: keep them stable).
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print the result as one JSON object.")
    var json = false

    /// Prints the result: `text` for people, or `fields` as a JSON object (values already JSON,
    /// see `JSONValue`).
    func done(_ text: String, _ fields: [(String, String)]) {
        if json {
            print(JSONText.object(fields))
        } else if !text.isEmpty {
            print(text)
        }
    }
}

/// JSON values for `OutputOptions.done`.
enum JSONValue {
    static func string(_ text: String) -> String { JSONText.quoted(text) }
    static func number<T: BinaryInteger>(_ value: T) -> String { "\(value)" }
    static func bool(_ value: Bool) -> String { value ? "true" : "false" }
    static func array(_ values: [String]) -> String { JSONText.array(values) }
    static func object(_ fields: [(String, String)]) -> String { JSONText.object(fields) }
}
