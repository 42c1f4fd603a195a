import Foundation
import VarStoreCore
import VarStoreCrypto

/// The journal a host-side service uses: nothing (memory), QEMU's JSON file, or an encrypted
/// image. Host code may pick at run time; the core's request path stays generic.
public final class HostJournal: NonVolatileJournal {
    public typealias ImageLog = VariableLog<EncryptedSegment<FileFlash, Libcrypto>, Libcrypto>
    public typealias WitnessedImageLog = WitnessedLog<EncryptedSegment<FileFlash, Libcrypto>, Libcrypto, ClosureWitness>

    public enum Backend {
        case memory
        /// The JSON file is rewritten (atomically) before each change is acknowledged.
        case json(URL)
        case image(ImageLog)
        /// An image whose commits are witnessed (spec/rollback.md).
        case witnessedImage(WitnessedImageLog)
    }

    public let backend: Backend
    /// The non-volatile variables as the journal holds them (the JSON backend renders these).
    private var live = VariableStore()

    public init(_ backend: Backend = .memory) {
        self.backend = backend
        if case .image(let log) = backend { live = log.live }
        if case .witnessedImage(let witnessed) = backend { live = witnessed.log.live }
    }

    /// What the journal holds now, in enumeration order (the service's `load` input).
    public var variables: [Variable] { live.all }

    /// Seeds the JSON backend's view with what was loaded from its file.
    public func seed(_ variables: [Variable]) {
        for variable in variables { live.insert(variable) }
    }

    public func commit(_ changes: [JournalChange]) throws(StorageError) {
        switch backend {
        case .memory:
            apply(changes)
        case .json(let url):
            let before = live
            apply(changes)
            do {
                try QEMUJSONStore.save(live.all, to: url)
            } catch {
                live = before
                throw .flash(.ioError)
            }
        case .image(let log):
            try log.commit(changes)
            live = log.live
        case .witnessedImage(let witnessed):
            try witnessed.commit(changes)
            live = witnessed.log.live
        }
    }

    public var isPersistent: Bool {
        if case .memory = backend { return false }
        return true
    }

    public var generation: UInt64 {
        if case .image(let log) = backend { return log.generation }
        if case .witnessedImage(let witnessed) = backend { return witnessed.generation }
        return 0
    }

    public var stateDigest: [UInt8] {
        if case .image(let log) = backend { return log.digest }
        if case .witnessedImage(let witnessed) = backend { return witnessed.stateDigest }
        return []
    }

    private func apply(_ changes: [JournalChange]) {
        for change in changes { live.apply(change) }
    }
}

/// A witness reached through a host function (an HTTP client, a test's ledger).
public struct ClosureWitness: Witness {
    let send: ([UInt8]) -> Bool

    public init(_ send: @escaping ([UInt8]) -> Bool) {
        self.send = send
    }

    public mutating func witness(_ report: [UInt8]) -> Bool { send(report) }
}
