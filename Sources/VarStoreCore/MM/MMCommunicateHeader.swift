/// EFI_MM_COMMUNICATE_HEADER (PI spec, edk2 MdePkg/Include/Pi/PiMmCis.h), 24 bytes:
/// HeaderGuid (16) selects the handler, MessageLength (u64) counts the bytes after the header.
/// edk2 declares `Data[1]`, but the payload starts at offset 24.
public enum MMCommunicateHeader {
    public static let size = 24
    public static let guidOffset = 0
    public static let messageLengthOffset = 16
}

/// What a transport reports besides the reply bytes: whether a handler took the message.
/// The MMIO device turns these into its CMD_STS values; the SVSM call into its result codes.
public enum MMDispatchResult: Sendable, Equatable {
    /// A handler processed the message; its answer (if any) is in the payload.
    case handled
    /// No handler for the header GUID (uefi-vars status 0x11).
    case unsupportedHandler
    /// The message is too short for the handler's own header (uefi-vars status 0x12).
    case badBufferSize
}

/// Routes one MM message to its handler by header GUID.
///
/// The buffer is the transport's private copy of the request: the 24-byte header, then
/// `capacity` bytes of which the first MessageLength came from the guest and the rest are zero.
/// Handlers answer in place and never write past 24 + MessageLength, so the reply always has
/// the request's length (QEMU's device and edk2's driver both rely on that).
public enum MMDispatcher {
    /// One request, one exclusive access to the service's state (VariableService.swift).
    public static func dispatch<C: AuthenticationCrypto, J: NonVolatileJournal>(_ buffer: inout [UInt8], service: VariableService<C, J>) -> MMDispatchResult {
        dispatch(&buffer, state: &service.state)
    }

    public static func dispatch<C: AuthenticationCrypto, J: NonVolatileJournal>(_ buffer: inout [UInt8], state service: inout VariableServiceState<C, J>) -> MMDispatchResult {
        guard buffer.count >= MMCommunicateHeader.size,
              let guid = EFIGUID(wire: buffer, at: MMCommunicateHeader.guidOffset),
              let messageLength = LittleEndian.load(UInt64.self, from: buffer, at: MMCommunicateHeader.messageLengthOffset),
              let total = CheckedSize.add(UInt64(MMCommunicateHeader.size), messageLength),
              total <= UInt64(buffer.count) else { return .badBufferSize }
        // The message takes the buffer by swapping (the only reference, so edits do not copy
        // 64 KiB; a swap moves it without reference counting), and gives it back the same way.
        var message = MMMessage(buffer: [], length: Int(messageLength))
        swap(&message.buffer, &buffer)
        defer { swap(&message.buffer, &buffer) }
        switch guid {
        case .smmVariableProtocol:
            return SMMVariableHandler.handle(&message, service: &service)
        case .varCheckPolicyHandler:
            return VariablePolicyHandler.handle(&message, service: &service)
        case .endOfDxeEvent:
            service.signalEndOfDxe()
            return .handled
        case .readyToBootEvent:
            service.signalReadyToBoot()
            return .handled
        case .exitBootServicesEvent:
            service.signalExitBootServices()
            return .handled
        default:
            return .unsupportedHandler
        }
    }
}

/// One MM message being answered: the header, MessageLength bytes, zeros up to capacity.
/// Offsets are absolute (from the start of the header), as the reference tables give them.
struct MMMessage {
    var buffer: [UInt8]
    /// MessageLength: bytes after the header that belong to the message.
    let length: Int

    /// Bytes after the header that the buffer can hold (the transport's buffer size − 24).
    var capacity: Int { buffer.count - MMCommunicateHeader.size }
    /// One past the last byte of the message.
    var end: Int { MMCommunicateHeader.size + length }

    /// Fields of the copy, bounded by it: nil past its end (a handler checks MessageLength
    /// first; bytes between MessageLength and the capacity read as zero, as in QEMU's device).
    func u32(_ offset: Int) -> UInt32? { LittleEndian.load(UInt32.self, from: buffer, at: offset) }
    func u64(_ offset: Int) -> UInt64? { LittleEndian.load(UInt64.self, from: buffer, at: offset) }
    func guid(_ offset: Int) -> EFIGUID? { EFIGUID(wire: buffer, at: offset) }

