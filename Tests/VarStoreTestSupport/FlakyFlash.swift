import VarStoreCore

/// A flash whose flushes can fail (once), either losing the writes since the last flush
/// (Linux drops dirty pages after fsync EIO) or keeping them.
public struct FlakyFlash: Flash {
    var durable: [UInt8]
    var pending: [(UInt64, [UInt8])] = []
    var failFlushes = 0
    /// Flushes (counted from 1) that fail, whatever `failFlushes` says.
    var failingFlushNumbers: Set<Int> = []
    var flushes = 0
    var loseOnFailure = true
    var failWrites: Set<Int> = []
    var writes = 0
    public let sectorSize = 512
    public init(bytes: [UInt8]) { durable = bytes }
    public var size: UInt64 { UInt64(durable.count) }
    var current: [UInt8] {
        var image = durable
        for (o, b) in pending { image.replaceSubrange(Int(o) ..< Int(o) + b.count, with: b) }
        return image
    }
    public mutating func read(at offset: UInt64, count: Int) throws(FlashError) -> [UInt8] {
        Array(current[Int(offset) ..< Int(offset) + count])
    }
    public mutating func write(_ bytes: [UInt8], at offset: UInt64) throws(FlashError) {
        defer { writes += 1 }
        if failWrites.contains(writes) { throw .ioError }
        pending.append((offset, bytes))
    }
    public mutating func flush() throws(FlashError) {
        flushes += 1
        if failFlushes > 0 || failingFlushNumbers.contains(flushes) {
            if failFlushes > 0 { failFlushes -= 1 }
            if loseOnFailure { pending.removeAll() }
            throw .ioError
        }
        durable = current
        pending.removeAll()
    }
}

