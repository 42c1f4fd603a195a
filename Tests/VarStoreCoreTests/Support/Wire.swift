import VarStoreCore
import VarStoreCrypto
@testable import VarStoreTestSupport

// Request bytes for the tests are laid out here by hand from the reference tables
// (edk2 SmmVariableCommon.h and VarCheckPolicyMmi.h, as spec/mmio.md frames them), not with
// the encoders under test.

/// GUID wire bytes, copied from the reference's dispatch table.
enum WireGUID {
    static let smmVariable: [UInt8] = [0x33, 0xd5, 0x32, 0xed, 0xe6, 0x99, 0x09, 0x42, 0x9c, 0xc0, 0x2d, 0x72, 0xcd, 0xd9, 0x98, 0xa7]
    static let varCheckPolicy: [UInt8] = [0x11, 0x0d, 0x1b, 0xda, 0xa7, 0xd1, 0xc4, 0x46, 0x9d, 0xc9, 0xf3, 0x71, 0x48, 0x75, 0xc6, 0xeb]
    static let endOfDxe: [UInt8] = [0x7a, 0x96, 0xce, 0x02, 0x7e, 0xdd, 0xfc, 0x4f, 0x9e, 0xe7, 0x81, 0x0c, 0xf0, 0x47, 0x08, 0x80]
    static let readyToBoot: [UInt8] = [0xb3, 0x8f, 0xe8, 0x7c, 0xd7, 0x4b, 0x79, 0x46, 0x87, 0xa8, 0xa8, 0xd8, 0xde, 0xe5, 0x0d, 0x2b]
    static let exitBootServices: [UInt8] = [0x55, 0xf0, 0xab, 0x27, 0xb8, 0xb1, 0x26, 0x4c, 0x80, 0x48, 0x74, 0x8f, 0x37, 0xba, 0xa2, 0xdf]
    /// EFI_GLOBAL_VARIABLE 8be4df61-93ca-11d2-aa0d-00e098032b8c in EFI byte order.
    static let global: [UInt8] = [0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c]
    /// A vendor GUID of the tests' own.
    static let vendor: [UInt8] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10]
}

enum Status {
    static let success: UInt64 = 0
    static let invalidParameter: UInt64 = 0x8000_0000_0000_0002
    static let unsupported: UInt64 = 0x8000_0000_0000_0003
    static let badBufferSize: UInt64 = 0x8000_0000_0000_0004
    static let bufferTooSmall: UInt64 = 0x8000_0000_0000_0005
    static let writeProtected: UInt64 = 0x8000_0000_0000_0008
    static let outOfResources: UInt64 = 0x8000_0000_0000_0009
    static let notFound: UInt64 = 0x8000_0000_0000_000E
    static let accessDenied: UInt64 = 0x8000_0000_0000_000F
    static let securityViolation: UInt64 = 0x8000_0000_0000_001A
}

enum Attr {
    static let nv: UInt32 = 0x01, bs: UInt32 = 0x02, rt: UInt32 = 0x04, hr: UInt32 = 0x08
    static let aw: UInt32 = 0x10, at: UInt32 = 0x20, append: UInt32 = 0x40
    static let nvBsRt: UInt32 = 0x07, bsRt: UInt32 = 0x06
}

func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * UInt32($0))) & 0xff) } }
func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8((v >> (8 * UInt64($0))) & 0xff) } }
func u32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) } }
func u64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) } }

/// UCS-2LE with terminating NUL.
func ucs2(_ text: String) -> [UInt8] { text.utf16.flatMap { le16($0) } + [0, 0] }

/// EFI_MM_COMMUNICATE_HEADER + payload; MessageLength defaults to the payload's length.
func mmMessage(_ guid: [UInt8], _ payload: [UInt8], messageLength: UInt64? = nil) -> [UInt8] {
    guid + le64(messageLength ?? UInt64(payload.count)) + payload
}

/// SMM_VARIABLE_COMMUNICATE_HEADER (Function, ReturnStatus) + function payload.
func smm(_ function: UInt64, _ body: [UInt8]) -> [UInt8] { le64(function) + le64(0) + body }

/// SMM_VARIABLE_COMMUNICATE_ACCESS_VARIABLE: Guid, DataSize, NameSize, Attributes, Name, Data.
func accessVariable(guid: [UInt8] = WireGUID.vendor, name: [UInt8], dataSize: UInt64, nameSize: UInt64? = nil,
                    attributes: UInt32 = 0, data: [UInt8] = []) -> [UInt8] {
    guid + le64(dataSize) + le64(nameSize ?? UInt64(name.count)) + le32(attributes) + name + data
}

/// SMM_VARIABLE_COMMUNICATE_GET_NEXT_VARIABLE_NAME: Guid, NameSize, Name.
func nextName(guid: [UInt8] = WireGUID.vendor, nameSize: UInt64, name: [UInt8]) -> [UInt8] {
    guid + le64(nameSize) + name
}


/// A device with a 64 KiB DMA buffer set up the way edk2's QemuMmio.c does it.
final class Rig {
    static let bufferAddress: UInt64 = 0x2000
    let service: VariableService<Libcrypto, MemoryJournal>
    let device: UEFIVarsDevice<FlatMemory, Libcrypto, MemoryJournal>

    init(configuration: ServiceConfiguration = ServiceConfiguration(), usePIO: Bool = false, bufferSize: UInt64 = 0x10000) {
        service = VariableService(configuration: configuration)
        device = UEFIVarsDevice(service: service, memory: FlatMemory(), usePIO: usePIO)
        device.mmioWrite(offset: 0x02, size: 2, value: 1)  // RESET
        device.mmioWrite(offset: 0x04, size: 4, value: bufferSize)
        device.mmioWrite(offset: 0x08, size: 4, value: Rig.bufferAddress & 0xFFFF_FFFF)
        device.mmioWrite(offset: 0x0C, size: 4, value: Rig.bufferAddress >> 32)
    }

