/// Guest-physical memory as a transport sees it: the platform's one way into the guest.
///
/// Implementations: simulated RAM (host tools, tests), the SVSM's validated guest mappings.
/// Every call may fail; a transport turns a failure into its own error status, never a trap.
public protocol GuestMemory {
    /// Copies `count` bytes at guest-physical `address` into `buffer[offset ..< offset + count]`.
    mutating func read(_ address: UInt64, into buffer: inout [UInt8], at offset: Int, count: Int) throws(GuestMemoryError)
    /// Copies `buffer[range]` to guest-physical `address`.
    mutating func write(_ address: UInt64, from buffer: [UInt8], range: Range<Int>) throws(GuestMemoryError)
}

public enum GuestMemoryError: Error, Equatable, Sendable {
    /// Some byte of the range is not guest RAM the service may touch.
    case outOfRange(address: UInt64)
}
