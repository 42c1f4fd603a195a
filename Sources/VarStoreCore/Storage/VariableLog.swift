/// The authenticated, crash-safe variable store inside the LUKS2 data segment: two sealed
/// superblocks and a circular log of sealed records, every record chained to the one before.
/// spec/storage.md gives every field and the attack each choice answers; in short:
///
///     segment sector 0, 1   superblock slots A and B (the newer valid one wins)
///     segment sector 2…     the log: records of 1–72 sectors, generation g+1 after g
///
/// A record is a sealed header (its generation and length, cheap to find when scanning) and a
/// sealed body (the previous chain digest and the changes). Compaction writes the whole live
/// state as snapshot records after the newest one, flushes, then points the other superblock
/// slot at the snapshot and flushes again.
public final class VariableLog<Device: Flash, Crypto: StorageCrypto> {
    // MARK: Geometry

    public static var sectorBytes: Int { 512 }
    /// Segment sectors before the log: the two superblock slots.
    public static var superblockSectors: UInt64 { 2 }
    /// The largest record: 72 sectors hold the largest variable the service allows (0x8400
    /// bytes of name and data) with room for its time and pin.
    public static var maximumRecordSectors: UInt64 { 72 }
    /// Record sizes are padded up to these sector counts, so a record's length says little
    /// about what changed.
    public static var buckets: [UInt64] { [1, 2, 4, 8, 16, 32, 48, 72] }
    static var headerBytes: Int { 64 }
    static var tagBytes: Int { 16 }
    /// Body plaintext before the changes: previous digest, kind, part index and count, change
    /// count, changes length.
    static var bodyHeaderBytes: Int { 48 }

    /// Generations and superblock sequences read from the medium are refused from here on:
    /// with a part count (at most 65,535) added they stay far from overflowing.
    public static var generationLimit: UInt64 { 1 << 62 }

    /// The most change bytes one record can carry.
    public static var maximumRecordPayload: Int {
        Int(maximumRecordSectors) * sectorBytes - headerBytes - tagBytes - bodyHeaderBytes
    }

    /// Non-volatile bytes (as the service's quota counts them: 60 + name + data) a segment of
    /// `segmentBytes` can promise to hold, leaving room for a snapshot beside the live one.
    public static func capacity(segmentBytes: UInt64) -> UInt64 {
        let logBytes = segmentBytes >= superblockSectors * UInt64(sectorBytes)
            ? segmentBytes - superblockSectors * UInt64(sectorBytes) : 0
        let reserve = 2 * maximumRecordSectors * UInt64(sectorBytes)
        guard logBytes > reserve else { return 0 }
        // Half for each of two snapshots; the record encoding costs up to 4/3 of the quota's
        // 60 + name + data.
        return (logBytes - reserve) / 2 * 3 / 4
    }

    // MARK: State

    public internal(set) var device: Device
    let crypto: Crypto
    /// The sealing keys of the store's version (VariableLog+Keys.swift); an upgrade replaces them.
    var keys: Keys
    /// Bound into every record and superblock (the LUKS2 UUID): records from another image
    /// do not authenticate here.
    let binding: [UInt8]
    public let logSectors: UInt64
    /// The generation of the newest record, and the chain digest through it: together they
    /// name the committed state (the rollback anchor's input).
    public internal(set) var generation: UInt64
    public internal(set) var digest: [UInt8]
    /// The committed variables, in enumeration order.
    public internal(set) var live = VariableStore()
    /// Encoded bytes of `live` as snapshot changes.
    public internal(set) var liveBytes: UInt64 = 0
    /// Log sector of the next record, and of the snapshot the newest superblock points to.
    var head: UInt64
    var tail: UInt64
    /// Log sectors from `tail` to `head`, counting the unused end of the log a wrapped record
    /// skipped: `logSectors` means full, 0 only before the first snapshot.
    var used: UInt64 = 0
    var superblockSequence: UInt64
    /// A complete snapshot the replay found after the one the newest superblock names (a
    /// power cut came between its last part and its superblock): the next commit points a
    /// superblock at it before anything reuses space.
    var unnamedCheckpoint: (sector: UInt64, generation: UInt64, chainDigest: [UInt8])?
    /// Log sectors of the records written by the step `rollingBack` is running.
    var writtenInStep: [UInt64] = []
    /// Set when a failed step's records could not be erased; commits then fail until the
    /// store is opened again.
    var needsReopen = false

