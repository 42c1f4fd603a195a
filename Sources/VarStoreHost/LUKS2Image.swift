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

    /// How a keyslot secret was given: a key file (random bytes; a PBKDF2 keyslot with
    /// cryptsetup's minimum 1,000 iterations suffices) or a passphrase (PBKDF2 with
    /// `passphraseIterations`).
    public enum Secret: Sendable {
        case keyFile([UInt8])
        case passphrase([UInt8])

        public var bytes: [UInt8] {
            switch self {
            case .keyFile(let bytes), .passphrase(let bytes): return bytes
            }
        }

        /// A key file holds at least this many bytes: 256 bits, as much as the volume key's
        /// own strength per XTS half.
        public static let minimumKeyFileBytes = 32
        /// A passphrase has at least this many characters (cryptsetup's pwquality default).
        public static let minimumPassphraseCharacters = 8

        /// Why this secret is too weak to guard an image, if it is: an empty or short key file
        /// (a failed `… > vars.key` in a script leaves one) or passphrase would let anyone
        /// who guesses it read and rewrite every variable.
        public var weakness: String? {
            switch self {
            case .keyFile(let bytes) where bytes.count < Self.minimumKeyFileBytes:
                return bytes.isEmpty ? "the key file is empty" : "the key file holds \(bytes.count) bytes; a key file must hold at least \(Self.minimumKeyFileBytes)"
            case .passphrase(let bytes):
                let characters = String(decoding: bytes, as: UTF8.self).count
                guard characters < Self.minimumPassphraseCharacters else { return nil }
                return characters == 0 ? "the passphrase is empty" : "the passphrase has \(characters) characters; a passphrase must have at least \(Self.minimumPassphraseCharacters)"
            default:
                return nil
            }
        }

        /// Refuses a weak secret (see `weakness`), naming where it came from.
        public func requireStrong(_ origin: String) throws {
            if let weakness { throw Failure("\(origin): \(weakness); nothing was written") }
        }

        /// The derivation an image's own keyslot for this secret gets.
        var derivation: KeyDerivation {
            switch self {
            case .keyFile: return .keyFile
            case .passphrase: return .passphrase
            }
        }
    }

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
        try secret.requireStrong("the image's secret")
        try recoveryPassphrase.map { try Secret.passphrase($0).requireStrong("the recovery passphrase") }
        var plans = [KeyslotPlan(secret: secret.bytes, derivation: secret.derivation)]
        if let recoveryPassphrase { plans.append(KeyslotPlan(secret: recoveryPassphrase, derivation: .argon2id)) }
        return try create(path: path, size: size, keyslots: plans, keyslotRoom: keyslotRoom ?? plans.count)
    }

    /// Creates an image with the keyslots `plans` describes (in that order; the first must
    /// name a free or no slot) and room for `keyslotRoom`; the store's generations start after
    /// `afterGeneration`. Returns the volume key.
    static func create(path: String, size: UInt64, keyslots plans: [KeyslotPlan], keyslotRoom: Int,
                       afterGeneration: UInt64 = 0) throws -> [UInt8] {
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
        let volumeKey = try Self.volumeKey(device: device, secret: plans[0].secret)
        device.close()

        // The empty store, written through the core's own reader: the header libcryptsetup
        // wrote must satisfy it.
        _ = try openStore(path: path, volumeKey: volumeKey, format: true, afterGeneration: afterGeneration)
        created = true
        return volumeKey
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

    /// Adds a keyslot for `new`, authorised by `existing`: PBKDF2 for a key file (what an
    /// SVSM opens), Argon2id for a passphrase. The keyslot area must have room (an image made
    /// with a recovery slot has two). Returns the slot number.
    public static func addKeyslot(path: String, existing: Secret, new: Secret) throws -> Int {
        try new.requireStrong("the new secret")
        let device = try Device(path: path)
        defer { device.close() }
        try check(crypt_load(device.handle, "LUKS2", nil), "load")
        let derivation: KeyDerivation
        switch new {
        case .keyFile: derivation = .keyFile
        case .passphrase: derivation = .argon2id
        }
        // The existing secret is checked here, under the budget for one open, rather than by
        // crypt_keyslot_add_by_passphrase, which would try every slot at whatever it costs.
        let key: [UInt8]
        do {
            key = try openKeyslot(device: device, secret: existing.bytes).key
        } catch is Failure {
            throw Failure("the current key opens no keyslot")
        }
        var slot: Int32 = -1
        try withPBKDF(derivation) { pbkdf in
            try check(crypt_set_pbkdf_type(device.handle, pbkdf), "keyslot KDF")
            let fresh = new.bytes
            slot = fresh.withUnsafeBufferPointer { n in
                n.withMemoryRebound(to: CChar.self) { nc in
                    key.withUnsafeBufferPointer { k in
                        k.withMemoryRebound(to: CChar.self) { kc in
                            crypt_keyslot_add_by_volume_key(device.handle, CRYPT_ANY_SLOT, kc.baseAddress, kc.count,
                                                            nc.baseAddress, nc.count)
                        }
                    }
                }
            }
        }
        guard slot >= 0 else { throw Failure("no room for another keyslot (\(String(cString: strerror(-slot))))") }
        return Int(slot)
    }

    /// Removes the keyslot `secret` opens, unless it is the last one.
    public static func removeKeyslot(path: String, secret: Secret) throws -> Int {
        let device = try Device(path: path)
        defer { device.close() }
        try check(crypt_load(device.handle, "LUKS2", nil), "load")
        let slot: Int
        do {
            slot = try openKeyslot(device: device, secret: secret.bytes).slot
        } catch is Failure {
            throw Failure("no keyslot opens with this key")
        }
        guard activeKeyslots(device).count > 1 else { throw Failure("keyslot \(slot) is the last one; removing it would lose the image") }
        try check(crypt_keyslot_destroy(device.handle, Int32(slot)), "keyslot removal")
        return slot
    }

    /// The keyslots in use and their key derivation (for `inspect`).
    public static func keyslots(path: String) throws -> [(slot: Int, kdf: String)] {
        let device = try Device(path: path)
        defer { device.close() }
        try check(crypt_load(device.handle, "LUKS2", nil), "load")
        var slots: [(Int, String)] = []
        for slot in activeKeyslots(device) {
            var pbkdf = crypt_pbkdf_type()
            let kdf = crypt_keyslot_get_pbkdf(device.handle, Int32(slot), &pbkdf) == 0 && pbkdf.type != nil
                ? String(cString: pbkdf.type) : "unknown"
            slots.append((slot, kdf))
        }
        return slots
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

    /// Moves `path` to a new random volume key without a window in which a power cut loses
    /// the variables: a complete new image is written beside it, made durable, then renamed
    /// over it (atomic on POSIX file systems).
    ///
    /// Every keyslot is carried over, with its number and key derivation, so each of `secrets`
    /// must open a different keyslot; the first may get `newSecret` instead. Unless
    /// `dropOthers`, a keyslot none of them opens is refused before anything is written (its
    /// secret cannot re-wrap the new key). The new image has the old one's size, keyslot room,
    /// mode and owner, and its store generation continues past the old one's, so a rollback
    /// anchor accepts it. `progress` hears each slow step.
    /// What a rekey did: the keyslots the new image has, and the store generations before and after.
    public struct RekeyResult {
        public let keyslots: [Int]
        public let oldGeneration: UInt64
        public let generation: UInt64
    }

    /// `secrets` are each a secret and how to name it in an error (e.g. its file).
    @discardableResult
    public static func rekey(path: String, secrets: [(Secret, String)], newSecret: Secret? = nil, dropOthers: Bool = false,
                             minimumGeneration: UInt64 = 0, progress: (String) -> Void = { _ in }) throws -> RekeyResult {
        guard !secrets.isEmpty else { throw Failure("rekey needs the secret of a keyslot") }
        try newSecret?.requireStrong("the new secret")
        progress("opening the image (deriving the key of each keyslot given)")
        let device = try Device(path: path)
        try check(crypt_load(device.handle, "LUKS2", nil), "load")
        var plans: [KeyslotPlan] = []
        var oldKey: [UInt8] = []
        for (index, (secret, name)) in secrets.enumerated() {
            let slot: Int, key: [UInt8]
            do {
                (slot, key) = try openKeyslot(device: device, secret: secret.bytes)
            } catch is Failure {
                throw Failure("no keyslot opens with \(name) (wrong key or passphrase)")
            }
            guard !plans.contains(where: { $0.slot == slot }) else { throw Failure("\(name) opens keyslot \(slot) again") }
            var pbkdf = crypt_pbkdf_type()
            try check(crypt_keyslot_get_pbkdf(device.handle, Int32(slot), &pbkdf), "keyslot \(slot) KDF")
            var derivation = KeyDerivation(type: pbkdf.type.map { String(cString: $0) } ?? "pbkdf2", iterations: pbkdf.iterations,
                                           memoryKiB: pbkdf.max_memory_kb, threads: pbkdf.parallel_threads,
                                           hash: pbkdf.hash.map { String(cString: $0) } ?? "sha256")
            var bytes = secret.bytes
            if index == 0, let newSecret {
                bytes = newSecret.bytes
                derivation = newSecret.derivation
            }
            plans.append(KeyslotPlan(slot: slot, secret: bytes, derivation: derivation))
            if index == 0 { oldKey = key }
        }
        let active = activeKeyslots(device)
        let left = active.filter { slot in !plans.contains { $0.slot == slot } }
        if !left.isEmpty && !dropOthers {
            throw Failure("keyslot\(left.count == 1 ? "" : "s") \(left.map(String.init).joined(separator: ", ")) would be lost: "
                          + "give each one's secret too, or drop them explicitly")
        }
        var metadata: UInt64 = 0, keyslotArea: UInt64 = 0
        try check(crypt_get_metadata_size(device.handle, &metadata, &keyslotArea), "metadata size")
        let room = min(max(Int(keyslotArea / keyslotBytes), plans.count), maximumKeyslots)
        device.close()

        let old = try openStore(path: path, volumeKey: oldKey, minimumGeneration: minimumGeneration)
        let size = old.device.device.size
        var status = stat()
        guard stat(path, &status) == 0 else { throw Failure("cannot stat \(path)") }
        let temporary = path + ".rekey"
        // A leftover of an interrupted rekey: only ever a copy; the image itself is intact.
        try? FileManager.default.removeItem(atPath: temporary)
        progress("creating the new image (new volume key, keyslot key derivation)")
        let newKey = try create(path: temporary, size: size, keyslots: plans, keyslotRoom: room,
                                afterGeneration: old.generation)
        do {
            let fresh = try openStore(path: temporary, volumeKey: newKey)
            progress("copying \(old.live.count) variables")
            // The old store's variables as they are: the format limits and capacity still hold.
            try provision(old.live.all, into: fresh, raw: true)
            guard fresh.live.all == old.live.all, fresh.generation > old.generation else {
                throw Failure("the copy does not match the original")
            }
            // The old file's mode and owner, so whoever ran the VM can still open it.
            guard chmod(temporary, status.st_mode & 0o7777) == 0 else {
                throw Failure("cannot give the new image mode \(String(status.st_mode & 0o7777, radix: 8))")
            }
            var newStatus = stat()
            if stat(temporary, &newStatus) == 0, newStatus.st_uid != status.st_uid || newStatus.st_gid != status.st_gid {
                guard chown(temporary, status.st_uid, status.st_gid) == 0 else {
                    throw Failure("cannot give the new image the old owner \(status.st_uid):\(status.st_gid) (\(String(cString: strerror(errno))))")
                }
            }
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: temporary))
            try handle.synchronize()
            try handle.close()
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        progress("replacing the image")
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temporary)
            throw Failure("cannot rename \(temporary) over \(path) (\(reason)); the old image is unchanged")
        }
        let directory = (path as NSString).deletingLastPathComponent
        let descriptor = open(directory.isEmpty ? "." : directory, O_RDONLY)
        guard descriptor >= 0, fsync(descriptor) == 0 else {
            let reason = String(cString: strerror(errno))
            if descriptor >= 0 { close(descriptor) }
            throw Failure("the new image replaced the old one, but the directory could not be synced (\(reason)): "
                          + "run sync before relying on it")
        }
        close(descriptor)
        return RekeyResult(keyslots: plans.compactMap(\.slot).sorted(), oldGeneration: old.generation,
                           generation: try openStore(path: path, volumeKey: newKey).generation)
    }

    /// The keyslot `secret` opens and the volume key it gives. libcryptsetup derives the keys,
    /// but one slot at a time, cheapest first, within the budget the core keeps for one open
    /// (KeyDerivationWork: each slot's derivation and digest check, and the segment's check
    /// in `openStore`): CRYPT_ANY_SLOT would try every slot at whatever its header asks.
    /// A slot past the budget, or one whose cost cannot be priced, ends the search with
    /// `StorageError.keyDerivationTooCostly` before its work is done.
    static func openKeyslot(device: Device, secret: [UInt8]) throws -> (slot: Int, key: [UInt8]) {
        var flash = try FileFlash(path: device.path)
        let header = try LUKS2Header.read(from: &flash, crypto: Libcrypto())
        let limit = KeyDerivationWork.maximumPerOpen
        guard let check = header.declaredDigestWork, check <= limit else { throw StorageError.keyDerivationTooCostly }
        let slots = activeKeyslots(device).map { (slot: $0, work: work(device, slot: $0) ?? .max) }.sorted { $0.work < $1.work }
        var spent: UInt64 = 0
        for (slot, work) in slots {
            // spent, work and check are each at most limit here: the sum cannot overflow.
            guard work <= limit, spent + work + 2 * check <= limit else { throw StorageError.keyDerivationTooCostly }
            spent += work + check
            var key = [UInt8](repeating: 0, count: volumeKeyBytes)
            var size = volumeKeyBytes
            let opened = secret.withUnsafeBufferPointer { pass in
                pass.withMemoryRebound(to: CChar.self) { chars in
                    key.withUnsafeMutableBufferPointer { out in
                        out.withMemoryRebound(to: CChar.self) { outChars in
                            crypt_volume_key_get(device.handle, Int32(slot), outChars.baseAddress, &size, chars.baseAddress, chars.count)
                        }
                    }
                }
            }
            // The caller gets a copy of the key's length; the scratch buffer is wiped either way.
            defer { SecretBytes.zero(&key) }
            if opened >= 0 { return (slot, Array(key[0..<size])) }
        }
        throw Failure("no keyslot opens with this key (wrong key or passphrase)")
    }

    /// What libcryptsetup will spend deriving `slot`'s key (KeyDerivationWork), from the
    /// header it loaded; nil for a derivation that cannot be priced.
    static func work(_ device: Device, slot: Int) -> UInt64? {
        var pbkdf = crypt_pbkdf_type()
        guard crypt_keyslot_get_pbkdf(device.handle, Int32(slot), &pbkdf) == 0, let type = pbkdf.type else { return nil }
        switch String(cString: type) {
        case "pbkdf2":
            let keyBytes = crypt_keyslot_get_key_size(device.handle, Int32(slot))
            let hash: DigestAlgorithm
            switch pbkdf.hash.map({ String(cString: $0) }) {
            case "sha256": hash = .sha256
            case "sha384": hash = .sha384
            case "sha512": hash = .sha512
            default: return nil
            }
            guard keyBytes > 0 else { return nil }
            return KeyDerivationWork.pbkdf2(hash, iterations: UInt64(pbkdf.iterations), outputBytes: Int(keyBytes))
        case "argon2i", "argon2id":
            guard UInt64(pbkdf.max_memory_kb) <= KeyDerivationWork.maximumArgon2MemoryKiB else { return nil }
            return KeyDerivationWork.argon2(time: UInt64(pbkdf.iterations), memoryKiB: UInt64(pbkdf.max_memory_kb))
        default:
            return nil
        }
    }

    static func activeKeyslots(_ device: Device) -> [Int] {
        (0 ..< Int(crypt_keyslot_max("LUKS2"))).filter {
            let status = crypt_keyslot_status(device.handle, Int32($0))
            return status == CRYPT_SLOT_ACTIVE || status == CRYPT_SLOT_ACTIVE_LAST
        }
    }

    // MARK: libcryptsetup plumbing

    final class Device {
        var handle: OpaquePointer?
        let path: String
        init(path: String) throws {
            self.path = path
            try ImageLock.hold(path)
            // Our own lock covers the file (ImageLock); libcryptsetup's would wait on it.
            crypt_metadata_locking(nil, 0)
            var device: OpaquePointer?
            guard crypt_init(&device, path) == 0, let device else { throw Failure("cannot open \(path) with libcryptsetup") }
            // Its advice ("keyslots area is very small") is for disks; our small metadata is
            // deliberate (spec/storage.md). Errors still reach the caller as statuses.
            crypt_set_log_callback(device, { _, _, _ in }, nil)
            handle = device
        }
        func close() {
            if let handle { crypt_free(handle) }
            handle = nil
        }
        deinit { close() }
    }

    static func check(_ result: Int32, _ what: String) throws {
        guard result >= 0 else { throw Failure("libcryptsetup: \(what) failed (\(String(cString: strerror(-result))))") }
    }

    static func withPBKDF(_ derivation: KeyDerivation, _ body: (UnsafePointer<crypt_pbkdf_type>) throws -> Void) throws {
        try derivation.type.withCString { typeName in
            try derivation.hash.withCString { hash in
                var pbkdf = crypt_pbkdf_type()
                pbkdf.type = typeName
                pbkdf.hash = hash
                pbkdf.iterations = derivation.iterations
                pbkdf.max_memory_kb = derivation.memoryKiB
                pbkdf.parallel_threads = derivation.memoryKiB > 0 ? max(derivation.threads, 1) : 0
                pbkdf.flags = 1 << 1  // CRYPT_PBKDF_NO_BENCHMARK
                try withUnsafePointer(to: &pbkdf) { try body($0) }
            }
        }
    }
}
