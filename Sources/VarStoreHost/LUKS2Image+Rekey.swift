import CLibcryptsetup
import Foundation
import VarStoreCore
import VarStoreCrypto

/// `varstore rekey`: a new volume key (and store master key) without a window that loses the
/// variables.
extension LUKS2Image {
    /// What a rekey did: the keyslots the new image has, and the store generations before and after.
    public struct RekeyResult {
        public let keyslots: [Int]
        public let oldGeneration: UInt64
        public let generation: UInt64
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
    /// anchor accepts it. `secrets` are each a secret and how to name it in an error (e.g. its
    /// file); `progress` hears each slow step.
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
        // The first keyslot is read back before the copy: the new image replaces the old one.
        let newKey = try create(path: temporary, size: size, keyslots: plans, keyslotRoom: room,
                                afterGeneration: old.generation, checkFirstKeyslot: true)
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
}
