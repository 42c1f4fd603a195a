/// What opening an image may spend on key derivation. The host writes the LUKS2 header, so it
/// chooses every PBKDF2 iteration count and Argon2 cost: without a bound on their sum, eight
/// keyslots and a digest at the per-field caps made one failed open take about 100 s. One open
/// (the keyslots tried, the digest check after each, and the segment's own digest check) may
/// spend at most `maximumPerOpen`; a header that asks for more is refused with
/// `StorageError.keyDerivationTooCostly` before the work is done (spec/storage.md).
///
/// The unit is one PBKDF2-HMAC-SHA-256 iteration for one 32-byte output block, the cheapest
/// thing a header can ask for; other derivations are weighted by what they cost on the same
/// machine (measured with `cryptsetup benchmark` and `cryptsetup open --test-passphrase`).
public enum KeyDerivationWork {
    /// About 6 to 7 s on the 2-core build machine (the measured worst case is in
    /// spec/storage.md). It covers our own images by far (a key file slot is 2,000 units, a
    /// passphrase slot 1.2 million, their digest 1,000) and a `cryptsetup luksFormat --pbkdf
    /// pbkdf2` slot benchmarked to 2 s (6.4 million units here, with a 0.2 million digest) on a
    /// machine twice as fast as that one.
    public static let maximumPerOpen: UInt64 = 16_000_000

    /// HMAC-SHA-512 iterations run at 1.39 million a second against SHA-256's 3.07 million.
    static func weight(_ hash: DigestAlgorithm) -> UInt64 {
        switch hash {
        case .sha256: return 1
        case .sha384, .sha512: return 2
        }
    }

    /// PBKDF2 runs all its iterations once per output block of the hash's size (RFC 8018
    /// §5.2), so a 64-byte key from SHA-256 costs twice its iteration count.
    public static func pbkdf2(_ hash: DigestAlgorithm, iterations: UInt64, outputBytes: Int) -> UInt64 {
        let blockBytes = hash == .sha256 ? 32 : hash == .sha384 ? 48 : 64
        let blocks = UInt64(max(1, (outputBytes + blockBytes - 1) / blockBytes))
        return saturating(saturating(iterations, blocks), weight(hash))
    }

    /// Argon2 fills `memoryKiB` one-KiB blocks `time` times over; a block pass costs about
    /// four PBKDF2 units once the memory outgrows the caches (time 16 over 256 MiB took 5.7 s).
    /// Threads do not reduce the work, only the wall time on a machine that has the cores.
    public static func argon2(time: UInt64, memoryKiB: UInt64) -> UInt64 {
        saturating(saturating(time, memoryKiB), 4)
    }

    /// libcryptsetup's own default ceiling for Argon2 memory (1 GiB): a slot asking for more is
    /// not opened on the host, whatever its time cost, rather than allowed to exhaust memory.
    public static let maximumArgon2MemoryKiB: UInt64 = 1 << 20

    static func saturating(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? .max : product
    }
}

extension StorageError {
    /// The keyslots and digest of a header ask for more key derivation than one open may spend
    /// (KeyDerivationWork.maximumPerOpen). A case of `unsupportedHeader` so every reporter of
    /// storage errors already names it.
    public static let keyDerivationTooCostly =
        StorageError.unsupportedHeader("key derivation work above what one open may spend (spec/storage.md)")
}
