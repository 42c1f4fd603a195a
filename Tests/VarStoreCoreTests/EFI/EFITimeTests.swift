import Testing
@testable import VarStoreCore

@Suite struct EFITimeTests {
    @Test func roundTripsAllSixteenBytes() throws {
        let raw: [UInt8] = [0xEA, 0x07, 11, 27, 23, 59, 58, 1, 0x10, 0x20, 0x30, 0x40, 0xFF, 0xFF, 1, 2]
        let time = try #require(EFITime(bytes: raw, at: 0))
        #expect(time.year == 2026 && time.month == 11 && time.day == 27)
        #expect(time.timeZone == -1 && time.nanosecond == 0x4030_2010)
        #expect(time.bytes == raw)
        #expect(EFITime(bytes: raw, at: 1) == nil)
    }
}
