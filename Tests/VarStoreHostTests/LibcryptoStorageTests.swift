import CLibcrypto
import Testing
@testable import VarStoreCore
@testable import VarStoreCrypto

/// The storage primitives libcrypto gives the core, where they are more than one libcrypto call:
/// PBKDF2 built on digest contexts, the prepared AES-256-GCM and XTS keys, SHA-256 over parts.
/// Each is held to what it replaces or joins: libcrypto's own PKCS5_PBKDF2_HMAC, a fresh context
/// per call, SHA-256 of the joined bytes.
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

    /// libcrypto's own PBKDF2, what `Libcrypto.pbkdf2` replaced.
    static func reference(_ hash: DigestAlgorithm, password: [UInt8], salt: [UInt8], iterations: UInt32, count: Int) -> [UInt8] {
        let md: OpaquePointer?
        switch hash {
        case .sha256: md = EVP_sha256()
        case .sha384: md = EVP_sha384()
        case .sha512: md = EVP_sha512()
        }
        var out = [UInt8](repeating: 0, count: count)
        let ok = password.withUnsafeBufferPointer { pw in
            UnsafeRawPointer(pw.baseAddress!).withMemoryRebound(to: CChar.self, capacity: pw.count) { chars in
                PKCS5_PBKDF2_HMAC(chars, Int32(pw.count), salt, Int32(salt.count), Int32(iterations), md, Int32(count), &out)
            }
        }
        return ok == 1 ? out : []
    }

    @Test func pbkdf2MatchesPublishedVectors() {
        // RFC 7914 §11 (PBKDF2-HMAC-SHA256).
        #expect(crypto.pbkdf2(.sha256, password: Array("passwd".utf8), salt: Array("salt".utf8), iterations: 1, count: 64)
            == Self.hex("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"))
        #expect(crypto.pbkdf2(.sha256, password: Array("Password".utf8), salt: Array("NaCl".utf8), iterations: 80000, count: 64)
            == Self.hex("4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"))
        // PBKDF2-HMAC-SHA512 and -SHA384 of "password"/"salt" (as Python's hashlib gives them).
        #expect(crypto.pbkdf2(.sha512, password: Array("password".utf8), salt: Array("salt".utf8), iterations: 1, count: 64)
            == Self.hex("867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce"))
        #expect(crypto.pbkdf2(.sha384, password: Array("password".utf8), salt: Array("salt".utf8), iterations: 2, count: 48)
            == Self.hex("54f775c6d790f21930459162fc535dbf04a939185127016a04176a0730c6f1f4fb48832ad1261baadd2cedd50814b1c8"))
    }

    /// Passwords around each hash's block size (a longer HMAC key is hashed first), empty and
    /// long salts, outputs of one, several and partial blocks, one and many iterations.
    @Test(arguments: [DigestAlgorithm.sha256, .sha384, .sha512])
    func pbkdf2AgreesWithLibcryptosOwn(_ hash: DigestAlgorithm) {
        var seed: UInt64 = 1
        for passwordBytes in [1, 20, 32, 63, 64, 65, 127, 128, 129, 300] {
            for (saltBytes, iterations, count) in [(0, 1, 32), (16, 2, 1), (32, 3, 48), (64, 1000, 64), (7, 17, 100), (200, 5, 129)] {
                seed += 1
                let password = Self.bytes(passwordBytes, seed: seed), salt = Self.bytes(saltBytes, seed: seed << 32)
                let ours = crypto.pbkdf2(hash, password: password, salt: salt, iterations: UInt32(iterations), count: count)
                let theirs = Self.reference(hash, password: password, salt: salt, iterations: UInt32(iterations), count: count)
                #expect(theirs.count == count)
                #expect(ours == theirs, "\(hash) password \(passwordBytes) salt \(saltBytes) iterations \(iterations) count \(count)")
            }
        }
    }

    @Test func pbkdf2RefusesWhatItRefusedBefore() {
        #expect(crypto.pbkdf2(.sha256, password: [], salt: [1], iterations: 1, count: 32) == nil)
        #expect(crypto.pbkdf2(.sha256, password: [1], salt: [1], iterations: 0, count: 32) == nil)
        #expect(crypto.pbkdf2(.sha256, password: [1], salt: [1], iterations: 1, count: 0) == nil)
        #expect(crypto.pbkdf2(.sha256, password: [1], salt: [1], iterations: 1, count: 1025) == nil)
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

/// libcrypto with nothing prepared and nothing hashed in parts: the protocol's default
/// implementations, what a platform that adds none of its own runs.
struct UnpreparedLibcrypto: StorageCrypto {
    let real = Libcrypto()
    func sha256(_ data: [UInt8]) -> [UInt8] { real.sha256(data) }
    func sha512(_ data: [UInt8]) -> [UInt8] { real.sha512(data) }
    func hkdfSHA256(key: [UInt8], salt: [UInt8], info: [UInt8], count: Int) -> [UInt8] {
        real.hkdfSHA256(key: key, salt: salt, info: info, count: count)
    }
    func pbkdf2(_ hash: DigestAlgorithm, password: [UInt8], salt: [UInt8], iterations: UInt32, count: Int) -> [UInt8]? {
        real.pbkdf2(hash, password: password, salt: salt, iterations: iterations, count: count)
    }
    func sealAES256GCM(key: [UInt8], nonce: [UInt8], additionalData: [UInt8], plaintext: [UInt8]) -> [UInt8]? {
        real.sealAES256GCM(key: key, nonce: nonce, additionalData: additionalData, plaintext: plaintext)
    }
    func openAES256GCM(key: [UInt8], nonce: [UInt8], additionalData: [UInt8], sealed: [UInt8]) -> [UInt8]? {
        real.openAES256GCM(key: key, nonce: nonce, additionalData: additionalData, sealed: sealed)
    }
    func aesXTS(encrypt: Bool, key: [UInt8], sector: UInt64, data: [UInt8]) -> [UInt8]? {
        real.aesXTS(encrypt: encrypt, key: key, sector: sector, data: data)
    }
    func randomBytes(_ count: Int) -> [UInt8]? { real.randomBytes(count) }
}

@Suite struct PreparedKeyStoreTests {
    static let key = [UInt8](repeating: 0x5A, count: 64)
    static let binding = Array("3F1B2A4C-5D6E-4F70-8192-A3B4C5D6E7F8".utf8)

    static func variable(_ index: Int) -> Variable {
        Variable(key: VariableKey(guid: .globalVariable, name: VariableName("P\(index % 37)")!),
                 attributes: [.nonVolatile, .bootServiceAccess], data: [UInt8](repeating: UInt8(index & 0xFF), count: index % 300 + 1))
    }

    /// Writes a store that wrapped and compacted with `Writer`, opens it with `Reader`.
    static func roundTrip<Writer: StorageCrypto, Reader: StorageCrypto>(_ writer: Writer, _ reader: Reader) throws {
        let log = try VariableLog.format(device: MemoryFlash(size: 128 << 10), crypto: writer, volumeKey: key, binding: binding)
        for index in 0 ..< 300 { try log.commit([.put(variable(index))]) }
        let reopened = try VariableLog.open(device: MemoryFlash(bytes: log.device.bytes), crypto: reader, volumeKey: key,
                                            binding: binding)
        #expect(reopened.live.all == log.live.all)
        #expect(reopened.generation == log.generation && reopened.digest == log.digest)
        try reopened.commit([.put(variable(1000))])
        let again = try VariableLog.open(device: MemoryFlash(bytes: reopened.device.bytes), crypto: writer, volumeKey: key,
                                         binding: binding)
        #expect(again.live.all == reopened.live.all && again.digest == reopened.digest)
    }

    @Test func aStoreReadsTheSameWithPreparedKeysAndWithout() throws {
        try Self.roundTrip(Libcrypto(), UnpreparedLibcrypto())
        try Self.roundTrip(UnpreparedLibcrypto(), Libcrypto())
    }
}