    private init(device: Device, crypto: Crypto, keys: Keys, binding: [UInt8], logSectors: UInt64) {
        self.device = device
        self.crypto = crypto
        self.keys = keys
        self.binding = binding
        self.logSectors = logSectors
        generation = 0
        digest = crypto.sha256(Array("varstore genesis v1".utf8) + binding)
        head = 0
        tail = 0
        superblockSequence = 0
    }

    static func geometry(_ device: Device) throws(StorageError) -> UInt64 {
        let sectors = device.size / UInt64(sectorBytes)
        guard sectors > superblockSectors + 2 * maximumRecordSectors else {
            throw .invalidGeometry("the segment is too small for a variable store")
        }
        return sectors - superblockSectors
    }

    // MARK: Format and open

    /// Writes an empty store: an empty snapshot at the start of the log and superblock A.
    /// Only for a new image; `open` never calls it. Its first generation is
    /// `afterGeneration + 1`: an image that replaces another (a rekey) continues its count,
    /// so a rollback anchor set from the old one accepts it. A version-2 store (what is
    /// written) gets a fresh random master key; `volumeKey` keys only a version-1 store, which
    /// exists to test the upgrade of images written before it.
    public static func format(device: Device, crypto: Crypto, volumeKey: [UInt8],
                              binding: [UInt8], afterGeneration: UInt64 = 0,
                              version: StoreVersion = .current) throws(StorageError) -> VariableLog {
        let keys = version == .masterKey ? try freshKeys(crypto, binding: binding)
            : keys(crypto, volumeKey: volumeKey, binding: binding)
        let log = VariableLog(device: device, crypto: crypto, keys: keys, binding: binding, logSectors: try geometry(device))
        guard afterGeneration < generationLimit / 2 else { throw .invalidGeometry("the first generation is out of range") }
        log.generation = afterGeneration
        // Both slots start invalid, so a half-formatted image never opens as another store.
        try log.writeSectors([UInt8](repeating: 0, count: 2 * sectorBytes), atSegmentSector: 0)
        try log.compact()
        return log
    }

    /// Opens the store: the newest superblock that authenticates, its snapshot, then every
    /// record that continues the chain. A record that fails where the chain ends is a write
    /// a power cut tore (or one the host dropped; only the rollback anchor can tell those
    /// apart); a valid record *beyond* a gap is proof of tampering and fails the open.
    ///
    /// A version-2 superblock carries the master key its store's keys come from; `volumeKey`
    /// keys a version-1 store only. A version-1 superblock counts only when no version-2 one
    /// authenticates: an upgraded store never goes back.
    public static func open(device: Device, crypto: Crypto, volumeKey: [UInt8], binding: [UInt8],
                            minimumGeneration: UInt64 = 0) throws(StorageError) -> VariableLog {
        // Version-1 keys are derived only if a slot holds a version-1 superblock.
        var legacy: Keys?
        func legacyKeys() -> Keys {
            if let legacy { return legacy }
            let derived = keys(crypto, volumeKey: volumeKey, binding: binding)
            legacy = derived
            return derived
        }
        let log = VariableLog(device: device, crypto: crypto, keys: noKeys(binding), binding: binding,
                              logSectors: try geometry(device))
        var superblocks: [(superblock: Superblock, keys: Keys)] = []
        var magics: [StoreVersion] = []
        for slot in 0..<2 {
            let read = try log.readSuperblock(slot: slot, legacyKeys: legacyKeys, known: superblocks.last?.keys)
            if let found = read.superblock { superblocks.append(found) }
            if let magic = read.magic { magics.append(magic) }
        }
        let current = superblocks.filter { $0.keys.version == .masterKey }
        guard let newest = (current.isEmpty ? superblocks : current).max(by: { $0.superblock.sequence < $1.superblock.sequence }) else {
            // Nothing authenticates. A superblock's magic is plaintext inside the segment, so it
            // survives what changed the keys and names the likely cause.
            if magics.contains(.volumeKeyDerived) { throw .storeKeyLost }
            if magics.contains(.masterKey) { throw .storeBindingChanged }
            throw .notFormatted
        }
        log.keys = newest.keys
        try log.replay(from: newest.superblock)
        guard log.generation >= minimumGeneration else {
            throw .rolledBack(generation: log.generation, minimum: minimumGeneration)
        }
        return log
    }

