/// The LUKS2 on-disk header (cryptsetup's LUKS2 format, "LUKS2 On-Disk Format Specification"),
/// read by the core without libcryptsetup. The host writes it, so it is hostile input: the
/// reader checks the binary header's checksum, parses a bounded subset of the JSON area, and
/// uses nothing from it beyond locating the data segment and checking the volume key.
///
/// Binary header (4096 bytes, big-endian fields), at 0 (primary) and at hdr_size (secondary):
///
///     offset  size  field
///     0       6     magic "LUKS\xba\xbe" (primary) or "SKUL\xba\xbe" (secondary)
///     6       2     version = 2
///     8       8     hdr_size: binary header + JSON area
///     16      8     seqid
///     24      48    label
///     72      32    checksum_alg ("sha256")
///     104     64    salt
///     168     40    uuid (text)
///     208     48    subsystem
///     256     8     hdr_offset
///     448     64    csum: checksum_alg over hdr_size bytes with this field zeroed
///
/// The JSON area follows up to hdr_size. We read `segments."0"` (type crypt, aes-xts-plain64,
/// 512-byte sectors, iv_tweak 0, offset, size) and the pbkdf2 digest that covers segment 0.
public struct LUKS2Header: Equatable, Sendable {
    public static let binarySize = 4096
    /// hdr_size values the format allows.
    public static let allowedHeaderSizes: [UInt64] = [0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000,
                                                      0x100000, 0x200000, 0x400000]
    public static let primaryMagic: [UInt8] = [0x4C, 0x55, 0x4B, 0x53, 0xBA, 0xBE]
    public static let secondaryMagic: [UInt8] = [0x53, 0x4B, 0x55, 0x4C, 0xBA, 0xBE]
    /// An attacker chooses the PBKDF2 iteration count; more than this is refused rather than
    /// spent (cryptsetup's own digests use far fewer).
    public static let maximumDigestIterations: UInt64 = 10_000_000
    public static let maximumKeyslotsTried = 8

    public struct Digest: Equatable, Sendable {
        public var hash: DigestAlgorithm
        public var iterations: UInt32
        public var salt: [UInt8]
        public var value: [UInt8]

        /// What one check of a candidate volume key costs (KeyDerivationWork).
        public var work: UInt64 { KeyDerivationWork.pbkdf2(hash, iterations: UInt64(iterations), outputBytes: value.count) }
    }

    /// The UUID text (up to 40 ASCII bytes), which keys derived for the store are bound to.
    public var uuid: [UInt8]
    public var sequenceID: UInt64
    public var headerSize: UInt64
    /// Where the encrypted data segment starts and how long it is, in bytes.
    public var segmentOffset: UInt64
    public var segmentSize: UInt64
    public var sectorSize: Int
    public var digest: Digest
    /// The PBKDF2 keyslots the core can open (LUKS2Keyslot.swift).
    public var keyslots: [LUKS2Keyslot]
    /// What checking a candidate key costs at worst: the dearest of the header's digests
    /// (KeyDerivationWork), since libcryptsetup checks a slot against the digest assigned to
    /// it, which need not be segment 0's. nil if one cannot be priced. For hosts that open
    /// keyslots with libcryptsetup (LUKS2Image).
    public var declaredDigestWork: UInt64?

    /// Reads and checks the headers of `flash`: the primary, else a secondary; if both are
    /// intact, the one with the higher seqid.
    public static func read<F: Flash, C: StorageCrypto>(from flash: inout F, crypto: C) throws(StorageError) -> LUKS2Header {
        var candidates: [LUKS2Header] = []
        var firstProblem: StorageError?
        func consider(_ result: Result<LUKS2Header, StorageError>?) {
            switch result {
            case .success(let header)?: candidates.append(header)
            case .failure(let problem)?: if firstProblem == nil || firstProblem == .notLUKS2 { firstProblem = problem }
            case nil: break
            }
        }
        consider(parse(&flash, at: 0, magic: primaryMagic, crypto: crypto))
        for size in allowedHeaderSizes { consider(parse(&flash, at: size, magic: secondaryMagic, crypto: crypto)) }
        guard let best = candidates.max(by: { $0.sequenceID < $1.sequenceID }) else {
            throw firstProblem ?? .notLUKS2
        }
        return best
    }

