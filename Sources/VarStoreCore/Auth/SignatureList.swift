/// EFI_SIGNATURE_LIST (UEFI 2.10 §32.4.1): the value of PK, KEK, db, dbx, dbt and dbr is a
/// sequence of these lists, back to back.
///
///     offset                 size                 field
///     0                      16                   SignatureType
///     16                     4                    SignatureListSize (the whole list)
///     20                     4                    SignatureHeaderSize
///     24                     4                    SignatureSize (each entry)
///     28                     SignatureHeaderSize  SignatureHeader
///     28 + HeaderSize        N × SignatureSize    entries: SignatureOwner GUID ‖ SignatureData
///
/// Invariant of a parsed list: 28 + headerSize + entries × signatureSize == listSize, and
/// every entry is exactly `signatureSize` bytes.
public struct SignatureList: Equatable {
    public static let headerSize = 28

    public let signatureType: EFIGUID
    public let signatureHeader: [UInt8]
    public let signatureSize: UInt32
    /// Each EFI_SIGNATURE_DATA: owner GUID (16 bytes) followed by the data.
    public var entries: [ArraySlice<UInt8>]

    /// The list encoded, with SignatureListSize recomputed.
    public var bytes: [UInt8] {
        var out: [UInt8] = signatureType.wireBytes
        let size = Self.headerSize + signatureHeader.count + entries.count * Int(signatureSize)
        LittleEndian.append(UInt32(truncatingIfNeeded: size), to: &out)
        LittleEndian.append(UInt32(truncatingIfNeeded: signatureHeader.count), to: &out)
        LittleEndian.append(signatureSize, to: &out)
        out += signatureHeader
        for entry in entries { out += entry }
        return out
    }

    /// Splits `data` into lists. Every list must have a whole header, a size that is at least
    /// the header and stays inside the data, a non-zero SignatureSize and a body that is a
    /// whole number of entries; the lists must cover the data exactly. nil otherwise.
    /// This is only the shape: `SecureBootDatabase.validate` adds the per-type rules.
    public static func parse(_ data: ArraySlice<UInt8>) -> [SignatureList]? {
        let bytes = Array(data)
        var lists: [SignatureList] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= headerSize,
                  let type = EFIGUID(wire: bytes, at: offset),
                  let listSize = LittleEndian.load(UInt32.self, from: bytes, at: offset + 16),
                  let headerSize = LittleEndian.load(UInt32.self, from: bytes, at: offset + 20),
                  let signatureSize = LittleEndian.load(UInt32.self, from: bytes, at: offset + 24) else { return nil }
            let remaining = UInt64(bytes.count - offset)
            guard UInt64(listSize) >= UInt64(Self.headerSize), UInt64(listSize) <= remaining,
                  UInt64(headerSize) <= UInt64(listSize) - UInt64(Self.headerSize),
                  signatureSize >= 16 else { return nil }
            let body = UInt64(listSize) - UInt64(Self.headerSize) - UInt64(headerSize)
            guard body % UInt64(signatureSize) == 0 else { return nil }
            let headerStart = offset + Self.headerSize
            let entriesStart = headerStart + Int(headerSize)
            var entries: [ArraySlice<UInt8>] = []
            var entry = entriesStart
            let end = offset + Int(listSize)
            while entry < end {
                entries.append(bytes[entry..<(entry + Int(signatureSize))])
                entry += Int(signatureSize)
            }
            lists.append(SignatureList(signatureType: type, signatureHeader: Array(bytes[headerStart..<entriesStart]),
                                       signatureSize: signatureSize, entries: entries))
            offset = end
        }
        return lists
    }

    public static func encode(_ lists: [SignatureList]) -> [UInt8] {
        var out: [UInt8] = []
        for list in lists { out += list.bytes }
        return out
    }
}

/// The signature types a Secure Boot database may hold and the SignatureSize each requires
/// (edk2 AuthService.c mSupportSigItem; the UEFI spec's EFI_CERT_* table). nil = any size
/// (X.509: owner + DER certificate).
public enum SignatureType {
    public static let sha256 = EFIGUID(0xc1c41626, 0x504c, 0x4092, 0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28)
    public static let rsa2048 = EFIGUID(0x3c5766e8, 0x269c, 0x4e34, 0xaa, 0x14, 0xed, 0x77, 0x6e, 0x85, 0xb3, 0xb6)
    public static let rsa2048SHA256 = EFIGUID(0xe2b36190, 0x879b, 0x4a3d, 0xad, 0x8d, 0xf2, 0xe7, 0xbb, 0xa3, 0x27, 0x84)
    public static let sha1 = EFIGUID(0x826ca512, 0xcf10, 0x4ac9, 0xb1, 0x87, 0xbe, 0x01, 0x49, 0x66, 0x31, 0xbd)
    public static let rsa2048SHA1 = EFIGUID(0x67f8444f, 0x8743, 0x48f1, 0xa3, 0x28, 0x1e, 0xaa, 0xb8, 0x73, 0x60, 0x80)
    public static let x509 = EFIGUID(0xa5c059a1, 0x94e4, 0x4aa7, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72)
    public static let sha224 = EFIGUID(0x0b6e5233, 0xa65c, 0x44c9, 0x94, 0x07, 0xd9, 0xab, 0x83, 0xbf, 0xc8, 0xbd)
    public static let sha384 = EFIGUID(0xff3e5307, 0x9fd0, 0x48c9, 0x85, 0xf1, 0x8a, 0xd5, 0x6c, 0x70, 0x1e, 0x01)
    public static let sha512 = EFIGUID(0x093e0fae, 0xa6c4, 0x4f50, 0x9f, 0x1b, 0xd4, 0x1e, 0x2b, 0x89, 0xc1, 0x9a)
    public static let x509SHA256 = EFIGUID(0x3bd2a492, 0x96c0, 0x4079, 0xb4, 0x20, 0xfc, 0xf9, 0x8e, 0xf1, 0x03, 0xed)
    public static let x509SHA384 = EFIGUID(0x7076876e, 0x80c2, 0x4ee6, 0xaa, 0xd2, 0x28, 0xb3, 0x49, 0xa6, 0x86, 0x5b)
    public static let x509SHA512 = EFIGUID(0x446dbf63, 0x2502, 0x4cda, 0xbc, 0xfa, 0x24, 0x65, 0xd2, 0xb0, 0xfe, 0x9d)

    /// Required SignatureSize (owner GUID included) for a supported type; `.some(nil)` for
    /// X.509, whose size varies; nil for a type the databases do not accept.
    public static func requiredSize(_ type: EFIGUID) -> UInt32?? {
        switch type {
        case sha256: return .some(48)
        case rsa2048, rsa2048SHA256, rsa2048SHA1: return .some(16 + 256)
        case sha1: return .some(16 + 20)
        case x509: return .some(nil)
        case sha224: return .some(16 + 28)
        case sha384: return .some(16 + 48)
        case sha512: return .some(16 + 64)
        // Hash of a TBSCertificate followed by an EFI_TIME of revocation.
        case x509SHA256: return .some(16 + 32 + 16)
        case x509SHA384: return .some(16 + 48 + 16)
        case x509SHA512: return .some(16 + 64 + 16)
        default: return nil
        }
    }
}
