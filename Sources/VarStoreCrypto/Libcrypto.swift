import CLibcrypto
import VarStoreCore

/// AuthenticationCrypto over OpenSSL's libcrypto, with edk2's Pkcs7Verify semantics
/// (CryptoPkg CryptPkcs7VerifyCommon.c): one X509_STORE holding the trusted certificates,
/// X509_V_FLAG_PARTIAL_CHAIN so any certificate of the chain may be the anchor,
/// X509_V_FLAG_NO_CHECK_TIME because firmware has no trusted clock (Microsoft's current dbx
/// updates are signed by a certificate that expired in 2025), purpose "any", and
/// PKCS7_verify with PKCS7_BINARY over the detached content.
///
/// No Foundation: this module is meant to build for an SVSM as well.
public struct Libcrypto: AuthenticationCrypto {
    public init() {}

    /// Owns a parsed PKCS7 (always of type signedData).
    public final class SignedData {
        fileprivate let pkcs7: UnsafeMutablePointer<PKCS7>
        fileprivate init(_ pkcs7: UnsafeMutablePointer<PKCS7>) { self.pkcs7 = pkcs7 }
        deinit { PKCS7_free(pkcs7) }
    }

    public func parseSignedData(_ der: ArraySlice<UInt8>) -> SignedData? {
        guard !der.isEmpty, der.count < Int(Int32.max) else { return nil }
        return der.withUnsafeBufferPointer { buffer -> SignedData? in
            defer { ERR_clear_error() }
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            // A ContentInfo (what efitools writes).
            if let pkcs7 = d2i_PKCS7(nil, &cursor, buffer.count) {
                guard OBJ_obj2nid(pkcs7.pointee.type) == NID_pkcs7_signed, pkcs7.pointee.d.sign != nil else {
                    PKCS7_free(pkcs7)
                    return nil
                }
                return SignedData(pkcs7)
            }
            // A bare SignedData (Microsoft, sbvarsign): wrap it in a ContentInfo, as edk2's
            // WrapPkcs7Data does, by building the PKCS7 object around it.
            cursor = buffer.baseAddress
            guard let signed = d2i_PKCS7_SIGNED(nil, &cursor, buffer.count) else { return nil }
            guard let pkcs7 = PKCS7_new() else {
                PKCS7_SIGNED_free(signed)
                return nil
            }
            pkcs7.pointee.type = OBJ_nid2obj(NID_pkcs7_signed)
            pkcs7.pointee.d.sign = signed
            return SignedData(pkcs7)
        }
    }

    public func digestAlgorithm(of signedData: SignedData) -> DigestAlgorithm? {
        guard let infos = PKCS7_get_signer_info(signedData.pkcs7) else { return nil }
        let stack = infos
        let count = OPENSSL_sk_num(stack)
        guard count > 0 else { return nil }
        var common: DigestAlgorithm?
        for index in 0..<count {
            guard let raw = OPENSSL_sk_value(stack, index) else { return nil }
            let info = raw.assumingMemoryBound(to: PKCS7_SIGNER_INFO.self)
            var digest: UnsafeMutablePointer<X509_ALGOR>?
            PKCS7_SIGNER_INFO_get0_algs(info, nil, &digest, nil)
            guard let digest else { return nil }
            var object: OpaquePointer?
            X509_ALGOR_get0(&object, nil, nil, digest)
            let algorithm: DigestAlgorithm
            switch OBJ_obj2nid(object) {
            case NID_sha256: algorithm = .sha256
            case NID_sha384: algorithm = .sha384
            case NID_sha512: algorithm = .sha512
            default: return nil
            }
            if let common, common != algorithm { return nil }
            common = algorithm
        }
        return common
    }

    public func signerCertificates(of signedData: SignedData) -> [[UInt8]] {
        defer { ERR_clear_error() }
        guard let signers = PKCS7_get0_signers(signedData.pkcs7, nil, 0) else { return [] }
        let stack = signers
        defer { OPENSSL_sk_free(stack) }
        var result: [[UInt8]] = []
        for index in 0..<OPENSSL_sk_num(stack) {
            guard let certificate = OPENSSL_sk_value(stack, index), let der = Self.encode(OpaquePointer(certificate)) else {
                return []
            }
            result.append(der)
        }
        return result
    }

