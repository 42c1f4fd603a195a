/// Key material (a volume key, a key derived from one, a keyslot secret) whose bytes are
/// overwritten with zeros when the last owner lets go of them, so that closing a store does not
/// leave keys in freed memory for the next allocation or a memory dump to find
/// (spec/threat-model.md, "Keys in memory").
///
/// The bytes live in one array that `bytes` shares without copying, because the platform's
/// crypto takes `[UInt8]`: a callee that only reads it during the call leaves this object the
/// sole owner again, and `wipe` then zeroes the very buffer the crypto saw. A caller that keeps
/// `bytes` beyond a call keeps an unwiped copy (wiping writes to a buffer of its own then, so a
/// holder never finds its key zeroed under it): keep the SecretBytes instead.
public final class SecretBytes {
    private var storage: [UInt8]

    /// Takes over `bytes` (pass a value nothing else holds and no copy is made).
    public init(_ bytes: consuming [UInt8]) {
        storage = bytes
    }

    /// The bytes, shared with this object: pass them to a call, do not keep them.
    public var bytes: [UInt8] { storage }
    public var count: Int { storage.count }

    /// Overwrites the bytes with zeros now (deinit does it in any case).
    public func wipe() {
        Self.zero(&storage)
    }

    deinit { wipe() }

    /// Zeroes `bytes` in place, for short-lived buffers that held key material. Kept out of
    /// line and unoptimized: a store to memory that is about to be freed is dead to the
    /// optimizer, which would otherwise drop it.
    @inline(never) @_optimize(none)
    public static func zero(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBufferPointer { buffer in
            for index in buffer.indices { buffer[index] = 0 }
        }
    }
}
