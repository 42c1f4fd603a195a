/// SipHash (Aumasson and Bernstein, 2012), the keyed hash the variable index uses for a
/// (GUID, name) pair: the same function Swift's `Hasher` computes (SipHash-1-3), written out
/// for this one input so that a lookup hashes in about a hundred instructions rather than the
/// three hundred and seventy `Hasher`'s general byte buffering costs for a GUID and a short
/// name — a GetVariable's largest single cost once the store was otherwise lean.
///
/// The key is what keeps a guest from choosing names that collide in the index: it is secret,
/// drawn per process from the runtime's random `Hasher` seed (`VariableStore.init`). The
/// round counts are a type parameter only so that the paper's SipHash-2-4 test vectors can
/// check the code (SipHashTests); the index uses 1-3, as `Hasher` does. (As constants of the
/// type, the rounds unroll.)
struct SipHash<Rounds: SipHashRounds> {
    /// The 128-bit key, as two little-endian words.
    let k0: UInt64
    let k1: UInt64

    /// The hash of `prefix` (whole 8-byte words, each already little-endian-loaded) followed
    /// by `bytes`: the message is the words' bytes and then `bytes`, as one byte string.
    func hash(words prefix: (UInt64, UInt64)?, bytes: UnsafeRawBufferPointer) -> UInt64 {
        var state = State(k0: k0, k1: k1)
        var length = 0
        if let prefix {
            absorb(prefix.0, into: &state)
            absorb(prefix.1, into: &state)
            length = 16
        }
        var offset = 0
        while bytes.count - offset >= 8 {
            absorb(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)), into: &state)
            offset += 8
        }
        // The last block: the remaining bytes, and the message length mod 256 in the top byte.
        length &+= bytes.count
        var last = UInt64(truncatingIfNeeded: length) << 56
        for index in offset ..< bytes.count {
            last |= UInt64(bytes[index]) << UInt64(8 * (index - offset))
        }
        absorb(last, into: &state)
        state.v2 ^= 0xFF
        for _ in 0 ..< Rounds.finalization { state.round() }
        return state.v0 ^ state.v1 ^ state.v2 ^ state.v3
    }

    @inline(__always)
    private func absorb(_ word: UInt64, into state: inout State) {
        state.v3 ^= word
        for _ in 0 ..< Rounds.compression { state.round() }
        state.v0 ^= word
    }

    private struct State {
        var v0, v1, v2, v3: UInt64

        init(k0: UInt64, k1: UInt64) {
            // "somepseudorandomlygeneratedbytes", the paper's initialisation constants.
            v0 = k0 ^ 0x736F_6D65_7073_6575
            v1 = k1 ^ 0x646F_7261_6E64_6F6D
            v2 = k0 ^ 0x6C79_6765_6E65_7261
            v3 = k1 ^ 0x7465_6462_7974_6573
        }

        /// One SipRound: four add-rotate-xor half rounds.
        @inline(__always)
        mutating func round() {
            v0 &+= v1; v1 = v1.rotatedLeft(13); v1 ^= v0; v0 = v0.rotatedLeft(32)
            v2 &+= v3; v3 = v3.rotatedLeft(16); v3 ^= v2
            v0 &+= v3; v3 = v3.rotatedLeft(21); v3 ^= v0
            v2 &+= v1; v1 = v1.rotatedLeft(17); v1 ^= v2; v2 = v2.rotatedLeft(32)
        }
    }
}

extension UInt64 {
    fileprivate func rotatedLeft(_ count: UInt64) -> UInt64 { (self << count) | (self >> (64 - count)) }
}

/// SipHash-c-d: c rounds per message word, d to finish.
protocol SipHashRounds {
    static var compression: Int { get }
    static var finalization: Int { get }
}

/// SipHash-1-3, what Swift's Hasher uses and the variable index uses.
enum SipHash13: SipHashRounds {
    static var compression: Int { 1 }
    static var finalization: Int { 3 }
}

/// SipHash-2-4, the paper's recommendation and the one its test vectors are for.
enum SipHash24: SipHashRounds {
    static var compression: Int { 2 }
    static var finalization: Int { 4 }
}