    public func verify(_ signedData: SignedData, detachedContent content: [UInt8],
                       trustedCertificates: [[UInt8]]) -> Bool {
        defer { ERR_clear_error() }
        guard let store = X509_STORE_new() else { return false }
        defer { X509_STORE_free(store) }
        var anchors = 0
        for der in trustedCertificates {
            guard let certificate = Self.decode(der[...]) else { continue }
            if X509_STORE_add_cert(store, certificate) == 1 { anchors += 1 }
            X509_free(certificate)
        }
        guard anchors > 0 else { return false }
        X509_STORE_set_flags(store, UInt(X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_NO_CHECK_TIME))
        X509_STORE_set_purpose(store, X509_PURPOSE_ANY)
        // The signed content always holds at least a name, a GUID, attributes and a time.
        guard !content.isEmpty, content.count < Int(Int32.max) else { return false }
        return content.withUnsafeBytes { bytes -> Bool in
            guard let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count)) else { return false }
            defer { BIO_free(bio) }
            return PKCS7_verify(signedData.pkcs7, nil, store, bio, nil, Int32(PKCS7_BINARY)) == 1
        }
    }

    public func certificateFacts(_ der: ArraySlice<UInt8>) -> CertificateFacts? {
        defer { ERR_clear_error() }
        guard let certificate = Self.decode(der) else { return nil }
        defer { X509_free(certificate) }
        guard let toBeSigned = Self.toBeSigned(der) else { return nil }
        var hasRSAPublicKey = false
        if let key = X509_get0_pubkey(certificate) {
            hasRSAPublicKey = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA
        }
        return CertificateFacts(commonName: Self.commonName(certificate), toBeSigned: toBeSigned,
                                hasRSAPublicKey: hasRSAPublicKey)
    }

    /// The digests fetched from the default provider once per process. `EVP_sha256()` and the
    /// like are fetched again (a locked lookup by name) on every use in OpenSSL 3; nil (no such
    /// digest) falls back to them.
    /// (By the short names OpenSSL itself fetches them by, which libcrypto holds as C strings.)
    nonisolated(unsafe) static let fetchedSHA256: OpaquePointer? = EVP_MD_fetch(nil, OBJ_nid2sn(NID_sha256), nil)
    nonisolated(unsafe) static let fetchedSHA384: OpaquePointer? = EVP_MD_fetch(nil, OBJ_nid2sn(NID_sha384), nil)
    nonisolated(unsafe) static let fetchedSHA512: OpaquePointer? = EVP_MD_fetch(nil, OBJ_nid2sn(NID_sha512), nil)

    /// The fetched digest for `algorithm`.
    static func messageDigest(_ algorithm: DigestAlgorithm) -> OpaquePointer? {
        switch algorithm {
        case .sha256: return fetchedSHA256 ?? EVP_sha256()
        case .sha384: return fetchedSHA384 ?? EVP_sha384()
        case .sha512: return fetchedSHA512 ?? EVP_sha512()
        }
    }

    public func digest(_ algorithm: DigestAlgorithm, _ data: [UInt8]) -> [UInt8] {
        let md = Self.messageDigest(algorithm)
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = data.withUnsafeBytes { input in
            out.withUnsafeMutableBufferPointer { output in
                EVP_Digest(input.baseAddress, input.count, output.baseAddress, &length, md, nil)
            }
        }
        guard ok == 1 else { return [] }
        return Array(out[0..<Int(length)])
    }

    // MARK: Helpers

    static func decode(_ der: ArraySlice<UInt8>) -> OpaquePointer? {
        guard !der.isEmpty, der.count < Int(Int32.max) else { return nil }
        return der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_X509(nil, &cursor, buffer.count)
        }
    }

    static func encode(_ certificate: OpaquePointer) -> [UInt8]? {
        let length = i2d_X509(certificate, nil)
        guard length > 0 else { return nil }
        var out = [UInt8](repeating: 0, count: Int(length))
        let written = out.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            return i2d_X509(certificate, &cursor)
        }
        return written == length ? out : nil
    }

    /// The subject's first commonName converted to UTF-8 (edk2 X509GetCommonName uses
    /// ASN1_STRING_to_UTF8 on the same entry).
    static func commonName(_ certificate: OpaquePointer) -> [UInt8]? {
        guard let subject = X509_get_subject_name(certificate) else { return nil }
        let index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(subject, index),
              let value = X509_NAME_ENTRY_get_data(entry) else { return nil }
        var utf8: UnsafeMutablePointer<UInt8>?
        let length = ASN1_STRING_to_UTF8(&utf8, value)
        guard length >= 0, let utf8 else { return nil }
        defer { CRYPTO_free(utf8, #fileID, #line) }
        return Array(UnsafeBufferPointer(start: utf8, count: Int(length)))
    }

    /// The TBSCertificate element's bytes as they appear in `der` (edk2 X509GetTBSCert),
    /// located with libcrypto's DER header reader: Certificate ::= SEQUENCE { tbs, ... }.
    static func toBeSigned(_ der: ArraySlice<UInt8>) -> [UInt8]? {
        der.withUnsafeBufferPointer { buffer -> [UInt8]? in
            guard let base = buffer.baseAddress else { return nil }
            var cursor: UnsafePointer<UInt8>? = base
            var length = 0, tag: Int32 = 0, tagClass: Int32 = 0
            // 0x80 flags an error; 0x21 an indefinite length, which DER does not allow.
            var flags = ASN1_get_object(&cursor, &length, &tag, &tagClass, buffer.count)
            guard flags & 0x80 == 0, flags & 0x01 == 0, tag == V_ASN1_SEQUENCE, let start = cursor else { return nil }
            let remaining = buffer.count - (start - base)
            flags = ASN1_get_object(&cursor, &length, &tag, &tagClass, remaining)
            guard flags & 0x80 == 0, flags & 0x01 == 0, tag == V_ASN1_SEQUENCE, let body = cursor else { return nil }
            let end = (body - base) + length
            guard length >= 0, end <= buffer.count else { return nil }
            return Array(buffer[(start - base)..<end])
        }
    }
}

extension VariableService where Crypto == Libcrypto, Journal == MemoryJournal {
    /// A service that verifies signatures with libcrypto and keeps variables in memory.
    public convenience init(configuration: ServiceConfiguration = ServiceConfiguration()) {
        self.init(configuration: configuration, crypto: Libcrypto(), journal: MemoryJournal())
    }
}
