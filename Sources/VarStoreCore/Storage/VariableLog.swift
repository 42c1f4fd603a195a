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

    public private(set) var device: Device
    let crypto: Crypto
    let keys: Keys
    /// Bound into every record and superblock (the LUKS2 UUID): records from another image
    /// do not authenticate here.
    let binding: [UInt8]
    public let logSectors: UInt64
    /// The generation of the newest record, and the chain digest through it: together they
    /// name the committed state (the rollback anchor's input).
    public private(set) var generation: UInt64
    public private(set) var digest: [UInt8]
    /// The committed variables, in enumeration order.
    public private(set) var live = VariableStore()
    /// Encoded bytes of `live` as snapshot changes.
    public private(set) var liveBytes: UInt64 = 0
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
    /// Bytes handed to the device, superblocks and snapshots included (the benchmark's figure).
    public private(set) var bytesWritten: UInt64 = 0

    /// Held for the life of the log and wiped with it (SecretBytes).
    struct Keys {
        let header: SecretBytes
        let body: SecretBytes
        let superblock: SecretBytes
    }

    static func keys(_ crypto: Crypto, volumeKey: [UInt8], binding: [UInt8]) -> Keys {
        func derive(_ label: String) -> SecretBytes {
            SecretBytes(crypto.hkdfSHA256(key: volumeKey, salt: binding, info: Array(label.utf8), count: 32))
        }
        return Keys(header: derive("varstore v1 record header"), body: derive("varstore v1 record body"),
                    superblock: derive("varstore v1 superblock"))
    }

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
    /// so a rollback anchor set from the old one accepts it.
    public static func format(device: Device, crypto: Crypto, volumeKey: [UInt8],
                              binding: [UInt8], afterGeneration: UInt64 = 0) throws(StorageError) -> VariableLog {
        let log = VariableLog(device: device, crypto: crypto, keys: keys(crypto, volumeKey: volumeKey, binding: binding),
                              binding: binding, logSectors: try geometry(device))
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
    public static func open(device: Device, crypto: Crypto, volumeKey: [UInt8], binding: [UInt8],
                            minimumGeneration: UInt64 = 0) throws(StorageError) -> VariableLog {
        let log = VariableLog(device: device, crypto: crypto, keys: keys(crypto, volumeKey: volumeKey, binding: binding),
                              binding: binding, logSectors: try geometry(device))
        var superblocks: [Superblock] = []
        for slot in 0..<2 {
            if let superblock = try log.readSuperblock(slot: slot) { superblocks.append(superblock) }
        }
        guard let newest = superblocks.max(by: { $0.sequence < $1.sequence }) else { throw .notFormatted }
        try log.replay(from: newest)
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

    // MARK: Space

    /// Where a record of `count` sectors goes when the log's next free sector is `head`: at
    /// `head`, or at the start of the log when it would cross the end (the rest of the log
    /// then goes unused). nil if it would overwrite a live record. Returns the new head and
    /// the sectors then in use.
    func place(_ count: UInt64, head: UInt64, used: UInt64) -> (at: UInt64, head: UInt64, used: UInt64)? {
        func advance(_ position: UInt64) -> UInt64 { position == logSectors ? 0 : position }
        let wrapped = head < tail || used == logSectors
        if wrapped {
            guard head + count <= tail else { return nil }
            return (head, advance(head + count), used + count)
        }
        if head + count <= logSectors { return (head, advance(head + count), used + count) }
        guard count <= tail else { return nil }
        return (0, advance(count), used + (logSectors - head) + count)
    }

    /// Whether records of `sizes` fit, in order, after the newest record.
    func fits(_ sizes: [UInt64]) -> Bool {
        var cursor = (head: head, used: used)
        for size in sizes {
            guard let next = place(size, head: cursor.head, used: cursor.used) else { return false }
            cursor = (next.head, next.used)
        }
        return true
    }

    /// A generous bound on the snapshot's sectors once `changes` are applied.
    func snapshotSectorsEstimate(after changes: [JournalChange]) -> UInt64 {
        // The live bytes after the changes: a replaced or deleted variable's old size comes
        // off (from the live state, or from an earlier change in the same commit).
        var bytes = liveBytes
        var sizes: [VariableKey: UInt64] = [:]
        for change in changes {
            let old = sizes[change.key] ?? live.variable(for: change.key).map { UInt64(Self.encodedSize($0)) } ?? 0
            var new: UInt64 = 0
            switch change {
            case .put(let variable), .replaceInPlace(let variable): new = UInt64(Self.encodedSize(variable))
            case .delete: new = 0
            }
            bytes = (bytes >= old ? bytes - old : 0) + new
            sizes[change.key] = new
        }
        // Parts break between variables, so a part may be short by up to one variable: at
        // worst half full. Each part adds its header, body header and tag.
        let parts = 2 * bytes / UInt64(Self.maximumRecordPayload) + 1
        let overhead = UInt64(Self.headerBytes + Self.bodyHeaderBytes + Self.tagBytes)
        return (bytes + parts * overhead) / UInt64(Self.sectorBytes) + 2 * parts
    }

    static func bucket(for payloadBytes: Int) -> UInt64 {
        let needed = sectors(for: payloadBytes)
        for size in buckets where size >= needed { return size }
        return maximumRecordSectors
    }

    /// Snapshot records are sized to the sector, not bucketed: their size is the state's.
    static func snapshotSectors(for payloadBytes: Int) -> UInt64 { sectors(for: payloadBytes) }

    static func sectors(for payloadBytes: Int) -> UInt64 {
        let total = headerBytes + bodyHeaderBytes + payloadBytes + tagBytes
        return UInt64((total + sectorBytes - 1) / sectorBytes)
    }

    // MARK: Records

    enum Kind: UInt8 {
        case delta = 1
        case snapshot = 2
    }

    static var recordMagic: [UInt8] { Array("VSR1".utf8) }

    /// Seals and writes one record at the next free place; returns its log sector.
    @discardableResult
    func appendRecord(kind: Kind, part: Int, of parts: Int, payload: [UInt8], sectors: UInt64) throws(StorageError) -> UInt64 {
        guard let placed = place(sectors, head: head, used: used) else { throw .full }
        let at = placed.at
        // Far beyond any real store (2^62 commits), but counts read from the medium are kept
        // below it, so no sum of a generation and a part count can overflow.
        guard generation + 1 < Self.generationLimit else { throw .full }
        let nextGeneration = generation + 1
        guard let headerNonce = crypto.randomBytes(12), let bodyNonce = crypto.randomBytes(12) else { throw .noRandomness }
        var headerPlain: [UInt8] = []
        LittleEndian.append(nextGeneration, to: &headerPlain)
        LittleEndian.append(UInt32(sectors), to: &headerPlain)
        LittleEndian.append(UInt32(0), to: &headerPlain)
        headerPlain += bodyNonce
        headerPlain += [0, 0, 0, 0]
        guard let sealedHeader = crypto.sealAES256GCM(key: keys.header.bytes, nonce: headerNonce,
                                                      additionalData: headerAAD(at), plaintext: headerPlain) else {
            throw .invalidGeometry("sealing failed")
        }
        let header = Self.recordMagic + headerNonce + sealedHeader
        var body: [UInt8] = digest
        body.append(kind.rawValue)
        body.append(0)
        LittleEndian.append(UInt16(part), to: &body)
        LittleEndian.append(UInt16(parts), to: &body)
        LittleEndian.append(UInt16(0), to: &body)
        LittleEndian.append(UInt32(0), to: &body)
        LittleEndian.append(UInt32(payload.count), to: &body)
        body += payload
        let bodyBytes = Int(sectors) * Self.sectorBytes - Self.headerBytes - Self.tagBytes
        body += [UInt8](repeating: 0, count: bodyBytes - body.count)
        guard let sealedBody = crypto.sealAES256GCM(key: keys.body.bytes, nonce: bodyNonce, additionalData: header,
                                                    plaintext: body) else { throw .invalidGeometry("sealing failed") }
        let record = header + sealedBody
        writtenInStep.append(at)
        try writeSectors(record, atSegmentSector: Self.superblockSectors + at)
        generation = nextGeneration
        digest = chain(digest, record)
        head = placed.head
        used = placed.used
        return at
    }

    func chain(_ previous: [UInt8], _ record: [UInt8]) -> [UInt8] {
        crypto.sha256(Array("varstore chain v1".utf8) + previous + record)
    }

    func headerAAD(_ logSector: UInt64) -> [UInt8] {
        var aad = Self.recordMagic + binding
        LittleEndian.append(logSector, to: &aad)
        return aad
    }

    struct RecordHeader {
        let generation: UInt64
        let sectors: UInt64
        let bodyNonce: [UInt8]
    }

    /// The authenticated header of a record starting at `logSector`, if one does.
    func readHeader(at logSector: UInt64) throws(StorageError) -> RecordHeader? {
        let first = try readSectors(1, atSegmentSector: Self.superblockSectors + logSector)
        guard Array(first[0..<4]) == Self.recordMagic,
              let plain = crypto.openAES256GCM(key: keys.header.bytes, nonce: Array(first[4..<16]),
                                               additionalData: headerAAD(logSector), sealed: Array(first[16..<64])),
              plain.count == 32,
              let generation = LittleEndian.load(UInt64.self, from: plain, at: 0), generation < Self.generationLimit,
              let sectors = LittleEndian.load(UInt32.self, from: plain, at: 8),
              sectors >= 1, UInt64(sectors) <= Self.maximumRecordSectors,
              logSector + UInt64(sectors) <= logSectors else { return nil }
        return RecordHeader(generation: generation, sectors: UInt64(sectors), bodyNonce: Array(plain[16..<28]))
    }

    struct Record {
        let header: RecordHeader
        let bytes: [UInt8]
        let previous: [UInt8]
        let kind: Kind
        let part: Int
        let parts: Int
        let changes: [UInt8]
    }

    func readRecord(at logSector: UInt64) throws(StorageError) -> Record? {
        guard let header = try readHeader(at: logSector) else { return nil }
        let bytes = try readSectors(header.sectors, atSegmentSector: Self.superblockSectors + logSector)
        guard let body = crypto.openAES256GCM(key: keys.body.bytes, nonce: header.bodyNonce,
                                              additionalData: Array(bytes[0..<Self.headerBytes]),
                                              sealed: Array(bytes[Self.headerBytes...])),
              body.count >= Self.bodyHeaderBytes,
              let kind = Kind(rawValue: body[32]),
              let part = LittleEndian.load(UInt16.self, from: body, at: 34),
              let parts = LittleEndian.load(UInt16.self, from: body, at: 36),
              let length = LittleEndian.load(UInt32.self, from: body, at: 44),
              part < parts,
              Int(length) <= body.count - Self.bodyHeaderBytes else { return nil }
        return Record(header: header, bytes: bytes, previous: Array(body[0..<32]), kind: kind, part: Int(part),
                      parts: Int(parts), changes: Array(body[Self.bodyHeaderBytes ..< Self.bodyHeaderBytes + Int(length)]))
    }

    /// Rebuilds the state from `superblock`: its snapshot, then the chain of records after it.
    func replay(from superblock: Superblock) throws(StorageError) {
        guard superblock.logSectors == logSectors, superblock.checkpointSector < logSectors else {
            throw .tampered("the superblock describes another geometry")
        }
        generation = superblock.checkpointGeneration - 1
        digest = superblock.chainDigest
        tail = superblock.checkpointSector
        superblockSequence = superblock.sequence
        var position = superblock.checkpointSector
        var snapshotParts: Int?
        // A later snapshot in the chain: where it starts, and how many parts have been seen.
        var later: (sector: UInt64, generation: UInt64, chainDigest: [UInt8], parts: Int, seen: Int)?
        // A group of delta records being read: it applies only when its last part is read;
        // a group the chain ends in (or a later record abandons) was cut by a power cut.
        var group: (parts: Int, changes: [[UInt8]])?
        var wasted: UInt64 = 0
        var steps: UInt64 = 0
        while steps <= logSectors {
            steps += 1
            var record = try readRecord(at: position)
            if !continues(record) && position != 0 {
                // A record that would have crossed the end of the log starts at its beginning.
                let wrapped = try readRecord(at: 0)
                if continues(wrapped) {
                    record = wrapped
                    wasted += logSectors - position
                    position = 0
                }
            }
            guard let found = record, continues(found) else { break }
            if snapshotParts == nil {
                guard found.kind == .snapshot, found.part == 0, found.parts >= 1 else {
                    throw .tampered("the superblock does not point at a snapshot")
                }
                snapshotParts = found.parts
            }
            let named = found.header.generation < superblock.checkpointGeneration + UInt64(snapshotParts ?? 1)
            if found.kind == .snapshot && !named {
                // A snapshot no superblock names (a power cut came before its superblock): it
                // holds exactly the state the chain has reached, so it is not applied — a
                // partial one must never replace the state. A complete one is remembered, to
                // be named by the next superblock.
                group = nil
                if found.part == 0 {
                    later = (position, found.header.generation, digest, found.parts, 1)
                } else if let seen = later, found.part == seen.seen, found.parts == seen.parts {
                    later?.seen += 1
                } else {
                    later = nil
                }
                if let complete = later, complete.seen == complete.parts {
                    unnamedCheckpoint = (complete.sector, complete.generation, complete.chainDigest)
                }
            } else if found.kind == .snapshot || found.parts == 1 {
                group = nil
                try apply(encoded: [found.changes])
            } else if found.part == 0 {
                group = (found.parts, [found.changes])
            } else if let started = group, started.parts == found.parts, started.changes.count == found.part {
                group?.changes.append(found.changes)
                if found.part == found.parts - 1 {
                    try apply(encoded: started.changes + [found.changes])
                    group = nil
                }
            } else {
                throw .tampered("a record group's parts are out of order")
            }
            generation = found.header.generation
            digest = chain(digest, found.bytes)
            position += found.header.sectors
            if position == logSectors { position = 0 }
            if position == tail { break }
        }
        guard let parts = snapshotParts, generation >= superblock.checkpointGeneration + UInt64(parts) - 1 else {
            throw .tampered("the snapshot the superblock names is incomplete")
        }
        head = position
        let span = head > tail ? head - tail : logSectors - tail + head
        used = head == tail ? logSectors : span
        _ = wasted
        // Each record is flushed before the next is written, so one two generations past the
        // chain's end — anywhere in the free part of the log — was written after the next
        // record was durable: the chain was cut (one generation past may be a torn write).
        var scan = head
        while scan != tail || (used != logSectors && scan == head && scan != tail) {
            if let header = try readHeader(at: scan), header.generation > generation + 1 {
                throw .tampered("a record beyond the end of the chain authenticates")
            }
            scan += 1
            if scan == logSectors { scan = 0 }
            if scan == head { break }
        }
    }

    func apply(encoded parts: [[UInt8]]) throws(StorageError) {
        for changes in parts {
            do {
                try applyEncoded(changes)
            } catch {
                throw .tampered("a record's changes do not decode")
            }
        }
    }

    func continues(_ record: Record?) -> Bool {
        guard let record else { return false }
        return record.header.generation == generation + 1 && record.previous == digest
    }

    // MARK: Changes

    func apply(_ change: JournalChange) {
        switch change {
        case .put(let variable):
            if let old = live.remove(variable.key) { liveBytes -= UInt64(Self.encodedSize(old)) }
            live.insert(variable)
            liveBytes += UInt64(Self.encodedSize(variable))
        case .replaceInPlace(let variable):
            if let old = live.variable(for: variable.key), live.replaceInPlace(variable) {
                liveBytes = liveBytes - UInt64(Self.encodedSize(old)) + UInt64(Self.encodedSize(variable))
            } else {
                apply(.put(variable))
            }
        case .delete(let key):
            if let old = live.remove(key) { liveBytes -= UInt64(Self.encodedSize(old)) }
        }
    }

    /// One change: kind u8 (1 put, 2 in place, 3 delete), vendor GUID, name length u16 and
    /// UCS-2 units; for a variable then attributes u32, data length u32, data, a flags byte
    /// (1 time, 2 pin), the 16-byte time and the pin (length u8) when flagged.
    static func encode(_ change: JournalChange, into out: inout [UInt8]) {
        let kind: UInt8
        let key: VariableKey
        var variable: Variable?
        switch change {
        case .put(let v): kind = 1; key = v.key; variable = v
        case .replaceInPlace(let v): kind = 2; key = v.key; variable = v
        case .delete(let k): kind = 3; key = k
        }
        out.append(kind)
        out += key.guid.wireBytes
        LittleEndian.append(UInt16(truncatingIfNeeded: key.name.codeUnits.count), to: &out)
        for unit in key.name.codeUnits { LittleEndian.append(unit, to: &out) }
        guard let variable else { return }
        LittleEndian.append(variable.attributes.rawValue, to: &out)
        LittleEndian.append(UInt32(truncatingIfNeeded: variable.data.count), to: &out)
        out += variable.data
        var flags: UInt8 = 0
        if variable.timestamp != nil { flags |= 1 }
        if variable.certificateDigest != nil { flags |= 2 }
        out.append(flags)
        if let time = variable.timestamp { out += time.bytes }
        if let pin = variable.certificateDigest {
            out.append(UInt8(truncatingIfNeeded: pin.count))
            out += pin.prefix(255)
        }
    }

    public static func encodedSize(_ variable: Variable) -> Int {
        1 + 16 + 2 + 2 * variable.name.codeUnits.count + 4 + 4 + variable.data.count + 1
            + (variable.timestamp != nil ? 16 : 0) + (variable.certificateDigest.map { 1 + $0.count } ?? 0)
    }

    struct DecodeFailure: Error {}

    func applyEncoded(_ bytes: [UInt8]) throws(DecodeFailure) {
        for change in try Self.decode(bytes) { apply(change) }
    }

    /// The changes of one record body, as `encode` wrote them; anything else is a failure.
    static func decode(_ bytes: [UInt8]) throws(DecodeFailure) -> [JournalChange] {
        var changes: [JournalChange] = []
        var reader = ByteReader(bytes)
        while reader.remaining > 0 {
            guard let kind = reader.read(UInt8.self), let guidBytes = reader.readBytes(16),
                  let guid = EFIGUID(wire: guidBytes, at: 0), let count = reader.read(UInt16.self) else { throw DecodeFailure() }
            var units: [UInt16] = []
            for _ in 0..<count {
                guard let unit = reader.read(UInt16.self) else { throw DecodeFailure() }
                units.append(unit)
            }
            // The same rule the encoder's callers are held to (StorableVariable).
            guard let name = VariableName(codeUnits: units), !name.isEmpty else { throw DecodeFailure() }
            let key = VariableKey(guid: guid, name: name)
            if kind == 3 {
                changes.append(.delete(key))
                continue
            }
            guard kind == 1 || kind == 2, let attributes = reader.read(UInt32.self), let length = reader.read(UInt32.self),
                  let data = reader.readBytes(Int(length)), let flags = reader.read(UInt8.self) else { throw DecodeFailure() }
            var time: EFITime?
            if flags & 1 != 0 {
                guard let raw = reader.readBytes(16), let parsed = EFITime(bytes: raw, at: 0) else { throw DecodeFailure() }
                time = parsed
            }
            var pin: [UInt8]?
            if flags & 2 != 0 {
                guard let size = reader.read(UInt8.self), let raw = reader.readBytes(Int(size)) else { throw DecodeFailure() }
                pin = raw
            }
            let variable = Variable(key: key, attributes: VariableAttributes(rawValue: attributes), data: data,
                                    timestamp: time, certificateDigest: pin)
            guard StorableVariable.formatProblem(variable) == nil else { throw DecodeFailure() }
            changes.append(kind == 1 ? .put(variable) : .replaceInPlace(variable))
        }
        return changes
    }

    // MARK: Superblocks

    struct Superblock {
        var sequence: UInt64
        var logSectors: UInt64
        var checkpointSector: UInt64
        var checkpointGeneration: UInt64
        var chainDigest: [UInt8]
    }

    static var superblockMagic: [UInt8] { Array("VSSUPER1".utf8) }

    func superblockAAD(_ slot: Int) -> [UInt8] { Self.superblockMagic + binding + [UInt8(slot)] }

    func writeSuperblock(_ superblock: Superblock, slot: Int) throws(StorageError) {
        var plain: [UInt8] = []
        LittleEndian.append(UInt32(1), to: &plain)
        LittleEndian.append(UInt32(0), to: &plain)
        LittleEndian.append(superblock.sequence, to: &plain)
        LittleEndian.append(superblock.logSectors, to: &plain)
        LittleEndian.append(superblock.checkpointSector, to: &plain)
        LittleEndian.append(superblock.checkpointGeneration, to: &plain)
        plain += superblock.chainDigest
        guard let nonce = crypto.randomBytes(12) else { throw .noRandomness }
        guard let sealed = crypto.sealAES256GCM(key: keys.superblock.bytes, nonce: nonce, additionalData: superblockAAD(slot),
                                                plaintext: plain) else { throw .invalidGeometry("sealing failed") }
        var sector = Self.superblockMagic + nonce + sealed
        sector += [UInt8](repeating: 0, count: Self.sectorBytes - sector.count)
        try writeSectors(sector, atSegmentSector: UInt64(slot))
    }

    func readSuperblock(slot: Int) throws(StorageError) -> Superblock? {
        let sector = try readSectors(1, atSegmentSector: UInt64(slot))
        guard Array(sector[0..<8]) == Self.superblockMagic,
              let plain = crypto.openAES256GCM(key: keys.superblock.bytes, nonce: Array(sector[8..<20]),
                                               additionalData: superblockAAD(slot), sealed: Array(sector[20..<(20 + 72 + 16)])),
              plain.count == 72, LittleEndian.load(UInt32.self, from: plain, at: 0) == 1,
              let sequence = LittleEndian.load(UInt64.self, from: plain, at: 8),
              let sectors = LittleEndian.load(UInt64.self, from: plain, at: 16),
              let checkpoint = LittleEndian.load(UInt64.self, from: plain, at: 24),
              let checkpointGeneration = LittleEndian.load(UInt64.self, from: plain, at: 32),
              checkpointGeneration >= 1, checkpointGeneration < Self.generationLimit,
              sequence < Self.generationLimit else { return nil }
        return Superblock(sequence: sequence, logSectors: sectors, checkpointSector: checkpoint,
                          checkpointGeneration: checkpointGeneration, chainDigest: Array(plain[40..<72]))
    }

    // MARK: Device access

    func writeSectors(_ bytes: [UInt8], atSegmentSector sector: UInt64) throws(StorageError) {
        do {
            try device.write(bytes, at: sector * UInt64(Self.sectorBytes))
        } catch {
            throw .flash(error)
        }
        bytesWritten &+= UInt64(bytes.count)
    }

    func readSectors(_ count: UInt64, atSegmentSector sector: UInt64) throws(StorageError) -> [UInt8] {
        do {
            return try device.read(at: sector * UInt64(Self.sectorBytes), count: Int(count) * Self.sectorBytes)
        } catch {
            throw .flash(error)
        }
    }

    func flush() throws(StorageError) {
        do {
            try device.flush()
        } catch {
            throw .flash(error)
        }
    }
}