    var status: UInt64 { device.mmioRead(offset: 0x02, size: 2) }

    /// Puts `message` in guest RAM, rings DMA_MM, returns (CMD_STS, the guest buffer after).
    @discardableResult
    func dma(_ message: [UInt8], readBack: Int? = nil) -> (status: UInt64, reply: [UInt8]) {
        let start = Int(Rig.bufferAddress - device.memory.base)
        device.memory.bytes.replaceSubrange(start ..< start + message.count, with: message)
        device.mmioWrite(offset: 0x02, size: 2, value: 2)
        let count = readBack ?? message.count
        return (status, Array(device.memory.bytes[start ..< start + count]))
    }

    /// Sends an SMM variable request; returns ReturnStatus and the bytes after the MM header.
    func call(_ function: UInt64, _ body: [UInt8], messageLength: UInt64? = nil) -> (status: UInt64, payload: [UInt8]) {
        let (deviceStatus, reply) = dma(mmMessage(WireGUID.smmVariable, smm(function, body), messageLength: messageLength))
        precondition(deviceStatus == 0, "device status \(deviceStatus)")
        return (u64(reply, 32), Array(reply.dropFirst(24)))
    }

    func set(_ name: String, guid: [UInt8] = WireGUID.vendor, attributes: UInt32, data: [UInt8]) -> UInt64 {
        call(3, accessVariable(guid: guid, name: ucs2(name), dataSize: UInt64(data.count), attributes: attributes, data: data)).status
    }

    /// GET_VARIABLE with a data area of `dataSize` bytes: (status, attributes, DataSize, data).
    func get(_ name: String, guid: [UInt8] = WireGUID.vendor, dataSize: UInt64 = 256)
        -> (status: UInt64, attributes: UInt32, dataSize: UInt64, data: [UInt8]) {
        let nameBytes = ucs2(name)
        let (status, payload) = call(1, accessVariable(guid: guid, name: nameBytes, dataSize: dataSize,
                                                       data: [UInt8](repeating: 0, count: Int(dataSize))))
        let size = u64(payload, 32)
        let dataStart = 52 + nameBytes.count
        let data = status == Status.success ? Array(payload[dataStart ..< dataStart + Int(size)]) : []
        return (status, u32(payload, 48), size, data)
    }

    /// GET_NEXT_VARIABLE_NAME with an output buffer of `bufferSize` bytes: (status, NameSize, GUID, name).
    func next(after name: String, guid: [UInt8] = WireGUID.vendor, bufferSize: UInt64 = 512)
        -> (status: UInt64, nameSize: UInt64, guid: [UInt8], name: String) {
        var nameBytes = name.isEmpty ? [0, 0] : ucs2(name)
        if UInt64(nameBytes.count) < bufferSize { nameBytes += [UInt8](repeating: 0, count: Int(bufferSize) - nameBytes.count) }
        let (status, payload) = call(2, nextName(guid: guid, nameSize: bufferSize, name: nameBytes))
        let size = u64(payload, 32)
        var units: [UInt16] = []
        if status == Status.success {
            var at = 40
            while payload[at] != 0 || payload[at + 1] != 0 {
                units.append(UInt16(payload[at]) | UInt16(payload[at + 1]) << 8)
                at += 2
            }
        }
        return (status, size, Array(payload[16 ..< 32]), String(decoding: units, as: UTF16.self))
    }

    /// Names in enumeration order, without the service's own Secure Boot variables
    /// (`Baseline`) unless asked for.
    func names(includingService: Bool = false) -> [String] {
        var out: [String] = []
        var current = ""
        var guid = WireGUID.vendor
        while true {
            let result = next(after: current, guid: guid)
            guard result.status == Status.success else { return out }
            if includingService || !Baseline.names.contains(result.name) { out.append(result.name) }
            current = result.name
            guid = result.guid
        }
    }

    /// QUERY_VARIABLE_INFO: (status, max storage, remaining, max variable size).
    func query(_ attributes: UInt32) -> (status: UInt64, maximum: UInt64, remaining: UInt64, largest: UInt64) {
        let (status, payload) = call(4, le64(0) + le64(0) + le64(0) + le32(attributes))
        return (status, u64(payload, 16), u64(payload, 24), u64(payload, 32))
    }

    func signal(_ guid: [UInt8]) -> UInt64 { dma(mmMessage(guid, [0])).status }
}

/// The variables every service creates for Secure Boot at power-on with no PK (edk2
/// AuthVariableLibInitialize, plus UEFI 2.10's AuditMode and DeployedMode), and the storage
/// they take at 60 + NameSize + DataSize each. Tests that size storage add this on top.
enum Baseline {
    /// Volatile, BS|RT: name and data size.
    static let volatileVariables: [(String, UInt64)] = [
        ("SetupMode", 1), ("SignatureSupport", 6 * 16), ("SecureBoot", 1), ("AuditMode", 1),
        ("DeployedMode", 1), ("VendorKeys", 1),
    ]
    /// Non-volatile: CustomMode (NV|BS) and VendorKeysNv (NV|BS|AT).
    static let nonVolatileVariables: [(String, UInt64)] = [("CustomMode", 1), ("VendorKeysNv", 1)]

    static func charge(_ variables: [(String, UInt64)]) -> UInt64 {
        variables.reduce(0) { $0 + 60 + UInt64(2 * ($1.0.utf16.count + 1)) + $1.1 }
    }
    static let volatile = charge(volatileVariables)
    static let nonVolatile = charge(nonVolatileVariables)
    static let names = Set((volatileVariables + nonVolatileVariables).map(\.0))
}
