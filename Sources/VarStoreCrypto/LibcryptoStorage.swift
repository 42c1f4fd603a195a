import CLibcrypto
import VarStoreCore

/// StorageCrypto over libcrypto's EVP interfaces.
extension Libcrypto: StorageCrypto {
    public func sha256(_ data: [UInt8]) -> [UInt8] { digest(.sha256, data) }
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

    public func pbkdf2(_ hash: DigestAlgorithm, password: [UInt8], salt: [UInt8], iterations: UInt32, count: Int) -> [UInt8]? {
        guard iterations > 0, iterations <= UInt32(Int32.max), count > 0, count <= 1024, !password.isEmpty,
              password.count < Int(Int32.max), salt.count < Int(Int32.max) else { return nil }
        let md: OpaquePointer?
        switch hash {
        case .sha256: md = EVP_sha256()
        case .sha384: md = EVP_sha384()
        case .sha512: md = EVP_sha512()
        }
        var out = [UInt8](repeating: 0, count: count)
        let ok = password.withUnsafeBufferPointer { pw in
            salt.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBufferPointer { o in
                    UnsafeRawPointer(pw.baseAddress!).withMemoryRebound(to: CChar.self, capacity: pw.count) { chars in
                        PKCS5_PBKDF2_HMAC(chars, Int32(pw.count), s.baseAddress, Int32(s.count), Int32(iterations),
                                          md, Int32(count), o.baseAddress)
                    }
                }
            }
        }
        ERR_clear_error()
        return ok == 1 ? out : nil
    }

    public func sealAES256GCM(key: [UInt8], nonce: [UInt8], additionalData: [UInt8], plaintext: [UInt8]) -> [UInt8]? {
        gcm(encrypt: true, key: key, nonce: nonce, additionalData: additionalData, input: plaintext)
    }

    public func openAES256GCM(key: [UInt8], nonce: [UInt8], additionalData: [UInt8], sealed: [UInt8]) -> [UInt8]? {
        gcm(encrypt: false, key: key, nonce: nonce, additionalData: additionalData, input: sealed)
    }

    private func gcm(encrypt: Bool, key: [UInt8], nonce: [UInt8], additionalData: [UInt8], input: [UInt8]) -> [UInt8]? {
        defer { ERR_clear_error() }
        guard key.count == 32, nonce.count == 12, encrypt || input.count >= 16,
              input.count < Int(Int32.max) - 32, additionalData.count < Int(Int32.max),
              let context = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(context) }
        let body = encrypt ? input : Array(input.dropLast(16))
        var tag = encrypt ? [UInt8](repeating: 0, count: 16) : Array(input.suffix(16))
        var out = [UInt8](repeating: 0, count: body.count + 16)
        var length: Int32 = 0, finalLength: Int32 = 0
        let initialise = encrypt ? EVP_EncryptInit_ex : EVP_DecryptInit_ex
        guard initialise(context, EVP_aes_256_gcm(), nil, key, nonce) == 1 else { return nil }
        let update = encrypt ? EVP_EncryptUpdate : EVP_DecryptUpdate
        if !additionalData.isEmpty {
            var ignored: Int32 = 0
            guard update(context, nil, &ignored, additionalData, Int32(additionalData.count)) == 1 else { return nil }
        }
        if !body.isEmpty {
            guard out.withUnsafeMutableBufferPointer({ update(context, $0.baseAddress, &length, body, Int32(body.count)) }) == 1 else {
                return nil
            }
        }
        if !encrypt {
            guard tag.withUnsafeMutableBytes({ EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, 16, $0.baseAddress) }) == 1 else {
                return nil
            }
        }
        let finish = encrypt ? EVP_EncryptFinal_ex : EVP_DecryptFinal_ex
        let finished = out.withUnsafeMutableBufferPointer { buffer in
            finish(context, buffer.baseAddress! + Int(length), &finalLength)
        }
        guard finished == 1 else {
            // A tag that does not authenticate: what was decrypted must not be left behind.
            SecretBytes.zero(&out)
            return nil
        }
        // Trimmed and extended in place (the capacity has room for the tag): no copy of the
        // plaintext is left in freed memory.
        out.removeLast(16)
        if encrypt {
            guard tag.withUnsafeMutableBytes({ EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, 16, $0.baseAddress) }) == 1 else {
                return nil
            }
            out += tag
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
        let cipher: OpaquePointer?
        switch key.count {
        case 32: cipher = EVP_aes_128_xts()
        case 64: cipher = EVP_aes_256_xts()
        default: return nil
        }
        guard sectorBytes >= 16, sectorBytes < Int(Int32.max), data.count % sectorBytes == 0 else { return nil }
        if data.isEmpty { return [] }
        guard let context = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(context) }
        guard EVP_CipherInit_ex(context, cipher, nil, key, nil, encrypt ? 1 : 0) == 1 else { return nil }
        var iv = [UInt8](repeating: 0, count: 16)
        var out = [UInt8](repeating: 0, count: data.count + 16)
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
                        && Int(length + finalLength) == sectorBytes
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
