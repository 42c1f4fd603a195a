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
        guard let headerKey = keys.header,
              let sealedHeader = crypto.sealAES256GCM(prepared: headerKey, nonce: headerNonce[...],
                                                      additionalData: headerAAD(at)[...], plaintext: headerPlain[...]) else {
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
        guard let bodyKey = keys.body,
              let sealedBody = crypto.sealAES256GCM(prepared: bodyKey, nonce: bodyNonce[...], additionalData: header[...],
                                                    plaintext: body[...]) else { throw .invalidGeometry("sealing failed") }
        let record = header + sealedBody
        let nextDigest = try chain(digest, record[...])
        writtenInStep.append(at)
        try writeSectors(record, atSegmentSector: Self.superblockSectors + at)
        generation = nextGeneration
        digest = nextDigest
        head = placed.head
        used = placed.used
        return at
    }

    static var chainLabel: [UInt8] { Array("varstore chain v1".utf8) }

    /// D = SHA-256(`varstore chain v1` ‖ previous D ‖ the record's bytes as written), hashed
    /// where the parts lie.
    func chain(_ previous: [UInt8], _ record: ArraySlice<UInt8>) throws(StorageError) -> [UInt8] {
        let next = crypto.sha256(concatenating: [Self.chainLabel[...], previous[...], record])
        // A digest libcrypto failed to compute would end the chain early on replay, or make a
        // record that can never be read back: it is an error of the platform, not a state.
        guard next.count == 32 else { throw .flash(.ioError) }
        return next
    }

    func headerAAD(_ logSector: UInt64) -> [UInt8] {
        var aad: [UInt8] = []
        headerAAD(logSector, into: &aad)
        return aad
    }

    /// `VSR1` ‖ binding ‖ log sector u64, written over `aad` (a buffer reused between headers).
    func headerAAD(_ logSector: UInt64, into aad: inout [UInt8]) {
        aad.removeAll(keepingCapacity: true)
        aad.append(0x56)  // VSR1
        aad.append(0x53)
        aad.append(0x52)
        aad.append(0x31)
        aad.append(contentsOf: keys.binding)
        LittleEndian.append(logSector, to: &aad)
    }

    static func hasRecordMagic(_ bytes: ArraySlice<UInt8>) -> Bool {
        let start = bytes.startIndex
        return bytes.count >= 4 && bytes[start] == 0x56 && bytes[start + 1] == 0x53 && bytes[start + 2] == 0x52
            && bytes[start + 3] == 0x31
    }

    struct RecordHeader {
        let generation: UInt64
        let sectors: UInt64
        let bodyNonce: ArraySlice<UInt8>
    }

    /// The authenticated header at the start of `first` (bytes of the sector at `logSector`),
    /// if it holds one. `aad` is scratch space for the header's AAD.
    func header(in first: ArraySlice<UInt8>, at logSector: UInt64, aad: inout [UInt8]) -> RecordHeader? {
        let start = first.startIndex
        guard first.count >= Self.headerBytes, Self.hasRecordMagic(first), let headerKey = keys.header else { return nil }
        headerAAD(logSector, into: &aad)
        guard let plain = crypto.openAES256GCM(prepared: headerKey, nonce: first[start + 4 ..< start + 16],
                                               additionalData: aad[...], sealed: first[start + 16 ..< start + 64]),
              plain.count == 32,
              let generation = LittleEndian.load(UInt64.self, from: plain, at: 0), generation < Self.generationLimit,
              let sectors = LittleEndian.load(UInt32.self, from: plain, at: 8),
              sectors >= 1, UInt64(sectors) <= Self.maximumRecordSectors,
              logSector + UInt64(sectors) <= logSectors else { return nil }
        return RecordHeader(generation: generation, sectors: UInt64(sectors), bodyNonce: plain[16..<28])
    }

    struct Record {
        let header: RecordHeader
        /// The record's n bytes as written (a slice of what replay read).
        let bytes: ArraySlice<UInt8>
        /// The body plaintext: previous digest, kind, part fields, then the changes.
        let body: [UInt8]
        let kind: Kind
        let part: Int
        let parts: Int
        /// Where the changes lie in `body`.
        let changes: Range<Int>

        var previous: ArraySlice<UInt8> { body[0..<32] }
        var encodedChanges: Changes { (body, changes) }
    }

    /// Decrypted log sectors read ahead in runs, so that replay reads and decrypts each
    /// sector once (a record's header sector is also its first sector) and the segment sets
    /// up one XTS run per `readAhead` sectors rather than two per record.
    struct LogWindow {
        var start: UInt64 = 0
        var bytes: [UInt8] = []
        /// Scratch space for record headers' AAD.
        var aad: [UInt8] = []
        /// Sectors read at once beyond what the record at hand needs.
        var readAhead: UInt64 = 64

        var sectors: UInt64 { UInt64(bytes.count / VariableLog.sectorBytes) }
    }

    /// `count` log sectors from `logSector` (not past the end of the log), through `window`.
    /// A range that starts inside the window and runs past its end keeps what the window
    /// holds from `logSector` on and reads only the rest (a record straddling two reads is
    /// not decrypted twice).
    func sectors(_ count: UInt64, at logSector: UInt64, window: inout LogWindow) throws(StorageError) -> ArraySlice<UInt8> {
        let end = window.start + window.sectors
        if logSector >= window.start && logSector < end && logSector + count > end {
            let run = max(logSector + count - end, min(window.readAhead, logSectors - end))
            let more = try readSectors(run, atSegmentSector: Self.superblockSectors + end)
            window.bytes.removeSubrange(0 ..< Int(logSector - window.start) * Self.sectorBytes)
            window.bytes += more
            window.start = logSector
        } else if logSector < window.start || logSector + count > end {
            let run = max(count, min(window.readAhead, logSectors - logSector))
            window.bytes = try readSectors(run, atSegmentSector: Self.superblockSectors + logSector)
            window.start = logSector
        }
        let from = Int(logSector - window.start) * Self.sectorBytes
        return window.bytes[from ..< from + Int(count) * Self.sectorBytes]
    }

    /// The record at `logSector` if its header and body authenticate and its body is well formed.
    func readRecord(at logSector: UInt64, window: inout LogWindow) throws(StorageError) -> Record? {
        let first = try sectors(1, at: logSector, window: &window)
        guard let header = header(in: first, at: logSector, aad: &window.aad) else { return nil }
        let bytes = try sectors(header.sectors, at: logSector, window: &window)
        let start = bytes.startIndex
        guard let bodyKey = keys.body,
              let body = crypto.openAES256GCM(prepared: bodyKey, nonce: header.bodyNonce,
                                              additionalData: bytes[start ..< start + Self.headerBytes],
                                              sealed: bytes[(start + Self.headerBytes)...]),
              body.count >= Self.bodyHeaderBytes,
              let kind = Kind(rawValue: body[32]),
              let part = LittleEndian.load(UInt16.self, from: body, at: 34),
              let parts = LittleEndian.load(UInt16.self, from: body, at: 36),
              let length = LittleEndian.load(UInt32.self, from: body, at: 44),
              part < parts,
              Int(length) <= body.count - Self.bodyHeaderBytes else { return nil }
        return Record(header: header, bytes: bytes, body: body, kind: kind, part: Int(part), parts: Int(parts),
                      changes: Self.bodyHeaderBytes ..< Self.bodyHeaderBytes + Int(length))
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
        var group: (parts: Int, changes: [Changes])?
        var wasted: UInt64 = 0
        var steps: UInt64 = 0
        var window = LogWindow()
        while steps <= logSectors {
            steps += 1
            var record = try readRecord(at: position, window: &window)
            if !continues(record) && position != 0 {
                // A record that would have crossed the end of the log starts at its beginning.
                // Looked for through a window of its own that reads no further than the
                // record, so the one around the chain's end is kept for the scan.
                var probe = LogWindow(readAhead: 1)
                let wrapped = try readRecord(at: 0, window: &probe)
                if continues(wrapped) {
                    record = wrapped
                    wasted += logSectors - position
                    position = 0
                    probe.readAhead = window.readAhead
                    window = probe
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
                try apply(encoded: [found.encodedChanges])
            } else if found.part == 0 {
                group = (found.parts, [found.encodedChanges])
            } else if let started = group, started.parts == found.parts, started.changes.count == found.part {
                group?.changes.append(found.encodedChanges)
                if found.part == found.parts - 1 {
                    try apply(encoded: started.changes + [found.encodedChanges])
                    group = nil
                }
            } else {
                throw .tampered("a record group's parts are out of order")
            }
            generation = found.header.generation
            digest = try chain(digest, found.bytes)
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
        // Read in runs of up to `scanRun` sectors (one XTS call each), starting with what the
        // chain's last read already holds; every sector is still decrypted and its header
        // checked.
        var scan = head
        var remaining = head == tail ? 0 : (head < tail ? tail - head : logSectors - head + tail)
        // The scan reads exactly its runs: reading ahead would reach into the live region.
        window.readAhead = 0
        while remaining > 0 {
            var run = min(remaining, logSectors - scan, Self.scanRun)
            if scan >= window.start && scan < window.start + window.sectors {
                run = min(run, window.start + window.sectors - scan)
            }
            let sectors = try self.sectors(run, at: scan, window: &window)
            let start = sectors.startIndex
            for index in 0..<Int(run) {
                let first = sectors[start + index * Self.sectorBytes ..< start + (index + 1) * Self.sectorBytes]
                if let found = header(in: first, at: scan + UInt64(index), aad: &window.aad), found.generation > generation + 1 {
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

    /// A record's encoded changes: where they lie in its body plaintext.
    typealias Changes = (body: [UInt8], range: Range<Int>)

    func apply(encoded parts: [Changes]) throws(StorageError) {
        for changes in parts {
            do {
                try applyEncoded(changes.body, in: changes.range)
            } catch {
                throw .tampered("a record's changes do not decode")
            }
        }
    }

    func continues(_ record: Record?) -> Bool {
        guard let record else { return false }
        return record.header.generation == generation + 1 && record.previous.elementsEqual(digest)
    }
}
