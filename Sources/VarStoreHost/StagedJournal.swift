import VarStoreCore

/// A journal that holds a host tool's changes to an image until `finish`, then makes them
/// durable as one commit (a record group, spec/storage.md): enrollment runs many SetVariable
/// calls through the service, and either all of them reach the image or, when any is refused
/// or a final check fails, none does.
public final class StagedJournal: NonVolatileJournal {
    public let log: HostJournal.ImageLog
    /// The changes the service has committed so far, in order.
    public private(set) var staged: [JournalChange] = []

    public init(_ log: HostJournal.ImageLog) { self.log = log }

    public func commit(_ changes: [JournalChange]) throws(StorageError) { staged += changes }

    /// Writes everything staged as one commit.
    public func finish() throws(StorageError) {
        try log.commit(staged)
        staged = []
    }

    public var isPersistent: Bool { true }
    public var generation: UInt64 { log.generation }
    public var stateDigest: [UInt8] { log.digest }
}
