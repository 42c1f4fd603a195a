import Foundation
import Testing
@testable import VarStoreCore
import VarStoreCrypto
@testable import VarStoreHost
@testable import VarStoreTestSupport

/// An image written before store version 2 (Tests/Vectors/images/v1-store.img, made by the
/// code of commit 01632ba): it opens as it was, read-write, and upgrades crash-safely
/// (spec/storage.md, "Store versions").
@Suite struct StoreUpgradeTests {
    let directory: URL
    static let keyFile = [UInt8](try! Data(contentsOf: TestVectors.url("images/v1-store.key")))
    static let volumeKey = [UInt8](try! Data(contentsOf: TestVectors.url("images/v1-store.volume-key")))
    static let expected = try! QEMUJSONStore.load(contentsOf: TestVectors.url("images/v1-store.json"))
    static let uuid = Array("4CEA20EB-9E42-4FE3-AEF4-3CF341DBBCF0".utf8)

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("varstore-upgrade-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// A private copy of the vector (it is never written).
    func copy() throws -> String {
        let path = directory.appendingPathComponent("v1.img").path
        try FileManager.default.copyItem(atPath: TestVectors.url("images/v1-store.img").path, toPath: path)
        return path
    }

    /// The vector's data segment in plaintext, as `cryptsetup open` shows it.
    static func plaintextSegment() throws -> [UInt8] {
        var flash = MemoryFlash(bytes: [UInt8](try Data(contentsOf: TestVectors.url("images/v1-store.img"))))
        let header = try LUKS2Header.read(from: &flash, crypto: Libcrypto())
        var segment = try EncryptedSegment(device: flash, header: header, volumeKey: SecretBytes(volumeKey), crypto: Libcrypto())
        return try segment.read(at: 0, count: Int(segment.size))
    }

    @Test func anImageWrittenBeforeStoreVersionTwoOpensAsItWas() throws {
        let path = try copy()
        #expect(try LUKS2Image.volumeKey(path: path, secret: Self.keyFile) == Self.volumeKey)
        let log = try LUKS2Image.openStore(path: path, volumeKey: Self.volumeKey)
        #expect(log.storeVersion == .volumeKeyDerived)
        #expect(log.live.all == Self.expected)
        #expect(log.generation == 7)
        #expect(Hex.string(log.digest) == "16dc70b407831856758009f914c3a124ffa6d2bf6bfc86e152ac6f8397fde733")
        // The core's own keyslot reader (an SVSM given the key file) reaches the same store.
        let flash = try FileFlash(path: path)
        let viaKeyslot = try EncryptedImage.open(flash, key: .keyslotSecret(SecretBytes(Self.keyFile)), crypto: Libcrypto())
        #expect(viaKeyslot.live.all == Self.expected && viaKeyslot.storeVersion == .volumeKeyDerived)
        // Reading wrote nothing.
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(contentsOf: TestVectors.url("images/v1-store.img")))
    }

    @Test func itsFirstWriteUpgradesItAndEveryVariableStays() throws {
        let path = try copy()
        let log = try LUKS2Image.openStore(path: path, volumeKey: Self.volumeKey)
        let added = Variable(key: VariableKey(guid: .globalVariable, name: VariableName("Added")!),
                             attributes: [.nonVolatile, .bootServiceAccess], data: [1])
        try log.commit([.put(added)])
        #expect(log.storeVersion == .masterKey)
        let reopened = try LUKS2Image.openStore(path: path, volumeKey: Self.volumeKey, minimumGeneration: 7)
        #expect(reopened.storeVersion == .masterKey)
        #expect(reopened.live.all == Self.expected + [added])
        #expect(reopened.generation == 9)
    }

    @Test func anUpgradeCutAtEveryWriteOpensWithTheSameVariables() throws {
        // The plaintext segment on a recording flash: every prefix of the upgrade's writes (each
        // write whole, torn after one byte, or half-way) must open as version 1 or version 2 with
        // exactly the vector's variables.
        let initial = FaultInjectingFlash(bytes: try Self.plaintextSegment())
        let log = try VariableLog.open(device: initial, crypto: Libcrypto(), volumeKey: Self.volumeKey, binding: Self.uuid)
        try log.upgrade()
        #expect(log.storeVersion == .masterKey)
        let events = log.device.events
        let superblockWrite = events.lastIndex { if case .write = $0 { return true } else { return false } } ?? 0
        for (index, event) in events.enumerated() {
            guard case .write(_, let bytes) = event else { continue }
            for torn in [0, 1, bytes.count / 2] {
                let image = FaultInjectingFlash.replay(events, onto: initial.durable, cut: index, tornBytes: torn)
                let opened = try VariableLog.open(device: MemoryFlash(bytes: image), crypto: Libcrypto(), volumeKey: Self.volumeKey,
                                                  binding: Self.uuid, minimumGeneration: 7)
                #expect(opened.live.all == Self.expected, "cut at event \(index), \(torn) bytes")
                // Only the superblock write, the last, can make it version 2 (torn, it may
                // already hold the whole sealed part, which ends at byte 148).
                if index < superblockWrite { #expect(opened.storeVersion == .volumeKeyDerived, "cut at event \(index)") }
            }
        }
        let whole = FaultInjectingFlash.replay(events, onto: initial.durable, cut: events.count)
        let upgraded = try VariableLog.open(device: MemoryFlash(bytes: whole), crypto: Libcrypto(), volumeKey: Self.volumeKey, binding: Self.uuid)
        #expect(upgraded.storeVersion == .masterKey && upgraded.live.all == Self.expected && upgraded.generation == 8)
        // Once upgraded, the volume key no longer matters (what a reencryption changes) ...
        let another = [UInt8](repeating: 0x5A, count: 64)
        let moved = try VariableLog.open(device: MemoryFlash(bytes: whole), crypto: Libcrypto(), volumeKey: another, binding: Self.uuid)
        #expect(moved.live.all == Self.expected)
        // ... while before, a changed volume key loses the store, and says so.
        #expect(throws: StorageError.storeKeyLost) {
            _ = try VariableLog.open(device: MemoryFlash(bytes: initial.durable), crypto: Libcrypto(), volumeKey: another, binding: Self.uuid)
        }
    }

    @Test func anUpgradeWhoseSuperblockWriteFailsLeavesVersionOne() throws {
        // The superblock write fails (the device dies there): the snapshot under the new keys
        // is durable but named by nothing, so the image reads as version 1 with every variable.
        var flaky = FaultInjectingFlash(bytes: try Self.plaintextSegment())
        let log = try VariableLog.open(device: flaky, crypto: Libcrypto(), volumeKey: Self.volumeKey, binding: Self.uuid)
        flaky = log.device
        // Count the writes an upgrade makes on a copy, then tear the last one (the superblock).
        let probe = try VariableLog.open(device: FaultInjectingFlash(bytes: flaky.current), crypto: Libcrypto(), volumeKey: Self.volumeKey,
                                         binding: Self.uuid)
        try probe.upgrade()
        let writes = probe.device.events.filter { if case .write = $0 { return true } else { return false } }.count
        log.device.tear = (write: writes - 1, byte: 0)
        #expect(throws: StorageError.self) { try log.upgrade() }
        let afterCut = try VariableLog.open(device: MemoryFlash(bytes: log.device.current), crypto: Libcrypto(), volumeKey: Self.volumeKey,
                                            binding: Self.uuid)
        #expect(afterCut.storeVersion == .volumeKeyDerived && afterCut.live.all == Self.expected)
    }
}
