import VarStoreCore

/// Guest RAM as one flat allocation from guest-physical 0, as QEMU backs a RAM block: reads
/// and writes are one bounds check and one copy. The benchmark uses it, so a request's cost
/// is the device's and not a page table's; SparseGuestRAM stays for big, mostly empty guests.
public final class FlatGuestRAM: GuestMemory {
    public private(set) var bytes: [UInt8]

    public init(size: Int) {
        bytes = [UInt8](repeating: 0, count: size)
    }

    private func contains(_ address: UInt64, count: Int) -> Bool {
        count >= 0 && address <= UInt64(bytes.count) && UInt64(count) <= UInt64(bytes.count) - address
    }

    public func read(_ address: UInt64, into buffer: inout [UInt8], at offset: Int, count: Int) throws(GuestMemoryError) {
        guard contains(address, count: count), offset >= 0, offset <= buffer.count, count <= buffer.count - offset else {
            throw .outOfRange(address: address)
        }
        guard count > 0 else { return }
        let start = Int(address)
        buffer.withUnsafeMutableBytes { out in
            bytes.withUnsafeBytes { ram in
                out.baseAddress!.advanced(by: offset).copyMemory(from: ram.baseAddress!.advanced(by: start), byteCount: count)
            }
        }
    }

    public func write(_ address: UInt64, from buffer: [UInt8], range: Range<Int>) throws(GuestMemoryError) {
        guard contains(address, count: range.count), range.lowerBound >= 0, range.upperBound <= buffer.count else {
            throw .outOfRange(address: address)
        }
        guard !range.isEmpty else { return }
        let start = Int(address)
        bytes.withUnsafeMutableBytes { ram in
            buffer.withUnsafeBytes { source in
                ram.baseAddress!.advanced(by: start)
                    .copyMemory(from: source.baseAddress!.advanced(by: range.lowerBound), byteCount: range.count)
            }
        }
    }

    /// The guest's own store into its RAM (the benchmark's guest writing a request).
    public func store(_ source: [UInt8], at address: Int) {
        precondition(address >= 0 && address <= bytes.count && source.count <= bytes.count - address)
        guard !source.isEmpty else { return }
        bytes.withUnsafeMutableBytes { ram in
            source.withUnsafeBytes { ram.baseAddress!.advanced(by: address).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
    }

    /// A little-endian u64 the guest stores (a request field it changes between sends).
    public func storeU64(_ value: UInt64, at address: Int) {
        precondition(LittleEndian.store(value, into: &bytes, at: address))
    }

    /// A little-endian u64 the guest reads back (a reply's ReturnStatus).
    public func loadU64(at address: Int) -> UInt64 {
        LittleEndian.load(UInt64.self, from: bytes, at: address) ?? UInt64.max
    }
}
