/// The two sealed superblock slots that name the newest snapshot, and sector access to the
/// segment (spec/storage.md, "Superblock (one sector)").
extension VariableLog {
    struct Superblock {
        var sequence: UInt64
        var logSectors: UInt64
        var checkpointSector: UInt64
        var checkpointGeneration: UInt64
        var chainDigest: [UInt8]
    }

    static var superblockMagic: [UInt8] { Array("VSSUPER1".utf8) }
    static var superblockMagicV2: [UInt8] { Array("VSSUPER2".utf8) }
    /// Bytes of the sealed plaintext, and of the sector before the nonce in each version.
    static var superblockPlainBytes: Int { 72 }
    static func superblockPrefixBytes(_ version: StoreVersion) -> Int { version == .masterKey ? 16 + masterKeyBytes : 8 }

    /// Version 1: magic ‖ binding ‖ slot. Version 2: magic, version and reserved field ‖
    /// binding ‖ slot (the master key is the sealing key's input, so it needs no AAD).
    func superblockAAD(_ slot: Int, prefix: [UInt8], keys: Keys) -> [UInt8] { prefix + keys.binding + [UInt8(slot)] }

    func writeSuperblock(_ superblock: Superblock, slot: Int) throws(StorageError) {
        let version = keys.version
        var plain: [UInt8] = []
        LittleEndian.append(version.rawValue, to: &plain)
        LittleEndian.append(UInt32(0), to: &plain)
        LittleEndian.append(superblock.sequence, to: &plain)
        LittleEndian.append(superblock.logSectors, to: &plain)
        LittleEndian.append(superblock.checkpointSector, to: &plain)
        LittleEndian.append(superblock.checkpointGeneration, to: &plain)
        plain += superblock.chainDigest
        var sector: [UInt8]
        var authenticated: [UInt8]
        switch version {
        case .volumeKeyDerived:
            sector = Self.superblockMagic
            authenticated = sector
        case .masterKey:
            sector = Self.superblockMagicV2
            LittleEndian.append(version.rawValue, to: &sector)
            LittleEndian.append(UInt32(0), to: &sector)
            authenticated = sector
            sector += keys.master.bytes
        }
        guard let nonce = crypto.randomBytes(12) else { throw .noRandomness }
        guard let superblockKey = keys.superblock,
              let sealed = crypto.sealAES256GCM(prepared: superblockKey, nonce: nonce[...],
                                                additionalData: superblockAAD(slot, prefix: authenticated, keys: keys)[...],
                                                plaintext: plain[...]) else { throw .invalidGeometry("sealing failed") }
        sector += nonce + sealed
        sector += [UInt8](repeating: 0, count: Self.sectorBytes - sector.count)
        SecretBytes.zero(&plain)
        try writeSectors(sector, atSegmentSector: UInt64(slot))
        SecretBytes.zero(&sector)
    }

    /// The superblock in `slot` if it authenticates — a version-2 one under keys from the
    /// master key it carries, a version-1 one under `legacyKeys()` (derived only when a slot
    /// needs them) — with those keys; and the version its magic names when it does not
    /// authenticate (so a failed open can say why). A version-2 slot that carries the master
    /// key of `known` (the other slot's keys: both slots hold the same one) takes those keys
    /// rather than deriving them again.
    func readSuperblock(slot: Int, legacyKeys: () -> Keys, known: Keys? = nil) throws(StorageError)
        -> (superblock: (superblock: Superblock, keys: Keys)?, magic: StoreVersion?) {
        var sector = try readSectors(1, atSegmentSector: UInt64(slot))
        defer { SecretBytes.zero(&sector) }
        guard sector.count == Self.sectorBytes else { return (nil, nil) }
        let magic = Array(sector[0..<8])
        let version: StoreVersion
        let keys: Keys
        if magic == Self.superblockMagic {
            version = .volumeKeyDerived
            keys = legacyKeys()
        } else if magic == Self.superblockMagicV2, LittleEndian.load(UInt32.self, from: sector, at: 8) == StoreVersion.masterKey.rawValue,
                  LittleEndian.load(UInt32.self, from: sector, at: 12) == 0 {
            version = .masterKey
            let master = sector[16 ..< 16 + Self.masterKeyBytes]
            if let known, known.version == .masterKey, Self.sameSecret(known.master.bytes, master) {
                keys = known
            } else {
                keys = Self.keys(crypto, masterKey: Array(master), binding: binding)
            }
        } else {
            return (nil, nil)
        }
        let prefix = Self.superblockPrefixBytes(version)
        let authenticated = Array(sector[0 ..< (version == .masterKey ? 16 : 8)])
        let sealedEnd = prefix + 12 + Self.superblockPlainBytes + 16
        guard let superblockKey = keys.superblock,
              let plain = crypto.openAES256GCM(prepared: superblockKey, nonce: sector[prefix ..< prefix + 12],
                                               additionalData: superblockAAD(slot, prefix: authenticated, keys: keys)[...],
                                               sealed: sector[(prefix + 12) ..< sealedEnd]) else { return (nil, version) }
        // Authentic but out of range: only a key holder writes that, so it names no lost key.
        guard plain.count == Self.superblockPlainBytes,
              LittleEndian.load(UInt32.self, from: plain, at: 0) == version.rawValue,
              let sequence = LittleEndian.load(UInt64.self, from: plain, at: 8),
              let sectors = LittleEndian.load(UInt64.self, from: plain, at: 16),
              let checkpoint = LittleEndian.load(UInt64.self, from: plain, at: 24),
              let checkpointGeneration = LittleEndian.load(UInt64.self, from: plain, at: 32),
              checkpointGeneration >= 1, checkpointGeneration < Self.generationLimit,
              sequence < Self.generationLimit else { return (nil, nil) }
        let superblock = Superblock(sequence: sequence, logSectors: sectors, checkpointSector: checkpoint,
                                    checkpointGeneration: checkpointGeneration, chainDigest: Array(plain[40..<72]))
        return ((superblock, keys), version)
    }

    /// Whether two keys are equal, in time that does not depend on where they differ.
    static func sameSecret(_ a: [UInt8], _ b: ArraySlice<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }

    // MARK: Device access

    func writeSectors(_ bytes: [UInt8], atSegmentSector sector: UInt64) throws(StorageError) {
        do {
            try device.write(bytes, at: sector * UInt64(Self.sectorBytes))
        } catch {
            throw .flash(error)
        }
    }

    func readSectors(_ count: UInt64, atSegmentSector sector: UInt64) throws(StorageError) -> [UInt8] {
        do {
            return try device.read(at: sector * UInt64(Self.sectorBytes), count: Int(count) * Self.sectorBytes)
        } catch {
            throw .flash(error)
        }
    }

    func flush() throws(StorageError) {
        do {
            try device.flush()
        } catch {
            throw .flash(error)
        }
    }
}
