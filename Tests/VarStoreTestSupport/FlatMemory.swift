import VarStoreCore

/// Guest RAM for tests: a flat array at guest-physical `base`.
public struct FlatMemory: GuestMemory {
    var base: UInt64
    var bytes: [UInt8]
    /// Called after every read the device makes, to play a guest that rewrites its buffer.
    var afterRead: ((inout [UInt8]) -> Void)?
    var reads = 0

    public init(base: UInt64 = 0x1000, size: Int = 0x20000) {
        self.base = base
        bytes = [UInt8](repeating: 0xCC, count: size)
    }

    public mutating func read(_ address: UInt64, into buffer: inout [UInt8], at offset: Int, count: Int) throws(GuestMemoryError) {
        guard address >= base, address - base <= UInt64(bytes.count), UInt64(count) <= UInt64(bytes.count) - (address - base) else {
            throw .outOfRange(address: address)
        }
        let start = Int(address - base)
        buffer.replaceSubrange(offset ..< offset + count, with: bytes[start ..< start + count])
        reads += 1
        afterRead?(&bytes)
    }

    public mutating func write(_ address: UInt64, from buffer: [UInt8], range: Range<Int>) throws(GuestMemoryError) {
        guard address >= base, address - base <= UInt64(bytes.count), UInt64(range.count) <= UInt64(bytes.count) - (address - base) else {
            throw .outOfRange(address: address)
        }
        let start = Int(address - base)
        bytes.replaceSubrange(start ..< start + range.count, with: buffer[range])
    }
}
