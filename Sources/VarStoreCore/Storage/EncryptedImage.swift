/// Opening a variable image: the LUKS2 header, the key (given, or unwrapped from a keyslot),
/// the aes-xts-plain64 segment, then the log store inside it. The one sequence that both the C
/// ABI (an SVSM's flash) and the host tools (an image file) run (spec/storage.md, "Opening").
public enum EncryptedImage {
    /// What the opener was given.
    public enum Key {
        /// The 64-byte volume key itself (what a key broker releases to an SVSM).
        case volumeKey(SecretBytes)
        /// A keyslot secret, unwrapped by the core's own PBKDF2 keyslot reader.
        case keyslotSecret(SecretBytes)
    }

    public typealias Log<F: Flash, C: StorageCrypto> = VariableLog<EncryptedSegment<F, C>, C>

    /// Opens the store in `flash` (never formats it). `minimumGeneration` is the rollback
    /// anchor: an older store is refused.
    public static func open<F: Flash, C: StorageCrypto>(_ flash: F, key: Key, crypto: C,
                                                       minimumGeneration: UInt64 = 0) throws(StorageError) -> Log<F, C> {
        let (segment, volumeKey, binding) = try segment(flash, key: key, crypto: crypto)
        return try VariableLog.open(device: segment, crypto: crypto, volumeKey: volumeKey.bytes, binding: binding,
                                    minimumGeneration: minimumGeneration)
    }

    /// Formats an empty store in `flash` (image creation), its generations starting after
    /// `afterGeneration`.
    public static func format<F: Flash, C: StorageCrypto>(_ flash: F, key: Key, crypto: C,
                                                         afterGeneration: UInt64 = 0) throws(StorageError) -> Log<F, C> {
        let (segment, volumeKey, binding) = try segment(flash, key: key, crypto: crypto)
        return try VariableLog.format(device: segment, crypto: crypto, volumeKey: volumeKey.bytes, binding: binding,
                                      afterGeneration: afterGeneration)
    }

    /// The header read, the key checked against its digest, and the segment over `flash`.
    static func segment<F: Flash, C: StorageCrypto>(_ flash: F, key: Key, crypto: C)
        throws(StorageError) -> (EncryptedSegment<F, C>, SecretBytes, [UInt8]) {
        var flash = flash
        let header = try LUKS2Header.read(from: &flash, crypto: crypto)
        let volumeKey: SecretBytes
        switch key {
        case .volumeKey(let given): volumeKey = given
        case .keyslotSecret(let secret): volumeKey = try header.unlock(secret: secret.bytes, flash: &flash, crypto: crypto)
        }
        let segment = try EncryptedSegment(device: flash, header: header, volumeKey: volumeKey, crypto: crypto)
        return (segment, volumeKey, header.uuid)
    }
}
