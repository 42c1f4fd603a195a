/// Offsets of the uefi-vars register block (QEMU include/hw/uefi/var-service-api.h; reference
/// spec/mmio.md). The block is 0x20 bytes, little-endian; x86 maps it at 0xFEF10000.
public enum UEFIVarsRegister {
    public static let magic: UInt64 = 0x00              // 16-bit, read-only
    public static let commandStatus: UInt64 = 0x02      // 16-bit: write a command, read its status
    public static let bufferSize: UInt64 = 0x04         // 32-bit
    public static let dmaBufferAddressLow: UInt64 = 0x08
    public static let dmaBufferAddressHigh: UInt64 = 0x0C
    public static let pioBufferTransfer: UInt64 = 0x10  // streaming window into the PIO buffer
    public static let pioBufferCRC32C: UInt64 = 0x18
    public static let flags: UInt64 = 0x1C
    public static let regionSize: UInt64 = 0x20
    /// Where `uefi-vars-x64` lives in guest-physical space.
    public static let x86BaseAddress: UInt64 = 0xFEF1_0000
}

/// Commands written to CMD_STS.
public enum UEFIVarsCommand: UInt16, Sendable {
    case reset = 0x01
    case dmaMM = 0x02
    case pioMM = 0x03
    case pioZeroOffset = 0x04
}

/// Values read back from CMD_STS.
public enum UEFIVarsStatus: UInt16, Sendable {
    case success = 0x00
    case busy = 0x01
    /// The guest buffer could not be read or written (our use; QEMU defines it, never sets it).
    case errorUnknown = 0x10
    case errorNotSupported = 0x11
    case errorBadBufferSize = 0x12
}

/// The trapped-MMIO `uefi-vars` device: QEMU's register model in front of the MM dispatcher.
///
/// Each MM command copies the request once — header first, then exactly MessageLength bytes —
/// into service memory, answers from that copy, and writes back 24 + MessageLength bytes. The
/// guest can change its buffer at any moment; nothing is read from it twice.
public final class UEFIVarsDevice<Memory: GuestMemory, Crypto: AuthenticationCrypto, Journal: NonVolatileJournal> {
    public static var magicValue: UInt16 { 0x0EF1 }
    /// BUFFER_SIZE writes are clamped to 64 KiB (edk2's MAX_BUFFER_SIZE).
    public static var maximumBufferSize: UInt32 { 0x10000 }

    public let service: VariableService<Crypto, Journal>
    public var memory: Memory
    /// FLAGS.USE_PIO: advisory; both DMA_MM and PIO_MM work either way, as in QEMU.
    public let usePIO: Bool

    public private(set) var status: UInt16 = 0
    public private(set) var bufferSize: UInt32 = 0
    private var dmaAddressLow: UInt32 = 0
    private var dmaAddressHigh: UInt32 = 0
    /// The service's private copy of the current request (bufferSize bytes).
    private var working = MMRequestCopy()
    private var pioBuffer: [UInt8] = []
    public private(set) var pioOffset: UInt32 = 0
    private let crc = CRC32C()

    public init(service: VariableService<Crypto, Journal>, memory: Memory, usePIO: Bool = false) {
        self.service = service
        self.memory = memory
        self.usePIO = usePIO
    }

    // MARK: Guest accesses

    /// A guest read of `size` bytes (1, 2, 4 or 8) at `offset` in the register block, split
    /// into 2..4-byte device accesses as QEMU's memory core does for this device.
    public func mmioRead(offset: UInt64, size: Int) -> UInt64 {
        guard Self.isValidAccess(offset: offset, size: size) else { return UInt64.max }
        var value: UInt64 = 0
        forEachAccess(offset: offset, size: size) { accessOffset, accessSize, shift in
            value |= (registerRead(offset: accessOffset, size: accessSize) & Self.mask(accessSize)) << shift
        }
        return value & Self.mask(size)
    }

