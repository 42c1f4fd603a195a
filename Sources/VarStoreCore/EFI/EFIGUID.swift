/// An EFI_GUID.
///
/// On the wire (UEFI spec, Appendix A) Data1, Data2 and Data3 are little-endian and Data4 is
/// eight raw bytes; the canonical text form prints Data1–Data3 as numbers, so the first eight
/// wire bytes appear byte-swapped in text. The value is kept as its 16 wire bytes in two words,
/// which makes hashing and comparison cheap.
public struct EFIGUID: Hashable, Sendable {
    /// Wire bytes 0–7 and 8–15, each read little-endian.
    public let low: UInt64
    public let high: UInt64

    public init(_ data1: UInt32, _ data2: UInt16, _ data3: UInt16,
                _ d0: UInt8, _ d1: UInt8, _ d2: UInt8, _ d3: UInt8,
                _ d4: UInt8, _ d5: UInt8, _ d6: UInt8, _ d7: UInt8) {
        low = UInt64(data1) | UInt64(data2) << 32 | UInt64(data3) << 48
        var h: UInt64 = 0
        for (index, byte) in [d0, d1, d2, d3, d4, d5, d6, d7].enumerated() {
            h |= UInt64(byte) << (8 * UInt64(index))
        }
        high = h
    }

    /// Reads 16 wire bytes at `offset`; nil if they are not all inside `bytes`.
    public init?(wire bytes: borrowing [UInt8], at offset: Int) {  // borrowed: an init would take it +1
        guard let low = LittleEndian.load(UInt64.self, from: bytes, at: offset),
              let high = LittleEndian.load(UInt64.self, from: bytes, at: offset &+ 8) else { return nil }
        self.low = low
        self.high = high
    }

    public init(low: UInt64, high: UInt64) {
        self.low = low
        self.high = high
    }

    /// The 16 wire bytes.
    public var wireBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        LittleEndian.append(low, to: &out)
        LittleEndian.append(high, to: &out)
        return out
    }

    @discardableResult
    public func store(into bytes: inout [UInt8], at offset: Int) -> Bool {
        guard offset >= 0, bytes.count - offset >= 16 else { return false }
        return LittleEndian.store(low, into: &bytes, at: offset)
            && LittleEndian.store(high, into: &bytes, at: offset + 8)
    }

    public var data1: UInt32 { UInt32(truncatingIfNeeded: low) }
    public var data2: UInt16 { UInt16(truncatingIfNeeded: low >> 32) }
    public var data3: UInt16 { UInt16(truncatingIfNeeded: low >> 48) }
    public var data4: [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: high >> (8 * UInt64($0))) } }

    /// Parses the canonical form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (either case).
    public init?(text: String) {
        let utf8 = Array(text.utf8)
        guard utf8.count == 36 else { return nil }
        var nibbles: [UInt8] = []
        for (index, char) in utf8.enumerated() {
            if index == 8 || index == 13 || index == 18 || index == 23 {
                guard char == UInt8(ascii: "-") else { return nil }
                continue
            }
            guard let nibble = Hex.nibble(char) else { return nil }
            nibbles.append(nibble)
        }
        func number(_ from: Int, _ count: Int) -> UInt64 {
            var value: UInt64 = 0
            for i in from ..< from + count { value = value << 4 | UInt64(nibbles[i]) }
            return value
        }
        func byte(_ index: Int) -> UInt8 { UInt8(number(16 + 2 * index, 2)) }
        self.init(UInt32(number(0, 8)), UInt16(number(8, 4)), UInt16(number(12, 4)),
                  byte(0), byte(1), byte(2), byte(3), byte(4), byte(5), byte(6), byte(7))
    }

    /// Canonical lowercase text, as QEMU's JSON store and the UEFI spec print it.
    public var text: String {
        var out = ""
        out += Hex.string(UInt64(data1), digits: 8) + "-"
        out += Hex.string(UInt64(data2), digits: 4) + "-"
        out += Hex.string(UInt64(data3), digits: 4) + "-"
        let d4 = data4
        out += Hex.string(d4[0...1]) + "-" + Hex.string(d4[2...7])
        return out
    }
}

extension EFIGUID {
    /// EFI_GLOBAL_VARIABLE (UEFI 2.10 §3.3).
    public static let globalVariable = EFIGUID(0x8be4df61, 0x93ca, 0x11d2, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c)
    /// EFI_IMAGE_SECURITY_DATABASE_GUID: db, dbx, dbt.
    public static let imageSecurityDatabase = EFIGUID(0xd719b2cb, 0x3d3a, 0x4596, 0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f)
    /// EFI_HARDWARE_ERROR_VARIABLE: HwErrRec####.
    public static let hardwareErrorVariable = EFIGUID(0x414e6bdd, 0xe47b, 0x47cc, 0xb2, 0x44, 0xbb, 0x61, 0x02, 0x0c, 0xf5, 0x16)

    /// gEfiSmmVariableProtocolGuid: MM messages for the variable service.
    public static let smmVariableProtocol = EFIGUID(0xed32d533, 0x99e6, 0x4209, 0x9c, 0xc0, 0x2d, 0x72, 0xcd, 0xd9, 0x98, 0xa7)
    /// gVarCheckPolicyLibMmiHandlerGuid: MM messages for the variable policy engine.
    public static let varCheckPolicyHandler = EFIGUID(0xda1b0d11, 0xd1a7, 0x46c4, 0x9d, 0xc9, 0xf3, 0x71, 0x48, 0x75, 0xc6, 0xeb)
    /// gEfiEndOfDxeEventGroupGuid, forwarded to MM by VirtMmCommunicationDxe.
    public static let endOfDxeEvent = EFIGUID(0x02ce967a, 0xdd7e, 0x4ffc, 0x9e, 0xe7, 0x81, 0x0c, 0xf0, 0x47, 0x08, 0x80)
    /// gEfiEventReadyToBootGuid.
    public static let readyToBootEvent = EFIGUID(0x7ce88fb3, 0x4bd7, 0x4679, 0x87, 0xa8, 0xa8, 0xd8, 0xde, 0xe5, 0x0d, 0x2b)
    /// gEfiEventExitBootServicesGuid.
    public static let exitBootServicesEvent = EFIGUID(0x27abf055, 0xb1b8, 0x4c26, 0x80, 0x48, 0x74, 0x8f, 0x37, 0xba, 0xa2, 0xdf)
}

/// Hex digits for GUID text and diagnostics.
public enum Hex {
    public static func nibble(_ char: UInt8) -> UInt8? {
        switch char {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return char - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return char - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return char - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Contiguous hex digits (either case) as bytes; nil for an odd count or any other
    /// character (no sign, no prefix, no spaces).
    public static func bytes(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        var index = 0
        while index < chars.count {
            guard let high = nibble(chars[index]), let low = nibble(chars[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    /// `value` as exactly `digits` lowercase hex digits.
    public static func string(_ value: UInt64, digits count: Int) -> String {
        var chars: [UInt8] = []
        var shift = 4 * (count - 1)
        while shift >= 0 {
            chars.append(digits[Int((value >> UInt64(shift)) & 0xF)])
            shift -= 4
        }
        return String(decoding: chars, as: UTF8.self)
    }

    /// Bytes as contiguous lowercase hex.
    public static func string<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var chars: [UInt8] = []
        chars.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            chars.append(digits[Int(byte >> 4)])
            chars.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: chars, as: UTF8.self)
    }
}
