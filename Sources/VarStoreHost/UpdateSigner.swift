import CLibcrypto
import VarStoreCore

/// Host-side signing of EFI_VARIABLE_AUTHENTICATION_2 updates with libcrypto: the same shape
/// sign-efi-sig-list produces (PKCS#7 SignedData without the ContentInfo wrapper, SHA-256,
/// no signed attributes, detached content).
public final class SigningIdentity {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    let key: OpaquePointer
    let certificate: OpaquePointer

    deinit {
        EVP_PKEY_free(key)
        X509_free(certificate)
    }

    private init(key: OpaquePointer, certificate: OpaquePointer) {
        self.key = key
        self.certificate = certificate
    }

    /// A fresh RSA-2048 key and a self-signed certificate for it (ten years, SHA-256).
    public static func generate(commonName: String) throws(Failure) -> SigningIdentity {
        defer { ERR_clear_error() }
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, nil) else { throw Failure(description: "no RSA context") }
        defer { EVP_PKEY_CTX_free(context) }
        var generated: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_CTX_set_rsa_keygen_bits(context, 2048) == 1,
              EVP_PKEY_keygen(context, &generated) == 1, let key = generated else {
            throw Failure(description: "RSA key generation failed")
        }
        guard let certificate = X509_new() else {
            EVP_PKEY_free(key)
            throw Failure(description: "no certificate")
        }
        let identity = SigningIdentity(key: key, certificate: certificate)
        let name = X509_get_subject_name(certificate)
        let ok = X509_set_version(certificate, 2) == 1
            && ASN1_INTEGER_set(X509_get_serialNumber(certificate), 1) == 1
            && X509_gmtime_adj(X509_getm_notBefore(certificate), 0) != nil
            && X509_gmtime_adj(X509_getm_notAfter(certificate), 10 * 365 * 24 * 3600) != nil
            && X509_set_pubkey(certificate, key) == 1
            && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, commonName, -1, -1, 0) == 1
            && X509_set_issuer_name(certificate, name) == 1
            && X509_sign(certificate, key, EVP_sha256()) > 0
        guard ok else { throw Failure(description: "self-signed certificate failed") }
        return identity
    }

    /// A certificate and its private key from PEM files (what efitools and sbsigntool take).
    public static func load(certificatePEM: [UInt8], keyPEM: [UInt8]) throws(Failure) -> SigningIdentity {
        defer { ERR_clear_error() }
        /// Runs `read` on a memory BIO over `bytes`, inside their lifetime.
        func reading(_ bytes: [UInt8], _ read: (OpaquePointer) -> OpaquePointer?) -> OpaquePointer? {
            bytes.withUnsafeBytes { buffer -> OpaquePointer? in
                guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
                defer { BIO_free(bio) }
                return read(bio)
            }
        }
        guard let certificate = reading(certificatePEM, { PEM_read_bio_X509($0, nil, nil, nil) }) else {
            throw Failure(description: "the certificate is not a PEM X.509 certificate")
        }
        guard let key = reading(keyPEM, { PEM_read_bio_PrivateKey($0, nil, nil, nil) }) else {
            X509_free(certificate)
            throw Failure(description: "the key is not an unencrypted PEM private key")
        }
        guard X509_check_private_key(certificate, key) == 1 else {
            X509_free(certificate)
            EVP_PKEY_free(key)
            throw Failure(description: "the key does not belong to the certificate")
        }
        return SigningIdentity(key: key, certificate: certificate)
    }

    /// The certificate and the private key as PEM (what efitools and sbsigntool read).
    public var certificatePEM: [UInt8] { Self.pem { PEM_write_bio_X509($0, certificate) } }
    public var privateKeyPEM: [UInt8] { Self.pem { PEM_write_bio_PrivateKey($0, key, nil, nil, 0, nil, nil) } }

    static func pem(_ write: (OpaquePointer) -> Int32) -> [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { return [] }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else { return [] }
        var pointer: UnsafeMutablePointer<CChar>?
        let length = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &pointer)
        guard length > 0, let pointer else { return [] }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
    }

    /// The certificate in DER.
    public var certificateDER: [UInt8] {
        let length = i2d_X509(certificate, nil)
        guard length > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: Int(length))
        _ = out.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            return i2d_X509(certificate, &cursor)
        }
        return out
    }

    /// A detached PKCS#7 signature over `content`: bare SignedData (as sign-efi-sig-list and
    /// Microsoft emit it), SHA-256, no signed attributes.
    public func sign(_ content: [UInt8]) throws(Failure) -> [UInt8] {
        defer { ERR_clear_error() }
        let result: [UInt8]? = content.withUnsafeBytes { bytes -> [UInt8]? in
            guard let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count)) else { return nil }
            defer { BIO_free(bio) }
            let flags = Int32(PKCS7_BINARY | PKCS7_DETACHED | PKCS7_NOATTR | PKCS7_NOSMIMECAP)
            guard let pkcs7 = PKCS7_sign(certificate, key, nil, bio, flags) else { return nil }
            defer { PKCS7_free(pkcs7) }
            guard let signed = pkcs7.pointee.d.sign else { return nil }
            let length = i2d_PKCS7_SIGNED(signed, nil)
            guard length > 0 else { return nil }
            var out = [UInt8](repeating: 0, count: Int(length))
            _ = out.withUnsafeMutableBufferPointer { buffer -> Int32 in
                var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
                return i2d_PKCS7_SIGNED(signed, &cursor)
            }
            return out
        }
        guard let result else { throw Failure(description: "PKCS#7 signing failed") }
        return result
    }

    /// A complete EFI_VARIABLE_AUTHENTICATION_2 update for `key`: descriptor then payload.
    /// `attributes` are the ones the caller will pass to SetVariable (APPEND included).
    public func authenticatedUpdate(for key: VariableKey, attributes: UInt32, time: EFITime,
                                    payload: [UInt8]) throws(Failure) -> [UInt8] {
        var content: [UInt8] = []
        for unit in key.name.codeUnits { LittleEndian.append(unit, to: &content) }
        content += key.guid.wireBytes
        LittleEndian.append(attributes, to: &content)
        content += time.bytes
        content += payload
        let signature = try sign(content)
        return VariableAuthentication2.encode(timeStamp: time, certificate: signature) + payload
    }
}
