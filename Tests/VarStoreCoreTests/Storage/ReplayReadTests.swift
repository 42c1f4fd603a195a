import Testing
@testable import VarStoreCore
import VarStoreCrypto

/// A flash that counts how often each sector is read.
struct ReadCountingFlash: Flash {
    var inner: MemoryFlash
    var reads: [Int]

    init(bytes: [UInt8]) {
        inner = MemoryFlash(bytes: bytes)
        reads = [Int](repeating: 0, count: bytes.count / 512)
    }

    var size: UInt64 { inner.size }
    var sectorSize: Int { inner.sectorSize }
    mutating func read(at offset: UInt64, count: Int) throws(FlashError) -> [UInt8] {
        let bytes = try inner.read(at: offset, count: count)
        for sector in Int(offset / 512) ..< Int(offset / 512) + (count + 511) / 512 { reads[sector] += 1 }
        return bytes
    }
    mutating func write(_ bytes: [UInt8], at offset: UInt64) throws(FlashError) { try inner.write(bytes, at: offset) }
    mutating func flush() throws(FlashError) { try inner.flush() }
}

/// Replay reads through a window of sectors (VariableLog+Records.swift, LogWindow): each log
/// sector is read once, whatever the records' sizes and where they straddle two reads, and
/// a record placed at the start of the log because it did not fit at the end is still found.
@Suite struct ReplayReadTests {
    static let key = [UInt8](repeating: 0x42, count: 64)
    static let binding = Array("replay-read-tests".utf8)

    /// Variables of sizes that give records of every bucket, 1 to 72 sectors, in a log that
    /// wraps several times.
    static func workload(_ log: VariableLog<MemoryFlash, Libcrypto>, commits: Int, seed: UInt64) throws {
        var state = seed
        for _ in 0 ..< commits {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let sizes = [10, 600, 1_500, 3_500, 7_000, 15_000, 23_000, 33_000]
            let size = sizes[Int(state >> 61)] - Int((state >> 40) % 300)
            let name = VariableName("R\((state >> 20) % 5)")!
            try log.commit([.put(Variable(key: VariableKey(guid: .globalVariable, name: name), attributes: [.nonVolatile, .bootServiceAccess],
                                          data: [UInt8](repeating: UInt8(truncatingIfNeeded: state), count: max(size, 1))))])
        }
    }

    @Test(arguments: [1, 2, 3, 4, 5, 6])
    func everyLogSectorIsReadOnceAndTheStateIsTheSame(_ seed: UInt64) throws {
        let log = try VariableLog.format(device: MemoryFlash(size: 1 << 20), crypto: Libcrypto(), volumeKey: Self.key,
                                         binding: Self.binding)
        try Self.workload(log, commits: 100 + Int(seed) * 15, seed: seed)
        var flash = ReadCountingFlash(bytes: log.device.bytes)
        let reopened = try VariableLog.open(device: flash, crypto: Libcrypto(), volumeKey: Self.key, binding: Self.binding)
        flash = reopened.device
        #expect(reopened.live.all == log.live.all && reopened.digest == log.digest && reopened.generation == log.generation)
        // Superblocks once each. Every log sector once, but for two reads the format needs
        // or cannot avoid: where the chain ends, the record at log sector 0 is read again (a
        // record that did not fit at the end starts there), and the last read of the chain
        // may reach past the free part into its start when that part is short.
        #expect(flash.reads[0] == 1 && flash.reads[1] == 1)
        let logReads = Array(flash.reads[2...])
        let maximum = Int(VariableLog<MemoryFlash, Libcrypto>.maximumRecordSectors)
        let free = reopened.head <= reopened.tail ? Int(reopened.tail - reopened.head) : logReads.count - Int(reopened.head - reopened.tail)
        for (sector, reads) in logReads.enumerated() where reads > 1 {
            let afterTail = (sector - Int(reopened.tail) + logReads.count) % logReads.count
            #expect(reads == 2 && (sector < maximum || (free < 64 && afterTail < 64)), "sector \(sector) read \(reads) times")
        }
        // Never read: only the end of the log a record skipped because it did not fit there
        // (neither the chain nor the scan of the free part covers it, as before).
        for (sector, reads) in logReads.enumerated() where reads == 0 {
            #expect(sector >= logReads.count - maximum, "sector \(sector) never read")
        }
    }
}
