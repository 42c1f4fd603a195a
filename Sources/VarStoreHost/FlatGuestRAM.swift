import VarStoreCore

/// Guest RAM as one flat allocation from guest-physical 0, as QEMU backs a RAM block: reads
/// and writes are one bounds check and one copy. The benchmark uses it, so a request's cost
/// is the device's and not a page table's; SparseGuestRAM stays for big, mostly empty guests.
///
/// The allocation is fixed for the object's life, as a RAM block's host mapping is, and held
/// in a constant: every access below checks its range against `size` and then copies, with no
/// class property to change underneath it.
public final class FlatGuestRAM: GuestMemory {
    private let ram: UnsafeMutableRawBufferPointer
    public var size: Int { ram.count }

    public init(size: Int) {
        ram = .allocate(byteCount: size, alignment: 16)
        ram.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit { ram.deallocate() }

    private func contains(_ address: UInt64, count: Int) -> Bool {
        count >= 0 && address <= UInt64(ram.count) && UInt64(count) <= UInt64(ram.count) - address
    }

    public func read(_ address: UInt64, into buffer: inout [UInt8], at offset: Int, count: Int) throws(GuestMemoryError) {
        guard contains(address, count: count), offset >= 0, offset <= buffer.count, count <= buffer.count - offset else {
            throw .outOfRange(address: address)
        }
        guard count > 0 else { return }
        let start = Int(address)
        buffer.withUnsafeMutableBytes { out in
            out.baseAddress!.advanced(by: offset).copyMemory(from: ram.baseAddress!.advanced(by: start), byteCount: count)
        }
    }

    public func write(_ address: UInt64, from buffer: [UInt8], range: Range<Int>) throws(GuestMemoryError) {
        guard contains(address, count: range.count), range.lowerBound >= 0, range.upperBound <= buffer.count else {
            throw .outOfRange(address: address)
        }
        guard !range.isEmpty else { return }
        let start = Int(address)
        buffer.withUnsafeBytes { source in
            ram.baseAddress!.advanced(by: start)
                .copyMemory(from: source.baseAddress!.advanced(by: range.lowerBound), byteCount: range.count)
        }
    }

    /// The guest's own store into its RAM (the benchmark's guest writing a request).
    public func store(_ source: [UInt8], at address: Int) {
        precondition(address >= 0 && contains(UInt64(address), count: source.count))
        guard !source.isEmpty else { return }
        source.withUnsafeBytes { ram.baseAddress!.advanced(by: address).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    /// A little-endian u64 the guest stores (a request field it changes between sends).
    public func storeU64(_ value: UInt64, at address: Int) {
        precondition(address >= 0 && contains(UInt64(address), count: 8))
        ram.storeBytes(of: value.littleEndian, toByteOffset: address, as: UInt64.self)
    }

    /// A little-endian u64 the guest reads back (a reply's ReturnStatus).
    public func loadU64(at address: Int) -> UInt64 {
        guard address >= 0, contains(UInt64(address), count: 8) else { return UInt64.max }
        return UInt64(littleEndian: ram.loadUnaligned(fromByteOffset: address, as: UInt64.self))
    }
}
