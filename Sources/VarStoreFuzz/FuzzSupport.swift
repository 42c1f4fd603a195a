// Shared by the libFuzzer targets (built by .ci/fuzz together with the core and crypto
// sources as one module): guest memory, an input reader, and the service invariants every
// step must keep.

struct FuzzMemory: GuestMemory {
    static let base: UInt64 = 0x10000
    var bytes = [UInt8](repeating: 0xA5, count: 0x30000)

    mutating func read(_ address: UInt64, into buffer: inout [UInt8], at offset: Int, count: Int) throws(GuestMemoryError) {
        guard address >= Self.base, address - Self.base <= UInt64(bytes.count),
              UInt64(count) <= UInt64(bytes.count) - (address - Self.base) else { throw .outOfRange(address: address) }
        let start = Int(address - Self.base)
        buffer.replaceSubrange(offset ..< offset + count, with: bytes[start ..< start + count])
    }

    mutating func write(_ address: UInt64, from buffer: [UInt8], range: Range<Int>) throws(GuestMemoryError) {
        guard address >= Self.base, address - Self.base <= UInt64(bytes.count),
              UInt64(range.count) <= UInt64(bytes.count) - (address - Self.base) else { throw .outOfRange(address: address) }
        let start = Int(address - Self.base)
        bytes.replaceSubrange(start ..< start + range.count, with: buffer[range])
    }
}

struct Input {
    let bytes: [UInt8]
    var position = 0
    var atEnd: Bool { position >= bytes.count }

    mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func u16() -> UInt16 { UInt16(byte()) | UInt16(byte()) << 8 }
    mutating func u64() -> UInt64 { (0..<8).reduce(UInt64(0)) { value, index in value | UInt64(byte()) << (8 * UInt64(index)) } }

    mutating func take(_ count: Int) -> [UInt8] {
        let end = min(bytes.count, position + count)
        defer { position = end }
        return Array(bytes[position ..< end])
    }
}

func checkInvariants<C: AuthenticationCrypto, J: NonVolatileJournal>(_ service: VariableService<C, J>) {
    // The quota is the sum of what the stored variables are charged, per class.
    var used: [StorageClass: UInt64] = [.nonVolatile: 0, .volatile: 0, .hardwareError: 0]
    for variable in service.store.all {
        used[StorageClass(variable.attributes), default: 0] += service.quota.charge(variable)
        precondition(!variable.attributes.contains(.appendWrite), "APPEND_WRITE stored")
        precondition(!variable.name.isEmpty, "empty name stored")
    }
    used[.volatile, default: 0] += service.policies.byteCount + service.propertyBytes
    for storageClass in [StorageClass.nonVolatile, .volatile, .hardwareError] {
        precondition(service.quota.used(storageClass) == used[storageClass], "quota drifted")
    }
    precondition(service.store.count == service.store.all.count, "index and order disagree")
}

extension StorageClass: Hashable {}

