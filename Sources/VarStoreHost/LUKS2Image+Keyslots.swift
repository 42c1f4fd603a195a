import CLibcryptsetup
import Foundation
import VarStoreCore
import VarStoreCrypto

/// Keyslots through libcryptsetup: adding, removing and listing them, and opening one within
/// the key-derivation budget the core keeps for one open.
extension LUKS2Image {
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
}
