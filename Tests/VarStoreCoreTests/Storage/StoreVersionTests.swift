import Testing
@testable import VarStoreCore
import VarStoreCrypto

/// Store versions (spec/storage.md, "Store versions"): version 2's keys come from a master key
/// inside the segment, so they follow the data through a change of volume key; version 1's came
/// from the volume key, and such a store is read as before and upgraded by its first write.
@Suite struct StoreVersionTests {
    typealias Log = VariableLog<MemoryFlash, Libcrypto>
    static let volumeKey = [UInt8](repeating: 0x42, count: 64)
    /// What `cryptsetup reencrypt` leaves: the same plaintext, another volume key.
    static let reencryptedKey = [UInt8](repeating: 0x17, count: 64)
    static let binding = Array("11111111-2222-3333-4444-555555555555".utf8)
    static let vendor = EFIGUID(text: "3f1b2a4c-5d6e-4f70-8192-a3b4c5d6e7f8")!

    static func variable(_ name: String, _ data: [UInt8]) -> Variable {
        Variable(key: VariableKey(guid: vendor, name: VariableName(name)!),
                 attributes: [.nonVolatile, .bootServiceAccess, .runtimeAccess], data: data)
    }

    @Test func aNewStoreIsVersionTwoAndItsKeysFollowTheDataNotTheVolumeKey() throws {
        let log = try Log.format(device: MemoryFlash(size: 128 << 10), crypto: Libcrypto(), volumeKey: Self.volumeKey, binding: Self.binding)
        #expect(log.storeVersion == .masterKey)
        try log.commit([.put(Self.variable("Kept", [1, 2, 3]))])
        let reopened = try Log.open(device: MemoryFlash(bytes: log.device.bytes), crypto: Libcrypto(), volumeKey: Self.reencryptedKey,
                                    binding: Self.binding)
        #expect(reopened.live.all == log.live.all && reopened.generation == log.generation && reopened.digest == log.digest)
        #expect(reopened.storeVersion == .masterKey)
    }

    @Test func aVersionOneStoreOpensUnderItsVolumeKeyAndItsFirstWriteUpgradesIt() throws {
        let old = try Log.format(device: MemoryFlash(size: 128 << 10), crypto: Libcrypto(), volumeKey: Self.volumeKey, binding: Self.binding,
                                 version: .volumeKeyDerived)
        let opened = try Log.open(device: MemoryFlash(bytes: old.device.bytes), crypto: Libcrypto(), volumeKey: Self.volumeKey,
                                  binding: Self.binding)
        #expect(opened.storeVersion == .volumeKeyDerived)
        let before = opened.generation
        try opened.commit([.put(Self.variable("First", [9]))])
        #expect(opened.storeVersion == .masterKey)
        // The upgrade's snapshot, then the record: the generation goes on, so an anchor holds.
        #expect(opened.generation == before + 2)
        let after = try Log.open(device: MemoryFlash(bytes: opened.device.bytes), crypto: Libcrypto(), volumeKey: Self.reencryptedKey,
                                 binding: Self.binding)
        #expect(after.storeVersion == .masterKey && after.live.all == opened.live.all && after.generation == opened.generation)
    }