    /// nil when there is no header with `magic` at `offset` at all.
    static func parse<F: Flash, C: StorageCrypto>(_ flash: inout F, at offset: UInt64, magic: [UInt8],
                                                 crypto: C) -> Result<LUKS2Header, StorageError>? {
        guard flash.contains(offset: offset, count: binarySize),
              let binary = try? flash.read(at: offset, count: binarySize),
              Array(binary[0..<6]) == magic else { return nil }
        // The binary header (LUKS2 on-disk format §2.1): magic, version u16 BE, hdr_size u64
        // BE, seqid u64 BE, … hdr_offset u64 BE at 256.
        guard let version = bigEndian(binary, 6, 2), version == 2 else {
            return .failure(.unsupportedHeader("a version other than 2"))
        }
        guard let headerSize = bigEndian(binary, 8, 8), allowedHeaderSizes.contains(headerSize), flash.contains(offset: offset, count: Int(headerSize)) else {
            return .failure(.notLUKS2)
        }
        guard Array(binary[72..<104]).prefix(while: { $0 != 0 }).elementsEqual("sha256".utf8) else {
            return .failure(.unsupportedHeader("header checksum algorithm"))
        }
        guard var area = try? flash.read(at: offset, count: Int(headerSize)) else { return .failure(.notLUKS2) }
        let stored = Array(area[448..<480])
        for index in 448..<512 { area[index] = 0 }
        guard crypto.sha256(area) == stored else { return .failure(.notLUKS2) }
        // A secondary header says where it is; a mismatch means it was copied elsewhere.
        guard let recordedOffset = bigEndian(binary, 256, 8), recordedOffset == offset else { return .failure(.notLUKS2) }
        do {
            return .success(try metadata(area[binarySize...], binary: binary, headerSize: headerSize, flashSize: flash.size))
        } catch {
            return .failure(error)
        }
    }

    /// A big-endian field of the binary header, through the bounded reader.
    static func bigEndian(_ bytes: [UInt8], _ offset: Int, _ count: Int) -> UInt64? {
        var reader = ByteReader(bytes, start: offset)
        return reader.readBigEndian(count)
    }

    static func metadata(_ json: ArraySlice<UInt8>, binary: [UInt8], headerSize: UInt64,
                         flashSize: UInt64) throws(StorageError) -> LUKS2Header {
        guard let root = JSONReader.parse(json) else { throw .malformedMetadata("JSON area does not parse") }
        try checkRequirements(root["config"]?["requirements"])
        guard case .object(let segments)? = root["segments"] else { throw .malformedMetadata("segments") }
        guard segments.count == 1, let segment = root["segments"]?["0"] else {
            throw .unsupportedHeader("exactly one data segment, numbered 0")
        }
        guard segment["type"]?.isString("crypt") == true else { throw .unsupportedHeader("segment type") }
        guard segment["encryption"]?.isString("aes-xts-plain64") == true else { throw .unsupportedHeader("segment cipher") }
        guard segment["sector_size"]?.unsigned == 512 else { throw .unsupportedHeader("segment sector size (512 only)") }
        guard segment["iv_tweak"]?.unsigned == 0 else { throw .unsupportedHeader("segment iv_tweak") }
        if segment["integrity"] != nil { throw .unsupportedHeader("segment integrity") }
        guard let offset = segment["offset"]?.unsigned, offset % 512 == 0, offset >= 2 * headerSize,
              offset < flashSize else { throw .malformedMetadata("segments.0.offset") }
        let size: UInt64
        if segment["size"]?.isString("dynamic") == true {
            size = flashSize - offset
        } else {
            guard let fixed = segment["size"]?.unsigned, fixed <= flashSize - offset else {
                throw .malformedMetadata("segments.0.size")
            }
            size = fixed
        }
        guard size >= 512, size % 512 == 0 else { throw .malformedMetadata("segments.0.size") }

        guard case .object(let digests)? = root["digests"] else { throw .malformedMetadata("digests") }
        var found: Digest?
        for (_, digest) in digests {
            guard case .array(let covered)? = digest["segments"], covered.contains(where: { $0.isString("0") }) else { continue }
            guard digest["type"]?.isString("pbkdf2") == true else { throw .unsupportedHeader("digest type") }
            let hash: DigestAlgorithm
            if digest["hash"]?.isString("sha256") == true { hash = .sha256 }
            else if digest["hash"]?.isString("sha512") == true { hash = .sha512 }
            else { throw .unsupportedHeader("digest hash") }
            guard let iterations = digest["iterations"]?.unsigned, iterations >= 1,
                  iterations <= maximumDigestIterations else { throw .malformedMetadata("digest iterations") }
            guard let saltText = digest["salt"]?.bytes, let salt = Base64.decode(saltText), !salt.isEmpty,
                  let valueText = digest["digest"]?.bytes, let value = Base64.decode(valueText),
                  value.count >= 16, value.count <= 64 else { throw .malformedMetadata("digest salt or value") }
            found = Digest(hash: hash, iterations: UInt32(iterations), salt: salt, value: value)
            break
        }
        guard let digest = found else { throw .malformedMetadata("no digest covers segment 0") }
        // Every open checks a key against the digest at least once, a volume key given
        // directly included: a digest dearer than one open may spend makes the image unusable.
        guard digest.work <= KeyDerivationWork.maximumPerOpen else { throw .keyDerivationTooCostly }
        var declaredDigestWork: UInt64? = 0
        for (_, other) in digests {
            guard let total = declaredDigestWork else { break }
            if other["type"]?.isString("pbkdf2") == true, let hash = LUKS2Keyslot.hash(other["hash"]),
               let iterations = other["iterations"]?.unsigned, let valueText = other["digest"]?.bytes,
               let value = Base64.decode(valueText) {
                let work = KeyDerivationWork.pbkdf2(hash, iterations: iterations, outputBytes: value.count)
                declaredDigestWork = max(total, work)
            } else {
                declaredDigestWork = nil
            }
        }
        let uuid = Array(binary[168..<208].prefix(while: { $0 != 0 }))
        guard let sequenceID = bigEndian(binary, 16, 8) else { throw .notLUKS2 }
        return LUKS2Header(uuid: uuid, sequenceID: sequenceID, headerSize: headerSize,
                           segmentOffset: offset, segmentSize: size, sectorSize: 512, digest: digest,
                           keyslots: LUKS2Keyslot.keyslots(root, headerSize: headerSize, flashSize: flashSize),
                           declaredDigestWork: declaredDigestWork)
    }

