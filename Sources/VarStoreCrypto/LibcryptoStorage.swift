import CLibcrypto
import VarStoreCore

/// StorageCrypto over libcrypto's EVP interfaces.
extension Libcrypto: StorageCrypto {
    public func sha256(_ data: [UInt8]) -> [UInt8] { digest(.sha256, data) }

    /// One digest context over every part, with SHA-256 fetched once per process.
    public func sha256(concatenating parts: [ArraySlice<UInt8>]) -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { return [] }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestInit_ex(context, Self.fetchedSHA256 ?? EVP_sha256(), nil) == 1 else { return [] }
        for part in parts where !part.isEmpty {
            guard part.withUnsafeBufferPointer({ EVP_DigestUpdate(context, $0.baseAddress, $0.count) }) == 1 else { return [] }
        }
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        guard out.withUnsafeMutableBufferPointer({ EVP_DigestFinal_ex(context, $0.baseAddress, &length) }) == 1,
              length == 32 else { return [] }
        return out
    }
    public func sha512(_ data: [UInt8]) -> [UInt8] { digest(.sha512, data) }

    public func hkdfSHA256(key: [UInt8], salt: [UInt8], info: [UInt8], count: Int) -> [UInt8] {
        defer { ERR_clear_error() }
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nil) else { return [] }
        defer { EVP_PKEY_CTX_free(context) }
        var out = [UInt8](repeating: 0, count: count)
        var length = count
        // EVP_PKEY_CTX_set1_hkdf_* are functions in OpenSSL 3 (macros before it).
        let ok = EVP_PKEY_derive_init(context) == 1
            && EVP_PKEY_CTX_set_hkdf_md(context, EVP_sha256()) == 1
            && salt.withUnsafeBufferPointer { EVP_PKEY_CTX_set1_hkdf_salt(context, $0.baseAddress, Int32($0.count)) } == 1
            && key.withUnsafeBufferPointer { EVP_PKEY_CTX_set1_hkdf_key(context, $0.baseAddress, Int32($0.count)) } == 1
            && info.withUnsafeBufferPointer { EVP_PKEY_CTX_add1_hkdf_info(context, $0.baseAddress, Int32($0.count)) } == 1
            && out.withUnsafeMutableBufferPointer { EVP_PKEY_derive(context, $0.baseAddress, &length) } == 1
        return ok && length == count ? out : []
    }

    /// PBKDF2 (RFC 8018 §5.2) with HMAC (RFC 2104) over libcrypto's digests. The HMAC key's
    /// inner and outer pad blocks are hashed once into two digest contexts, and every
    /// iteration continues a copy of each: two compression-function calls an iteration, as
    /// the definition needs, and two context copies. OpenSSL 3's own PKCS5_PBKDF2_HMAC
    /// re-initialises an HMAC context through its provider for every iteration, which cost
    /// more than the hashing (the check of a volume key against the LUKS2 digest is part of
    /// every open). The iteration count is the header's; nothing here changes how much work
    /// the derivation is.
    public func pbkdf2(_ hash: DigestAlgorithm, password: [UInt8], salt: [UInt8], iterations: UInt32, count: Int) -> [UInt8]? {
        guard iterations > 0, iterations <= UInt32(Int32.max), count > 0, count <= 1024, !password.isEmpty,
              password.count < Int(Int32.max), salt.count < Int(Int32.max) else { return nil }
        defer { ERR_clear_error() }
        let digestBytes: Int, blockBytes: Int
        switch hash {
        case .sha256: (digestBytes, blockBytes) = (32, 64)
        case .sha384: (digestBytes, blockBytes) = (48, 128)
        case .sha512: (digestBytes, blockBytes) = (64, 128)
        }
        let md = Self.messageDigest(hash)
        guard let inner = EVP_MD_CTX_new() else { return nil }
        defer { EVP_MD_CTX_free(inner) }
        guard let outer = EVP_MD_CTX_new() else { return nil }
        defer { EVP_MD_CTX_free(outer) }
        guard let work = EVP_MD_CTX_new() else { return nil }
        defer { EVP_MD_CTX_free(work) }

        // The HMAC key: the password, or its digest if it is longer than a block; then the
        // pads, each hashed as the first block of its context.
        var hashedKey = password.count > blockBytes ? digest(hash, password) : []
        defer { SecretBytes.zero(&hashedKey) }
        guard password.count <= blockBytes || hashedKey.count == digestBytes else { return nil }
        var pad = [UInt8](repeating: 0x36, count: blockBytes)
        defer { SecretBytes.zero(&pad) }
        let key = password.count > blockBytes ? hashedKey : password
        for index in 0 ..< key.count { pad[index] ^= key[index] }
        guard EVP_DigestInit_ex(inner, md, nil) == 1, EVP_DigestUpdate(inner, pad, blockBytes) == 1 else { return nil }
        for index in 0 ..< blockBytes { pad[index] ^= 0x36 ^ 0x5C }
        guard EVP_DigestInit_ex(outer, md, nil) == 1, EVP_DigestUpdate(outer, pad, blockBytes) == 1 else { return nil }

        var out = [UInt8](repeating: 0, count: count)
        var u = [UInt8](repeating: 0, count: digestBytes)
        var t = [UInt8](repeating: 0, count: digestBytes)
        defer {
            SecretBytes.zero(&u)
            SecretBytes.zero(&t)
        }
        let ok = u.withUnsafeMutableBufferPointer { uBuffer -> Bool in
            t.withUnsafeMutableBufferPointer { tBuffer -> Bool in
                let u = uBuffer.baseAddress!, t = tBuffer.baseAddress!
                var length: UInt32 = 0
                // HMAC of the message in u (or of `first`), into u.
                func hmac(_ first: () -> Bool) -> Bool {
                    EVP_MD_CTX_copy_ex(work, inner) == 1 && first() && EVP_DigestFinal_ex(work, u, &length) == 1
                        && Int(length) == digestBytes
                        && EVP_MD_CTX_copy_ex(work, outer) == 1 && EVP_DigestUpdate(work, u, digestBytes) == 1
                        && EVP_DigestFinal_ex(work, u, &length) == 1 && Int(length) == digestBytes
                }
                var block: UInt32 = 1
                var produced = 0
                while produced < count {
                    // U1 = PRF(P, S ‖ INT(i)); T = U1 ⊕ … ⊕ Uc.
                    let index: [UInt8] = [UInt8(truncatingIfNeeded: block >> 24), UInt8(truncatingIfNeeded: block >> 16),
                                          UInt8(truncatingIfNeeded: block >> 8), UInt8(truncatingIfNeeded: block)]
                    guard hmac({ (salt.isEmpty || EVP_DigestUpdate(work, salt, salt.count) == 1)
                                 && EVP_DigestUpdate(work, index, 4) == 1 }) else { return false }
                    t.update(from: u, count: digestBytes)
                    var iteration: UInt32 = 1
                    while iteration < iterations {
                        guard hmac({ EVP_DigestUpdate(work, u, digestBytes) == 1 }) else { return false }
                        for byte in 0 ..< digestBytes { t[byte] ^= u[byte] }
                        iteration += 1
                    }
                    let take = min(digestBytes, count - produced)
                    out.withUnsafeMutableBufferPointer { ($0.baseAddress! + produced).update(from: t, count: take) }
                    produced += take
                    block += 1
                }
                return true
            }
        }
        guard ok else {
            SecretBytes.zero(&out)
            return nil
        }
        return out
    }

    public func sealAES256GCM(key: [UInt8], nonce: [UInt8], additionalData: [UInt8], plaintext: [UInt8]) -> [UInt8]? {
        gcm(encrypt: true, key: key, nonce: nonce, additionalData: additionalData, input: plaintext)
    }

    public func openAES256GCM(key: [UInt8], nonce: [UInt8], additionalData: [UInt8], sealed: [UInt8]) -> [UInt8]? {
        gcm(encrypt: false, key: key, nonce: nonce, additionalData: additionalData, input: sealed)
    }

    /// An AES-256-GCM context whose key schedule (and GHASH table) is set up once; each seal or
    /// open then only sets its nonce and direction. EVP_CIPHER_CTX_free cleanses the key
    /// schedule. One caller at a time: the context is state.
    public final class PreparedAES256GCMKey {
        fileprivate let context: OpaquePointer

        fileprivate init?(key: [UInt8]) {
            defer { ERR_clear_error() }
            guard key.count == 32, let context = EVP_CIPHER_CTX_new() else { return nil }
            guard EVP_CipherInit_ex(context, EVP_aes_256_gcm(), nil, key, nil, 1) == 1 else {
                EVP_CIPHER_CTX_free(context)
                return nil
            }
            self.context = context
        }

        deinit { EVP_CIPHER_CTX_free(context) }
    }

    public func prepareAES256GCM(key: [UInt8]) -> PreparedAES256GCMKey? { PreparedAES256GCMKey(key: key) }

    public func sealAES256GCM(prepared key: PreparedAES256GCMKey, nonce: ArraySlice<UInt8>, additionalData: ArraySlice<UInt8>,
                              plaintext: ArraySlice<UInt8>) -> [UInt8]? {
        gcm(encrypt: true, prepared: key, nonce: nonce, additionalData: additionalData, input: plaintext)
    }

    public func openAES256GCM(prepared key: PreparedAES256GCMKey, nonce: ArraySlice<UInt8>, additionalData: ArraySlice<UInt8>,
                              sealed: ArraySlice<UInt8>) -> [UInt8]? {
        gcm(encrypt: false, prepared: key, nonce: nonce, additionalData: additionalData, input: sealed)
    }

    private static func gcmArgumentsUsable(encrypt: Bool, nonceCount: Int, additionalDataCount: Int, inputCount: Int) -> Bool {
        nonceCount == 12 && (encrypt || inputCount >= 16) && inputCount < Int(Int32.max) - 32
            && additionalDataCount < Int(Int32.max)
    }

    /// A fresh context for one seal or open.
    private func gcm(encrypt: Bool, key: [UInt8], nonce: [UInt8], additionalData: [UInt8], input: [UInt8]) -> [UInt8]? {
        defer { ERR_clear_error() }
        guard key.count == 32, Self.gcmArgumentsUsable(encrypt: encrypt, nonceCount: nonce.count,
                                                        additionalDataCount: additionalData.count, inputCount: input.count),
              let context = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(context) }
        let initialise = encrypt ? EVP_EncryptInit_ex : EVP_DecryptInit_ex
        guard initialise(context, EVP_aes_256_gcm(), nil, key, nonce) == 1 else { return nil }
        return additionalData.withUnsafeBufferPointer { aad in
            input.withUnsafeBufferPointer { Self.gcm(encrypt: encrypt, context: context, additionalData: aad, input: $0) }
        }
    }

    /// The prepared context: only the nonce and the direction are set.
    private func gcm(encrypt: Bool, prepared key: PreparedAES256GCMKey, nonce: ArraySlice<UInt8>,
                     additionalData: ArraySlice<UInt8>, input: ArraySlice<UInt8>) -> [UInt8]? {
        // libcrypto queues errors only when a call fails, so the queue is cleared on failure
        // alone: clearing it is a thread-local lookup, and replay opens a header per sector.
        guard Self.gcmArgumentsUsable(encrypt: encrypt, nonceCount: nonce.count, additionalDataCount: additionalData.count,
                                      inputCount: input.count),
              nonce.withUnsafeBufferPointer({ EVP_CipherInit_ex(key.context, nil, nil, nil, $0.baseAddress, encrypt ? 1 : 0) }) == 1,
              let result = additionalData.withUnsafeBufferPointer({ aad in
                  input.withUnsafeBufferPointer { Self.gcm(encrypt: encrypt, context: key.context, additionalData: aad, input: $0) }
              })
        else {
            ERR_clear_error()
            return nil
        }
        return result
    }

    /// One seal or open on `context`, already initialised with the key, nonce and direction.
    private static func gcm(encrypt: Bool, context: OpaquePointer, additionalData: UnsafeBufferPointer<UInt8>,
                            input: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        let bodyCount = encrypt ? input.count : input.count - 16
        // Not zero-filled first: libcrypto writes every byte (the length check below), and a
        // failure wipes what it wrote.
        var out = [UInt8](unsafeUninitializedCapacity: bodyCount + 16) { _, initialized in initialized = bodyCount + 16 }
        var length: Int32 = 0, finalLength: Int32 = 0
        let update = encrypt ? EVP_EncryptUpdate : EVP_DecryptUpdate
        if !additionalData.isEmpty {
            var ignored: Int32 = 0
            guard update(context, nil, &ignored, additionalData.baseAddress, Int32(additionalData.count)) == 1 else { return nil }
        }
        if bodyCount > 0 {
            guard out.withUnsafeMutableBufferPointer({ update(context, $0.baseAddress, &length, input.baseAddress,
                                                               Int32(bodyCount)) }) == 1 else {
                SecretBytes.zero(&out)
                return nil
            }
        }
        // The tag is read from the sealed input where it lies (libcrypto copies it).
        if !encrypt {
            let tag = UnsafeMutableRawPointer(mutating: input.baseAddress! + bodyCount)
            guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 else {
                SecretBytes.zero(&out)
                return nil
            }
        }
        let finish = encrypt ? EVP_EncryptFinal_ex : EVP_DecryptFinal_ex
        let finished = out.withUnsafeMutableBufferPointer { buffer in
            finish(context, buffer.baseAddress! + Int(length), &finalLength)
        }
        guard finished == 1, Int(length) + Int(finalLength) == bodyCount else {
            // A tag that does not authenticate: what was decrypted must not be left behind.
            SecretBytes.zero(&out)
            return nil
        }
        if encrypt {
            // The tag goes where the room for it was left: no copy of the ciphertext.
            let tagged = out.withUnsafeMutableBufferPointer { buffer in
                EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, 16, buffer.baseAddress! + bodyCount)
            }
            guard tagged == 1 else { return nil }
        } else {
            // Trimmed in place: no copy of the plaintext is left in freed memory.
            out.removeLast(16)
        }
        return out
    }

    /// One sector: a run of one, whatever its length (at least 16 bytes, as XTS needs).
    public func aesXTS(encrypt: Bool, key: [UInt8], sector: UInt64, data: [UInt8]) -> [UInt8]? {
        guard data.count >= 16 else { return nil }
        return aesXTS(encrypt: encrypt, key: key, firstSector: sector, sectorBytes: data.count, data: data)
    }

    /// One context for the whole run: the key schedule (and OpenSSL 3's cipher fetch) once,
    /// then only the tweak is set again for each sector.
    public func aesXTS(encrypt: Bool, key: [UInt8], firstSector: UInt64, sectorBytes: Int, data: [UInt8]) -> [UInt8]? {
        defer { ERR_clear_error() }
        guard let cipher = Self.xtsCipher(keyBytes: key.count) else { return nil }
        guard sectorBytes >= 16, sectorBytes < Int(Int32.max), data.count % sectorBytes == 0 else { return nil }
        if data.isEmpty { return [] }
        guard let context = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(context) }
        guard EVP_CipherInit_ex(context, cipher, nil, key, nil, encrypt ? 1 : 0) == 1 else { return nil }
        return Self.xts(context: context, firstSector: firstSector, sectorBytes: sectorBytes, data: data)
    }

    /// aes-xts-plain64 contexts with their key schedules set up once, one per direction (XTS
    /// decrypts with the inverse schedule): every read and write of the segment then only sets
    /// each sector's tweak. EVP_CIPHER_CTX_free cleanses them. One caller at a time.
    public final class PreparedAESXTSKey {
        fileprivate let decryption: OpaquePointer
        fileprivate let encryption: OpaquePointer

        fileprivate init?(key: [UInt8]) {
            defer { ERR_clear_error() }
            guard let cipher = Libcrypto.xtsCipher(keyBytes: key.count) else { return nil }
            guard let decryption = EVP_CIPHER_CTX_new() else { return nil }
            guard let encryption = EVP_CIPHER_CTX_new() else {
                EVP_CIPHER_CTX_free(decryption)
                return nil
            }
            guard EVP_CipherInit_ex(decryption, cipher, nil, key, nil, 0) == 1,
                  EVP_CipherInit_ex(encryption, cipher, nil, key, nil, 1) == 1 else {
                EVP_CIPHER_CTX_free(decryption)
                EVP_CIPHER_CTX_free(encryption)
                return nil
            }
            self.decryption = decryption
            self.encryption = encryption
        }

        deinit {
            EVP_CIPHER_CTX_free(decryption)
            EVP_CIPHER_CTX_free(encryption)
        }
    }

    public func prepareAESXTS(key: [UInt8]) -> PreparedAESXTSKey? { PreparedAESXTSKey(key: key) }

    public func aesXTS(encrypt: Bool, prepared key: PreparedAESXTSKey, firstSector: UInt64, sectorBytes: Int,
                       data: [UInt8]) -> [UInt8]? {
        guard sectorBytes >= 16, sectorBytes < Int(Int32.max), data.count % sectorBytes == 0 else { return nil }
        if data.isEmpty { return [] }
        // As for GCM: the error queue is cleared only after a failure.
        guard let result = Self.xts(context: encrypt ? key.encryption : key.decryption, firstSector: firstSector,
                                    sectorBytes: sectorBytes, data: data) else {
            ERR_clear_error()
            return nil
        }
        return result
    }

    /// AES-128-XTS for a 32-byte key, AES-256-XTS for a 64-byte one.
    static func xtsCipher(keyBytes: Int) -> OpaquePointer? {
        switch keyBytes {
        case 32: return EVP_aes_128_xts()
        case 64: return EVP_aes_256_xts()
        default: return nil
        }
    }

    /// Each sector of `data` through `context` (key and direction set), its tweak the sector
    /// number.
    private static func xts(context: OpaquePointer, firstSector: UInt64, sectorBytes: Int, data: [UInt8]) -> [UInt8]? {
        var iv = [UInt8](repeating: 0, count: 16)
        // Not zero-filled first: every sector's length is checked to be written in full.
        var out = [UInt8](unsafeUninitializedCapacity: data.count + 16) { _, initialized in initialized = data.count + 16 }
        var ok = true
        out.withUnsafeMutableBufferPointer { output in
            data.withUnsafeBufferPointer { input in
                var sector = firstSector
                var index = 0
                while ok && index < data.count {
                    // plain64: the sector number, little-endian, in the first 8 bytes of the IV.
                    for byte in 0..<8 { iv[byte] = UInt8(truncatingIfNeeded: sector >> (8 * UInt64(byte))) }
                    var length: Int32 = 0, finalLength: Int32 = 0
                    ok = EVP_CipherInit_ex(context, nil, nil, nil, iv, -1) == 1
                        && EVP_CipherUpdate(context, output.baseAddress! + index, &length,
                                            input.baseAddress! + index, Int32(sectorBytes)) == 1
                        && EVP_CipherFinal_ex(context, output.baseAddress! + index + Int(length), &finalLength) == 1
                        && Int(length) + Int(finalLength) == sectorBytes
                    index += sectorBytes
                    sector &+= 1
                }
            }
        }
        guard ok else {
            SecretBytes.zero(&out)
            return nil
        }
        // Trimmed in place rather than copied: a decrypted keyslot sector is key material, and
        // a copy would leave the original in freed memory.
        out.removeLast(16)
        return out
    }

    public func randomBytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, count < Int(Int32.max) else { return nil }
        var out = [UInt8](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32($0.count)) }
        ERR_clear_error()
        return ok == 1 ? out : nil
    }
}
