import Foundation
import Testing
@testable import VarStoreTestSupport
import VarStoreCore
import VarStoreCrypto
@testable import VarStoreHost

/// The authenticated log store (spec/storage.md) on a plaintext segment: crash safety,
/// tamper detection, rollback refusal.
@Suite struct VariableLogTests {
    typealias Log<F: Flash> = VariableLog<F, Libcrypto>
    static let key = [UInt8](repeating: 0x42, count: 64)
    static let binding = Array("11111111-2222-3333-4444-555555555555".utf8)
    static let vendor = EFIGUID(text: "3f1b2a4c-5d6e-4f70-8192-a3b4c5d6e7f8")!

    static func variable(_ name: String, _ data: [UInt8], time: EFITime? = nil) -> Variable {
        Variable(key: VariableKey(guid: vendor, name: VariableName(name)!),
                 attributes: [.nonVolatile, .bootServiceAccess, .runtimeAccess], data: data, timestamp: time)
    }

    static func open<F: Flash>(_ flash: F, minimumGeneration: UInt64 = 0) throws(StorageError) -> Log<F> {
        try Log.open(device: flash, crypto: Libcrypto(), volumeKey: key, binding: binding, minimumGeneration: minimumGeneration)
    }

    /// A deterministic workload of puts, in-place replacements and deletes over a few dozen
    /// names with sizes from a byte to a few KiB.
    struct Workload {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        mutating func change(live: VariableStore) -> JournalChange {
            let name = "Var\(next() % 40)"
            let existing = live.variable(for: VariableKey(guid: vendor, name: VariableName(name)!))
            let roll = next() % 10
            if let existing, roll < 2 { return .delete(existing.key) }
            if existing != nil, roll == 2 {
                return .replaceInPlace(variable(name, [UInt8](repeating: UInt8(next() & 0xff), count: Int(next() % 64) + 1)))
            }
            do {
                let size = next() % 8 == 0 ? Int(next() % 4000) + 1 : Int(next() % 200) + 1
                return .put(variable(name, [UInt8](repeating: UInt8(next() & 0xff), count: size),
                                     time: next() % 3 == 0 ? EFITime(year: 2026, month: 1, day: UInt8(next() % 28 + 1)) : nil))
            }
        }
    }

    @Test func committedChangesSurviveReopeningInOrder() throws {
        let log = try Log.format(device: MemoryFlash(size: 256 << 10), crypto: Libcrypto(), volumeKey: Self.key, binding: Self.binding)
        try log.commit([.put(Self.variable("A", [1])), .put(Self.variable("B", [2, 2]))])
        try log.commit([.put(Self.variable("C", [3], time: EFITime(year: 2026, month: 2, day: 3)))])
        try log.commit([.replaceInPlace(Self.variable("A", [9, 9, 9])), .delete(Self.variable("B", []).key)])
        let reopened = try Self.open(log.device)
        #expect(reopened.live.all == log.live.all)
        #expect(reopened.live.all.map(\.name.text) == ["A", "C"])
        #expect(reopened.generation == log.generation && reopened.digest == log.digest)
    }

    @Test func compactionKeepsTheStateAcrossManyWraps() throws {
        // 128 KiB: the log wraps and compacts many times over 2,000 commits.
        let log = try Log.format(device: MemoryFlash(size: 128 << 10), crypto: Libcrypto(), volumeKey: Self.key, binding: Self.binding)
        var workload = Workload(state: 7)
        for step in 0 ..< 2000 {
            var change = workload.change(live: log.live)
            if case .put(let v) = change, v.data.count > 1000 { change = .put(Self.variable(v.name.text, Array(v.data.prefix(300)))) }
            try log.commit([change])
            if step % 250 == 0 {
                let reopened = try Self.open(log.device)
                #expect(reopened.live.all == log.live.all, "step \(step)")
            }
        }
        let reopened = try Self.open(log.device)
        #expect(reopened.live.all == log.live.all)
        #expect(reopened.generation == log.generation)
        // It really wrapped: far more was written than the flash holds.
        #expect(log.device.bytesWritten > 4 * (128 << 10))
    }