    @Test func aVersionOneStoreWhoseVolumeKeyChangedIsNamedNotCalledUnformatted() throws {
        let old = try Log.format(device: MemoryFlash(size: 128 << 10), crypto: Libcrypto(), volumeKey: Self.volumeKey, binding: Self.binding,
                                 version: .volumeKeyDerived)
        #expect(throws: StorageError.storeKeyLost) {
            _ = try Log.open(device: MemoryFlash(bytes: old.device.bytes), crypto: Libcrypto(), volumeKey: Self.reencryptedKey,
                             binding: Self.binding)
        }
        #expect(throws: StorageError.notFormatted) {
            _ = try Log.open(device: MemoryFlash(size: 128 << 10), crypto: Libcrypto(), volumeKey: Self.volumeKey, binding: Self.binding)
        }
    }

    @Test func theVersionTwoBindingIsTheUUIDNotItsSpelling() throws {
        // libcryptsetup generates upper-case UUID text; `cryptsetup luksUUID --uuid` writes
        // lower case. Setting an image's own UUID again must not lose the store.
        let upper = Array("EB55FA4B-B92E-411F-BD6B-EBD048B9088E".utf8), lower = Array("eb55fa4b-b92e-411f-bd6b-ebd048b9088e".utf8)
        let log = try Log.format(device: MemoryFlash(size: 128 << 10), crypto: Libcrypto(), volumeKey: Self.volumeKey, binding: upper)
        try log.commit([.put(Self.variable("Kept", [1]))])
        let reopened = try Log.open(device: MemoryFlash(bytes: log.device.bytes), crypto: Libcrypto(), volumeKey: Self.volumeKey, binding: lower)
        #expect(reopened.live.all == log.live.all)
        // Another UUID is another binding, named as such.
        #expect(throws: StorageError.storeBindingChanged) {
            _ = try Log.open(device: MemoryFlash(bytes: log.device.bytes), crypto: Libcrypto(), volumeKey: Self.volumeKey,
                             binding: Array("eb55fa4b-b92e-411f-bd6b-ebd048b9088f".utf8))
        }
    }

    @Test func anUpgradeOfAnUpgradedStoreWritesNothing() throws {
        let log = try Log.format(device: MemoryFlash(size: 128 << 10), crypto: Libcrypto(), volumeKey: Self.volumeKey, binding: Self.binding)
        let bytes = log.device.bytes
        try log.upgrade()
        #expect(log.device.bytes == bytes)
    }

    @Test func theVersionTwoSuperblockIsLaidOutAsSpecified() throws {
        // storage.md, "Superblock (one sector)", version 2; sealing that keeps the plaintext.
        let log = try VariableLog.format(device: MemoryFlash(size: 96 << 10), crypto: ReadableSealing(), volumeKey: Self.volumeKey,
                                         binding: Self.binding)
        let sector = Array(log.device.bytes[512 ..< 1024])  // a new store's superblock: sequence 1, slot B
        #expect(Array(sector[0..<8]) == Array("VSSUPER2".utf8))
        #expect(LittleEndian.load(UInt32.self, from: sector, at: 8) == 2 && LittleEndian.load(UInt32.self, from: sector, at: 12) == 0)
        #expect(Array(sector[16..<48]) == log.keys.master.bytes && log.keys.master.count == 32)
        let plain = Array(sector[60 ..< 132])  // after the 12-byte nonce at 48
        #expect(LittleEndian.load(UInt32.self, from: plain, at: 0) == 2)
        #expect(LittleEndian.load(UInt64.self, from: plain, at: 8) == 1)                                 // sequence
        #expect(LittleEndian.load(UInt64.self, from: plain, at: 16) == UInt64(96 << 10) / 512 - 2)        // L
        #expect(sector[148...].allSatisfy { $0 == 0 })
        // The master key is not derived from the volume key: two stores formatted with the
        // same volume key and binding have different ones.
        let other = try VariableLog.format(device: MemoryFlash(size: 96 << 10), crypto: ReadableSealing(), volumeKey: Self.volumeKey,
                                           binding: Self.binding)
        #expect(other.keys.master.bytes != log.keys.master.bytes)
    }

    @Test func aVersionOneSuperblockNeverOutranksAVersionTwoOne() throws {
        // An upgraded store still has a version-1 superblock in its other slot until the next
        // compaction. Forged to a far higher sequence (as a holder of the old volume key could
        // before a reencryption), it still does not win: an upgraded store never goes back.
        let old = try VariableLog.format(device: MemoryFlash(size: 96 << 10), crypto: ReadableSealing(), volumeKey: Self.volumeKey,
                                         binding: Self.binding, version: .volumeKeyDerived)
        try old.commit([.put(Self.variable("After", [1]))])
        #expect(old.storeVersion == .masterKey)
        var bytes = old.device.bytes
        let v1Slot = Array(bytes[0..<8]) == Array("VSSUPER1".utf8) ? 0 : 512
        #expect(Array(bytes[v1Slot ..< v1Slot + 8]) == Array("VSSUPER1".utf8))
        bytes.replaceSubrange(v1Slot + 20 + 8 ..< v1Slot + 20 + 16, with: [0, 0, 0, 0, 0, 0, 1, 0])  // sequence 2^48
        let opened = try VariableLog.open(device: MemoryFlash(bytes: bytes), crypto: ReadableSealing(), volumeKey: Self.volumeKey,
                                          binding: Self.binding)
        #expect(opened.storeVersion == .masterKey && opened.live.count == 1)
    }
}
