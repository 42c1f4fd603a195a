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

    func superblockAAD(_ slot: Int) -> [UInt8] { Self.superblockMagic + binding + [UInt8(slot)] }

    func writeSuperblock(_ superblock: Superblock, slot: Int) throws(StorageError) {
        var plain: [UInt8] = []
        LittleEndian.append(UInt32(1), to: &plain)
        LittleEndian.append(UInt32(0), to: &plain)
        LittleEndian.append(superblock.sequence, to: &plain)
        LittleEndian.append(superblock.logSectors, to: &plain)
        LittleEndian.append(superblock.checkpointSector, to: &plain)
        LittleEndian.append(superblock.checkpointGeneration, to: &plain)
        plain += superblock.chainDigest
        guard let nonce = crypto.randomBytes(12) else { throw .noRandomness }
        guard let sealed = crypto.sealAES256GCM(key: keys.superblock.bytes, nonce: nonce, additionalData: superblockAAD(slot),
                                                plaintext: plain) else { throw .invalidGeometry("sealing failed") }
        var sector = Self.superblockMagic + nonce + sealed
        sector += [UInt8](repeating: 0, count: Self.sectorBytes - sector.count)
        try writeSectors(sector, atSegmentSector: UInt64(slot))
    }

    func readSuperblock(slot: Int) throws(StorageError) -> Superblock? {
        let sector = try readSectors(1, atSegmentSector: UInt64(slot))
        guard Array(sector[0..<8]) == Self.superblockMagic,
              let plain = crypto.openAES256GCM(key: keys.superblock.bytes, nonce: Array(sector[8..<20]),
                                               additionalData: superblockAAD(slot), sealed: Array(sector[20..<(20 + 72 + 16)])),
              plain.count == 72, LittleEndian.load(UInt32.self, from: plain, at: 0) == 1,
              let sequence = LittleEndian.load(UInt64.self, from: plain, at: 8),
              let sectors = LittleEndian.load(UInt64.self, from: plain, at: 16),
              let checkpoint = LittleEndian.load(UInt64.self, from: plain, at: 24),
              let checkpointGeneration = LittleEndian.load(UInt64.self, from: plain, at: 32),
              checkpointGeneration >= 1, checkpointGeneration < Self.generationLimit,
              sequence < Self.generationLimit else { return nil }
        return Superblock(sequence: sequence, logSectors: sectors, checkpointSector: checkpoint,
                          checkpointGeneration: checkpointGeneration, chainDigest: Array(plain[40..<72]))
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
