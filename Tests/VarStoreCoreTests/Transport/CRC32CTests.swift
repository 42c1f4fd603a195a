import Testing
@testable import VarStoreCore

@Suite struct CRC32CTests {
    @Test func knownAnswer() {
        // The CRC-32C check value (spec/mmio.md: CRC-32C/Castagnoli, check value 0xE3069283).
        #expect(CRC32C().checksum(Array("123456789".utf8), count: 9) == 0xE306_9283)
        #expect(CRC32C().checksum([], count: 0) == 0)
    }
}
