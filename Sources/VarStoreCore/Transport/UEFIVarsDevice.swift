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
    /// FLAGS.USE_PIO: advisory; both DMA_MM and PIO_MM work either way, as in QEMU.
    public let usePIO: Bool
    /// Everything a guest access can change, as one value: each guest access is one exclusive
    /// access to it, and an MM request one more to the service (VariableService.swift says why
    /// that matters).
    private var registers: Registers
    private let crc = CRC32C()

    public var memory: Memory {
        get { registers.memory }
        _modify { yield &registers.memory }
    }
    public var status: UInt16 { registers.status }
    public var bufferSize: UInt32 { registers.bufferSize }
    public var pioOffset: UInt32 { registers.pioOffset }

    public init(service: VariableService<Crypto, Journal>, memory: Memory, usePIO: Bool = false) {
        self.service = service
        self.usePIO = usePIO
        registers = Registers(memory: memory)
    }

    // MARK: Guest accesses

    /// A guest read of `size` bytes (1, 2, 4 or 8) at `offset` in the register block, split
    /// into 2..4-byte device accesses as QEMU's memory core does for this device.
    public func mmioRead(offset: UInt64, size: Int) -> UInt64 {
        guard Self.isValidAccess(offset: offset, size: size) else { return UInt64.max }
        return Self.read(&registers, offset: offset, size: size, usePIO: usePIO, crc: crc)
    }

    /// A guest write of `size` bytes (1, 2, 4 or 8) at `offset` in the register block.
    public func mmioWrite(offset: UInt64, size: Int, value: UInt64) {
        guard Self.isValidAccess(offset: offset, size: size) else { return }
        Self.write(&registers, offset: offset, size: size, value: value & Self.mask(size), service: service)
    }

    private static func read(_ registers: inout Registers, offset: UInt64, size: Int, usePIO: Bool, crc: CRC32C) -> UInt64 {
        var value: UInt64 = 0
        forEachAccess(offset: offset, size: size) { accessOffset, accessSize, shift in
            value |= (registers.read(offset: accessOffset, size: accessSize, usePIO: usePIO, crc: crc) & mask(accessSize)) << shift
        }
        return value & mask(size)
    }

    private static func write(_ registers: inout Registers, offset: UInt64, size: Int, value: UInt64,
                              service: VariableService<Crypto, Journal>) {
        forEachAccess(offset: offset, size: size) { accessOffset, accessSize, shift in
            registers.write(offset: accessOffset, size: accessSize, value: (value >> shift) & mask(accessSize), service: service)
        }
    }

    /// QEMU registers this device with 2..4-byte implementation sizes: a 1-byte access is
    /// widened to 2, an 8-byte access becomes two 4-byte accesses at +0 and +4.
    /// A CPU access is 1 to 8 bytes and starts inside the block; anything else reaches no
    /// register (reads all-ones, writes ignored).
    private static func isValidAccess(offset: UInt64, size: Int) -> Bool {
        size >= 1 && size <= 8 && offset < UEFIVarsRegister.regionSize
    }

    private static func forEachAccess(offset: UInt64, size: Int, _ body: (UInt64, Int, UInt64) -> Void) {
        let accessSize = min(max(size, 2), 4)
        var done = 0
        while done < size {
            body(offset &+ UInt64(done), accessSize, UInt64(done * 8))
            done += accessSize
        }
    }

    fileprivate static func mask(_ size: Int) -> UInt64 {
        size >= 8 ? UInt64.max : (UInt64(1) << UInt64(size * 8)) - 1
    }

    // MARK: Registers

    /// The register block's state, the request copy, the PIO buffer and guest memory.
    private struct Registers {
        var memory: Memory
        var status: UInt16 = 0
        var bufferSize: UInt32 = 0
        var dmaAddressLow: UInt32 = 0
        var dmaAddressHigh: UInt32 = 0
        /// The service's private copy of the current request (bufferSize bytes).
        var working = MMRequestCopy()
        var pioBuffer: [UInt8] = []
        var pioOffset: UInt32 = 0

        init(memory: Memory) { self.memory = memory }

        mutating func read(offset: UInt64, size: Int, usePIO: Bool, crc: CRC32C) -> UInt64 {
            switch offset {
            case UEFIVarsRegister.magic: return UInt64(UEFIVarsDevice.magicValue)
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

        mutating func write(offset: UInt64, size: Int, value: UInt64, service: VariableService<Crypto, Journal>) {
            switch offset {
            case UEFIVarsRegister.commandStatus:
                status = execute(UInt16(truncatingIfNeeded: value), service: service).rawValue
            case UEFIVarsRegister.bufferSize:
                // Both buffers are reallocated zero-filled: stale bytes must never be readable
                // through PIO_BUFFER_TRANSFER (QEMU CVE-2025-8860).
                bufferSize = min(UInt32(truncatingIfNeeded: value), UEFIVarsDevice.maximumBufferSize)
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

        private mutating func execute(_ command: UInt16, service: VariableService<Crypto, Journal>) -> UEFIVarsStatus {
            switch UEFIVarsCommand(rawValue: command) {
            case .reset:
                // A soft reset: the PIO buffer and its offset survive, as in QEMU.
                bufferSize = 0
                working.resize(to: 0)
                dmaAddressLow = 0
                dmaAddressHigh = 0
                return .success
            case .dmaMM: return processMM(viaDMA: true, service: service)
            case .pioMM: return processMM(viaDMA: false, service: service)
            case .pioZeroOffset:
                pioOffset = 0
                return .success
            case nil:
                return .errorNotSupported
            }
        }

        // MARK: MM requests

        private var dmaAddress: UInt64 { UInt64(dmaAddressHigh) << 32 | UInt64(dmaAddressLow) }

        private mutating func processMM(viaDMA: Bool, service: VariableService<Crypto, Journal>) -> UEFIVarsStatus {
            let headerSize = MMCommunicateHeader.size
            let address = dmaAddress, capacity = bufferSize
            guard capacity >= UInt32(headerSize), working.capacity == Int(capacity) else { return .errorBadBufferSize }
            // 1. The header, once. MessageLength is taken from this copy and never re-read.
            //    A buffer that would wrap around the top of the address space is no guest buffer.
            if viaDMA && CheckedSize.add(address, UInt64(headerSize)) == nil { return .errorUnknown }
            working.willWrite(upTo: headerSize)
            if viaDMA {
                do throws(GuestMemoryError) {
                    try memory.read(address, into: &working.bytes, at: 0, count: headerSize)
                } catch {
                    return .errorUnknown
                }
            } else {
                working.bytes.replaceSubrange(0..<headerSize, with: pioBuffer[0..<headerSize])
            }
            let messageLength = LittleEndian.load(UInt64.self, from: working.bytes, at: MMCommunicateHeader.messageLengthOffset) ?? 0
            guard let total = CheckedSize.add(UInt64(headerSize), messageLength), total <= UInt64(capacity) else {
                return .errorBadBufferSize
            }
            if viaDMA && CheckedSize.add(address, total) == nil { return .errorUnknown }
            let requestEnd = Int(total)
            // 2. The body, once, right after the header in the same private copy.
            working.willWrite(upTo: requestEnd)
            if viaDMA {
                do throws(GuestMemoryError) {
                    try memory.read(address &+ UInt64(headerSize), into: &working.bytes, at: headerSize,
                                    count: requestEnd - headerSize)
                } catch {
                    return .errorUnknown
                }
            } else {
                working.bytes.replaceSubrange(headerSize..<requestEnd, with: pioBuffer[headerSize..<requestEnd])
            }
            // Fields past MessageLength read as zero, as in QEMU's zero-filled working buffer.
            working.clear(from: requestEnd)

            let result = MMDispatcher.dispatch(&working.bytes, service: service)

            // 3. The reply has exactly the request's length.
            if viaDMA {
                do throws(GuestMemoryError) {
                    try memory.write(address, from: working.bytes, range: 0..<requestEnd)
                } catch {
                    return .errorUnknown
                }
            } else {
                pioBuffer.replaceSubrange(0..<requestEnd, with: working.bytes[0..<requestEnd])
            }
            switch result {
            case .handled: return .success
            case .unsupportedHandler: return .errorNotSupported
            case .badBufferSize: return .errorBadBufferSize
            }
        }
    }
}
