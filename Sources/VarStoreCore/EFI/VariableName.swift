/// A variable name: UCS-2 code units without the terminating NUL.
///
/// Invariants: no code unit is NUL (the name ends at the first one) and none is a UTF-16
/// surrogate (0xD800–0xDFFF), which UCS-2 cannot hold and QEMU's device rejects. The wire size
/// (edk2 `StrSize`) is therefore always even: two bytes per unit plus the terminator.
public struct VariableName: Hashable, Sendable {
    public let codeUnits: [UInt16]

    /// Why guest bytes are not a name.
    public enum ParseError: Error, Equatable {
        /// NameSize is smaller than one CHAR16 or odd.
        case badSize
        /// No NUL code unit within NameSize bytes.
        case notTerminated
        /// A UTF-16 surrogate code unit, which is not UCS-2.
        case surrogate
    }

    /// The empty name, which starts a GetNextVariableName enumeration.
    public static let empty = VariableName(validated: [])

    private init(validated units: [UInt16]) { codeUnits = units }

    /// Parses a NUL-terminated UCS-2LE name of `size` bytes at `offset`. The name ends at the
    /// first NUL; anything after it inside `size` is ignored, as edk2's StrSize ignores it.
    public static func parse(_ bytes: [UInt8], at offset: Int, size: UInt64) -> Result<VariableName, ParseError> {
        switch validate(bytes, at: offset, size: size) {
        case .failure(let error):
            return .failure(error)
        case .success(let range):
            let units = [UInt16](unsafeUninitializedCapacity: range.count / 2) { units, initialized in
                for index in 0 ..< range.count / 2 {
                    units[index] = UInt16(bytes[range.lowerBound + 2 * index])
                        | UInt16(bytes[range.lowerBound + 2 * index + 1]) << 8
                }
                initialized = range.count / 2
            }
            return .success(VariableName(validated: units))
        }
    }

    /// Checks the rules of `parse` without building the name: the byte range of its UCS-2LE
    /// code units (the terminator excluded), for a lookup straight from the request bytes.
    public static func validate(_ bytes: [UInt8], at offset: Int, size: UInt64) -> Result<Range<Int>, ParseError> {
        guard size >= 2, size % 2 == 0 else { return .failure(.badSize) }
        guard offset >= 0, offset <= bytes.count, UInt64(bytes.count - offset) >= size else {
            return .failure(.notTerminated)
        }
        // One pass, a unit at a time inside the range just checked: the first NUL ends the
        // name; a surrogate before it refuses the name (a missing NUL is reported first).
        let units = Int(size) / 2
        return bytes.withUnsafeBytes { raw in
            var surrogate = false
            for index in 0 ..< units {
                let unit = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 2 * index, as: UInt16.self))
                if unit == 0 { return surrogate ? .failure(.surrogate) : .success(offset ..< offset + 2 * index) }
                if unit & 0xF800 == 0xD800 { surrogate = true }
            }
            return .failure(.notTerminated)
        }
    }

    /// Whether `bytes` are exactly this name's code units in UCS-2LE, without a terminator.
    public func isEncoded(by bytes: Span<UInt8>) -> Bool {
        guard bytes.count == 2 * codeUnits.count else { return false }
        return codeUnits.withUnsafeBufferPointer { units in
            bytes.withUnsafeBytes { raw in
                for index in 0 ..< units.count
                where units[index] != UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)) {
                    return false
                }
                return true
            }
        }
    }

    /// A name from code units; nil if any is NUL or a surrogate.
    public init?(codeUnits units: [UInt16]) {
        for unit in units where unit == 0 || (unit >= 0xD800 && unit <= 0xDFFF) { return nil }
        codeUnits = units
    }

    /// A name from text; nil if a character lies outside the Basic Multilingual Plane or is NUL.
    public init?(_ text: String) {
        self.init(codeUnits: Array(text.utf16))
    }

    public var isEmpty: Bool { codeUnits.isEmpty }

    /// The code units in one call (an array hashes element by element otherwise); equal names
    /// have equal units, so this agrees with `==`.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(codeUnits.count)
        codeUnits.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    public static func == (lhs: VariableName, rhs: VariableName) -> Bool { lhs.codeUnits == rhs.codeUnits }

    /// Bytes on the wire including the terminating NUL (edk2 `StrSize`).
    public var wireSize: Int { 2 * (codeUnits.count + 1) }

    /// UCS-2LE bytes including the terminating NUL.
    public var wireBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(wireSize)
        for unit in codeUnits { LittleEndian.append(unit, to: &out) }
        out += [0, 0]
        return out
    }

    /// The name as text (UCS-2 is a subset of UTF-16 once surrogates are excluded).
    public var text: String { String(decoding: codeUnits, as: UTF16.self) }
}
