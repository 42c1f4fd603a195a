/// Why an encrypted image cannot be opened or written. Opening fails closed: none of these
/// ever leads the store to format or rewrite the image.
///
/// Details are static text: comparing them needs no Unicode tables, which a freestanding
/// build does not carry.
public enum StorageError: Error, Equatable, Sendable {
    /// Neither LUKS2 header is present and intact (magic, version, size, checksum).
    case notLUKS2
    /// A LUKS2 header that uses something this reader does not (the detail names it).
    case unsupportedHeader(StaticString)
    /// The JSON metadata is malformed or lacks a field the reader needs (named).
    case malformedMetadata(StaticString)
    /// The volume key does not match the header's digest.
    case wrongKey
    /// The segment holds no variable store superblock that authenticates under this key.
    case notFormatted
    /// The segment holds a variable store, but its superblocks do not authenticate under the
    /// keys this image now gives (the detail names the likely cause: a reencryption before the
    /// store was upgraded, a changed UUID). Nothing is written.
    case storeKeysUnavailable(StaticString)
    /// Records that authenticate under this key contradict each other: something rewrote,
    /// reordered or spliced them (the detail says what was found).
    case tampered(StaticString)
    /// The image is older than the rollback anchor allows.
    case rolledBack(generation: UInt64, minimum: UInt64)
    /// The store has no room for the commit.
    case full
    /// The flash failed an operation.
    case flash(FlashError)
    /// The platform gave no random bytes for a nonce.
    case noRandomness
    /// The image or request is outside what the format can describe (sizes).
    case invalidGeometry(StaticString)
    /// A commit holds a variable no record can carry (StorableVariable's format limits);
    /// refused before anything is written.
    case unstorable(StorableVariable.Problem)
}

extension StorageError {
    public static func == (lhs: StorageError, rhs: StorageError) -> Bool {
        func same(_ a: StaticString, _ b: StaticString) -> Bool {
            UnsafeBufferPointer(start: a.utf8Start, count: a.utf8CodeUnitCount)
                .elementsEqual(UnsafeBufferPointer(start: b.utf8Start, count: b.utf8CodeUnitCount))
        }
        switch (lhs, rhs) {
        case (.notLUKS2, .notLUKS2), (.wrongKey, .wrongKey), (.notFormatted, .notFormatted),
             (.full, .full), (.noRandomness, .noRandomness):
            return true
        case (.unsupportedHeader(let a), .unsupportedHeader(let b)), (.malformedMetadata(let a), .malformedMetadata(let b)),
             (.tampered(let a), .tampered(let b)), (.invalidGeometry(let a), .invalidGeometry(let b)),
             (.storeKeysUnavailable(let a), .storeKeysUnavailable(let b)):
            return same(a, b)
        case (.rolledBack(let a, let b), .rolledBack(let c, let d)):
            return a == c && b == d
        case (.flash(let a), .flash(let b)):
            return a == b
        case (.unstorable(let a), .unstorable(let b)):
            return a == b
        default:
            return false
        }
    }
}

extension StorageError {
    /// A version-1 superblock (its magic is plaintext in the segment, so it survives) that no
    /// longer authenticates: its keys came from a volume key the image no longer has.
    public static let storeKeyLost = StorageError.storeKeysUnavailable(
        "a version-1 store, whose keys came from the volume key: the image was reencrypted (cryptsetup reencrypt) before the store was upgraded, or its UUID was changed (spec/storage.md)")
    /// A version-2 superblock that does not authenticate: its keys are bound to the LUKS2 UUID.
    public static let storeBindingChanged = StorageError.storeKeysUnavailable(
        "the store's superblocks do not authenticate under this image's UUID: was it changed (cryptsetup luksUUID)? (spec/storage.md)")
    /// `config.requirements` names cryptsetup's online reencryption: segments are half under
    /// the old volume key, half under the new.
    public static let reencryptionInProgress = StorageError.unsupportedHeader(
        "an unfinished cryptsetup reencryption (requirement online-reencrypt): finish it with cryptsetup reencrypt --resume-only")
}
