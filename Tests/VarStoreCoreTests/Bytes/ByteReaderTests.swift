import Testing
@testable import VarStoreCore

@Suite struct ByteReaderTests {
    @Test func shortReadsReturnNil() {
        var reader = ByteReader([1, 2, 3], start: 0, end: 3)
        #expect(reader.read(UInt16.self) == 0x0201)
        #expect(reader.read(UInt16.self) == nil)
        #expect(reader.read(UInt8.self) == 3)
        #expect(reader.read(UInt8.self) == nil)
        #expect(LittleEndian.load(UInt64.self, from: [1, 2, 3], at: 0) == nil)
        #expect(LittleEndian.load(UInt32.self, from: [1, 2, 3, 4], at: Int.max) == nil)
        var bytes: [UInt8] = [0, 0]
        #expect(LittleEndian.store(UInt32(1), into: &bytes, at: 0) == false)
        #expect(bytes == [0, 0])
    }

    @Test func checkedAdditionReportsOverflow() {
        #expect(CheckedSize.add(UInt64.max, 1) == nil)
        #expect(CheckedSize.add(UInt64.max - 24, 24) == UInt64.max)
        #expect(CheckedSize.add(52, UInt64.max - 60, 9) == nil)
    }
}