    /// A guest write of `size` bytes (1, 2, 4 or 8) at `offset` in the register block.
    public func mmioWrite(offset: UInt64, size: Int, value: UInt64) {
        guard Self.isValidAccess(offset: offset, size: size) else { return }
        let value = value & Self.mask(size)
        forEachAccess(offset: offset, size: size) { accessOffset, accessSize, shift in
            registerWrite(offset: accessOffset, size: accessSize, value: (value >> shift) & Self.mask(accessSize))
        }
    }

    /// QEMU registers this device with 2..4-byte implementation sizes: a 1-byte access is
    /// widened to 2, an 8-byte access becomes two 4-byte accesses at +0 and +4.
    /// A CPU access is 1 to 8 bytes and starts inside the block; anything else reaches no
    /// register (reads all-ones, writes ignored).
    private static func isValidAccess(offset: UInt64, size: Int) -> Bool {
        size >= 1 && size <= 8 && offset < UEFIVarsRegister.regionSize
    }

    private func forEachAccess(offset: UInt64, size: Int, _ body: (UInt64, Int, UInt64) -> Void) {
        let accessSize = min(max(size, 2), 4)
        var done = 0
        while done < size {
            body(offset &+ UInt64(done), accessSize, UInt64(done * 8))
            done += accessSize
        }
    }

    private static func mask(_ size: Int) -> UInt64 {
        size >= 8 ? UInt64.max : (UInt64(1) << UInt64(size * 8)) - 1
    }

    // MARK: Registers

    private func registerRead(offset: UInt64, size: Int) -> UInt64 {
        switch offset {
        case UEFIVarsRegister.magic: return UInt64(Self.magicValue)
        case UEFIVarsRegister.commandStatus: return UInt64(status)
        case UEFIVarsRegister.bufferSize: return UInt64(bufferSize)
        case UEFIVarsRegister.dmaBufferAddressLow: return UInt64(dmaAddressLow)
        case UEFIVarsRegister.dmaBufferAddressHigh: return UInt64(dmaAddressHigh)
        case UEFIVarsRegister.pioBufferTransfer:
            guard UInt64(pioOffset) + UInt64(size) <= UInt64(bufferSize) else { return 0 }
            var value: UInt64 = 0
            for index in 0..<size {
                value |= UInt64(pioBuffer[Int(pioOffset) + index]) << UInt64(8 * index)
            }
            pioOffset += UInt32(size)
            return value
        case UEFIVarsRegister.pioBufferCRC32C:
            guard pioOffset <= bufferSize else { return 0 }
            return UInt64(crc.checksum(pioBuffer, count: Int(pioOffset)))
        case UEFIVarsRegister.flags: return usePIO ? 1 : 0
        default: return UInt64.max  // unassigned offsets read as all-ones
        }
    }

    private func registerWrite(offset: UInt64, size: Int, value: UInt64) {
        switch offset {
        case UEFIVarsRegister.commandStatus:
            status = execute(UInt16(truncatingIfNeeded: value)).rawValue
        case UEFIVarsRegister.bufferSize:
            // Both buffers are reallocated zero-filled: stale bytes must never be readable
            // through PIO_BUFFER_TRANSFER (QEMU CVE-2025-8860).
            bufferSize = min(UInt32(truncatingIfNeeded: value), Self.maximumBufferSize)
            working.resize(to: Int(bufferSize))
            pioBuffer = [UInt8](repeating: 0, count: Int(bufferSize))
        case UEFIVarsRegister.dmaBufferAddressLow:
            dmaAddressLow = UInt32(truncatingIfNeeded: value)
        case UEFIVarsRegister.dmaBufferAddressHigh:
            dmaAddressHigh = UInt32(truncatingIfNeeded: value)
        case UEFIVarsRegister.pioBufferTransfer:
            guard UInt64(pioOffset) + UInt64(size) <= UInt64(bufferSize) else { return }
            for index in 0..<size {
                pioBuffer[Int(pioOffset) + index] = UInt8(truncatingIfNeeded: value >> UInt64(8 * index))
            }
            pioOffset += UInt32(size)
        default:
            break  // read-only and unassigned offsets ignore writes
        }
    }

