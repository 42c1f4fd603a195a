/// The SVSM UEFI MM protocol (protocol 4, call 1), as coconut-svsm's `uefivars` protocol and
/// edk2's VirtMmCommunicationDxe define it: the guest passes the guest-physical address of an
/// EFI_MM_COMMUNICATE buffer (24-byte header, then MessageLength bytes) in RCX and its size in
/// RDX; the service answers in place. The second transport into the same MM dispatcher as the
/// uefi-vars device.
///
/// Checks run in coconut's order with its return codes; the request is copied into service
/// memory once, dispatched there, and the reply — never longer than the request — copied back.
/// Nothing a guest passes can trap.
/// An SVSM call's result code, returned in RAX (the SVSM specification's SVSM_SUCCESS and
/// SVSM_ERR_* values, as coconut-svsm's SvsmResultCode names them). Like EFIStatus: a raw
/// number with named constants, so no call site holds a magic number.
public struct SVSMStatus: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let success = SVSMStatus(rawValue: 0)
    public static let incomplete = SVSMStatus(rawValue: 0x8000_0000)
    public static let unsupportedProtocol = SVSMStatus(rawValue: 0x8000_0001)
    public static let unsupportedCall = SVSMStatus(rawValue: 0x8000_0002)
    public static let invalidAddress = SVSMStatus(rawValue: 0x8000_0003)
    public static let invalidFormat = SVSMStatus(rawValue: 0x8000_0004)
    public static let invalidParameter = SVSMStatus(rawValue: 0x8000_0005)
    public static let invalidRequest = SVSMStatus(rawValue: 0x8000_0006)
    public static let busy = SVSMStatus(rawValue: 0x8000_0007)

    /// The specification's name, for messages.
    public var name: StaticString {
        switch self {
        case .success: return "SVSM_SUCCESS"
        case .incomplete: return "SVSM_ERR_INCOMPLETE"
        case .unsupportedProtocol: return "SVSM_ERR_UNSUPPORTED_PROTOCOL"
        case .unsupportedCall: return "SVSM_ERR_UNSUPPORTED_CALL"
        case .invalidAddress: return "SVSM_ERR_INVALID_ADDRESS"
        case .invalidFormat: return "SVSM_ERR_INVALID_FORMAT"
        case .invalidParameter: return "SVSM_ERR_INVALID_PARAMETER"
        case .invalidRequest: return "SVSM_ERR_INVALID_REQUEST"
        case .busy: return "SVSM_ERR_BUSY"
        default: return "an unknown SVSM result"
        }
    }
}

/// The registers of one SVSM call, in and out.
public struct SVSMCall: Equatable, Sendable {
    public var rax: UInt64
    public var rcx: UInt64
    public var rdx: UInt64
    public var r8: UInt64

    public init(rax: UInt64, rcx: UInt64 = 0, rdx: UInt64 = 0, r8: UInt64 = 0) {
        self.rax = rax
        self.rcx = rcx
        self.rdx = rdx
        self.r8 = r8
    }

    public var `protocol`: UInt32 { UInt32(truncatingIfNeeded: rax >> 32) }
    public var callID: UInt32 { UInt32(truncatingIfNeeded: rax) }
}

public final class SVSMUEFIMM<Memory: GuestMemory, Crypto: AuthenticationCrypto, Journal: NonVolatileJournal> {
    public static var coreProtocol: UInt32 { 0 }
    public static var coreQueryProtocol: UInt32 { 6 }
    public static var uefiMMProtocol: UInt32 { 4 }
    public static var uefiMMRequest: UInt32 { 1 }
    public static var version: UInt32 { 1 }
    /// coconut's UEFI_MM_BUFFER_LIMIT (edk2 itself uses 64 KiB).
    public static var maximumBufferSize: UInt64 { 256 << 10 }
    public static var pageSize: UInt64 { 4096 }

    public let service: VariableService<Crypto, Journal>
    /// Guest memory and the request copy, as one value: a call is one exclusive access to it
    /// and one to the service (VariableService.swift says why that matters).
    private var transfer: Transfer

    public var memory: Memory {
        get { transfer.memory }
        _modify { yield &transfer.memory }
    }

    public init(service: VariableService<Crypto, Journal>, memory: Memory) {
        self.service = service
        transfer = Transfer(memory: memory)
    }

    /// One SVSM call for this service: the UEFI MM request, or the core protocol's
    /// QUERY_PROTOCOL asked about protocol 4 (RCX out = (max << 32) | min, or 0). Returns the
    /// registers as the guest sees them afterwards (RAX = SVSM status).
    public func call(_ registers: SVSMCall) -> SVSMCall {
        var out = registers
        switch (registers.protocol, registers.callID) {
        case (Self.coreProtocol, Self.coreQueryProtocol):
            let asked = UInt32(truncatingIfNeeded: registers.rcx >> 32)
            let version = UInt32(truncatingIfNeeded: registers.rcx)
            let supported = asked == Self.uefiMMProtocol && version >= Self.version && version <= Self.version
            out.rcx = supported ? UInt64(Self.version) << 32 | UInt64(Self.version) : 0
            out.rax = SVSMStatus.success.rawValue
        case (Self.coreProtocol, _):
            // The rest of the core protocol belongs to the SVSM itself.
            out.rax = SVSMStatus.unsupportedCall.rawValue
        case (Self.uefiMMProtocol, Self.uefiMMRequest):
            out.rax = request(address: registers.rcx, size: registers.rdx).rawValue
        case (Self.uefiMMProtocol, _):
            out.rax = SVSMStatus.unsupportedCall.rawValue
        default:
            out.rax = SVSMStatus.unsupportedProtocol.rawValue
        }
        return out
    }

