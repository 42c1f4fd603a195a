import CLibcryptsetup
import Foundation
import VarStoreCore
import VarStoreCrypto

/// Host-side LUKS2 work through libcryptsetup: creating an image (header, keyslots, a random
/// volume key) and recovering the volume key from a keyslot secret. Reading and writing the
/// variable store inside is the core's (LUKS2Header, EncryptedSegment, VariableLog).
public enum LUKS2Image {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// Bytes of one keyslot's key material for a 512-bit key: 4000 anti-forensic stripes of
    /// 64 bytes, in 4 KiB units (what cryptsetup allocates).
    public static let keyslotBytes: UInt64 = 258_048
    /// Each of the two metadata copies (binary header and JSON area): the smallest LUKS2 allows.
    public static let metadataBytes: UInt64 = 16_384
    public static let minimumImageBytes: UInt64 = 512 << 10
    public static let volumeKeyBytes = 64

    /// Where the data segment starts for `keyslots` keyslots.
    public static func dataOffset(keyslots: Int) -> UInt64 { 2 * metadataBytes + UInt64(keyslots) * keyslotBytes }

    public static let passphraseIterations: UInt32 = 600_000
    /// LUKS2's keyslot numbers run 0 … 31.
    public static let maximumKeyslots = 32

    /// How a keyslot turns its secret into the key that unwraps the volume key (libcryptsetup's
    /// crypt_pbkdf_type: "pbkdf2" with `iterations`, or "argon2id"/"argon2i" with time cost
    /// `iterations`, `memoryKiB` and `threads`).
    public struct KeyDerivation: Equatable, Sendable {
        public var type: String
        public var iterations: UInt32
        public var memoryKiB: UInt32 = 0
        public var threads: UInt32 = 0
        /// PBKDF2's hash (and what LUKS2 records for Argon2 slots).
        public var hash: String = "sha256"

        /// Key files are random: cryptsetup's minimum PBKDF2 count suffices, and an SVSM can
        /// open the slot cheaply.
        public static let keyFile = KeyDerivation(type: "pbkdf2", iterations: 1000)
        public static let passphrase = KeyDerivation(type: "pbkdf2", iterations: passphraseIterations)
        /// For administrators' passphrases (recovery, `keyslot add`): memory-hard.
        public static let argon2id = KeyDerivation(type: "argon2id", iterations: 4, memoryKiB: 65536, threads: 1)
    }

    /// One keyslot to make: which number (nil: the first free), its secret and derivation.
    public struct KeyslotPlan {
        public var slot: Int?
        public var secret: [UInt8]
        public var derivation: KeyDerivation
        public init(slot: Int? = nil, secret: [UInt8], derivation: KeyDerivation) {
            self.slot = slot
            self.secret = secret
            self.derivation = derivation
        }
    }

    /// Creates `path` (which must not exist) as a LUKS2 image of `size` bytes: aes-xts-plain64
    /// with a random 512-bit volume key and 512-byte sectors, a PBKDF2 keyslot for `secret`,
    /// optionally an Argon2id recovery keyslot, and an empty variable store. The keyslot area
    /// has room for `keyslotRoom` slots (default: just those made; `keyslot add` needs a spare).
    /// Returns the volume key.
    @discardableResult
    public static func create(path: String, size: UInt64, secret: Secret,
                              recoveryPassphrase: [UInt8]? = nil, keyslotRoom: Int? = nil) throws -> [UInt8] {
        try createStore(path: path, size: size, secret: secret, recoveryPassphrase: recoveryPassphrase,
                        keyslotRoom: keyslotRoom).volumeKey
    }

    /// `create`, returning the empty store it formatted as well as the volume key, so a caller
    /// that reports on the new store need not open it again.
    public static func createStore(path: String, size: UInt64, secret: Secret, recoveryPassphrase: [UInt8]? = nil,
                                   keyslotRoom: Int? = nil) throws -> (volumeKey: [UInt8], log: HostJournal.ImageLog) {
        try secret.requireStrong("the image's secret")
        try recoveryPassphrase.map { try Secret.passphrase($0).requireStrong("the recovery passphrase") }
        var plans = [KeyslotPlan(secret: secret.bytes, derivation: secret.derivation)]
        if let recoveryPassphrase { plans.append(KeyslotPlan(secret: recoveryPassphrase, derivation: .argon2id)) }
        return try createStore(path: path, size: size, keyslots: plans, keyslotRoom: keyslotRoom ?? plans.count)
    }