    // MARK: Commit

    /// Makes `changes` durable all together (compacting first if the log needs room); when it
    /// returns, a power cut can no longer lose them. Changes that fit one record are one
    /// record; more become a *group* of delta records (part i of n), which replay applies only
    /// once every part is read, so a cut part-way through loses the whole group, never half.
    public func commit(_ changes: [JournalChange]) throws(StorageError) {
        guard !changes.isEmpty else { return }
        // Parts break between changes; one change always fits a record.
        var parts: [[UInt8]] = [[]]
        for change in changes {
            // Nothing is written that replay could not read back: a record the decoder
            // refuses would make the whole image read as tampered.
            if case .put(let variable) = change, let problem = StorableVariable.formatProblem(variable) {
                throw .unstorable(problem)
            }
            if case .replaceInPlace(let variable) = change, let problem = StorableVariable.formatProblem(variable) {
                throw .unstorable(problem)
            }
            var encoded: [UInt8] = []
            Self.encode(change, into: &encoded)
            guard encoded.count <= Self.maximumRecordPayload else { throw .full }
            // And the bytes are checked, not only the rule: they decode to the change itself.
            guard (try? Self.decode(encoded)) == [change] else { throw .invalidGeometry("a change does not encode") }
            if parts[parts.count - 1].count + encoded.count > Self.maximumRecordPayload { parts.append([]) }
            parts[parts.count - 1] += encoded
        }
        guard parts.count <= Int(UInt16.max) else { throw .full }
        let sizes = parts.map { Self.bucket(for: $0.count) }
        let snapshot = snapshotSectorsEstimate(after: changes)
        // A group that could not fit even after compacting is refused before anything is
        // written, so a refused import leaves the image byte for byte as it was. After a
        // compaction the log holds the current snapshot, the group and the next snapshot,
        // wrapping at most once (which wastes less than one record).
        if parts.count > 1,
           snapshotSectorsEstimate(after: []) + sizes.reduce(0, +) + snapshot + Self.maximumRecordSectors > logSectors {
            throw .full
        }
        try ensureWritable()
        try adoptUnnamedCheckpoint()
        // The first write to a version-1 store moves it to version 2 (a compaction, so the
        // room check below sees the log it leaves).
        try upgrade()
        if !fits(sizes + [snapshot]) {
            try compact()
            // A group is as large as a state, so the room for the next snapshot is checked
            // too: without it the log could fill up with no way to compact.
            guard fits(parts.count == 1 ? sizes : sizes + [snapshot]) else { throw .full }
        }
        for (index, part) in parts.enumerated() {
            // Each part is durable before the next; a failure rolls back only the failing
            // part, leaving the group incomplete exactly as a power cut would.
            try rollingBack { () throws(StorageError) in
                try appendRecord(kind: .delta, part: index, of: parts.count, payload: part, sectors: sizes[index])
                try flush()
            }
        }
        for change in changes { apply(change) }
    }

