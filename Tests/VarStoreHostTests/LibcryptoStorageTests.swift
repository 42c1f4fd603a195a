import Testing
@testable import VarStoreCore
@testable import VarStoreCrypto

/// The storage primitives libcrypto gives the core, where they are more than one libcrypto call:
/// the prepared AES-256-GCM and XTS keys, SHA-256 over parts. Each is held to what it replaces
/// or joins: a fresh context per call, SHA-256 of the joined bytes.
@Suite struct LibcryptoStorageTests {
    let crypto = Libcrypto()

    static func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index ..< next], radix: 16)!)
            index = next
        }
        return bytes
    }

    /// Deterministic bytes for a case (SplitMix64).
    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0 ..< count).map { _ in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return UInt8(truncatingIfNeeded: z ^ (z >> 31))
        }
    }

    @Test func sha256OverPartsIsSHA256OfTheJoinedBytes() {
        let a = Self.bytes(17, seed: 1), b = Self.bytes(32, seed: 2), c = Self.bytes(36_864, seed: 3)
        #expect(crypto.sha256(concatenating: [a[...], b[...], c[100 ..< 5000]]) == crypto.sha256(a + b + Array(c[100 ..< 5000])))
        #expect(crypto.sha256(concatenating: [[], a[...], []]) == crypto.sha256(a))
        #expect(crypto.sha256(concatenating: []) == crypto.sha256([]))
    }

    /// One prepared key seals and opens in any order, and after a tag that fails, exactly as a
    /// fresh context for each call does.
    @Test func aPreparedGCMKeyIsAFreshContextEveryTime() throws {
        let key = Self.bytes(32, seed: 9)
        let prepared = try #require(crypto.prepareAES256GCM(key: key))
        for round in 0 ..< 40 {
            let nonce = Self.bytes(12, seed: UInt64(round) + 100)
            let aad = Self.bytes(round % 3 == 0 ? 0 : 44 + round, seed: UInt64(round) + 200)
            let plain = Self.bytes([0, 1, 16, 32, 432, 4096, 36_784][round % 7], seed: UInt64(round) + 300)
            let fresh = try #require(crypto.sealAES256GCM(key: key, nonce: nonce, additionalData: aad, plaintext: plain))
            let sealed = try #require(crypto.sealAES256GCM(prepared: prepared, nonce: nonce[...], additionalData: aad[...],
                                                             plaintext: plain[...]))
            #expect(sealed == fresh)
            // Opened from inside a larger buffer, as replay opens records where they lie.
            let buffer = [0xEE] + nonce + aad + sealed + [0xEE]
            let opened = crypto.openAES256GCM(prepared: prepared, nonce: buffer[1 ..< 13], additionalData: buffer[13 ..< 13 + aad.count],
                                              sealed: buffer[(13 + aad.count) ..< (buffer.count - 1)])
            #expect(opened == plain)
            // A flipped bit anywhere fails, and the context is still good afterwards.
            var tampered = sealed
            tampered[(round * 7) % tampered.count] ^= 0x10
            #expect(crypto.openAES256GCM(prepared: prepared, nonce: nonce[...], additionalData: aad[...], sealed: tampered[...]) == nil)
            var otherAAD = aad + [1]
            #expect(crypto.openAES256GCM(prepared: prepared, nonce: nonce[...], additionalData: otherAAD[...], sealed: sealed[...]) == nil)
            otherAAD.removeAll()
            #expect(crypto.openAES256GCM(key: key, nonce: nonce, additionalData: aad, sealed: sealed) == plain)
        }
        #expect(crypto.prepareAES256GCM(key: [UInt8](repeating: 1, count: 16)) == nil)
        #expect(crypto.openAES256GCM(prepared: prepared, nonce: [1, 2, 3][...], additionalData: [][...], sealed: [UInt8](repeating: 0, count: 16)[...]) == nil)
        #expect(crypto.openAES256GCM(prepared: prepared, nonce: Self.bytes(12, seed: 1)[...], additionalData: [][...], sealed: [1, 2][...]) == nil)
    }

    /// The prepared XTS key gives what a fresh context gives, in both directions, for both key
    /// sizes, interleaved.
    @Test(arguments: [32, 64])
    func aPreparedXTSKeyIsAFreshContextEveryTime(_ keyBytes: Int) throws {
        let key = Self.bytes(keyBytes, seed: UInt64(keyBytes))
        let prepared = try #require(crypto.prepareAESXTS(key: key))
        for round in 0 ..< 12 {
            let sectors = [1, 2, 64, 3][round % 4]
            let first = UInt64(round) * 1_000_003
            let plain = Self.bytes(sectors * 512, seed: UInt64(round) + 7)
            let fresh = try #require(crypto.aesXTS(encrypt: true, key: key, firstSector: first, sectorBytes: 512, data: plain))
            let cipher = try #require(crypto.aesXTS(encrypt: true, prepared: prepared, firstSector: first, sectorBytes: 512, data: plain))
            #expect(cipher == fresh && cipher != plain)
            #expect(crypto.aesXTS(encrypt: false, prepared: prepared, firstSector: first, sectorBytes: 512, data: cipher) == plain)
            #expect(crypto.aesXTS(encrypt: false, key: key, firstSector: first, sectorBytes: 512, data: cipher) == plain)
        }
        #expect(crypto.prepareAESXTS(key: [UInt8](repeating: 1, count: 48)) == nil)
        #expect(crypto.aesXTS(encrypt: false, prepared: prepared, firstSector: 0, sectorBytes: 512, data: [UInt8](repeating: 0, count: 700)) == nil)
        #expect(crypto.aesXTS(encrypt: false, prepared: prepared, firstSector: 0, sectorBytes: 512, data: []) == [])
    }
}

