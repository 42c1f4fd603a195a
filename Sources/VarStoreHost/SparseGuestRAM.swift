import VarStoreCore

/// Simulated guest RAM: `size` bytes from guest-physical 0, allocated 4 KiB page by page on
/// first write, so a 256 MiB guest costs only the pages it touches. Unwritten bytes read zero.
public final class SparseGuestRAM: GuestMemory {
    public static let pageSize = 4096
    public let size: UInt64
    private var pages: [UInt64: [UInt8]] = [:]

    public init(size: UInt64) {
        self.size = size
    }

    public func contains(_ address: UInt64, count: Int) -> Bool {
        guard count >= 0, address <= size else { return false }
        return UInt64(count) <= size - address
    }

    public func read(_ address: UInt64, into buffer: inout [UInt8], at offset: Int, count: Int) throws(GuestMemoryError) {
        guard contains(address, count: count), offset >= 0, offset + count <= buffer.count else {
            throw .outOfRange(address: address)
        }
        var done = 0
        while done < count {
            let current = address + UInt64(done)
            let page = current / UInt64(Self.pageSize)
            let inPage = Int(current % UInt64(Self.pageSize))
            let chunk = min(count - done, Self.pageSize - inPage)
            if let bytes = pages[page] {
                buffer.withUnsafeMutableBufferPointer { out in
                    bytes.withUnsafeBufferPointer { src in
                        for i in 0..<chunk { out[offset + done + i] = src[inPage + i] }
                    }
                }
            } else {
                for i in 0..<chunk { buffer[offset + done + i] = 0 }
            }
            done += chunk
        }
    }

    public func write(_ address: UInt64, from buffer: [UInt8], range: Range<Int>) throws(GuestMemoryError) {
        guard contains(address, count: range.count), range.lowerBound >= 0, range.upperBound <= buffer.count else {
            throw .outOfRange(address: address)
        }
        var done = 0
        while done < range.count {
            let current = address + UInt64(done)
            let page = current / UInt64(Self.pageSize)
            let inPage = Int(current % UInt64(Self.pageSize))
            let chunk = min(range.count - done, Self.pageSize - inPage)
            var bytes = pages.removeValue(forKey: page) ?? [UInt8](repeating: 0, count: Self.pageSize)
            bytes.withUnsafeMutableBufferPointer { dst in
                buffer.withUnsafeBufferPointer { src in
                    for i in 0..<chunk { dst[inPage + i] = src[range.lowerBound + done + i] }
                }
            }
            pages[page] = bytes
            done += chunk
        }
    }

    /// Convenience for hosts and tests.
    public func bytes(at address: UInt64, count: Int) throws(GuestMemoryError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try read(address, into: &out, at: 0, count: count)
        return out
    }

    public func store(_ bytes: [UInt8], at address: UInt64) throws(GuestMemoryError) {
        try write(address, from: bytes, range: 0..<bytes.count)
    }
}