    /// Runs `body`; if it fails, the chain position goes back to where it was, so the next
    /// record continues the chain from there — exactly as after a power cut. A record the
    /// failed step wrote may have reached the medium all the same (a flush that reported an
    /// error after the data landed): it would continue the chain on the next open and orphan
    /// whatever is written after it elsewhere (a larger next record may wrap to the start of
    /// the log). So the header sector of every record the step wrote is overwritten with
    /// zeros and flushed; if even that fails, the log refuses further commits until it is
    /// opened again (`ensureWritable`).
    func rollingBack(_ body: () throws(StorageError) -> Void) throws(StorageError) {
        let saved = (generation, digest, head, used, tail, superblockSequence)
        writtenInStep = []
        do {
            try body()
            writtenInStep = []
        } catch {
            (generation, digest, head, used, tail, superblockSequence) = saved
            let written = writtenInStep
            writtenInStep = []
            do {
                for sector in written.reversed() {
                    try writeSectors([UInt8](repeating: 0, count: Self.sectorBytes), atSegmentSector: Self.superblockSectors + sector)
                }
                if !written.isEmpty { try flush() }
            } catch {
                needsReopen = true
            }
            throw error
        }
    }

    /// Refuses to write after a failed step whose records could not be erased: what is on
    /// the medium is then known only to a fresh open.
    func ensureWritable() throws(StorageError) {
        if needsReopen { throw .flash(.ioError) }
    }

    /// Points the next superblock at a complete snapshot no superblock named yet (see
    /// `unnamedCheckpoint`), freeing what lies before it.
    func adoptUnnamedCheckpoint() throws(StorageError) {
        guard let checkpoint = unnamedCheckpoint else { return }
        try rollingBack { () throws(StorageError) in
            let sequence = superblockSequence + 1
            try writeSuperblock(Superblock(sequence: sequence, logSectors: logSectors, checkpointSector: checkpoint.sector,
                                           checkpointGeneration: checkpoint.generation, chainDigest: checkpoint.chainDigest),
                                slot: Int(sequence % 2))
            try flush()
            superblockSequence = sequence
            tail = checkpoint.sector
            used = head > tail ? head - tail : logSectors - tail + head
        }
        unnamedCheckpoint = nil
    }

    /// Writes the live state as snapshot records after the newest record, flushes, then makes
    /// the other superblock slot point at them and flushes again. Until that second flush the
    /// old superblock and everything it reaches are untouched, so a cut leaves either state.
    ///
    /// Once the parts are durable they stay in the chain even if the superblock write fails:
    /// they hold exactly the current state, as replay would find them (a complete snapshot no
    /// superblock names yet), and the next commit names them.
    public func compact() throws(StorageError) {
        try ensureWritable()
        try adoptUnnamedCheckpoint()
        var checkpoint: (sector: UInt64, generation: UInt64, chainDigest: [UInt8])?
        try rollingBack { () throws(StorageError) in checkpoint = try writeSnapshotParts() }
        unnamedCheckpoint = checkpoint
        try adoptUnnamedCheckpoint()
    }

    /// Appends the live state as snapshot parts, each flushed; returns where they start, the
    /// first part's generation and the chain digest before it.
    private func writeSnapshotParts() throws(StorageError) -> (sector: UInt64, generation: UInt64, chainDigest: [UInt8]) {
        var parts: [[UInt8]] = [[]]
        for variable in live.all {
            var encoded: [UInt8] = []
            Self.encode(.put(variable), into: &encoded)
            if parts[parts.count - 1].count + encoded.count > Self.maximumRecordPayload { parts.append([]) }
            parts[parts.count - 1] += encoded
        }
        let sizes = parts.map { Self.snapshotSectors(for: $0.count) }
        guard fits(sizes) else { throw .full }
        let checkpointGeneration = generation + 1
        let checkpointDigest = digest
        var start = head
        for (index, part) in parts.enumerated() {
            let at = try appendRecord(kind: .snapshot, part: index, of: parts.count, payload: part, sectors: sizes[index])
            if index == 0 { start = at }
            // Every record is durable before the next is written, so a record two generations
            // past the chain's end can only be there if someone cut the chain.
            try flush()
        }
        return (start, checkpointGeneration, checkpointDigest)
    }
}
