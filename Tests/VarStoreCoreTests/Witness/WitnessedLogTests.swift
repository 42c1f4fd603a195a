import Testing
import VarStoreCore
import VarStoreCrypto
import VarStoreHost

/// spec/rollback.md in memory: the report and its MAC, the retraction of a refused witnessed
/// commit, and the re-send after a power cut between a commit and its report.
@Suite struct WitnessedLogTests {
    typealias Log = VariableLog<MemoryFlash, Libcrypto>
    static let key = [UInt8](repeating: 0x42, count: 64)
    static let uuid = Array("11111111-2222-3333-4444-555555555555".utf8)

    static func dbx(_ data: [UInt8]) -> JournalChange {
        .put(Variable(key: SecureBootVariable.dbx, attributes: [.nonVolatile, .bootServiceAccess, .runtimeAccess], data: data))
    }

    static func plain(_ data: [UInt8]) -> JournalChange {
        .put(Variable(key: VariableKey(guid: .globalVariable, name: VariableName("Plain")!),
                      attributes: [.nonVolatile, .bootServiceAccess, .runtimeAccess], data: data))
    }

    /// RFC 4231 test case 1.
    @Test func hmacSHA256MatchesRFC4231() {
        let mac = WitnessKey.hmacSHA256(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8), crypto: Libcrypto())
        #expect(Hex.string(mac) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    }

    @Test func reportParsesBackAndRefusesTamperingAndOtherKeys() throws {
        let key = SecretBytes([UInt8](repeating: 9, count: 32))
        let report = WitnessReport(flags: .required, uuid: Self.uuid, generation: 7, digest: [UInt8](repeating: 1, count: 32),
                                   previousGeneration: 5, previousDigest: [UInt8](repeating: 2, count: 32))!
        let bytes = report.encoded(key: key, crypto: Libcrypto())
        #expect(bytes.count == 164)
        #expect(try WitnessReport(parsing: bytes, key: key.bytes, crypto: Libcrypto()) == report)
        for index in [0, 10, 12, 52, 60, 92, 100, 131, 132, 163] {
            var flipped = bytes
            flipped[index] ^= 0x10
            #expect(throws: WitnessReportError.self) { try WitnessReport(parsing: flipped, key: key.bytes, crypto: Libcrypto()) }
        }
        #expect(throws: WitnessReportError.badMAC) {
            try WitnessReport(parsing: bytes, key: [UInt8](repeating: 8, count: 32), crypto: Libcrypto())
        }
        #expect(throws: WitnessReportError.self) { try WitnessReport(parsingUnauthenticated: Array(bytes.dropLast())) }
    }

    @Test func refusedWitnessedCommitIsRetractedAndLazyCommitsStayPending() throws {
        let log = try Log.format(device: MemoryFlash(size: 256 << 10), crypto: Libcrypto(), volumeKey: Self.key, binding: Self.uuid)
        try log.commit([Self.dbx([0])])
        let before = (log.generation, log.digest, log.live.all)
        var answers = 0
        let witnessed = WitnessedLog(log: log, witnessKey: SecretBytes([UInt8](repeating: 3, count: 32)),
                                     anchor: (log.generation, log.digest), witness: ClosureWitness { _ in answers += 1; return false })
        #expect(throws: StorageError.flash(.ioError)) { try witnessed.commit([Self.dbx([1])]) }
        #expect(answers == 1)
        #expect(log.generation == before.0 && log.digest == before.1 && log.live.all == before.2)
        let reopened = try Log.open(device: log.device, crypto: Libcrypto(), volumeKey: Self.key, binding: Self.uuid)
        #expect(reopened.generation == before.0 && reopened.digest == before.1 && reopened.live.all == before.2)
        // A commit the policy does not require needs no answer; it stays pending.
        try witnessed.commit([Self.plain([2])])
        #expect(answers == 1 && witnessed.isPending && log.generation == before.0 + 1)
    }

    /// A version-1 store upgrades on its first write (a compaction that moves a superblock).
    /// When that write is a witnessed commit the witness refuses, the upgrade must come before
    /// the retraction point, or the refused records could not be erased and would replay at
    /// the next open.
    @Test func aRefusedWitnessedFirstWriteToAVersionOneStoreIsRetracted() throws {
        let old = try Log.format(device: MemoryFlash(size: 256 << 10), crypto: Libcrypto(), volumeKey: Self.key,
                                 binding: Self.uuid, version: .volumeKeyDerived)
        let log = try Log.open(device: MemoryFlash(bytes: old.device.bytes), crypto: Libcrypto(), volumeKey: Self.key,
                               binding: Self.uuid)
        #expect(log.storeVersion == .volumeKeyDerived)
        let witnessed = WitnessedLog(log: log, witnessKey: SecretBytes([UInt8](repeating: 3, count: 32)),
                                     anchor: (log.generation, log.digest), witness: ClosureWitness { _ in false })
        #expect(throws: StorageError.flash(.ioError)) { try witnessed.commit([Self.dbx([1])]) }
        #expect(log.live.variable(for: SecureBootVariable.dbx) == nil)
        // Still writable: the retraction erased the records instead of giving up.
        try log.commit([Self.plain([2])])
        let reopened = try Log.open(device: log.device, crypto: Libcrypto(), volumeKey: Self.key, binding: Self.uuid)
        #expect(reopened.storeVersion == .masterKey)
        #expect(reopened.live.variable(for: SecureBootVariable.dbx) == nil)
        #expect(reopened.live.all.map(\.name.text) == ["Plain"])
    }

    @Test func reportLostToAPowerCutIsResentAtOpen() throws {
        let log = try Log.format(device: MemoryFlash(size: 256 << 10), crypto: Libcrypto(), volumeKey: Self.key, binding: Self.uuid)
        let witnessKey = SecretBytes([UInt8](repeating: 3, count: 32))
        let anchor = (log.generation, log.digest)
        var cut: [UInt8] = []
        // The power goes out while the witness is being asked: the commit is durable.
        let first = WitnessedLog(log: log, witnessKey: witnessKey, anchor: anchor,
                                 witness: ClosureWitness { _ in cut = log.device.bytes; return false })
        #expect(throws: StorageError.self) { try first.commit([Self.dbx([5])]) }
        let reopened = try Log.open(device: MemoryFlash(bytes: cut), crypto: Libcrypto(), volumeKey: Self.key, binding: Self.uuid)
        #expect(reopened.generation == anchor.0 + 1)
        var received: [WitnessReport] = []
        let second = WitnessedLog(log: reopened, witnessKey: witnessKey, anchor: anchor, witness: ClosureWitness { bytes in
            if let report = try? WitnessReport(parsing: bytes, key: witnessKey.bytes, crypto: Libcrypto()) { received.append(report) }
            return true
        })
        #expect(second.isPending)
        #expect(second.reportPending())
        #expect(received.count == 1 && received[0].generation == reopened.generation && received[0].digest == reopened.digest)
        #expect(received[0].previousGeneration == anchor.0 && received[0].previousDigest == anchor.1)
        #expect(!second.isPending && second.reportPending() && received.count == 1)
    }
}
