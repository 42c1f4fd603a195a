/// Where records go in the circular log, how large they are, and whether a commit fits: the
/// bucket sizes that decide what the host learns about each write (spec/storage.md, "Record",
/// "What the host still learns").
extension VariableLog {
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
}
