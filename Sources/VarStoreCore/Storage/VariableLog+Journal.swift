/// The encrypted log store as the service's journal (Store/Journal.swift).
extension VariableLog: NonVolatileJournal {
    public var isPersistent: Bool { true }
    public var stateDigest: [UInt8] { digest }
}
