/// CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, initial value and final XOR
/// 0xFFFFFFFF. The uefi-vars PIO mode guards each transfer with it (QEMU `crc32c`, edk2
/// `CalculateCrc32c`). Check value: "123456789" → 0xE3069283.
public struct CRC32C: Sendable {
    private let table: [UInt32]

    public init() {
        var table = [UInt32](repeating: 0, count: 256)
        for index in 0..<256 {
            var crc = UInt32(index)
            for _ in 0..<8 {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
            }
            table[index] = crc
        }
        self.table = table
    }

    public func checksum(_ bytes: [UInt8], count: Int) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for index in 0 ..< min(count, bytes.count) {
            crc = table[Int((crc ^ UInt32(bytes[index])) & 0xFF)] ^ (crc >> 8)
        }
        return crc ^ 0xFFFF_FFFF
    }
}
