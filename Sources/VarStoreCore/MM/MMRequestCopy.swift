/// The service's private copy of one MM request, the same for both transports: `capacity`
/// bytes — the transport's buffer size (the device's BUFFER_SIZE register, the SVSM call's
/// RDX) — of which the first 24 + MessageLength were copied once from the guest and the rest
/// are zero. Handlers see the same capacity on either transport, so the same request bytes and
/// the same buffer size give the same reply bytes.
///
/// The copy lives as long as the transport, so a request does not zero-fill its whole buffer:
/// only bytes an earlier request may have written are cleared.
struct MMRequestCopy {
    /// The transports copy guest bytes straight in, after `willWrite(upTo:)`.
    var bytes: [UInt8] = []
    /// Invariant: bytes `[dirty, capacity)` are zero.
    private var dirty = 0

    var capacity: Int { bytes.count }

    /// A new capacity, every byte zero; keeps the allocation when the capacity is unchanged.
    mutating func resize(to capacity: Int) {
        if capacity == bytes.count {
            clear(from: 0)
        } else {
            bytes = [UInt8](repeating: 0, count: capacity)
            dirty = 0
        }
    }

    /// Called before anything writes `[0, end)`: a guest copy that fails part-way, or a handler
    /// answering in place (never past 24 + MessageLength), may leave bytes there.
    mutating func willWrite(upTo end: Int) {
        dirty = max(dirty, min(end, bytes.count))
    }

    /// Zeroes what an earlier request left at or past `end`; afterwards only `[0, end)` may be
    /// non-zero.
    mutating func clear(from end: Int) {
        if dirty > end {
            for index in end ..< dirty { bytes[index] = 0 }
        }
        dirty = min(dirty, end)
    }
}
