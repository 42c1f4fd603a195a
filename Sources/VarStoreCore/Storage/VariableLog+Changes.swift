/// The change codec: how a JournalChange is laid out inside a record body, and the decoder
/// replay uses, both held to StorableVariable's rule (spec/storage.md, "Record (1 … 72 sectors)").
extension VariableLog {
    func apply(_ change: JournalChange) {
        let (removed, stored) = live.apply(change)
        if let removed { liveBytes -= UInt64(Self.encodedSize(removed)) }
        if let stored { liveBytes += UInt64(Self.encodedSize(stored)) }
    }

    /// One change: kind u8 (1 put, 2 in place, 3 delete), vendor GUID, name length u16 and
    /// UCS-2 units; for a variable then attributes u32, data length u32, data, a flags byte
    /// (1 time, 2 pin), the 16-byte time and the pin (length u8) when flagged.
    static func encode(_ change: JournalChange, into out: inout [UInt8]) {
        let kind: UInt8
        let key: VariableKey
        var variable: Variable?
        switch change {
        case .put(let v): kind = 1; key = v.key; variable = v
        case .replaceInPlace(let v): kind = 2; key = v.key; variable = v
        case .delete(let k): kind = 3; key = k
        }
        out.append(kind)
        out += key.guid.wireBytes
        LittleEndian.append(UInt16(truncatingIfNeeded: key.name.codeUnits.count), to: &out)
        for unit in key.name.codeUnits { LittleEndian.append(unit, to: &out) }
        guard let variable else { return }
        LittleEndian.append(variable.attributes.rawValue, to: &out)
        LittleEndian.append(UInt32(truncatingIfNeeded: variable.data.count), to: &out)
        out += variable.data
        var flags: UInt8 = 0
        if variable.timestamp != nil { flags |= 1 }
        if variable.certificateDigest != nil { flags |= 2 }
        out.append(flags)
        if let time = variable.timestamp { out += time.bytes }
        if let pin = variable.certificateDigest {
            out.append(UInt8(truncatingIfNeeded: pin.count))
            out += pin.prefix(255)
        }
    }

    public static func encodedSize(_ variable: Variable) -> Int {
        1 + 16 + 2 + 2 * variable.name.codeUnits.count + 4 + 4 + variable.data.count + 1
            + (variable.timestamp != nil ? 16 : 0) + (variable.certificateDigest.map { 1 + $0.count } ?? 0)
    }

    struct DecodeFailure: Error {}

    /// Applies a record body's changes as they are decoded (replay): a change that does not
    /// decode fails the open, so nothing is gained by collecting them first.
    func applyEncoded(_ bytes: [UInt8], in range: Range<Int>) throws(DecodeFailure) {
        try Self.decode(bytes, in: range) { change in apply(change) }
    }

    /// The changes of one record body (`bytes[range]`, all of it by default), as `encode`
    /// wrote them; anything else is a failure.
    static func decode(_ bytes: [UInt8], in range: Range<Int>? = nil) throws(DecodeFailure) -> [JournalChange] {
        var changes: [JournalChange] = []
        try decode(bytes, in: range) { change in changes.append(change) }
        return changes
    }

    /// Each change of `bytes[range]` in turn to `body`; at the first that is not as `encode`
    /// writes it, a failure (the ones before it have been handed over).
    static func decode(_ bytes: [UInt8], in range: Range<Int>?, each body: (JournalChange) -> Void) throws(DecodeFailure) {
        var reader = ByteReader(bytes, start: range?.lowerBound ?? 0, end: range?.upperBound)
        while reader.remaining > 0 {
            guard let kind = reader.read(UInt8.self), let guid = reader.readGUID(),
                  let count = reader.read(UInt16.self) else { throw DecodeFailure() }
            guard let units = reader.readUCS2(Int(count)) else { throw DecodeFailure() }
            // The same rule the encoder's callers are held to (StorableVariable).
            guard let name = VariableName(codeUnits: units), !name.isEmpty else { throw DecodeFailure() }
            let key = VariableKey(guid: guid, name: name)
            if kind == 3 {
                body(.delete(key))
                continue
            }
            guard kind == 1 || kind == 2, let attributes = reader.read(UInt32.self), let length = reader.read(UInt32.self),
                  let data = reader.readBytes(Int(length)), let flags = reader.read(UInt8.self) else { throw DecodeFailure() }
            var time: EFITime?
            if flags & 1 != 0 {
                guard let raw = reader.readBytes(16), let parsed = EFITime(bytes: raw, at: 0) else { throw DecodeFailure() }
                time = parsed
            }
            var pin: [UInt8]?
            if flags & 2 != 0 {
                guard let size = reader.read(UInt8.self), let raw = reader.readBytes(Int(size)) else { throw DecodeFailure() }
                pin = raw
            }
            let variable = Variable(key: key, attributes: VariableAttributes(rawValue: attributes), data: data,
                                    timestamp: time, certificateDigest: pin)
            guard StorableVariable.formatProblem(variable) == nil else { throw DecodeFailure() }
            body(kind == 1 ? .put(variable) : .replaceInPlace(variable))
        }
    }
}
