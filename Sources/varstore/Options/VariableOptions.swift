import ArgumentParser
import VarStoreCore

/// The name and vendor GUID a command names a variable by.
struct VariableOptions: ParsableArguments {
    @Argument(help: "The variable's name.")
    var name: String

    @Option(help: "Vendor GUID (default: EFI_GLOBAL_VARIABLE; db/dbx/dbt/dbr: the image security database).")
    var guid: String?

    func key() throws -> VariableKey {
        guard let variableName = VariableName(name), !variableName.isEmpty else { throw ValidationError("'\(name)' is not a variable name") }
        if let guid {
            guard let parsed = EFIGUID(text: guid) else { throw ValidationError("--guid '\(guid)' is not a GUID") }
            return VariableKey(guid: parsed, name: variableName)
        }
        return VariableKey(guid: Defaults.vendor(for: name), name: variableName)
    }
}
