/// Why an encrypted image cannot be opened or written. Opening fails closed: none of these
/// ever leads the store to format or rewrite the image.
public enum StorageError: Error, Equatable, Sendable {
    /// Neither LUKS2 header is present and intact (magic, version, size, checksum).
    case notLUKS2
    /// A LUKS2 header that uses something this reader does not (the detail names it).
    case unsupportedHeader(String)
    /// The JSON metadata is malformed or lacks a field the reader needs (named).
    case malformedMetadata(String)
    /// The volume key does not match the header's digest.
    case wrongKey
    /// The segment holds no variable store superblock that authenticates under this key.
    case notFormatted
    /// Records that authenticate under this key contradict each other: something rewrote,
    /// reordered or spliced them (the detail says what was found).
    case tampered(String)
    /// The image is older than the rollback anchor allows.
    case rolledBack(generation: UInt64, minimum: UInt64)
    /// The store has no room for the commit.
    case full
    /// The flash failed an operation.
    case flash(FlashError)
    /// The platform gave no random bytes for a nonce.
    case noRandomness
    /// The image or request is outside what the format can describe (sizes).
    case invalidGeometry(String)
}