    /// A formatted store on a fault-injecting flash with no events recorded yet.
    static func freshFaultFlash(size: Int) throws -> FaultInjectingFlash {
        let formatted = try Log.format(device: FaultInjectingFlash(bytes: [UInt8](repeating: 0, count: size)),
                                       crypto: Libcrypto(), volumeKey: key, binding: binding)
        return FaultInjectingFlash(bytes: formatted.device.current)
    }

    /// A store on a recording flash, committed to step by step: the state after each commit
    /// and how many device events it had taken by then, so every cut can be replayed.
    struct RecordedCommits {
        let initial: FaultInjectingFlash
        let log: Log<FaultInjectingFlash>
        var states: [[Variable]]
        var acknowledged: [Int] = [0]

        init(size: Int) throws {
            initial = try VariableLogTests.freshFaultFlash(size: size)
            log = try Log.open(device: initial, crypto: Libcrypto(), volumeKey: VariableLogTests.key, binding: VariableLogTests.binding)
            states = [log.live.all]
        }

        mutating func commit(_ changes: [JournalChange]) throws {
            try log.commit(changes)
            states.append(log.live.all)
            acknowledged.append(log.device.events.count)
        }

        /// Cuts every write after each of `tears(write)` bytes and reopens the image; each must
        /// hold the state of the last acknowledged commit or of the one in flight (else an
        /// issue is recorded and the walk stops). `then` sees each opened store. Returns the
        /// number of cuts that opened well.
        func everyCut(tears: ([UInt8]) -> [Int], then: (Log<MemoryFlash>, Int) throws -> Void = { _, _ in }) throws -> Int {
            let events = log.device.events
            var cuts = 0
            for (index, event) in events.enumerated() {
                guard case .write(_, let bytes) = event else { continue }
                for torn in tears(bytes) where torn <= bytes.count {
                    let image = FaultInjectingFlash.replay(events, onto: initial.durable, cut: index, tornBytes: torn)
                    let opened = try VariableLogTests.open(MemoryFlash(bytes: image))
                    let (ok, acked) = holdsAcknowledgedState(opened, cutAt: index)
                    #expect(ok, "cut at event \(index) (\(torn) bytes of the write): not commit \(acked) or \(acked + 1)")
                    if !ok { return cuts }
                    try then(opened, index)
                    cuts += 1
                }
            }
            return cuts
        }

        /// Whether `opened` (the image cut at device event `index`) holds the state of the
        /// last commit acknowledged before the cut or of the one in flight; and that commit.
        func holdsAcknowledgedState(_ opened: Log<MemoryFlash>, cutAt index: Int) -> (Bool, Int) {
            let acked = acknowledged.lastIndex { $0 <= index } ?? 0
            return (opened.live.all == states[acked] || (acked + 1 < states.count && opened.live.all == states[acked + 1]), acked)
        }

        var writes: Int { log.device.events.filter { if case .write = $0 { true } else { false } }.count }
    }

    @Test func aPowerCutAtEveryWriteOpensAsTheAcknowledgedState() throws {
        // 1,200 random commits on 128 KiB (dozens of compactions), recording every write and
        // flush; then every write is cut before it starts, half-way (whole sectors), and
        // after one byte of a sector, and the image reopened.
        var run = try RecordedCommits(size: 128 << 10)
        var workload = Workload(state: 99)
        for _ in 0 ..< 1200 {
            var change = workload.change(live: run.log.live)
            if case .put(let v) = change, v.data.count > 1500 { change = .put(Self.variable(v.name.text, Array(v.data.prefix(1500)))) }
            try run.commit([change])
        }
        let cuts = try run.everyCut(tears: { [0, ($0.count / 1024) * 512, 1] })
        #expect(cuts > 3000)
    }

