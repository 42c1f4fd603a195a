/// Bounded little-endian access to byte arrays.
///
/// Every parser in the core reads guest and flash bytes through these helpers, so a length or
/// offset that points outside the buffer becomes `nil` / `false` instead of a trap. UEFI and
/// the MM protocol are little-endian on every platform we serve (QEMU's LIMITATIONS.md).
public enum LittleEndian {
    /// Reads a `T` at `offset`, or nil if `offset ..< offset + size` is not inside `bytes`.
    @inlinable
    public static func load<T: FixedWidthInteger>(_: T.Type, from bytes: [UInt8], at offset: Int) -> T? {
        let size = T.bitWidth / 8
        guard offset >= 0, offset <= bytes.count, bytes.count - offset >= size else { return nil }
        // One unaligned load inside the bounds just checked, then byte order: the same value
        // a byte-at-a-time loop builds, in a few instructions (every request reads a dozen).
        return T(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) })
    }

    /// Writes `value` at `offset`; returns false (and writes nothing) when it does not fit.
    @inlinable
    @discardableResult
    public static func store<T: FixedWidthInteger>(_ value: T, into bytes: inout [UInt8], at offset: Int) -> Bool {
        let size = T.bitWidth / 8
        guard offset >= 0, offset <= bytes.count, bytes.count - offset >= size else { return false }
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self) }
        return true
    }

    /// Appends `value` in little-endian order.
    @inlinable
    public static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        var remaining = value
        for _ in 0..<(T.bitWidth / 8) {
            bytes.append(UInt8(truncatingIfNeeded: remaining))
            remaining = remaining >> 8
        }
    }
}

/// A cursor over a window of a byte array that never reads past the window's end.
public struct ByteReader {
    public let bytes: [UInt8]
    public private(set) var offset: Int
    public let end: Int

    /// A reader over `bytes[start ..< end]`; the window is clamped to the array.
    public init(_ bytes: [UInt8], start: Int = 0, end: Int? = nil) {
        self.bytes = bytes
        let clampedEnd = min(max(end ?? bytes.count, 0), bytes.count)
        self.end = clampedEnd
        self.offset = min(max(start, 0), clampedEnd)
    }

    public var remaining: Int { end - offset }

    public mutating func read<T: FixedWidthInteger>(_ type: T.Type) -> T? {
        let size = T.bitWidth / 8
        guard remaining >= size, let value = LittleEndian.load(type, from: bytes, at: offset) else { return nil }
        offset += size
        return value
    }

    public mutating func readBytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, remaining >= count else { return nil }
        let slice = Array(bytes[offset ..< offset + count])
        offset += count
        return slice
    }

    public mutating func skip(_ count: Int) -> Bool {
        guard count >= 0, remaining >= count else { return false }
        offset += count
        return true
    }

    /// A big-endian unsigned integer of `count` bytes (1 … 8): LUKS2's binary header.
    public mutating func readBigEndian(_ count: Int) -> UInt64? {
        guard count >= 1, count <= 8, remaining >= count else { return nil }
        var value: UInt64 = 0
        for index in offset ..< offset + count { value = value << 8 | UInt64(bytes[index]) }
        offset += count
        return value
    }

    /// A GUID in its wire form (EFI_GUID: three little-endian fields, then eight bytes).
    public mutating func readGUID() -> EFIGUID? {
        guard remaining >= 16, let guid = EFIGUID(wire: bytes, at: offset) else { return nil }
        offset += 16
        return guid
    }

    /// `count` UCS-2LE code units, as they are (no NUL or surrogate check: see `VariableName`).
    public mutating func readUCS2(_ count: Int) -> [UInt16]? {
        guard count >= 0, remaining / 2 >= count else { return nil }
        var units: [UInt16] = []
        units.reserveCapacity(count)
        for _ in 0 ..< count {
            units.append(UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8)
            offset += 2
        }
        return units
    }

    /// The code units of a NUL-terminated UCS-2LE string of `size` bytes, without its NUL; the
    /// reader moves past all `size` bytes. nil if `size` is odd or short, no NUL lies inside
    /// it, or (with `terminatorLast`) anything follows the first NUL.
    public mutating func readTerminatedUCS2(size: Int, terminatorLast: Bool = false) -> [UInt16]? {
        guard size >= 2, size % 2 == 0, remaining >= size else { return nil }
        let start = offset
        // Find the terminator first, so the units are copied once into an exact-size array.
        guard let count = Self.unitsBeforeTerminator(bytes, from: start, size: size) else { return nil }
        if terminatorLast && count != size / 2 - 1 { return nil }
        offset = start + size
        let source = bytes
        return [UInt16](unsafeUninitializedCapacity: count) { units, initialized in
            for index in 0 ..< count {
                units[index] = UInt16(source[start + 2 * index]) | UInt16(source[start + 2 * index + 1]) << 8
            }
            initialized = count
        }
    }

    /// How many UCS-2LE code units precede the first NUL in `bytes[start ..< start + size]`
    /// (`size` even and inside `bytes`), or nil if there is none.
    static func unitsBeforeTerminator(_ bytes: [UInt8], from start: Int, size: Int) -> Int? {
        var index = 0
        while index < size / 2 {
            if bytes[start + 2 * index] == 0 && bytes[start + 2 * index + 1] == 0 { return index }
            index += 1
        }
        return nil
    }
}

/// Overflow-checked arithmetic for lengths that come from hostile input.
public enum CheckedSize {
    /// `a + b`, or nil on overflow.
    @inlinable
    public static func add(_ a: UInt64, _ b: UInt64) -> UInt64? {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : sum
    }

    /// `a + b + c`, or nil on overflow.
    @inlinable
    public static func add(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64? {
        guard let ab = add(a, b) else { return nil }
        return add(ab, c)
    }
}
