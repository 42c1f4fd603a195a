/// Sealed records — a header and a body, each AES-256-GCM, chained by digest — and the replay
/// that reads them back from a superblock's snapshot to the end of the chain
/// (spec/storage.md, "Record (1 … 72 sectors)", "Opening").
extension VariableLog {
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
        var aad = Self.recordMagic + keys.binding
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
        header(in: try readSectors(1, atSegmentSector: Self.superblockSectors + logSector), at: logSector)
    }

    /// The authenticated header in `first`, the sector at `logSector`, if it holds one.
    func header(in first: [UInt8], at logSector: UInt64) -> RecordHeader? {
        guard first.count >= Self.headerBytes, Array(first[0..<4]) == Self.recordMagic,
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
        // Read in runs of up to `scanRun` sectors (one XTS call each); every sector is still
        // decrypted and its header checked.
        var scan = head
        var remaining = head == tail ? 0 : (head < tail ? tail - head : logSectors - head + tail)
        while remaining > 0 {
            let run = min(remaining, logSectors - scan, Self.scanRun)
            let sectors = try readSectors(run, atSegmentSector: Self.superblockSectors + scan)
            for index in 0..<Int(run) {
                let first = Array(sectors[index * Self.sectorBytes ..< (index + 1) * Self.sectorBytes])
                if let found = header(in: first, at: scan + UInt64(index)), found.generation > generation + 1 {
                    throw .tampered("a record beyond the end of the chain authenticates")
                }
            }
            scan += run
            if scan == logSectors { scan = 0 }
            remaining -= run
        }
    }

    /// Sectors the scan past the chain's end decrypts per read.
    static var scanRun: UInt64 { 64 }

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
}
