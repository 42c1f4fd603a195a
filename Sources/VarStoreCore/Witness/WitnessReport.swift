/// What the service tells its witness after a commit: the image, the state it committed, the
/// state it last knew the witness to hold, and a MAC under the image's witness key
/// (spec/rollback.md, "The report"). Parse beside serialize: `init(parsing:)` refuses anything
/// `encoded` could not have produced.
public struct WitnessReport: Equatable, Sendable {
    public static let magic: [UInt8] = Array("VSWITN01".utf8)
    public static let version: UInt16 = 1
    public static let byteCount = 164
    public static let uuidBytes = 36
    static let macOffset = 132
    /// The store's own bound on generations (VariableLog.generationLimit).
    public static let generationLimit: UInt64 = 1 << 62

    public struct Flags: OptionSet, Sendable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        /// The commit waits for the witness's answer before it is acknowledged.
        public static let required = Flags(rawValue: 1)
    }

    public var flags: Flags
    /// The LUKS2 UUID text.
    public var uuid: [UInt8]
    public var generation: UInt64
    public var digest: [UInt8]
    /// The anchor: the state the service last knew the witness to hold (0 and zeros: none).
    public var previousGeneration: UInt64
    public var previousDigest: [UInt8]

    /// nil if a field cannot be encoded (a UUID that is not 36 bytes, a digest not 32, a
    /// generation beyond the store's bound).
    public init?(flags: Flags, uuid: [UInt8], generation: UInt64, digest: [UInt8],
                 previousGeneration: UInt64, previousDigest: [UInt8]) {
        guard uuid.count == Self.uuidBytes, digest.count == 32, previousDigest.count == 32,
              generation < Self.generationLimit,
              previousGeneration < Self.generationLimit else { return nil }
        self.flags = flags
        self.uuid = uuid
        self.generation = generation
        self.digest = digest
        self.previousGeneration = previousGeneration
        self.previousDigest = previousDigest
    }

    /// The 132 bytes the MAC covers.
    public var body: [UInt8] {
        var out = Self.magic
        LittleEndian.append(Self.version, to: &out)
        LittleEndian.append(flags.rawValue, to: &out)
        LittleEndian.append(UInt32(0), to: &out)
        out += uuid
        LittleEndian.append(generation, to: &out)
        out += digest
        LittleEndian.append(previousGeneration, to: &out)
        out += previousDigest
        return out
    }

    /// The report as sent: body then HMAC-SHA-256(witness key, body).
    public func encoded<C: StorageCrypto>(key: SecretBytes, crypto: C) -> [UInt8] {
        let body = body
        return body + WitnessKey.hmacSHA256(key: key.bytes, message: body, crypto: crypto)
    }

    /// Parses and authenticates `bytes` under `key`.
    public init<C: StorageCrypto>(parsing bytes: [UInt8], key: [UInt8], crypto: C) throws(WitnessReportError) {
        let unauthenticated = try Self(parsingUnauthenticated: bytes)
        let mac = WitnessKey.hmacSHA256(key: key, message: Array(bytes[0..<Self.macOffset]), crypto: crypto)
        guard WitnessKey.constantTimeEqual(mac, Array(bytes[Self.macOffset...])) else { throw .badMAC }
        self = unauthenticated
    }

    /// The fields, before the MAC is checked (to find the image whose key checks it).
    public init(parsingUnauthenticated bytes: [UInt8]) throws(WitnessReportError) {
        guard bytes.count == Self.byteCount else { throw .malformed("a report is 164 bytes") }
        guard Array(bytes[0..<8]) == Self.magic else { throw .malformed("bad magic") }
        guard LittleEndian.load(UInt16.self, from: bytes, at: 8) == Self.version else { throw .malformed("unknown version") }
        guard let raw = LittleEndian.load(UInt16.self, from: bytes, at: 10), raw & ~Flags.required.rawValue == 0 else {
            throw .malformed("unknown flags")
        }
        guard LittleEndian.load(UInt32.self, from: bytes, at: 12) == 0 else { throw .malformed("reserved field set") }
        let uuid = Array(bytes[16..<52])
        // A LUKS2 UUID is printable ASCII; anything else cannot name an image.
        guard uuid.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw .malformed("bad UUID") }
        guard let generation = LittleEndian.load(UInt64.self, from: bytes, at: 52),
              let previous = LittleEndian.load(UInt64.self, from: bytes, at: 92),
              let report = WitnessReport(flags: Flags(rawValue: raw), uuid: uuid, generation: generation,
                                         digest: Array(bytes[60..<92]), previousGeneration: previous,
                                         previousDigest: Array(bytes[100..<132])) else {
            throw .malformed("generation out of range")
        }
        self = report
    }
}

public enum WitnessReportError: Error, Equatable {
    case malformed(StaticString)
    case badMAC

    public static func == (a: Self, b: Self) -> Bool {
        switch (a, b) {
        case (.badMAC, .badMAC), (.malformed, .malformed): return true
        default: return false
        }
    }
}

/// The image's witness key and the MAC it keys (spec/rollback.md, "Parties and keys").
public enum WitnessKey {
    public static let info: [UInt8] = Array("varstore v1 witness".utf8)

    /// HKDF-SHA-256(volume key, salt = the LUKS2 UUID text, info = `varstore v1 witness`).
    public static func derive<C: StorageCrypto>(volumeKey: [UInt8], uuid: [UInt8], crypto: C) -> SecretBytes {
        SecretBytes(crypto.hkdfSHA256(key: volumeKey, salt: uuid, info: info, count: 32))
    }

    /// HMAC (RFC 2104) over the platform's SHA-256, block size 64.
    public static func hmacSHA256<C: StorageCrypto>(key: [UInt8], message: [UInt8], crypto: C) -> [UInt8] {
        var block = key.count > 64 ? crypto.sha256(key) : key
        block += [UInt8](repeating: 0, count: 64 - block.count)
        var inner = block.map { $0 ^ 0x36 }
        var outer = block.map { $0 ^ 0x5C }
        let innerHash = crypto.sha256(inner + message)
        let mac = crypto.sha256(outer + innerHash)
        SecretBytes.zero(&block)
        SecretBytes.zero(&inner)
        SecretBytes.zero(&outer)
        return mac
    }

    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<a.count { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
