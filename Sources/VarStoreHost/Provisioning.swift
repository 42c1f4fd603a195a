import VarStoreCore

/// The checks a provisioning path (`import`, a QEMU JSON store, `rekey`'s copy) applies
/// before anything is written: the core's one definition of a storable variable
/// (StorableVariable), the service's per-variable limit, and the image's capacity, each
/// refusal naming the variable and the figures. A refused batch writes nothing.
public enum Provisioning {
    public struct Refusal: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// One line for an operator.
    public static func describe(_ problem: StorableVariable.Problem) -> String {
        switch problem {
        case .emptyName:
            return "the name is empty (no variable has the empty name; an image holding one could not be read back)"
        case .nameTooLong(let units):
            return "the name has \(units) characters; a record holds at most \(StorableVariable.maximumNameUnits)"
        case .dataTooLarge(let bytes):
            return "\(bytes) data bytes; a record holds at most \(StorableVariable.maximumDataBytes)"
        case .pinTooLong(let bytes):
            return "its signer pin (certdb entry or JSON digest) has \(bytes) bytes; a record holds at most "
                + "\(StorableVariable.maximumPinBytes) (edk2's are 32)"
        case .attributes(let attributes, let rule):
            return "attributes 0x\(String(attributes.rawValue, radix: 16)): \(rule)"
        }
    }

    /// `label` names a variable in a refusal: its GUID and name.
    static func label(_ variable: Variable) -> String {
        "\(variable.guid.text):\(variable.name.isEmpty ? "(empty name)" : variable.name.text)"
    }

    /// Checks `variables` before they are written over `existing` (the image's live
    /// variables, which same-named ones replace) into a store promising `configuration`'s
    /// non-volatile capacity. `raw` lets through attributes and sizes the service itself would
    /// never store (the store can still read them back); the format limits and the capacity
    /// hold regardless.
    public static func check(_ variables: [Variable], over existing: [Variable], configuration: ServiceConfiguration,
                             raw: Bool) throws {
        let quota = StorageQuota(configuration: configuration)
        for variable in variables {
            if let problem = raw ? StorableVariable.formatProblem(variable) : StorableVariable.problem(variable) {
                throw Refusal("\(label(variable)): \(describe(problem))" + (raw ? "" : problemHint(problem)))
            }
            let storageClass = StorageClass(variable.attributes)
            let charge = quota.charge(variable)
            let limit = quota.maximumVariableSize(storageClass)
            if !raw, charge > limit {
                throw Refusal("\(label(variable)): \(charge) bytes with the service's per-variable overhead; "
                    + "the service accepts at most \(limit) per variable (--raw writes it anyway)")
            }
        }
        // The store after the import, as the service will account for it.
        var merged: [VariableKey: Variable] = [:]
        for variable in existing { merged[variable.key] = variable }
        for variable in variables { merged[variable.key] = variable }
        for storageClass in [StorageClass.nonVolatile, .hardwareError] {
            let needed = merged.values.filter { StorageClass($0.attributes) == storageClass }
                .reduce(UInt64(0)) { $0 &+ quota.charge($1) }
            let available = quota.capacity(storageClass)
            if needed > available {
                let what = storageClass == .nonVolatile ? "non-volatile" : "hardware-error"
                throw Refusal("the \(what) variables would need \(needed) bytes (60 per variable, its name and data) "
                    + "but the image holds \(available)")
            }
        }
    }

    private static func problemHint(_ problem: StorableVariable.Problem) -> String {
        if case .attributes = problem { return " (--raw writes it anyway)" }
        return ""
    }
}
