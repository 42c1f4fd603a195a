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

    /// The check a lookup from request bytes makes gives parse's verdict on every input.
    @Test func validateAgreesWithParse() {
        let cases: [([UInt8], Int, UInt64)] = [
            (ucs2("Boot0001") + [0x41, 0x00], 0, 20), (ucs2("A"), 0, 3), (ucs2("A"), 0, 0), (ucs2("AB"), 0, 4),
            (ucs2("AB"), 0, 8), (ucs2("AB"), 0, UInt64.max - 1), (le16(0x0041) + le16(0xD800) + [0, 0], 0, 6),
            (le16(0xDFFF) + [0, 0], 0, 4), (le16(0xD7FF) + le16(0xE000) + [0, 0], 0, 6), ([0, 0], 0, 2),
            ([9, 9] + ucs2("X"), 2, 4), ([9, 9] + ucs2("X"), 3, 4), (ucs2("X"), -2, 4),
        ]
        for (bytes, offset, size) in cases {
            switch (VariableName.parse(bytes, at: offset, size: size), VariableName.validate(bytes, at: offset, size: size)) {
            case (.success(let name), .success(let range)):
                #expect(range.lowerBound == offset && Array(bytes[range]) == name.wireBytes.dropLast(2))
            case (.failure(let parsed), .failure(let validated)):
                #expect(parsed == validated)
            default:
                Issue.record("parse and validate disagree on \(bytes) at \(offset), size \(size)")
            }
        }
    }

    func encodes(_ name: VariableName, _ bytes: [UInt8]) -> Bool { name.isEncoded(by: bytes.span) }

    @Test func isEncodedByComparesEveryUnitAndTheLength() {
        let name = VariableName("Boot0001")!
        #expect(encodes(name, Array(ucs2("Boot0001").dropLast(2))))
        #expect(!encodes(name, Array(ucs2("Boot0002").dropLast(2))))
        #expect(!encodes(name, Array(ucs2("Boot000").dropLast(2))))
        #expect(!encodes(name, ucs2("Boot0001")))  // the terminator is not part of it
        // The same bytes read big-endian are other units.
        #expect(!encodes(VariableName(codeUnits: [0x4100])!, [0x41, 0x00]))
        #expect(encodes(VariableName(codeUnits: [0x0141])!, [0x41, 0x01]))
        #expect(encodes(VariableName.empty, [UInt8]()))
    }
}
