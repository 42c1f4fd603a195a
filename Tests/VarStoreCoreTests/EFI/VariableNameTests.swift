import Testing
@testable import VarStoreCore

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