    /// Creates an image with the keyslots `plans` describes (in that order; the first must
    /// name a free or no slot) and room for `keyslotRoom`; the store's generations start after
    /// `afterGeneration`. Returns the volume key. `checkFirstKeyslot` unwraps the key again
    /// from the first keyslot with its secret before the store is formatted (see `createStore`).
    static func create(path: String, size: UInt64, keyslots plans: [KeyslotPlan], keyslotRoom: Int,
                       afterGeneration: UInt64 = 0, checkFirstKeyslot: Bool = false) throws -> [UInt8] {
        try createStore(path: path, size: size, keyslots: plans, keyslotRoom: keyslotRoom,
                        afterGeneration: afterGeneration, checkFirstKeyslot: checkFirstKeyslot).volumeKey
    }

    /// `create(path:size:keyslots:keyslotRoom:afterGeneration:)`, returning the formatted store too.
    ///
    /// The volume key is the one libcryptsetup generated at the format, which
    /// crypt_keyslot_add_by_volume_key checks against the LUKS2 digest before wrapping it, and
    /// the store's format checks against the digest again. Unwrapping it once more from the
    /// keyslot just written (`checkFirstKeyslot`) is a read-back of libcryptsetup's own write:
    /// it costs as much as an open (PBKDF2 and the anti-forensic merge), so only `rekey`, which
    /// renames the new image over the old one, asks for it; a new image's first user opens the
    /// keyslot anyway, before anything is stored in it.
    static func createStore(path: String, size: UInt64, keyslots plans: [KeyslotPlan], keyslotRoom: Int,
                            afterGeneration: UInt64 = 0,
                            checkFirstKeyslot: Bool = false) throws -> (volumeKey: [UInt8], log: HostJournal.ImageLog) {
        guard !FileManager.default.fileExists(atPath: path) else { throw Failure("\(path) already exists; not overwriting it") }
        guard !plans.isEmpty, keyslotRoom >= plans.count, keyslotRoom <= maximumKeyslots else {
            throw Failure("room for \(keyslotRoom) keyslots cannot hold \(plans.count) (at most \(maximumKeyslots))")
        }
        let offset = dataOffset(keyslots: keyslotRoom)
        guard size >= minimumImageBytes, size % 4096 == 0 else {
            throw Failure("the image size must be a multiple of 4096 bytes, at least \(minimumImageBytes)")
        }
        guard size >= offset + 64 << 10 else {
            throw Failure("\(size) bytes leave too little room after the LUKS2 metadata for \(keyslotRoom) keyslots (\(offset) bytes)")
        }
        // Exclusively, and readable by its owner only from the first byte (keyslots are
        // offline-guessable): a caller widens the mode afterwards if it wants.
        let file = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard file >= 0 else { throw Failure("cannot create \(path) (\(String(cString: strerror(errno))))") }
        var created = false
        defer { if !created { try? FileManager.default.removeItem(atPath: path) } }
        let truncated = ftruncate(file, off_t(size))
        close(file)
        guard truncated == 0 else { throw Failure("cannot size \(path) to \(size) bytes") }

        let device = try Device(path: path)
        try check(crypt_set_metadata_size(device.handle, metadataBytes, UInt64(keyslotRoom) * keyslotBytes), "metadata size")
        try check(crypt_set_data_offset(device.handle, offset / 512), "data offset")
        try withPBKDF(plans[0].derivation) { pbkdf in
            var params = crypt_params_luks2()
            params.pbkdf = pbkdf
            params.sector_size = 512
            try check(crypt_format(device.handle, "LUKS2", "aes", "xts-plain64", nil, nil, volumeKeyBytes, &params), "format")
        }
        // Just formatted: libcryptsetup still holds the new volume key, no keyslot needed.
        var key = [UInt8](repeating: 0, count: volumeKeyBytes)
        defer { SecretBytes.zero(&key) }
        var keySize = volumeKeyBytes
        try key.withUnsafeMutableBufferPointer { buffer in
            try buffer.withMemoryRebound(to: CChar.self) {
                try check(crypt_volume_key_get(device.handle, CRYPT_ANY_SLOT, $0.baseAddress, &keySize, nil, 0), "volume key")
            }
        }
        for plan in plans {
            try withPBKDF(plan.derivation) { pbkdf in
                try check(crypt_set_pbkdf_type(device.handle, pbkdf), "keyslot KDF")
                try plan.secret.withUnsafeBufferPointer { pass in
                    try pass.withMemoryRebound(to: CChar.self) { chars in
                        try key.withUnsafeBufferPointer { keyBuffer in
                            try keyBuffer.withMemoryRebound(to: CChar.self) { keyChars in
                                try check(crypt_keyslot_add_by_volume_key(device.handle, Int32(plan.slot ?? Int(CRYPT_ANY_SLOT)),
                                                                          keyChars.baseAddress, keySize, chars.baseAddress,
                                                                          chars.count), "keyslot")
                            }
                        }
                    }
                }
            }
        }
        let volumeKey = Array(key[0 ..< keySize])
        if checkFirstKeyslot {
            guard try Self.volumeKey(device: device, secret: plans[0].secret) == volumeKey else {
                throw Failure("the new keyslot does not give the volume key back")
            }
        }
        device.close()

        // The empty store, written through the core's own reader: the header libcryptsetup
        // wrote must satisfy it.
        let log = try openStore(path: path, volumeKey: volumeKey, format: true, afterGeneration: afterGeneration)
        created = true
        return (volumeKey, log)
    }