    @Test func anySubsetOfTheSectorsWrittenSinceTheLastFlushOpens() throws {
        // Between two flushes a device may persist any subset of the sectors written, in any
        // order. Every flush interval of a workload (records, snapshots, superblocks) is cut
        // with sector subsets: the image opens as the state before or after that commit.
        var run = try RecordedCommits(size: 128 << 10)
        var workload = Workload(state: 5)
        for _ in 0 ..< 300 {
            var change = workload.change(live: run.log.live)
            if case .put(let v) = change, v.data.count > 800 { change = .put(Self.variable(v.name.text, Array(v.data.prefix(800)))) }
            try run.commit([change])
        }
        let events = run.log.device.events
        var image = run.initial.durable
        var generator = Workload(state: 11)
        var intervals = 0
        var index = 0
        while index < events.count {
            // The writes of one flush interval, as sectors.
            var sectors: [(UInt64, ArraySlice<UInt8>)] = []
            var end = index
            while end < events.count, case .write(let offset, let bytes) = events[end] {
                var at = 0
                while at < bytes.count {
                    sectors.append((offset + UInt64(at), bytes[at ..< at + 512]))
                    at += 512
                }
                end += 1
            }
            for _ in 0 ..< 6 where !sectors.isEmpty {
                var cut = image
                for (offset, bytes) in sectors where generator.next() % 2 == 0 {
                    cut.replaceSubrange(Int(offset) ..< Int(offset) + 512, with: bytes)
                }
                let opened = try Self.open(MemoryFlash(bytes: cut))
                let (ok, _) = run.holdsAcknowledgedState(opened, cutAt: index)
                #expect(ok, "interval at event \(index)")
                if !ok { return }
            }
            for (offset, bytes) in sectors { image.replaceSubrange(Int(offset) ..< Int(offset) + 512, with: bytes) }
            intervals += 1
            index = end + 1
        }
        #expect(intervals > 300)
    }

    @Test func aDeviceThatDropsFlushesNeverYieldsAWrongState() throws {
        // Acknowledged writes can be lost when flushes lie; what opens is then an earlier
        // state of the chain, or a refusal — never a mix.
        var flash = try Self.freshFaultFlash(size: 128 << 10)
        flash.dropFlushes = true
        let log = try Log.open(device: flash, crypto: Libcrypto(), volumeKey: Self.key, binding: Self.binding)
        var states: [[String]] = [[]]
        for name in ["A", "B", "C"] {
            try log.commit([.put(Self.variable(name, [1]))])
            states.append(log.live.all.map(\.name.text))
        }
        try log.compact()
        let pending = log.device.pending.count
        for mask in 0 ..< (1 << min(pending, 10)) {
            let image = log.device.afterPowerCut { mask & (1 << $0) != 0 }
            switch Result(catching: { () throws(StorageError) in try Self.open(MemoryFlash(bytes: image)) }) {
            case .success(let opened):
                #expect(states.contains(opened.live.all.map(\.name.text)), "subset \(mask)")
            case .failure(let error):
                if case .tampered = error { continue }
                Issue.record("subset \(mask): \(error)")
            }
        }
    }

    @Test func readFaultsAreCaughtNotBelieved() throws {
        // A device that flips a bit on the way back: the middle record then fails to
        // authenticate while later ones do, which is reported, not believed.
        var flash = try Self.freshFaultFlash(size: 128 << 10)
        let log = try Log.open(device: flash, crypto: Libcrypto(), volumeKey: Self.key, binding: Self.binding)
        for index in 0 ..< 6 { try log.commit([.put(Self.variable("V\(index)", [UInt8(index)]))]) }
        flash = log.device
        // Segment sectors 0-1 are superblocks; the snapshot is log sector 0; V0…V5 follow.
        flash.flipOnRead = (offset: UInt64(2 + 3) * 512 + 200, bit: 3)
        #expect(throws: StorageError.tampered("a record beyond the end of the chain authenticates")) { _ = try Self.open(flash) }
        flash.flipOnRead = nil
        #expect(try Self.open(flash).live.count == 6)
    }

