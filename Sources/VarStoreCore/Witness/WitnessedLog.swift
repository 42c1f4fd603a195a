/// The encrypted log as a journal whose commits are witnessed (spec/rollback.md, "A required
/// commit, step by step"). A commit the policy requires is made durable, then reported; if the
/// witness does not record it, the commit is retracted from the log and the service, seeing the
/// error, undoes the request and answers EFI_DEVICE_ERROR. Other commits are acknowledged once
/// durable and leave the state *pending*: reported by the next required commit, by
/// `reportPending` (open, shutdown), in one report that covers them all.
public final class WitnessedLog<Device: Flash, Crypto: StorageCrypto, W: Witness>: NonVolatileJournal {
    public let log: VariableLog<Device, Crypto>
    public var witness: W
    public let policy: WitnessPolicy
    let key: SecretBytes
    /// The state this service knows the witness to hold (0 and zeros: none yet).
    public private(set) var anchorGeneration: UInt64
    public private(set) var anchorDigest: [UInt8]

    /// `anchor` is what the witness told the key-release side it holds for this image (nil:
    /// nothing, a first use); a state newer than it is pending.
    public init(log: VariableLog<Device, Crypto>, witnessKey: SecretBytes, anchor: (generation: UInt64, digest: [UInt8])?,
                policy: WitnessPolicy = .secureBoot, witness: W) {
        self.log = log
        self.witness = witness
        self.policy = policy
        key = witnessKey
        if let anchor, anchor.digest.count == 32 {
            anchorGeneration = anchor.generation
            anchorDigest = anchor.digest
        } else {
            anchorGeneration = 0
            anchorDigest = [UInt8](repeating: 0, count: 32)
        }
    }

    /// Whether the committed state is one the witness has not recorded yet.
    public var isPending: Bool { anchorGeneration != log.generation || anchorDigest != log.digest }

    /// The report for the current state against the anchor (what `reportPending` sends).
    public func currentReport(required: Bool) -> [UInt8]? {
        guard let report = WitnessReport(flags: required ? .required : [], uuid: log.binding, generation: log.generation,
                                         digest: log.digest, previousGeneration: anchorGeneration,
                                         previousDigest: anchorDigest) else { return nil }
        return report.encoded(key: key, crypto: log.crypto)
    }

    /// Reports the current state if it is pending; true when the witness holds it.
    @discardableResult
    public func reportPending() -> Bool { report(required: false) }

    private func report(required: Bool) -> Bool {
        guard isPending else { return true }
        guard let bytes = currentReport(required: required), witness.witness(bytes) else { return false }
        anchorGeneration = log.generation
        anchorDigest = log.digest
        return true
    }

    public func commit(_ changes: [JournalChange]) throws(StorageError) {
        guard policy.requiresWitness(changes) else {
            try log.commit(changes)
            return
        }
        let saved = try log.commitRetractably(changes)
        if report(required: true) { return }
        try log.retract(saved)
        throw .flash(.ioError)
    }

    public var isPersistent: Bool { true }
    public var generation: UInt64 { log.generation }
    public var stateDigest: [UInt8] { log.digest }
}

extension VariableLog {
    /// The LUKS2 UUID text the log is bound to (a report names its image with it).
    public var imageUUID: [UInt8] { binding }
}

extension EncryptedImage {
    /// The image's witness key, from the volume key the opened log's segment holds
    /// (spec/rollback.md, "Parties and keys"): not from the store keys, so a key broker derives
    /// it from what it released.
    public static func witnessKey<F: Flash, C: StorageCrypto>(of log: Log<F, C>) -> SecretBytes {
        WitnessKey.derive(volumeKey: log.device.volumeKey.bytes, uuid: log.binding, crypto: log.crypto)
    }
}