    /// The volume key, from any keyslot `secret` opens.
    public static func volumeKey(path: String, secret: [UInt8]) throws -> [UInt8] {
        let device = try Device(path: path)
        defer { device.close() }
        try check(crypt_load(device.handle, "LUKS2", nil), "load")
        return try volumeKey(device: device, secret: secret)
    }

    static func volumeKey(device: Device, secret: [UInt8]) throws -> [UInt8] {
        try openKeyslot(device: device, secret: secret).key
    }

    /// Opens (or, for a new image, formats) the variable store in `path` with the core's
    /// reader: LUKS2 header, key check, XTS segment, log.
    public static func openStore(path: String, volumeKey: [UInt8], minimumGeneration: UInt64 = 0,
                                 format: Bool = false, afterGeneration: UInt64 = 0) throws -> HostJournal.ImageLog {
        let flash = try FileFlash(path: path)
        let key = EncryptedImage.Key.volumeKey(SecretBytes(volumeKey))
        if format { return try EncryptedImage.format(flash, key: key, crypto: Libcrypto(), afterGeneration: afterGeneration) }
        return try EncryptedImage.open(flash, key: key, crypto: Libcrypto(), minimumGeneration: minimumGeneration)
    }

    /// Writes `variables` into `log` as they are (times and pins included), in order, as one
    /// commit — a power cut keeps all of them or none (a group of records, spec/storage.md) —
    /// after Provisioning's checks (the storable
    /// rule, the per-variable limit unless `raw`, and the image's capacity): all or nothing.
    public static func provision(_ variables: [Variable], into log: HostJournal.ImageLog, raw: Bool = false) throws {
        try Provisioning.check(variables, over: log.live.all, configuration: configuration(for: log), raw: raw)
        try log.commit(variables.map { .put($0) })
    }

    /// The service configuration for an image: its non-volatile quota is what the store can
    /// promise to hold.
    public static func configuration(for log: HostJournal.ImageLog) -> ServiceConfiguration {
        var configuration = ServiceConfiguration()
        configuration.nonVolatileStorageSize = VariableLog<MemoryFlash, Libcrypto>.capacity(segmentBytes: log.device.size)
        return configuration
    }
}