    @Test func aStaleSectorUnderNewerRecordsIsReported() throws {
        // The device serves one sector as it was before the newest writes (a stale cache)
        // while later sectors are current: the gap in the chain is reported.
        var flash = try Self.freshFaultFlash(size: 128 << 10)
        flash.dropFlushes = true  // keep the newest writes apart from what is "durable"
        let log = try Log.open(device: flash, crypto: Libcrypto(), volumeKey: Self.key, binding: Self.binding)
        for index in 0 ..< 4 { try log.commit([.put(Self.variable("V\(index)", [UInt8(index)]))]) }
        flash = log.device
        #expect(try Self.open(flash).live.count == 4)
        flash.staleSectors = [UInt64(2 + 2)]  // V1's sector reads as it was before (empty)
        #expect(throws: StorageError.tampered("a record beyond the end of the chain authenticates")) { _ = try Self.open(flash) }
    }

    /// Ten 10 KiB variables: about 100 KiB of changes, three records' worth.
    static func largeGroup(_ tag: UInt8) -> [JournalChange] {
        (0 ..< 10).map { .put(variable("Big\($0)", [UInt8](repeating: tag &+ UInt8($0), count: 10_000))) }
    }

    @Test func aCommitLargerThanOneRecordIsAllOrNothingAtEveryCut() throws {
        // Small commits around two groups of several records each; every write is cut and
        // the image reopened: it holds the state before a group or after it, never part.
        var run = try RecordedCommits(size: 512 << 10)
        let generationBefore = run.log.generation
        for changes in [[.put(Self.variable("A", [1]))], Self.largeGroup(1), [.put(Self.variable("B", [2]))],
                        Self.largeGroup(7), [.delete(Self.variable("A", []).key)]] as [[JournalChange]] {
            try run.commit(changes)
        }
        // The groups really took several records each.
        #expect(run.log.generation - generationBefore >= 9)
        let cuts = try run.everyCut(tears: { [0, ($0.count / 1024) * 512] }) { opened, index in
            // The store goes on from a cut group: a later commit, and the reopen after it,
            // see no trace of the lost part.
            try opened.commit([.put(Self.variable("After", [9]))])
            let again = try Self.open(opened.device)
            #expect(again.live.all == opened.live.all, "commit after a cut at event \(index)")
        }
        #expect(cuts == 2 * run.writes)
    }

    @Test func aFailedWriteInsideAGroupLeavesTheStateBefore() throws {
        let initial = try Self.freshFaultFlash(size: 512 << 10)
        var flash = initial
        flash.tear = (write: 1, byte: 700)  // the group's second record
        let log = try Log.open(device: flash, crypto: Libcrypto(), volumeKey: Self.key, binding: Self.binding)
        try log.commit([.put(Self.variable("A", [1]))])
        let before = log.live.all
        #expect(throws: StorageError.self) { try log.commit(Self.largeGroup(3)) }
        #expect(log.live.all == before)
        let reopened = try Self.open(MemoryFlash(bytes: log.device.afterPowerCut()))
        #expect(reopened.live.all == before)
        try reopened.commit(Self.largeGroup(4))
        #expect(try Self.open(reopened.device).live.all == reopened.live.all)
        #expect(reopened.live.count == 11)
    }

    @Test func aFailedCommitThatReachedTheMediumIsNotReplayedLater() throws {
        // Commits whose flush fails after the data landed, then more commits of mixed sizes
        // (so later records wrap past the failed one): every reopen gives exactly the
        // acknowledged state — never the failed commit, never "tampered".
        for seed in UInt64(1) ... 12 {
            // FlakyFlash (StorageRecoveryTests): chosen flushes fail, their writes land anyway.
            let formatted = try Log.format(device: FlakyFlash(bytes: [UInt8](repeating: 0, count: 96 << 10)), crypto: Libcrypto(),
                                           volumeKey: Self.key, binding: Self.binding)
            var flash = formatted.device
            flash.loseOnFailure = false
            let start = flash.flushes
            for index in 0 ..< 6 {
                let offset = Int((seed * 37 + UInt64(index) * 53) % 400) + 2
                flash.failingFlushNumbers.insert(start + offset)
            }
            let log = try Self.open(flash)
            var workload = Workload(state: seed)
            var failures = 0
            for _ in 0 ..< 300 {
                var change = workload.change(live: log.live)
                if case .put(let v) = change, v.data.count > 1500 { change = .put(Self.variable(v.name.text, Array(v.data.prefix(1500)))) }
                do {
                    try log.commit([change])
                } catch {
                    failures += 1
                }
            }
            #expect(failures > 0, "seed \(seed)")
            let reopened = try Self.open(MemoryFlash(bytes: log.device.current))
            #expect(Bool(reopened.live.all == log.live.all), "seed \(seed)")
        }
    }
}