    /// `config.requirements` lists features a reader must know (LUKS2 on-disk format §3.3,
    /// "mandatory"). We know none, so any named one refuses the header; cryptsetup's online
    /// reencryption (`online-reencrypt`, `online-reencrypt-v2`, …) gets its own error, since it
    /// leaves the segment half under each volume key until it is finished. An absent or empty
    /// list — what a finished reencryption leaves — is accepted.
    static func checkRequirements(_ requirements: JSONValue?) throws(StorageError) {
        guard let requirements else { return }
        switch requirements {
        case .array(let features) where features.isEmpty:
            return
        case .object(let members):
            var named = false
            for (_, value) in members {
                guard case .array(let features) = value else {
                    throw .unsupportedHeader("config.requirements (an unfinished reencryption or a newer feature)")
                }
                for feature in features {
                    if let name = feature.bytes, name.starts(with: "online-reencrypt".utf8) { throw .reencryptionInProgress }
                    named = true
                }
            }
            if !named { return }
        default:
            break
        }
        throw .unsupportedHeader("config.requirements (an unfinished reencryption or a newer feature)")
    }

    /// The volume key from the first PBKDF2 keyslot `secret` opens.
    ///
    /// Slots are tried cheapest first, at most `maximumKeyslotsTried` of them, and only while
    /// the work spent so far, the slot's own derivation, its digest check and the digest check
    /// the segment makes when it opens (EncryptedSegment) stay within
    /// `KeyDerivationWork.maximumPerOpen`: a slot past that ends the search with
    /// `keyDerivationTooCostly` (the secret may belong to it), a search that tried every slot
    /// with `wrongKey`. Cheapest first so that a hostile header's dear slots cannot use up the
    /// budget before the key-file slot a legitimate image has.
    public func unlock<F: Flash, C: StorageCrypto>(secret: [UInt8], flash: inout F,
                                                  crypto: C) throws(StorageError) -> SecretBytes {
        // Each is at most 10^7 iterations times 2 blocks times 2 (the parsers' caps): no sum below
        // overflows.
        let check = digest.work
        var spent: UInt64 = 0
        for slot in keyslots.sorted(by: { $0.work < $1.work }).prefix(Self.maximumKeyslotsTried) {
            let cost = slot.work + check
            guard spent + cost + check <= KeyDerivationWork.maximumPerOpen else { throw .keyDerivationTooCostly }
            spent += cost
            if let key = slot.unlock(secret, header: self, flash: &flash, crypto: crypto) { return key }
        }
        throw .wrongKey
    }

    /// Whether `volumeKey` is the key this header's digest describes (PBKDF2 of the key with
    /// the digest's salt and iterations), compared in constant time.
    public func accepts<C: StorageCrypto>(volumeKey: [UInt8], crypto: C) -> Bool {
        guard volumeKey.count == 32 || volumeKey.count == 64,
              let derived = crypto.pbkdf2(digest.hash, password: volumeKey, salt: digest.salt,
                                          iterations: digest.iterations, count: digest.value.count) else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(derived, digest.value) { difference |= a ^ b }
        return difference == 0 && derived.count == digest.value.count
    }
}