    /// Writes stay inside the message: a reply never grows past the request.
    mutating func setU8(_ value: UInt8, at offset: Int) {
        guard offset >= 0, offset < end else { return }
        buffer[offset] = value
    }

    mutating func setU32(_ value: UInt32, at offset: Int) {
        guard offset >= 0, offset + 4 <= end else { return }
        LittleEndian.store(value, into: &buffer, at: offset)
    }

    mutating func setU64(_ value: UInt64, at offset: Int) {
        guard offset >= 0, offset + 8 <= end else { return }
        LittleEndian.store(value, into: &buffer, at: offset)
    }

    /// Writes the part of `bytes` that lies inside the message.
    mutating func setBytesClipped(_ bytes: [UInt8], at offset: Int) {
        guard offset >= 0, offset < end else { return }
        copy(bytes, count: min(bytes.count, end - offset), to: offset)
    }

    mutating func setBytes(_ bytes: [UInt8], at offset: Int) {
        guard offset >= 0, offset <= end, end - offset >= bytes.count else { return }
        copy(bytes, count: bytes.count, to: offset)
    }

    mutating func setBytes(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        guard offset >= 0, offset <= end, end - offset >= bytes.count, end <= buffer.count, let source = bytes.baseAddress,
              !bytes.isEmpty else { return }
        buffer.withUnsafeMutableBytes { target in
            target.baseAddress!.advanced(by: offset).copyMemory(from: source, byteCount: bytes.count)
        }
    }

    /// A GUID in wire form, if all 16 bytes lie inside the message.
    mutating func setGUID(_ guid: EFIGUID, at offset: Int) {
        guard offset >= 0, offset <= end, end - offset >= 16 else { return }
        LittleEndian.store(guid.low, into: &buffer, at: offset)
        LittleEndian.store(guid.high, into: &buffer, at: offset + 8)
    }

    /// The part of a name's wire form (UCS-2LE units, then the NUL) that lies inside the
    /// message, written without building the wire bytes first.
    mutating func setNameClipped(_ name: VariableName, at offset: Int) {
        name.codeUnits.withUnsafeBufferPointer { setNameClipped($0, at: offset) }
    }

    /// The same, for a name's code units (the terminator excluded) where they are stored.
    mutating func setNameClipped(_ units: UnsafeBufferPointer<UInt16>, at offset: Int) {
        guard offset >= 0, offset < end, end <= buffer.count else { return }
        let count = min(2 * (units.count + 1), end - offset)
        buffer.withUnsafeMutableBytes { target in
            let out = UnsafeMutableRawBufferPointer(rebasing: target[offset ..< offset + count])
            #if _endian(little)
            // The units are already UCS-2LE in memory: one copy, then the terminator's bytes.
            let unitBytes = min(count, 2 * units.count)
            if unitBytes > 0, let base = units.baseAddress {
                out.baseAddress!.copyMemory(from: UnsafeRawPointer(base), byteCount: unitBytes)
            }
            for index in unitBytes ..< count { out[index] = 0 }
            #else
            for index in 0 ..< count {
                let unit = index / 2 < units.count ? units[index / 2] : 0
                out[index] = UInt8(truncatingIfNeeded: index % 2 == 0 ? unit : unit >> 8)
            }
            #endif
        }
    }

    /// `bytes[0 ..< count]` to `buffer[offset ..< offset + count]`; the callers checked both ranges.
    private mutating func copy(_ bytes: [UInt8], count: Int, to offset: Int) {
        guard count > 0, count <= bytes.count, offset >= 0, offset <= buffer.count, count <= buffer.count - offset else { return }
        buffer.withUnsafeMutableBytes { target in
            bytes.withUnsafeBytes { source in
                target.baseAddress!.advanced(by: offset).copyMemory(from: source.baseAddress!, byteCount: count)
            }
        }
    }
}
