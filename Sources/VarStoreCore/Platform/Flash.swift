/// The block device that holds the encrypted variable image: what an SVSM reaches through
/// the host (a pflash CFI region or a virtio-blk disk, see spec/storage.md), and a file or
/// memory on a host. Everything read from it is attacker-controlled.
///
/// A write may be torn at any sector boundary by a power cut; only `flush` orders writes:
/// every write issued before a successful flush is durable, in full, before any write issued
/// after it.
public protocol Flash {
    /// Bytes the device holds.
    var size: UInt64 { get }
    /// The unit a power cut cannot split (writes are torn only between sectors).
    var sectorSize: Int { get }
    mutating func read(at offset: UInt64, count: Int) throws(FlashError) -> [UInt8]
    mutating func write(_ bytes: [UInt8], at offset: UInt64) throws(FlashError)
    mutating func flush() throws(FlashError)
}

public enum FlashError: Error, Equatable, Sendable {
    /// The range does not lie inside the device.
    case outOfRange
    /// The device failed the operation.
    case ioError
}

extension Flash {
    /// Whether `count` bytes at `offset` lie inside the device (overflow-safe).
    public func contains(offset: UInt64, count: Int) -> Bool {
        count >= 0 && offset <= size && UInt64(count) <= size - offset
    }
}

/// A flash in memory: the reference implementation, and what tests wrap.
public struct MemoryFlash: Flash {
    public var bytes: [UInt8]
    public let sectorSize: Int
    /// Bytes written so far (the benchmark's write-amplification counter).
    public private(set) var bytesWritten: UInt64 = 0
    public private(set) var flushes = 0

    public init(size: Int, sectorSize: Int = 512) {
        bytes = [UInt8](repeating: 0, count: size)
        self.sectorSize = sectorSize
    }

    public init(bytes: [UInt8], sectorSize: Int = 512) {
        self.bytes = bytes
        self.sectorSize = sectorSize
    }

    public var size: UInt64 { UInt64(bytes.count) }

    public mutating func read(at offset: UInt64, count: Int) throws(FlashError) -> [UInt8] {
        guard contains(offset: offset, count: count) else { throw .outOfRange }
        return Array(bytes[Int(offset) ..< Int(offset) + count])
    }

    public mutating func write(_ data: [UInt8], at offset: UInt64) throws(FlashError) {
        guard contains(offset: offset, count: data.count) else { throw .outOfRange }
        bytes.replaceSubrange(Int(offset) ..< Int(offset) + data.count, with: data)
        bytesWritten &+= UInt64(data.count)
    }

    public mutating func flush() throws(FlashError) { flushes += 1 }
}
