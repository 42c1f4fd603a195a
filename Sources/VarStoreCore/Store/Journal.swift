/// The seam between the variable service and whatever makes its non-volatile changes durable:
/// the service hands each request's changes over, in order, as JournalChanges, and
/// acknowledges the request only when the journal's `commit` returns. The encrypted log store
/// (Storage/VariableLog.swift) is one journal; a host may keep a JSON file, or nothing.

public enum JournalChange: Equatable, Sendable {
    /// Stores the variable; it enumerates last (the service's insert).
    case put(Variable)
    /// Replaces the variable where it stands in enumeration order.
    case replaceInPlace(Variable)
    case delete(VariableKey)

    public var key: VariableKey {
        switch self {
        case .put(let variable), .replaceInPlace(let variable): return variable.key
        case .delete(let key): return key
        }
    }
}

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

extension VariableStore {
    /// Applies one journal change, as the service made it; returns the variable it took out
    /// (replaced or deleted) and the one it stored. The one place a change meets a store:
    /// the service's journals (VariableLog's replay and commits, the host's JSON journal)
    /// all go through it.
    @discardableResult
    public mutating func apply(_ change: JournalChange) -> (removed: Variable?, stored: Variable?) {
        switch change {
        case .put(let variable):
            return (insert(variable), variable)
        case .replaceInPlace(let variable):
            if let old = self.variable(for: variable.key), replaceInPlace(variable) { return (old, variable) }
            return apply(.put(variable))
        case .delete(let key):
            return (remove(key), nil)
        }
    }
}
