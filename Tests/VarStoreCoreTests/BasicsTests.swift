import Testing
@testable import VarStoreCore

@Suite struct EFIGUIDTests {
    @Test func wireOrderIsMixedEndian() {
        #expect(EFIGUID.globalVariable.wireBytes == WireGUID.global)
        #expect(EFIGUID.smmVariableProtocol.wireBytes == WireGUID.smmVariable)
        #expect(EFIGUID.exitBootServicesEvent.wireBytes == WireGUID.exitBootServices)
    }

    @Test func canonicalTextIsLowercase() {
        #expect(EFIGUID.globalVariable.text == "8be4df61-93ca-11d2-aa0d-00e098032b8c")
        #expect(EFIGUID(text: "8BE4DF61-93CA-11D2-AA0D-00E098032B8C") == .globalVariable)
        #expect(EFIGUID(wire: WireGUID.global, at: 0) == .globalVariable)
    }

    @Test(arguments: ["", "8be4df61-93ca-11d2-aa0d-00e098032b8", "8be4df61x93ca-11d2-aa0d-00e098032b8c",
                      "8be4df61-93ca-11d2-aa0d-00e098032b8g", "8be4df61-93ca-11d2-aa0d-00e098032b8c0"])
    func malformedTextIsRejected(_ text: String) {
        #expect(EFIGUID(text: text) == nil)
    }

    @Test func shortWireIsRejected() {
        #expect(EFIGUID(wire: [UInt8](repeating: 0, count: 15), at: 0) == nil)
        #expect(EFIGUID(wire: [UInt8](repeating: 0, count: 16), at: 1) == nil)
        #expect(EFIGUID(wire: [UInt8](repeating: 0, count: 16), at: -1) == nil)
    }
}

@Suite struct EFIStatusTests {
    @Test func errorsCarryTheHighBit() {
        #expect(EFIStatus.notFound.rawValue == 0x8000_0000_0000_000E)
        #expect(EFIStatus.securityViolation.rawValue == 0x8000_0000_0000_001A)
        #expect(EFIStatus.success.isError == false)
        #expect(EFIStatus.writeProtected.isError)
        #expect(EFIStatus.bufferTooSmall.name == "EFI_BUFFER_TOO_SMALL")
    }
}

@Suite struct VariableNameTests {
    @Test func parsesUpToTheFirstNul() throws {
        let bytes = ucs2("Boot0001") + [0x41, 0x00, 0x00, 0x00]
        let name = try VariableName.parse(bytes, at: 0, size: UInt64(bytes.count)).get()
        #expect(name.text == "Boot0001")
        #expect(name.wireSize == 18)
        #expect(name.wireBytes == ucs2("Boot0001"))
    }

    @Test func oddOrTinySizesAreRejected() {
        #expect(VariableName.parse(ucs2("A"), at: 0, size: 3) == .failure(.badSize))
        #expect(VariableName.parse(ucs2("A"), at: 0, size: 0) == .failure(.badSize))
        #expect(VariableName.parse(ucs2("A"), at: 0, size: 1) == .failure(.badSize))
    }

    @Test func unterminatedNamesAreRejected() {
        let bytes = ucs2("AB")
        #expect(VariableName.parse(bytes, at: 0, size: 4) == .failure(.notTerminated))
        // A size larger than the buffer cannot be read past.
        #expect(VariableName.parse(bytes, at: 0, size: 8) == .failure(.notTerminated))
        #expect(VariableName.parse(bytes, at: 0, size: UInt64.max - 1) == .failure(.notTerminated))
    }

    @Test func surrogatesAreRejected() {
        let bytes = le16(0x0041) + le16(0xD800) + [0, 0]
        #expect(VariableName.parse(bytes, at: 0, size: 6) == .failure(.surrogate))
        #expect(VariableName("\u{1F600}") == nil)
    }

    @Test func emptyNameIsOneNul() throws {
        #expect(try VariableName.parse([0, 0], at: 0, size: 2).get().isEmpty)
    }
}

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

@Suite struct CRC32CTests {
    @Test func knownAnswer() {
        // The CRC-32C check value (spec/mmio.md: CRC-32C/Castagnoli, check value 0xE3069283).
        #expect(CRC32C().checksum(Array("123456789".utf8), count: 9) == 0xE306_9283)
        #expect(CRC32C().checksum([], count: 0) == 0)
    }
}

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
