/// Where non-volatile variable changes go to become durable: the service hands each
/// request's changes over, in order, and acknowledges the request only when `commit`
/// returns. The encrypted log store is one (VariableLog); a host may keep a JSON file.
public protocol NonVolatileJournal {
    mutating func commit(_ changes: [JournalChange]) throws(StorageError)
    /// Whether committed changes outlive the service (the attestation manifest says so).
    var isPersistent: Bool { get }
    /// The committed state's generation and digest (0 and empty where there are none).
    var generation: UInt64 { get }
    var stateDigest: [UInt8] { get }
}

/// Keeps nothing: non-volatile variables live as long as the service (tests, and hosts that
/// persist some other way).
public struct MemoryJournal: NonVolatileJournal {
    public init() {}
    public func commit(_ changes: [JournalChange]) throws(StorageError) {}
    public var isPersistent: Bool { false }
    public var generation: UInt64 { 0 }
    public var stateDigest: [UInt8] { [] }
}

extension VariableLog: NonVolatileJournal {
    public var isPersistent: Bool { true }
    public var stateDigest: [UInt8] { digest }
}
