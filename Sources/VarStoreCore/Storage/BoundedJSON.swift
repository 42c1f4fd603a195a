/// A strict, bounded JSON reader for the LUKS2 metadata area, which the host controls.
///
/// It accepts RFC 8259 JSON with limits that bound every input's cost: nesting depth, member
/// count (overall and per object) and string length are capped, numbers are kept as their text, and any
/// escape other than \" \\ \/ \b \f \n \r \t and \u00XX is refused (LUKS2 metadata is
/// ASCII). Duplicate object keys are refused too, so no two readers can disagree on a value.
/// Strings are kept as their UTF-8 bytes: comparing bytes needs no Unicode tables, which a
/// freestanding build does not carry.
public indirect enum JSONValue: Equatable, Sendable {
    case object([([UInt8], JSONValue)])
    case array([JSONValue])
    case string([UInt8])
    /// The number's text, exactly as written.
    case number([UInt8])
    case bool(Bool)
    case null

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.object(let a), .object(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.array(let a), .array(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.bool(let a), .bool(let b)): return a == b
        case (.null, .null): return true
        default: return false
        }
    }

    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        for (name, value) in members where name.elementsEqual(key.utf8) { return value }
        return nil
    }

    /// The string's UTF-8 bytes.
    public var bytes: [UInt8]? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// Whether this is the string `text`.
    public func isString(_ text: String) -> Bool {
        if case .string(let bytes) = self { return bytes.elementsEqual(text.utf8) }
        return false
    }

    /// A non-negative integer written as a JSON number or (as LUKS2 writes 64-bit values) a
    /// decimal string; nil if it is anything else or does not fit in 64 bits.
    public var unsigned: UInt64? {
        let text: [UInt8]
        switch self {
        case .number(let digits): text = digits
        case .string(let digits): text = digits
        default: return nil
        }
        guard !text.isEmpty, text.count <= 20 else { return nil }
        var value: UInt64 = 0
        for char in text {
            guard char >= UInt8(ascii: "0"), char <= UInt8(ascii: "9") else { return nil }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(UInt64(char - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            value = sum
        }
        return value
    }
}

public struct JSONLimits: Sendable {
    public var depth = 8
    public var members = 4096
    /// Members of one object: duplicate keys are looked for by comparison, so this keeps that
    /// quadratic search small (LUKS2 objects hold a few dozen at most).
    public var objectMembers = 128
    public var stringBytes = 4096
    public init() {}
}

public enum JSONReader {
    /// Parses `bytes` (trailing NULs, as in the LUKS2 JSON area, are allowed after the value).
    public static func parse(_ bytes: ArraySlice<UInt8>, limits: JSONLimits = JSONLimits()) -> JSONValue? {
        var reader = Reader(bytes: bytes, limits: limits)
        guard let value = reader.value(depth: 0) else { return nil }
        reader.skipWhitespace()
        while reader.position < bytes.endIndex {
            guard bytes[reader.position] == 0 else { return nil }
            reader.position += 1
        }
        return value
    }

    struct Reader {
        let bytes: ArraySlice<UInt8>
        let limits: JSONLimits
        var position: Int
        var members = 0

        init(bytes: ArraySlice<UInt8>, limits: JSONLimits) {
            self.bytes = bytes
            self.limits = limits
            position = bytes.startIndex
        }

        var current: UInt8? { position < bytes.endIndex ? bytes[position] : nil }

        mutating func skipWhitespace() {
            while let char = current, char == 0x20 || char == 0x0A || char == 0x0D || char == 0x09 { position += 1 }
        }

        mutating func literal(_ text: StaticString) -> Bool {
            let expected = UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
            guard bytes.endIndex - position >= expected.count else { return false }
            for (offset, char) in expected.enumerated() where bytes[position + offset] != char { return false }
            position += expected.count
            return true
        }

        mutating func value(depth: Int) -> JSONValue? {
            guard depth <= limits.depth else { return nil }
            skipWhitespace()
            guard let char = current else { return nil }
            switch char {
            case UInt8(ascii: "{"): return object(depth: depth)
            case UInt8(ascii: "["): return array(depth: depth)
            case UInt8(ascii: "\""): return string().map { .string($0) }
            case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
            case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
            case UInt8(ascii: "n"): return literal("null") ? .null : nil
            default: return number()
            }
        }

        mutating func countMember() -> Bool {
            members += 1
            return members <= limits.members
        }

        mutating func object(depth: Int) -> JSONValue? {
            position += 1
            var result: [([UInt8], JSONValue)] = []
            skipWhitespace()
            if current == UInt8(ascii: "}") { position += 1; return .object(result) }
            while true {
                skipWhitespace()
                guard countMember(), current == UInt8(ascii: "\""), let key = string() else { return nil }
                guard result.count < limits.objectMembers, !result.contains(where: { $0.0 == key }) else { return nil }
                skipWhitespace()
                guard current == UInt8(ascii: ":") else { return nil }
                position += 1
                guard let value = value(depth: depth + 1) else { return nil }
                result.append((key, value))
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "}"): position += 1; return .object(result)
                default: return nil
                }
            }
        }

        mutating func array(depth: Int) -> JSONValue? {
            position += 1
            var result: [JSONValue] = []
            skipWhitespace()
            if current == UInt8(ascii: "]") { position += 1; return .array(result) }
            while true {
                guard countMember(), let value = value(depth: depth + 1) else { return nil }
                result.append(value)
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "]"): position += 1; return .array(result)
                default: return nil
                }
            }
        }

        mutating func string() -> [UInt8]? {
            position += 1
            var out: [UInt8] = []
            while let char = current {
                position += 1
                switch char {
                case UInt8(ascii: "\""):
                    return out
                case UInt8(ascii: "\\"):
                    guard let escaped = current else { return nil }
                    position += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escaped)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        // Only \u00XX (ASCII control and Latin-1 bytes below 0x80).
                        guard bytes.endIndex - position >= 4, bytes[position] == UInt8(ascii: "0"),
                              bytes[position + 1] == UInt8(ascii: "0"),
                              let high = Hex.nibble(bytes[position + 2]), let low = Hex.nibble(bytes[position + 3]),
                              high < 8 else { return nil }
                        out.append(high << 4 | low)
                        position += 4
                    default: return nil
                    }
                default:
                    guard char >= 0x20 else { return nil }
                    out.append(char)
                }
                guard out.count <= limits.stringBytes else { return nil }
            }
            return nil
        }

        mutating func number() -> JSONValue? {
            let start = position
            if current == UInt8(ascii: "-") { position += 1 }
            var digits = 0
            while let char = current, (char >= UInt8(ascii: "0") && char <= UInt8(ascii: "9")) || char == UInt8(ascii: ".")
                || char == UInt8(ascii: "e") || char == UInt8(ascii: "E") || char == UInt8(ascii: "+") || char == UInt8(ascii: "-") {
                position += 1
                digits += 1
                guard digits <= 32 else { return nil }
            }
            guard digits > 0 else { return nil }
            return .number(Array(bytes[start..<position]))
        }
    }
}

/// Standard base64 (RFC 4648 §4, with padding), as LUKS2 writes salts and digests.
public enum Base64 {
    public static func decode(_ text: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer: UInt32 = 0, bits = 0, padding = 0
        for char in text {
            let value: UInt32
            switch char {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(char - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(char - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(char - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "+"): value = 62
            case UInt8(ascii: "/"): value = 63
            case UInt8(ascii: "="):
                padding += 1
                continue
            default: return nil
            }
            guard padding == 0 else { return nil }
            buffer = buffer << 6 | value
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        guard text.count % 4 == 0, padding <= 2 else { return nil }
        return out
    }
}
