/// Taking back a commit that is durable but must not count: a witnessed commit the witness
/// refused (spec/rollback.md, "A required commit, step by step"). The same erasure a failed
/// write gets (`rollingBack`): the sectors the commit wrote are overwritten and flushed, and the
/// chain position goes back, so the store reads as before the commit — same generation, digest
/// and variables; only free log space differs.
extension VariableLog {
    /// Where the log stood before a retractable commit.
    public struct Retraction {
        let generation: UInt64
        let digest: [UInt8]
        let head: UInt64
        let used: UInt64
        let tail: UInt64
        let superblockSequence: UInt64
        let live: VariableStore
        let liveBytes: UInt64
    }

    /// Commits `changes` as `commit` does, first compacting (and naming a pending checkpoint)
    /// if the commit would, so the records it then writes are the only thing it changes.
    public func commitRetractably(_ changes: [JournalChange]) throws(StorageError) -> Retraction {
        try ensureWritable()
        try adoptUnnamedCheckpoint()
        // A version-1 store's first write upgrades it (a compaction that moves a superblock):
        // done here, before the position is saved, so the commit itself only appends records
        // and can be taken back. The upgrade holds the same variables, so it need not be.
        try upgrade()
        // The same room check as `commit`, made before the position is saved: a compaction
        // cannot be taken back (it holds the same variables, so it need not be).
        var payloads: [Int] = [0]
        for change in changes {
            var encoded: [UInt8] = []
            Self.encode(change, into: &encoded)
            if payloads[payloads.count - 1] + encoded.count > Self.maximumRecordPayload { payloads.append(0) }
            payloads[payloads.count - 1] += encoded.count
        }
        if !fits(payloads.map { Self.bucket(for: $0) } + [snapshotSectorsEstimate(after: changes)]) { try compact() }
        let saved = Retraction(generation: generation, digest: digest, head: head, used: used, tail: tail,
                               superblockSequence: superblockSequence, live: live, liveBytes: liveBytes)
        try commit(changes)
        return saved
    }

    /// Erases what the commit after `saved` wrote and returns the log to `saved`. If the commit
    /// moved a superblock after all, or the erasure fails, the log takes no more commits until
    /// it is opened again (then it reads the commit as one in flight).
    public func retract(_ saved: Retraction) throws(StorageError) {
        guard superblockSequence == saved.superblockSequence, unnamedCheckpoint == nil else {
            needsReopen = true
            throw .flash(.ioError)
        }
        // The commit wrote [saved.head, head) of the log, wrapping at most once; all of it was
        // free before the commit.
        var ranges: [(UInt64, UInt64)] = []
        if head > saved.head {
            ranges.append((saved.head, head))
        } else if head < saved.head {
            ranges.append((saved.head, logSectors))
            ranges.append((0, head))
        }
        do throws(StorageError) {
            let zeros = [UInt8](repeating: 0, count: Self.sectorBytes)
            for (start, end) in ranges {
                var sector = start
                while sector < end {
                    try writeSectors(zeros, atSegmentSector: Self.superblockSectors + sector)
                    sector += 1
                }
            }
            try flush()
        } catch {
            needsReopen = true
            throw error
        }
        generation = saved.generation
        digest = saved.digest
        head = saved.head
        used = saved.used
        tail = saved.tail
        live = saved.live
        liveBytes = saved.liveBytes
    }
}
