/// The keys that seal records and superblocks, where they come from, and the upgrade from the
/// first store version (spec/storage.md, "Keys", "Store versions").
///
/// Version 2 keeps a random 32-byte *store master key* in both superblock sectors, inside the
/// data segment: XTS under the current volume key hides it, and `cryptsetup reencrypt`, which
/// re-encrypts every sector under a new volume key and keeps the plaintext, carries it over.
/// The sealing keys are derived from it, so they follow the data, not the volume key that
/// happens to encrypt the segment today. Version 1 derived them from the volume key; such a
/// store opens as before, and its first write (or `upgrade()`) moves it to version 2.
public enum StoreVersion: UInt32, Sendable {
    /// Keys from the volume key (images written before issue 17): lost to a reencryption.
    case volumeKeyDerived = 1
    /// Keys from a store master key kept in the superblocks: survive a reencryption.
    case masterKey = 2

    /// What `format` writes.
    public static var current: StoreVersion { .masterKey }
}

extension VariableLog {
    /// Bytes of the store master key: HKDF-SHA-256 extracts 32 bytes of strength at most.
    public static var masterKeyBytes: Int { 32 }

    /// Held for the life of the log and wiped with it (SecretBytes, and the platform's prepared
    /// keys). The three sealing keys are prepared once (StorageCrypto.prepareAES256GCM), so
    /// sealing or opening a record sets up no key schedule; nil only if the platform could not
    /// set one up, and then nothing seals or opens under it.
    struct Keys {
        let version: StoreVersion
        /// What these keys bind into every record and superblock (AAD and HKDF salt): the UUID
        /// text as the header has it for version 1, its canonical form for version 2.
        let binding: [UInt8]
        /// The store master key, written into every version-2 superblock; empty for version 1.
        let master: SecretBytes
        let header: Crypto.PreparedAES256GCMKey?
        let body: Crypto.PreparedAES256GCMKey?
        let superblock: Crypto.PreparedAES256GCMKey?
    }

    /// HKDF-SHA-256 of `key` to 32 bytes, prepared for AES-256-GCM; the derived bytes are wiped.
    private static func sealingKey(_ crypto: Crypto, key: [UInt8], salt: [UInt8], label: String) -> Crypto.PreparedAES256GCMKey? {
        let derived = SecretBytes(crypto.hkdfSHA256(key: key, salt: salt, info: Array(label.utf8), count: 32))
        return crypto.prepareAES256GCM(key: derived.bytes)
    }

    /// Version 1: HKDF-SHA-256 of the volume key, salt = the binding.
    static func keys(_ crypto: Crypto, volumeKey: [UInt8], binding: [UInt8]) -> Keys {
        func derive(_ label: String) -> Crypto.PreparedAES256GCMKey? {
            sealingKey(crypto, key: volumeKey, salt: binding, label: label)
        }
        return Keys(version: .volumeKeyDerived, binding: binding, master: SecretBytes([]), header: derive("varstore v1 record header"),
                    body: derive("varstore v1 record body"), superblock: derive("varstore v1 superblock"))
    }

    /// Version 2: HKDF-SHA-256 of the store master key, salt = the canonical binding; labels of
    /// their own, so no version-2 key is ever a version-1 key.
    static func keys(_ crypto: Crypto, masterKey: [UInt8], binding: [UInt8]) -> Keys {
        let canonical = canonicalBinding(binding)
        func derive(_ label: String) -> Crypto.PreparedAES256GCMKey? {
            sealingKey(crypto, key: masterKey, salt: canonical, label: label)
        }
        return Keys(version: .masterKey, binding: canonical, master: SecretBytes(masterKey), header: derive("varstore v2 record header"),
                    body: derive("varstore v2 record body"), superblock: derive("varstore v2 superblock"))
    }

    /// No keys: what a log holds while `open` reads its superblocks, before it has any.
    static func noKeys(_ binding: [UInt8]) -> Keys {
        Keys(version: .volumeKeyDerived, binding: binding, master: SecretBytes([]), header: nil, body: nil, superblock: nil)
    }

    /// A UUID names 128 bits, not a spelling: libcryptsetup writes the ones it generates in
    /// upper case, and `cryptsetup luksUUID --uuid` writes the one it is given in lower case. So
    /// version 2 binds the text with ASCII letters lowered, and setting an image's own UUID
    /// again, in either case, changes nothing.
    static func canonicalBinding(_ binding: [UInt8]) -> [UInt8] {
        binding.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }
    }

    /// A fresh random master key and the keys derived from it.
    static func freshKeys(_ crypto: Crypto, binding: [UInt8]) throws(StorageError) -> Keys {
        guard let master = crypto.randomBytes(masterKeyBytes) else { throw .noRandomness }
        return keys(crypto, masterKey: master, binding: binding)
    }

    /// The version of the store as it is on the medium (after a failed upgrade whose snapshot
    /// is durable, the version the next commit completes).
    public var storeVersion: StoreVersion { keys.version }

    /// Moves a version-1 store to version 2 — a compaction under new keys: a fresh master key,
    /// the live state written as snapshot records sealed with keys derived from it (each part
    /// flushed), then a version-2 superblock naming them in the slot that is not the newest,
    /// flushed. Until that flush the version-1 superblock and all it reaches are untouched and
    /// win the next open (the new records do not authenticate under version-1 keys, so they are
    /// free space to it); after it, the version-2 superblock wins (a version-1 superblock counts
    /// only when no version-2 one authenticates). Either way the variables are the same, and the
    /// generation goes on, so a rollback anchor holds across it. Nothing is done for a version-2
    /// store. `commit` calls it before the first change it writes.
    public func upgrade() throws(StorageError) {
        guard keys.version == .volumeKeyDerived else { return }
        try ensureWritable()
        try adoptUnnamedCheckpoint()
        let previous = keys
        keys = try Self.freshKeys(crypto, binding: binding)
        do {
            try compact()
        } catch {
            // A snapshot whose parts are durable waits for its superblock under the new keys
            // (`unnamedCheckpoint`, adopted before any further record); otherwise nothing of the
            // new version reached the medium and the store stays version 1.
            if unnamedCheckpoint == nil { keys = previous }
            throw error
        }
    }
}
