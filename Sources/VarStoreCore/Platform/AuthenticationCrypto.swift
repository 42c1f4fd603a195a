/// The cryptography the Secure Boot checks need, supplied by the platform.
///
/// The core parses EFI_VARIABLE_AUTHENTICATION_2 and EFI_SIGNATURE_LIST itself, but never
/// DER or RSA: PKCS#7 and X.509 are the platform's (libcrypto on a host, the SVSM's crypto
/// library when linked there). The semantics are edk2's Pkcs7Verify (CryptPkcs7VerifyCommon.c):
/// the signature must chain to any one of the trusted certificates, partial chains allowed,
/// certificate validity times ignored, any purpose, detached content.
public protocol AuthenticationCrypto {
    /// A parsed PKCS#7 SignedData, kept so one request parses it once.
    associatedtype SignedData

    /// Parses DER PKCS#7: a ContentInfo of type signedData, or a bare SignedData (what
    /// Microsoft's updates and sbvarsign emit). nil if it is neither.
    func parseSignedData(_ der: ArraySlice<UInt8>) -> SignedData?

    /// The digest algorithm every SignerInfo uses, if it is one edk2 accepts
    /// (SHA-256, SHA-384, SHA-512); nil for anything else, no signers, or a mix.
    func digestAlgorithm(of signedData: SignedData) -> DigestAlgorithm?

    /// DER of the signer certificates, in SignerInfo order (OpenSSL PKCS7_get0_signers:
    /// the certificates in the message that match a SignerInfo). Empty if any signer's
    /// certificate is missing.
    func signerCertificates(of signedData: SignedData) -> [[UInt8]]

    /// Whether every signature verifies over `content` and its signer chains, within the
    /// message's certificates, to one of `trustedCertificates` (DER X.509).
    func verify(_ signedData: SignedData, detachedContent content: [UInt8],
                trustedCertificates: [[UInt8]]) -> Bool

    /// Facts about one DER X.509 certificate; nil if it does not parse.
    func certificateFacts(_ der: ArraySlice<UInt8>) -> CertificateFacts?

    /// A message digest.
    func digest(_ algorithm: DigestAlgorithm, _ data: [UInt8]) -> [UInt8]
}

public enum DigestAlgorithm: Sendable, Equatable {
    case sha256, sha384, sha512
}

/// What the Secure Boot rules need to know about a certificate.
public struct CertificateFacts: Sendable, Equatable {
    /// The subject's first commonName as UTF-8 without a terminator; nil if there is none.
    public var commonName: [UInt8]?
    /// The TBSCertificate exactly as encoded in the certificate (its full DER element).
    public var toBeSigned: [UInt8]
    /// Whether the subject public key is RSA (edk2 RsaGetPublicKeyFromX509 succeeds).
    public var hasRSAPublicKey: Bool

    public init(commonName: [UInt8]?, toBeSigned: [UInt8], hasRSAPublicKey: Bool) {
        self.commonName = commonName
        self.toBeSigned = toBeSigned
        self.hasRSAPublicKey = hasRSAPublicKey
    }
}
