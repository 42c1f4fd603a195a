/// The LUKS2 data segment seen in plaintext: each 512-byte sector is encrypted exactly as
/// dm-crypt's aes-xts-plain64 does it (tweak = sector number within the segment, iv_tweak 0),
/// so `cryptsetup open` on the same image shows the same bytes.
///
/// Only whole, aligned sectors are read or written; the store above never needs less.
public struct EncryptedSegment<Device: Flash, Crypto: StorageCrypto>: Flash {
    public static var sectorBytes: Int { 512 }

    public var device: Device
    let crypto: Crypto
    /// Held for the life of the segment (every sector needs it) and wiped with it.
    let volumeKey: SecretBytes
    /// The volume key prepared for XTS once (both directions), not for every read or write.
    let xtsKey: Crypto.PreparedAESXTSKey
    let offset: UInt64
    public let size: UInt64

    /// Opens the segment `header` describes, after checking `volumeKey` against its digest.
    public init(device: Device, header: LUKS2Header, volumeKey: SecretBytes, crypto: Crypto) throws(StorageError) {
        guard header.accepts(volumeKey: volumeKey.bytes, crypto: crypto) else { throw .wrongKey }
        // Records are written in 512-byte sectors; a device whose atomic unit is larger could
        // tear durable neighbours of a new record, and one that cannot write 512 bytes at all
        // cannot hold them.
        guard device.sectorSize > 0, device.sectorSize <= Self.sectorBytes, Self.sectorBytes % device.sectorSize == 0 else {
            throw .invalidGeometry("the flash's write unit must divide 512 bytes")
        }
        guard device.contains(offset: header.segmentOffset, count: 0),
              header.segmentSize <= device.size - header.segmentOffset else {
            throw .invalidGeometry("the data segment lies outside the image")
        }
        guard let xtsKey = crypto.prepareAESXTS(key: volumeKey.bytes) else { throw .flash(.ioError) }
        self.device = device
        self.crypto = crypto
        self.volumeKey = volumeKey
        self.xtsKey = xtsKey
        offset = header.segmentOffset
        size = header.segmentSize
    }

    public var sectorSize: Int { Self.sectorBytes }

    private func aligned(_ at: UInt64, _ count: Int) -> Bool {
        at % UInt64(Self.sectorBytes) == 0 && count % Self.sectorBytes == 0 && contains(offset: at, count: count)
    }

    public mutating func read(at position: UInt64, count: Int) throws(FlashError) -> [UInt8] {
        guard aligned(position, count) else { throw .outOfRange }
        let cipher = try device.read(at: offset + position, count: count)
        // One call per run of sectors, with the key the platform set up when the segment opened.
        guard let plain = crypto.aesXTS(encrypt: false, prepared: xtsKey, firstSector: position / UInt64(Self.sectorBytes),
                                        sectorBytes: Self.sectorBytes, data: cipher), plain.count == count else { throw .ioError }
        return plain
    }

    public mutating func write(_ bytes: [UInt8], at position: UInt64) throws(FlashError) {
        guard aligned(position, bytes.count) else { throw .outOfRange }
        guard let cipher = crypto.aesXTS(encrypt: true, prepared: xtsKey, firstSector: position / UInt64(Self.sectorBytes),
                                         sectorBytes: Self.sectorBytes, data: bytes), cipher.count == bytes.count else { throw .ioError }
        try device.write(cipher, at: offset + position)
    }

    public mutating func flush() throws(FlashError) { try device.flush() }
}
