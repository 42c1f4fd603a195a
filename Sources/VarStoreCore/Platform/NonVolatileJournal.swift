/// Where non-volatile variable changes go to become durable: the service hands each
/// request's changes over, in order, and acknowledges the request only when `commit`
/// returns. The encrypted log store is one (VariableLog); a host may keep a JSON file.
public protocol NonVolatileJournal {
    mutating func commit(_ changes: [JournalChange]) throws(StorageError)
}

/// Keeps nothing: non-volatile variables live as long as the service (tests, and hosts that
/// persist some other way).
public struct MemoryJournal: NonVolatileJournal {
    public init() {}
    public func commit(_ changes: [JournalChange]) throws(StorageError) {}
}

extension VariableLog: NonVolatileJournal {}
