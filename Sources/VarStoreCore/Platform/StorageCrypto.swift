/// The cryptography the encrypted store needs, supplied by the platform (libcrypto on a host).
/// The core composes these into the LUKS2 key check, the segment's XTS sectors and the sealed
/// records of the store (spec/storage.md); it implements none of the primitives itself.
public protocol StorageCrypto {
    func sha256(_ data: [UInt8]) -> [UInt8]
    /// SHA-256 of the parts one after another, without joining them first (the log's chain
    /// hashes every record it reads).
    func sha256(concatenating parts: [ArraySlice<UInt8>]) -> [UInt8]
    func sha512(_ data: [UInt8]) -> [UInt8]
    /// HKDF-SHA-256 (RFC 5869), extract then expand to `count` bytes.
    func hkdfSHA256(key: [UInt8], salt: [UInt8], info: [UInt8], count: Int) -> [UInt8]
    /// PBKDF2 (RFC 8018) with HMAC over `hash`; nil if the parameters are unusable.
    func pbkdf2(_ hash: DigestAlgorithm, password: [UInt8], salt: [UInt8], iterations: UInt32, count: Int) -> [UInt8]?
    /// AES-256-GCM with a 96-bit nonce: ciphertext followed by the 16-byte tag.
    func sealAES256GCM(key: [UInt8], nonce: [UInt8], additionalData: [UInt8], plaintext: [UInt8]) -> [UInt8]?
    /// The plaintext, or nil if the tag does not authenticate.
    func openAES256GCM(key: [UInt8], nonce: [UInt8], additionalData: [UInt8], sealed: [UInt8]) -> [UInt8]?

    /// An AES-256-GCM key set up once for many seals and opens (the store seals and opens
    /// every record under one of three keys): a platform keeps its key schedule and context
    /// here rather than building them for each record. It holds key material, so it must be
    /// wiped when released; it is used by one caller at a time, never concurrently.
    associatedtype PreparedAES256GCMKey = SecretBytes
    /// nil if `key` is not 32 bytes or cannot be set up.
    func prepareAES256GCM(key: [UInt8]) -> PreparedAES256GCMKey?
    /// Exactly `sealAES256GCM(key:nonce:additionalData:plaintext:)` with the prepared key.
    /// Slices, so a record's parts are sealed and opened where they lie, not copied out first.
    func sealAES256GCM(prepared key: PreparedAES256GCMKey, nonce: ArraySlice<UInt8>, additionalData: ArraySlice<UInt8>,
                       plaintext: ArraySlice<UInt8>) -> [UInt8]?
    /// Exactly `openAES256GCM(key:nonce:additionalData:sealed:)` with the prepared key.
    func openAES256GCM(prepared key: PreparedAES256GCMKey, nonce: ArraySlice<UInt8>, additionalData: ArraySlice<UInt8>,
                       sealed: ArraySlice<UInt8>) -> [UInt8]?
    /// One dm-crypt "aes-xts-plain64" sector: `key` is 32 or 64 bytes (AES-128/256-XTS), the
    /// tweak is the 64-bit little-endian sector number. nil if the key or length is unusable.
    func aesXTS(encrypt: Bool, key: [UInt8], sector: UInt64, data: [UInt8]) -> [UInt8]?
    /// A run of consecutive sectors of `sectorBytes` each, the first numbered `firstSector`:
    /// exactly `aesXTS(encrypt:key:sector:data:)` on each in turn (the default does that), but a
    /// platform can set the key up once for the run. nil if any sector fails.
    func aesXTS(encrypt: Bool, key: [UInt8], firstSector: UInt64, sectorBytes: Int, data: [UInt8]) -> [UInt8]?

    /// An aes-xts-plain64 key set up once for every sector the segment reads and writes (both
    /// directions). Holds key material like `PreparedAES256GCMKey`; one caller at a time.
    associatedtype PreparedAESXTSKey = SecretBytes
    /// nil if `key` is not 32 or 64 bytes or cannot be set up.
    func prepareAESXTS(key: [UInt8]) -> PreparedAESXTSKey?
    /// Exactly `aesXTS(encrypt:key:firstSector:sectorBytes:data:)` with the prepared key.
    func aesXTS(encrypt: Bool, prepared key: PreparedAESXTSKey, firstSector: UInt64, sectorBytes: Int,
                data: [UInt8]) -> [UInt8]?
    /// Fresh random bytes (nonces); nil if the platform has none to give, which the store
    /// reports as an error rather than sealing with a predictable nonce.
    func randomBytes(_ count: Int) -> [UInt8]?
}

extension StorageCrypto {
    public func sha256(concatenating parts: [ArraySlice<UInt8>]) -> [UInt8] {
        var joined: [UInt8] = []
        for part in parts { joined += part }
        return sha256(joined)
    }
}

/// Platforms that prepare nothing: the prepared key is a copy of the key's bytes, wiped with it.
extension StorageCrypto where PreparedAES256GCMKey == SecretBytes {
    public func prepareAES256GCM(key: [UInt8]) -> SecretBytes? {
        key.count == 32 ? SecretBytes(key) : nil
    }
    public func sealAES256GCM(prepared key: SecretBytes, nonce: ArraySlice<UInt8>, additionalData: ArraySlice<UInt8>,
                              plaintext: ArraySlice<UInt8>) -> [UInt8]? {
        sealAES256GCM(key: key.bytes, nonce: Array(nonce), additionalData: Array(additionalData), plaintext: Array(plaintext))
    }
    public func openAES256GCM(prepared key: SecretBytes, nonce: ArraySlice<UInt8>, additionalData: ArraySlice<UInt8>,
                              sealed: ArraySlice<UInt8>) -> [UInt8]? {
        openAES256GCM(key: key.bytes, nonce: Array(nonce), additionalData: Array(additionalData), sealed: Array(sealed))
    }
}

extension StorageCrypto where PreparedAESXTSKey == SecretBytes {
    public func prepareAESXTS(key: [UInt8]) -> SecretBytes? {
        key.count == 32 || key.count == 64 ? SecretBytes(key) : nil
    }
    public func aesXTS(encrypt: Bool, prepared key: SecretBytes, firstSector: UInt64, sectorBytes: Int,
                       data: [UInt8]) -> [UInt8]? {
        aesXTS(encrypt: encrypt, key: key.bytes, firstSector: firstSector, sectorBytes: sectorBytes, data: data)
    }
}

extension StorageCrypto {
    public func aesXTS(encrypt: Bool, key: [UInt8], firstSector: UInt64, sectorBytes: Int, data: [UInt8]) -> [UInt8]? {
        guard sectorBytes > 0, data.count % sectorBytes == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(data.count)
        var sector = firstSector
        var index = 0
        while index < data.count {
            guard let block = aesXTS(encrypt: encrypt, key: key, sector: sector,
                                     data: Array(data[index ..< index + sectorBytes])) else { return nil }
            out += block
            index += sectorBytes
            sector &+= 1
        }
        return out
    }
}
