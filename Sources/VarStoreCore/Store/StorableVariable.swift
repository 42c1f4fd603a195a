/// What the non-volatile store can hold: the one definition that every write path (the
/// service's journal, `import`, `enroll`, `rekey`'s copy, a QEMU JSON store) and the log's
/// decoder apply, so nothing reaches the journal that the store cannot read back.
///
/// Two levels. The *format* limits are what a record can encode and the decoder accepts:
/// breaking one bricks the image, so no option bypasses them. The *attribute* rule is what
/// the variable service itself would ever store (edk2's SetVariable checks); a provisioning
/// tool may knowingly write other attributes (`import --raw`), the store can still read them.
public enum StorableVariable {
    /// Why a variable cannot be stored, in words an operator can act on.
    public enum Problem: Error, Equatable, Sendable {
        /// The empty name only starts an enumeration (UEFI 2.10 §8.2 GetNextVariableName);
        /// no variable has it, and the decoder refuses a record that names one.
        case emptyName
        /// More UCS-2 code units than a record's 16-bit name length holds.
        case nameTooLong(units: Int)
        /// More data bytes than a record's 32-bit data length holds.
        case dataTooLarge(bytes: Int)
        /// The signer pin of a private authenticated variable is longer than a record's
        /// one-byte pin length holds.
        case pinTooLong(bytes: Int)
        /// Attributes the variable service never stores (the detail says which rule).
        case attributes(VariableAttributes, StaticString)

        public static func == (lhs: Problem, rhs: Problem) -> Bool {
            switch (lhs, rhs) {
            case (.emptyName, .emptyName): return true
            case (.nameTooLong(let a), .nameTooLong(let b)), (.dataTooLarge(let a), .dataTooLarge(let b)),
                 (.pinTooLong(let a), .pinTooLong(let b)):
                return a == b
            case (.attributes(let a, _), .attributes(let b, _)): return a == b
            default: return false
            }
        }
    }

    public static let maximumNameUnits = Int(UInt16.max)
    public static let maximumDataBytes = Int(UInt32.max)
    /// edk2's pins are SHA-256 digests (32 bytes); a record holds up to 255.
    public static let maximumPinBytes = Int(UInt8.max)

    /// The bits a stored variable may carry: NV, BS, RT, HR and time-based authenticated
    /// write access. APPEND_WRITE is a request flag; AUTHENTICATED_WRITE_ACCESS (0x10) is
    /// deprecated and edk2 refuses it; everything else is reserved.
    public static let storedAttributes: VariableAttributes = [.nonVolatile, .bootServiceAccess, .runtimeAccess,
                                                              .hardwareErrorRecord, .timeBasedAuthenticatedWriteAccess]

    /// The format's limits; nil when a record can carry `variable` and the decoder reads it
    /// back.
    public static func formatProblem(_ variable: Variable) -> Problem? {
        if variable.name.isEmpty { return .emptyName }
        if variable.name.codeUnits.count > maximumNameUnits { return .nameTooLong(units: variable.name.codeUnits.count) }
        if variable.data.count > maximumDataBytes { return .dataTooLarge(bytes: variable.data.count) }
        if let pin = variable.certificateDigest, pin.count > maximumPinBytes { return .pinTooLong(bytes: pin.count) }
        return nil
    }

    /// The service's rule for a stored non-volatile variable's attributes; nil when the
    /// service could have stored them. APPEND_WRITE counts against them: edk2 never stores it.
    public static func attributeProblem(_ stored: VariableAttributes) -> Problem? {
        if !storedAttributes.isSuperset(of: stored) {
            return .attributes(stored, "unknown or deprecated bits (a stored variable has only NV, BS, RT, HR and AT)")
        }
        // Without BS or RT a SetVariable is a delete; RT needs BS (UEFI 2.10 §8.2).
        if !stored.contains(.bootServiceAccess) {
            return .attributes(stored, "no BOOTSERVICE_ACCESS: the service never stores such a variable")
        }
        if !stored.contains(.nonVolatile) {
            return .attributes(stored, "not NON_VOLATILE: the image holds non-volatile variables only")
        }
        return nil
    }

    /// Both rules, format first.
    public static func problem(_ variable: Variable) -> Problem? {
        formatProblem(variable) ?? attributeProblem(variable.attributes)
    }
}