    private func execute(_ command: UInt16) -> UEFIVarsStatus {
        switch UEFIVarsCommand(rawValue: command) {
        case .reset:
            // A soft reset: the PIO buffer and its offset survive, as in QEMU.
            bufferSize = 0
            working.resize(to: 0)
            dmaAddressLow = 0
            dmaAddressHigh = 0
            return .success
        case .dmaMM: return processMM(viaDMA: true)
        case .pioMM: return processMM(viaDMA: false)
        case .pioZeroOffset:
            pioOffset = 0
            return .success
        case nil:
            return .errorNotSupported
        }
    }

    // MARK: MM requests

    private var dmaAddress: UInt64 { UInt64(dmaAddressHigh) << 32 | UInt64(dmaAddressLow) }

    private func processMM(viaDMA: Bool) -> UEFIVarsStatus {
        // Every access to a class property is checked at run time: the request copy, guest
        // memory and the PIO buffer are each handed over once for the whole request, and the
        // registers read once.
        Self.processMM(viaDMA: viaDMA, request: &working, memory: &memory, pio: &pioBuffer,
                       address: dmaAddress, capacity: bufferSize, service: service)
    }

    private static func processMM(viaDMA: Bool, request: inout MMRequestCopy, memory: inout Memory, pio: inout [UInt8],
                                  address: UInt64, capacity: UInt32,
                                  service: VariableService<Crypto, Journal>) -> UEFIVarsStatus {
        let headerSize = MMCommunicateHeader.size
        guard capacity >= UInt32(headerSize), request.capacity == Int(capacity) else { return .errorBadBufferSize }

        // 1. The header, once. MessageLength is taken from this copy and never re-read.
        //    A buffer that would wrap around the top of the address space is no guest buffer.
        if viaDMA && CheckedSize.add(address, UInt64(headerSize)) == nil { return .errorUnknown }
        request.willWrite(upTo: headerSize)
        if viaDMA {
            do throws(GuestMemoryError) {
                try memory.read(address, into: &request.bytes, at: 0, count: headerSize)
            } catch {
                return .errorUnknown
            }
        } else {
            request.bytes.replaceSubrange(0..<headerSize, with: pio[0..<headerSize])
        }
        let messageLength = LittleEndian.load(UInt64.self, from: request.bytes, at: MMCommunicateHeader.messageLengthOffset) ?? 0
        guard let total = CheckedSize.add(UInt64(headerSize), messageLength), total <= UInt64(capacity) else {
            return .errorBadBufferSize
        }
        if viaDMA && CheckedSize.add(address, total) == nil { return .errorUnknown }
        let requestEnd = Int(total)
        // 2. The body, once, right after the header in the same private copy.
        request.willWrite(upTo: requestEnd)
        if viaDMA {
            do throws(GuestMemoryError) {
                try memory.read(address &+ UInt64(headerSize), into: &request.bytes, at: headerSize,
                                count: requestEnd - headerSize)
            } catch {
                return .errorUnknown
            }
        } else {
            request.bytes.replaceSubrange(headerSize..<requestEnd, with: pio[headerSize..<requestEnd])
        }
        // Fields past MessageLength read as zero, as in QEMU's zero-filled working buffer.
        request.clear(from: requestEnd)

        let result = MMDispatcher.dispatch(&request.bytes, service: service)

        // 3. The reply has exactly the request's length.
        if viaDMA {
            do throws(GuestMemoryError) {
                try memory.write(address, from: request.bytes, range: 0..<requestEnd)
            } catch {
                return .errorUnknown
            }
        } else {
            pio.replaceSubrange(0..<requestEnd, with: request.bytes[0..<requestEnd])
        }
        switch result {
        case .handled: return .success
        case .unsupportedHandler: return .errorNotSupported
        case .badBufferSize: return .errorBadBufferSize
        }
    }
}