/// Sealing that keeps the plaintext readable (a zero tag), so a test can forge what only a
/// key holder could write and check that even such content cannot trap the reader.
struct ReadableSealing: StorageCrypto {
    let real = Libcrypto()
    func sha256(_ data: [UInt8]) -> [UInt8] { real.sha256(data) }
    func sha512(_ data: [UInt8]) -> [UInt8] { real.sha512(data) }
    func hkdfSHA256(key: [UInt8], salt: [UInt8], info: [UInt8], count: Int) -> [UInt8] { real.hkdfSHA256(key: key, salt: salt, info: info, count: count) }
    func pbkdf2(_ hash: DigestAlgorithm, password: [UInt8], salt: [UInt8], iterations: UInt32, count: Int) -> [UInt8]? {
        real.pbkdf2(hash, password: password, salt: salt, iterations: iterations, count: count)
    }
    func sealAES256GCM(key: [UInt8], nonce: [UInt8], additionalData: [UInt8], plaintext: [UInt8]) -> [UInt8]? {
        plaintext + [UInt8](repeating: 0, count: 16)
    }
    func openAES256GCM(key: [UInt8], nonce: [UInt8], additionalData: [UInt8], sealed: [UInt8]) -> [UInt8]? {
        sealed.count >= 16 ? Array(sealed.dropLast(16)) : nil
    }
    func aesXTS(encrypt: Bool, key: [UInt8], sector: UInt64, data: [UInt8]) -> [UInt8]? { data }
    func randomBytes(_ count: Int) -> [UInt8]? { real.randomBytes(count) }
}

@Suite struct ForgedCountTests {
    /// Where a superblock's sealed plaintext starts in its sector (storage.md, "Superblock").
    @Test(arguments: [(StoreVersion.masterKey, 60), (StoreVersion.volumeKeyDerived, 20)])
    func generationsNearTheTopOfTheRangeAreRefusedNotOverflowed(_ version: StoreVersion, _ sealedAt: Int) throws {
        // A superblock and its snapshot record forged to generation 2^64 − 1 (consistent with
        // each other, as a key holder could write them): the reader refuses the superblock
        // instead of adding a part count to the generation and trapping.
        let key = [UInt8](repeating: 7, count: 64), binding = Array("forged".utf8)
        let log = try VariableLog.format(device: MemoryFlash(size: 96 << 10), crypto: ReadableSealing(), volumeKey: key, binding: binding,
                                         version: version)
        var bytes = log.device.bytes
        let superblock = 512  // a new store's superblock: sequence 1, so slot B (storage.md)
        let max: [UInt8] = [UInt8](repeating: 0xFF, count: 8)
        bytes.replaceSubrange(superblock + sealedAt + 32 ..< superblock + sealedAt + 40, with: max)   // checkpoint generation
        bytes.replaceSubrange(2 * 512 + 16 ..< 2 * 512 + 24, with: max)                     // first record's generation
        #expect(throws: StorageError.notFormatted) {
            _ = try VariableLog.open(device: MemoryFlash(bytes: bytes), crypto: ReadableSealing(), volumeKey: key, binding: binding)
        }
        #expect(throws: StorageError.self) {
            _ = try VariableLog.format(device: MemoryFlash(size: 96 << 10), crypto: ReadableSealing(), volumeKey: key,
                                       binding: binding, afterGeneration: UInt64.max - 1)
        }
    }
}
