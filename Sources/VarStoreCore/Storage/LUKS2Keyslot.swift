/// A LUKS2 PBKDF2 keyslot, opened by the core without libcryptsetup: an SVSM that is given a
/// keyslot secret (rather than the volume key) recovers the volume key with it.
///
/// The keyslot's JSON names a PBKDF2 (hash, iterations, salt), an anti-forensic split ("luks1",
/// 4000 stripes, a hash) and an area of the image holding the split key encrypted with
/// aes-xts-plain64 under the PBKDF2 output. Opening: derive the area key, decrypt the area
/// (tweak = sector number within the area), merge the stripes, and check the result against
/// the segment's digest — only a key that passes that check is ever returned.
/// Argon2 keyslots (administrators' recovery slots) are for cryptsetup, not for the core.
public struct LUKS2Keyslot: Equatable, Sendable {
    public var kdfHash: DigestAlgorithm
    public var iterations: UInt32
    public var salt: [UInt8]
    public var keyBytes: Int
    public var stripes: Int
    public var stripeHash: DigestAlgorithm
    public var areaOffset: UInt64
    public var areaBytes: UInt64

    /// Keyslot PBKDF2 iterations above this are refused rather than spent (cryptsetup's own
    /// benchmarked passphrase slots stay well below it).
    public static let maximumIterations: UInt64 = 10_000_000

    /// What deriving this slot's area key costs (KeyDerivationWork): the iterations once per
    /// output block.
    public var work: UInt64 { KeyDerivationWork.pbkdf2(kdfHash, iterations: UInt64(iterations), outputBytes: keyBytes) }

    /// The PBKDF2 keyslots of a header's JSON that this reader can open.
    static func keyslots(_ root: JSONValue, headerSize: UInt64, flashSize: UInt64) -> [LUKS2Keyslot] {
        guard case .object(let slots)? = root["keyslots"] else { return [] }
        var result: [LUKS2Keyslot] = []
        for (_, slot) in slots {
            guard slot["type"]?.isString("luks2") == true, let kdf = slot["kdf"], kdf["type"]?.isString("pbkdf2") == true,
                  let kdfHash = hash(kdf["hash"]), let iterations = kdf["iterations"]?.unsigned,
                  iterations >= 1, iterations <= maximumIterations,
                  let saltText = kdf["salt"]?.bytes, let salt = Base64.decode(saltText), !salt.isEmpty,
                  let keyBytes = slot["key_size"]?.unsigned, keyBytes == 32 || keyBytes == 64,
                  let af = slot["af"], af["type"]?.isString("luks1") == true,
                  let stripes = af["stripes"]?.unsigned, stripes >= 1, stripes <= 4000,
                  let stripeHash = hash(af["hash"]),
                  let area = slot["area"], area["type"]?.isString("raw") == true,
                  area["encryption"]?.isString("aes-xts-plain64") == true, area["key_size"]?.unsigned == keyBytes,
                  let offset = area["offset"]?.unsigned, let size = area["size"]?.unsigned,
                  offset % 512 == 0, offset >= 2 * headerSize, offset <= flashSize, size <= flashSize - offset,
                  keyBytes * stripes <= size else { continue }
            result.append(LUKS2Keyslot(kdfHash: kdfHash, iterations: UInt32(iterations), salt: salt, keyBytes: Int(keyBytes),
                                       stripes: Int(stripes), stripeHash: stripeHash, areaOffset: offset, areaBytes: size))
        }
        return result
    }

    static func hash(_ value: JSONValue?) -> DigestAlgorithm? {
        if value?.isString("sha256") == true { return .sha256 }
        if value?.isString("sha512") == true { return .sha512 }
        return nil
    }

    /// The volume key this slot holds for `secret`, if the result passes the header's digest.
    /// The area key and the decrypted stripes are as secret as the volume key (the stripes
    /// merge into it), so they are wiped before returning.
    public func unlock<F: Flash, C: StorageCrypto>(_ secret: [UInt8], header: LUKS2Header, flash: inout F,
                                                  crypto: C) -> SecretBytes? {
        guard let derived = crypto.pbkdf2(kdfHash, password: secret, salt: salt, iterations: iterations, count: keyBytes) else {
            return nil
        }
        let areaKey = SecretBytes(derived)
        let materialBytes = keyBytes * stripes
        let sectors = (materialBytes + 511) / 512
        guard let encrypted = try? flash.read(at: areaOffset, count: sectors * 512) else { return nil }
        var plainMaterial: [UInt8] = []
        plainMaterial.reserveCapacity(sectors * 512)
        for sector in 0 ..< sectors {
            guard var plain = crypto.aesXTS(encrypt: false, key: areaKey.bytes, sector: UInt64(sector),
                                            data: Array(encrypted[sector * 512 ..< (sector + 1) * 512])) else {
                SecretBytes.zero(&plainMaterial)
                return nil
            }
            plainMaterial += plain
            SecretBytes.zero(&plain)
        }
        let material = SecretBytes(plainMaterial)
        let key = SecretBytes(Self.merge(material.bytes, keyBytes: keyBytes, stripes: stripes, hash: stripeHash, crypto: crypto))
        return header.accepts(volumeKey: key.bytes, crypto: crypto) ? key : nil
    }

    /// The LUKS anti-forensic merge: XOR each stripe into a buffer, diffusing it with the hash
    /// after every stripe but the last. Each superseded buffer is wiped: the last ones are
    /// nearly the key.
    static func merge<C: StorageCrypto>(_ material: [UInt8], keyBytes: Int, stripes: Int, hash: DigestAlgorithm,
                                        crypto: C) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: keyBytes)
        for stripe in 0 ..< stripes {
            let start = stripe * keyBytes
            for index in 0 ..< keyBytes { buffer[index] ^= material[start + index] }
            if stripe < stripes - 1 {
                let next = diffuse(buffer, hash: hash, crypto: crypto)
                SecretBytes.zero(&buffer)
                buffer = next
            }
        }
        return buffer
    }

    /// Each digest-sized block (and a short last one) replaced by H(block number, BE u32 ‖ block).
    static func diffuse<C: StorageCrypto>(_ input: [UInt8], hash: DigestAlgorithm, crypto: C) -> [UInt8] {
        let digestBytes = hash == .sha256 ? 32 : 64
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        var block = 0
        while block * digestBytes < input.count {
            let end = min(input.count, (block + 1) * digestBytes)
            let iv: [UInt8] = [UInt8(truncatingIfNeeded: block >> 24), UInt8(truncatingIfNeeded: block >> 16),
                               UInt8(truncatingIfNeeded: block >> 8), UInt8(truncatingIfNeeded: block)]
            let digest = hash == .sha256 ? crypto.sha256(iv + input[(block * digestBytes) ..< end])
                : crypto.sha512(iv + input[(block * digestBytes) ..< end])
            out += digest.prefix(end - block * digestBytes)
            block += 1
        }
        return out
    }
}
