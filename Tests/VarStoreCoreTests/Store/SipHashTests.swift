import Testing
@testable import VarStoreCore

/// SipHash against the reference vectors: the paper's SipHash-2-4 (Aumasson and Bernstein,
/// "SipHash: a fast short-input PRF", appendix A, and the reference implementation's table),
/// key 00 01 … 0F and messages 00 01 … (n−1). The index runs the same code with 1-3 rounds.
@Suite struct SipHashTests {
    let reference = SipHash<SipHash24>(k0: 0x0706_0504_0302_0100, k1: 0x0F0E_0D0C_0B0A_0908)

    func message(_ count: Int) -> [UInt8] { (0 ..< count).map { UInt8($0) } }

    @Test func paperVectors() {
        // The empty message, and the paper's worked example (15 bytes).
        #expect(message(0).withUnsafeBytes { reference.hash(words: nil, bytes: $0) } == 0x726F_DB47_DD0E_0E31)
        #expect(message(15).withUnsafeBytes { reference.hash(words: nil, bytes: $0) } == 0xA129_CA61_49BE_45E5)
    }

    @Test func twoLeadingWordsHashAsTheirBytes() {
        // The index passes a GUID as two words ahead of the name's bytes: the same message.
        let bytes = message(37)
        let whole = bytes.withUnsafeBytes { reference.hash(words: nil, bytes: $0) }
        let split = Array(bytes[16...]).withUnsafeBytes {
            reference.hash(words: (0x0706_0504_0302_0100, 0x0F0E_0D0C_0B0A_0908), bytes: $0)
        }
        #expect(whole == split)
    }

    @Test func everyLengthAndEveryKeyBitMatters() {
        let index = SipHash<SipHash13>(k0: 1, k1: 2)
        var seen = Set<UInt64>()
        for count in 0 ..< 40 { seen.insert(message(count).withUnsafeBytes { index.hash(words: nil, bytes: $0) }) }
        #expect(seen.count == 40)
        let other = SipHash<SipHash13>(k0: 1 ^ (1 << 63), k1: 2)
        #expect(message(8).withUnsafeBytes { index.hash(words: nil, bytes: $0) }
                != message(8).withUnsafeBytes { other.hash(words: nil, bytes: $0) })
    }
}
