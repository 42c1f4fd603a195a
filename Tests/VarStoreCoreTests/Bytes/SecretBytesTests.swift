import Testing
@testable import VarStoreCore

/// Key material is wiped where it lies (spec/threat-model.md, "Keys in memory").
@Suite struct SecretBytesTests {
    static let key: [UInt8] = (0 ..< 64).map { UInt8($0) &+ 0xA0 }

    @Test func wipeZeroesTheBufferTheCryptoWasGiven() {
        // The buffer a crypto call reads through `bytes` is the one that is zeroed, not a copy
        // made for the occasion (which would leave the key where it was).
        let secret = SecretBytes(Self.key.map { $0 })
        let address = secret.bytes.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        secret.wipe()
        #expect(secret.bytes.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } == address)
        #expect(secret.bytes == [UInt8](repeating: 0, count: 64))
    }

    @Test func aHolderOfTheBytesNeverFindsItsKeyZeroedUnderIt() {
        // Someone who kept `bytes` (against the advice) keeps a working key: wiping writes to a
        // buffer of the SecretBytes' own rather than into a value another owner relies on.
        let secret = SecretBytes(Self.key.map { $0 })
        let kept = secret.bytes
        secret.wipe()
        #expect(kept == Self.key)
        #expect(secret.bytes == [UInt8](repeating: 0, count: 64))
    }

    @Test func zeroClearsAShortLivedBufferInPlace() {
        var scratch = Self.key.map { $0 }
        let address = scratch.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        SecretBytes.zero(&scratch)
        #expect(scratch.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } == address)
        #expect(scratch.allSatisfy { $0 == 0 } && scratch.count == 64)
    }
}