    func request(address: UInt64, size: UInt64) -> SVSMStatus {
        transfer.request(address: address, size: size, service: service)
    }

    /// Guest memory, the service's private copy of the current request (RDX bytes) and the
    /// byte the probe of the buffer's first page lands in.
    private struct Transfer {
        var memory: Memory
        var working = MMRequestCopy()
        var probeByte: [UInt8] = [0]

        /// SVSM_UEFI_MM_REQUEST: coconut's check_buffer order, then copy in once, dispatch, copy
        /// back the reply (the request's own length).
        ///
        /// The handlers see the whole buffer the guest declared (RDX), as the device's handlers see
        /// BUFFER_SIZE: edk2 sizes every later request from GET_PAYLOAD_SIZE's answer, and a
        /// GetNextVariableName whose next name outgrows the caller's NameSize must answer
        /// EFI_BUFFER_TOO_SMALL with the size needed whenever that name fits the buffer. Only the
        /// request's 24 + MessageLength bytes are read from the guest; the rest of the copy is zero.
        mutating func request(address: UInt64, size: UInt64, service: VariableService<Crypto, Journal>) -> SVSMStatus {
            let header = UInt64(MMCommunicateHeader.size)
            guard address != 0 else { return .invalidParameter }
            // coconut's valid_phys_address on the start, then the alignment; the platform's guest
            // memory decides what is guest RAM (and checks every page we touch later).
            do throws(GuestMemoryError) {
                try memory.read(address, into: &probeByte, at: 0, count: 1)
            } catch {
                return .invalidAddress
            }
            guard address % SVSMUEFIMM.pageSize == 0 else { return .invalidAddress }
            guard size >= header, size <= SVSMUEFIMM.maximumBufferSize else { return .invalidParameter }
            // Not one of coconut's checks (its addresses cannot wrap): a buffer past the top of
            // the address space is not guest memory.
            guard CheckedSize.add(address, size) != nil else { return .invalidAddress }
            working.resize(to: Int(size))
            working.willWrite(upTo: Int(header))
            do throws(GuestMemoryError) {
                try memory.read(address, into: &working.bytes, at: 0, count: Int(header))
            } catch {
                return .invalidAddress
            }
            let length = LittleEndian.load(UInt64.self, from: working.bytes, at: MMCommunicateHeader.messageLengthOffset) ?? .max
            guard length <= size - header else { return .invalidParameter }
            let total = Int(header + length)
            working.willWrite(upTo: total)
            do throws(GuestMemoryError) {
                try memory.read(address + header, into: &working.bytes, at: Int(header), count: total - Int(header))
            } catch {
                return .invalidAddress
            }
            switch MMDispatcher.dispatch(&working.bytes, service: service) {
            case .handled:
                break
            case .unsupportedHandler:
                return .invalidRequest
            case .badBufferSize:
                return .invalidParameter
            }
            // Handlers answer in place and never past 24 + MessageLength; a copy that changed size
            // would be a bug, and is refused rather than copied back.
            guard working.capacity == Int(size) else { return .invalidRequest }
            do throws(GuestMemoryError) {
                try memory.write(address, from: working.bytes, range: 0 ..< total)
            } catch {
                return .invalidAddress
            }
            return .success
        }
    }
}

/// What the attestation report says about the UEFI MM service (coconut's UefiMmManifest,
/// published under the service GUID a4453a59-9e1b-4787-a033-1986d6adbe55).
///
/// Version 0 (8 bytes, coconut's): version u32 = 0, flags u32 — bit 0 persistent_nv_vars,
/// bit 1 secureboot_enabled (PK enrolled), bit 2 secureboot_db_update (signed updates are
/// verified). Version 1 (ours, 48 bytes): version u32 = 1, the same flags u32, the store
/// generation u64 and the committed-state digest [32] — what a relying party needs to anchor
/// against rollback.
public enum UEFIMMManifest {
    public static let serviceGUID = EFIGUID(0xa4453a59, 0x9e1b, 0x4787, 0xa0, 0x33, 0x19, 0x86, 0xd6, 0xad, 0xbe, 0x55)

    public static func flags<C: AuthenticationCrypto, J: NonVolatileJournal>(_ service: VariableService<C, J>) -> UInt32 {
        var flags: UInt32 = 0
        if service.journal.isPersistent { flags |= 1 }
        if service.store.variable(for: SecureBootVariable.pk) != nil { flags |= 2 }
        // Signed updates of db and dbx are verified with PKCS#7 (outside setup mode and custom
        // mode, where the spec lets the platform owner write keys unsigned).
        flags |= 4
        return flags
    }

    public static func encode<C: AuthenticationCrypto, J: NonVolatileJournal>(_ service: VariableService<C, J>,
                                                                           version: UInt32) -> [UInt8]? {
        var out: [UInt8] = []
        switch version {
        case 0:
            LittleEndian.append(UInt32(0), to: &out)
            LittleEndian.append(flags(service), to: &out)
        case 1:
            LittleEndian.append(UInt32(1), to: &out)
            LittleEndian.append(flags(service), to: &out)
            LittleEndian.append(service.journal.generation, to: &out)
            var digest = service.journal.stateDigest
            digest += [UInt8](repeating: 0, count: max(0, 32 - digest.count))
            out += digest.prefix(32)
        default:
            return nil
        }
        return out
    }
}
