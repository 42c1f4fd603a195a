/// The platform's channel to the witness: the party that released the volume key, or one it
/// trusts, keeping the ledger of each image's witnessed states (spec/rollback.md). An SVSM
/// forwards reports over its attested channel (the C ABI's `witness` callback); a host posts
/// them over HTTP.
public protocol Witness {
    /// Hands an encoded WitnessReport over; true only when the witness recorded it (accepted,
    /// or already held exactly that state). Refused and unreachable are both false.
    mutating func witness(_ report: [UInt8]) -> Bool
}

/// Which commits wait for the witness before they are acknowledged (spec/rollback.md,
/// "Policy").
public struct WitnessPolicy: Sendable {
    /// Every non-volatile commit waits, not only the Secure Boot ones.
    public var everyChange: Bool

    public init(everyChange: Bool = false) {
        self.everyChange = everyChange
    }

    public static let secureBoot = WitnessPolicy()

    /// The Secure Boot keys, databases and mode variables: rolling any of them back re-opens
    /// what a revocation or a mode change closed.
    public static let requiredKeys: [VariableKey] = [
        SecureBootVariable.pk, SecureBootVariable.kek,
        SecureBootVariable.db, SecureBootVariable.dbx, SecureBootVariable.dbt, SecureBootVariable.dbr,
        SecureBootVariable.setupMode, SecureBootVariable.secureBoot, SecureBootVariable.auditMode,
        SecureBootVariable.deployedMode, SecureBootVariable.secureBootEnable, SecureBootVariable.customMode,
        SecureBootVariable.vendorKeysNv,
    ]

    public func requiresWitness(_ changes: [JournalChange]) -> Bool {
        if everyChange { return !changes.isEmpty }
        for change in changes where Self.requiredKeys.contains(change.key) { return true }
        return false
    }
}
