import Foundation
import VarStoreCore

/// A flash that misbehaves on purpose, for the store's tests.
///
/// It keeps what has reached the medium (`durable`) apart from what was written since the
/// last flush (`pending`, in order): reads see both, a power cut keeps `durable` plus whatever
/// of `pending` the test chooses. Faults: a write torn after byte N (the rest of the device
/// then fails, as after a power cut), flushes that are acknowledged but do nothing, a bit
/// flipped on read, and sectors whose reads return what is durable rather than what was last
/// written (a stale cache).
public struct FaultInjectingFlash: Flash {
    public enum Event: Equatable, Sendable {
        case write(offset: UInt64, bytes: [UInt8])
        case flush
    }

    public private(set) var durable: [UInt8]
    public private(set) var pending: [(offset: UInt64, bytes: [UInt8])] = []
    public let sectorSize: Int
    /// Every write and flush, in order (for replaying cuts).
    public private(set) var events: [Event] = []
    public private(set) var bytesWritten: UInt64 = 0

    /// Tear write number `write` (0-based, counting writes) after `byte` bytes; the device is
    /// dead afterwards.
    public var tear: (write: Int, byte: Int)?
    public var dropFlushes = false
    public var flipOnRead: (offset: UInt64, bit: UInt8)?
    public var staleSectors: Set<UInt64> = []
    public private(set) var dead = false
    private var writes = 0

    public init(bytes: [UInt8], sectorSize: Int = 512) {
        durable = bytes
        self.sectorSize = sectorSize
    }

    public var size: UInt64 { UInt64(durable.count) }

    /// What the medium holds now plus the pending writes, in order.
    public var current: [UInt8] {
        var image = durable
        for write in pending { image.replaceSubrange(Int(write.offset) ..< Int(write.offset) + write.bytes.count, with: write.bytes) }
        return image
    }

    public mutating func read(at offset: UInt64, count: Int) throws(FlashError) -> [UInt8] {
        guard !dead else { throw .ioError }
        guard contains(offset: offset, count: count) else { throw .outOfRange }
        let image = current
        var out = Array(image[Int(offset) ..< Int(offset) + count])
        for sector in staleSectors {
            let start = sector * UInt64(sectorSize)
            for index in 0 ..< sectorSize {
                let position = start + UInt64(index)
                if position >= offset && position < offset + UInt64(count) {
                    out[Int(position - offset)] = durable[Int(position)]
                }
            }
        }
        if let flip = flipOnRead, flip.offset >= offset, flip.offset < offset + UInt64(count) {
            out[Int(flip.offset - offset)] ^= 1 << (flip.bit % 8)
        }
        return out
    }

    public mutating func write(_ bytes: [UInt8], at offset: UInt64) throws(FlashError) {
        guard !dead else { throw .ioError }
        guard contains(offset: offset, count: bytes.count) else { throw .outOfRange }
        defer { writes += 1 }
        if let tear, tear.write == writes {
            let kept = max(0, min(tear.byte, bytes.count))
            if kept > 0 { pending.append((offset, Array(bytes[0 ..< kept]))) }
            events.append(.write(offset: offset, bytes: Array(bytes[0 ..< kept])))
            bytesWritten += UInt64(kept)
            dead = true
            throw .ioError
        }
        pending.append((offset, bytes))
        events.append(.write(offset: offset, bytes: bytes))
        bytesWritten += UInt64(bytes.count)
    }

    public mutating func flush() throws(FlashError) {
        guard !dead else { throw .ioError }
        events.append(.flush)
        guard !dropFlushes else { return }
        durable = current
        pending.removeAll()
    }

    /// The medium after a power cut now: what is durable, plus the pending writes `keep`
    /// selects (by index).
    public func afterPowerCut(keep: (Int) -> Bool = { _ in false }) -> [UInt8] {
        var image = durable
        for (index, write) in pending.enumerated() where keep(index) {
            image.replaceSubrange(Int(write.offset) ..< Int(write.offset) + write.bytes.count, with: write.bytes)
        }
        return image
    }

    /// The medium a cut at event `cut` would leave if the device wrote in order: `initial`,
    /// then every write before the cut; a write at the cut keeps its first `tornBytes`.
    public static func replay(_ events: [Event], onto initial: [UInt8], cut: Int, tornBytes: Int = 0) -> [UInt8] {
        var image = initial
        for (index, event) in events.enumerated() {
            guard case .write(let offset, let bytes) = event else { continue }
            if index < cut {
                image.replaceSubrange(Int(offset) ..< Int(offset) + bytes.count, with: bytes)
            } else if index == cut {
                let kept = min(tornBytes, bytes.count)
                image.replaceSubrange(Int(offset) ..< Int(offset) + kept, with: bytes[0 ..< kept])
                break
            }
        }
        return image
    }
}
