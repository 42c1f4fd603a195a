import Foundation
import VarStoreCore

/// edk2's firmware-volume variable store, as in OVMF_VARS.fd (MdeModulePkg
/// Include/Guid/VariableFormat.h, PiFirmwareVolume.h): read for `varstore import`,
/// written (into a template's layout) for `varstore export --template`.
///
///     EFI_FIRMWARE_VOLUME_HEADER   FvLength u64 @0x20, "_FVH" @0x28, HeaderLength u16 @0x30
///     VARIABLE_STORE_HEADER        Signature GUID (authenticated aaf32c78-… or plain ddcf3616-…),
///                                  Size u32, Format 0x5A, State 0xFE, reserved (28 bytes)
///     variables, each 4-byte aligned: StartId 0x55AA u16, State u8, reserved u8, Attributes
///       u32, [MonotonicCount u64, TimeStamp EFI_TIME, PubKeyIndex u32 — authenticated only],
///       NameSize u32, DataSize u32, VendorGuid, then the name and the data
///
/// Only variables whose State is VAR_ADDED (0x3F) count, and a variable in deleted
/// transition (0x3E) when no added copy follows. edk2's certdb (the signer pins of private
/// authenticated variables) is kept as a variable and its pins are attached to the
/// variables they belong to.
public enum OVMFVarsFile {
    public struct FormatError: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    static let authenticatedStore = EFIGUID(text: "aaf32c78-947b-439a-a180-2e144ec37792")!
    static let plainStore = EFIGUID(text: "ddcf3616-3275-4164-98b6-fe85707ffe7d")!
    static let certDB = VariableKey(guid: EFIGUID(text: "d9bee56e-75dc-49d9-b4d7-b534210f637a")!, name: VariableName("certdb")!)

    /// Whether `data` carries a firmware volume's "_FVH" signature at 0x28.
    public static func isFirmwareVolume(_ data: [UInt8]) -> Bool {
        data.count >= 0x2C && Array(data[0x28 ..< 0x2C]) == Array("_FVH".utf8)
    }

    public static func parse(_ data: [UInt8]) throws -> [Variable] {
        func u16(_ at: Int) -> UInt16? { LittleEndian.load(UInt16.self, from: data, at: at) }
        func u32(_ at: Int) -> UInt32? { LittleEndian.load(UInt32.self, from: data, at: at) }
        guard data.count >= 0x48, Array(data[0x28 ..< 0x2C]) == Array("_FVH".utf8), let headerLength = u16(0x30),
              Int(headerLength) + 28 <= data.count else { throw FormatError("not an edk2 firmware volume (no _FVH header)") }
        // A cut-short file would otherwise import the variables before the cut and silently
        // drop the rest.
        if let volumeLength = LittleEndian.load(UInt64.self, from: data, at: 0x20), volumeLength > UInt64(data.count) {
            throw FormatError("truncated: the firmware volume declares \(volumeLength) bytes but the file has \(data.count)")
        }
        let store = Int(headerLength)
        guard let signature = EFIGUID(wire: data, at: store), signature == authenticatedStore || signature == plainStore else {
            throw FormatError("the firmware volume holds no variable store")
        }
        let authenticated = signature == authenticatedStore
        guard let storeSize = u32(store + 16), data[store + 20] == 0x5A else { throw FormatError("the variable store header is not formatted") }
        guard UInt64(store) + UInt64(storeSize) <= UInt64(data.count) else {
            throw FormatError("truncated: the variable store declares \(storeSize) bytes but the file ends \(data.count - store) bytes after its start")
        }
        let end = store + Int(storeSize)
        let headerSize = authenticated ? 60 : 32
        var found: [(Variable, UInt8)] = []
        var offset = store + 28
        while offset + headerSize <= end, u16(offset) == 0x55AA {
            let state = data[offset + 2]
            guard let attributes = u32(offset + 4),
                  let nameSize = u32(offset + (authenticated ? 36 : 8)), let dataSize = u32(offset + (authenticated ? 40 : 12)),
                  let guid = EFIGUID(wire: data, at: offset + (authenticated ? 44 : 16)) else { break }
            let nameStart = offset + headerSize
            guard UInt64(nameStart) + UInt64(nameSize) + UInt64(dataSize) <= UInt64(end) else {
                throw FormatError("a variable at offset \(offset) runs past the store")
            }
            let dataStart = nameStart + Int(nameSize)
            if state == 0x3F || state == 0x3E {
                guard case .success(let name) = VariableName.parse(data, at: nameStart, size: UInt64(nameSize)) else {
                    throw FormatError("the variable at offset \(offset) has a malformed name")
                }
                guard !name.isEmpty else { throw FormatError("the variable at offset \(offset) has an empty name") }
                let time = authenticated ? EFITime(bytes: data, at: offset + 16) : nil
                let stored = VariableAttributes(rawValue: attributes)
                let variable = Variable(key: VariableKey(guid: guid, name: name), attributes: stored,
                                        data: Array(data[dataStart ..< dataStart + Int(dataSize)]),
                                        timestamp: stored.contains(.timeBasedAuthenticatedWriteAccess) ? time : nil)
                found.append((variable, state))
            }
            offset = (dataStart + Int(dataSize) + 3) & ~3
        }
        // The last added copy of each variable wins; one in deleted transition only if alone.
        var result: [Variable] = []
        for (index, entry) in found.enumerated() {
            let later = found[(index + 1)...].contains { $0.0.key == entry.0.key && $0.1 == 0x3F }
            if later { continue }
            if entry.1 == 0x3E && found.contains(where: { $0.0.key == entry.0.key && $0.1 == 0x3F }) { continue }
            result.removeAll { $0.key == entry.0.key }
            result.append(entry.0)
        }
        let variables = attachPins(result)
        // What no image could hold (a certdb pin over 255 bytes, say) is refused here, where
        // the file can be named, rather than at the image.
        for variable in variables {
            if let problem = StorableVariable.formatProblem(variable) {
                throw FormatError("\(Provisioning.label(variable)): \(Provisioning.describe(problem))")
            }
        }
        return variables
    }

    /// certdb: UINT32 total size, then nodes of VendorGuid, NodeSize u32, NameSize u32 (in
    /// CHAR16, no NUL), CertDataSize u32, the name, the pin.
    static func attachPins(_ variables: [Variable]) -> [Variable] {
        guard let certdb = variables.first(where: { $0.key == certDB }), certdb.data.count >= 4 else { return variables }
        var pins: [VariableKey: [UInt8]] = [:]
        let data = certdb.data
        var offset = 4
        while offset + 28 <= data.count, let guid = EFIGUID(wire: data, at: offset),
              let nodeSize = LittleEndian.load(UInt32.self, from: data, at: offset + 16),
              let nameUnits = LittleEndian.load(UInt32.self, from: data, at: offset + 20),
              let pinSize = LittleEndian.load(UInt32.self, from: data, at: offset + 24),
              nodeSize >= 28, UInt64(offset) + UInt64(nodeSize) <= UInt64(data.count),
              UInt64(28) + 2 * UInt64(nameUnits) + UInt64(pinSize) <= UInt64(nodeSize) {
            var reader = ByteReader(data, start: offset + 28)
            guard let units = reader.readUCS2(Int(nameUnits)) else { break }
            let pinStart = offset + 28 + 2 * Int(nameUnits)
            if let name = VariableName(codeUnits: units) {
                pins[VariableKey(guid: guid, name: name)] = Array(data[pinStart ..< pinStart + Int(pinSize)])
            }
            offset += Int(nodeSize)
        }
        return variables.map { variable in
            guard let pin = pins[variable.key] else { return variable }
            var pinned = variable
            pinned.certificateDigest = pin
            return pinned
        }
    }

    /// `variables` written into the variable store of `template` (an OVMF_VARS.fd whose
    /// firmware-volume header, size and FTW working-block header are kept, its write queue
    /// erased), in the
    /// authenticated format, each VAR_ADDED, the rest of the store erased (0xFF). Signer pins
    /// travel in edk2's certdb, rebuilt from the variables when any has one.
    public static func render(_ variables: [Variable], template: [UInt8]) throws -> [UInt8] {
        guard template.count >= 0x48, Array(template[0x28 ..< 0x2C]) == Array("_FVH".utf8),
              let headerLength = LittleEndian.load(UInt16.self, from: template, at: 0x30) else {
            throw FormatError("the template is not an edk2 firmware volume")
        }
        let store = Int(headerLength)
        guard EFIGUID(wire: template, at: store) == authenticatedStore,
              let storeSize = LittleEndian.load(UInt32.self, from: template, at: store + 16),
              storeSize >= 28, store + Int(storeSize) <= template.count else {
            throw FormatError("the template has no authenticated variable store")
        }
        var list = variables.filter { $0.isNonVolatile }
        if list.contains(where: { $0.certificateDigest != nil }) {
            var nodes: [UInt8] = []
            for variable in list {
                guard let pin = variable.certificateDigest else { continue }
                var node = variable.guid.wireBytes
                LittleEndian.append(UInt32(28 + 2 * variable.name.codeUnits.count + pin.count), to: &node)
                LittleEndian.append(UInt32(variable.name.codeUnits.count), to: &node)
                LittleEndian.append(UInt32(pin.count), to: &node)
                for unit in variable.name.codeUnits { LittleEndian.append(unit, to: &node) }
                nodes += node + pin
            }
            var data: [UInt8] = []
            LittleEndian.append(UInt32(4 + nodes.count), to: &data)
            let certdb = Variable(key: certDB, attributes: [.nonVolatile, .bootServiceAccess, .runtimeAccess,
                                                            .timeBasedAuthenticatedWriteAccess], data: data + nodes, timestamp: .zero)
            if let index = list.firstIndex(where: { $0.key == certDB }) { list[index] = certdb } else { list.insert(certdb, at: 0) }
        }
        var body: [UInt8] = []
        for variable in list {
            var header: [UInt8] = [0xAA, 0x55, 0x3F, 0x00]
            LittleEndian.append(variable.attributes.rawValue, to: &header)
            LittleEndian.append(UInt64(0), to: &header)
            header += (variable.attributes.contains(.timeBasedAuthenticatedWriteAccess) ? (variable.timestamp ?? .zero) : .zero).bytes
            LittleEndian.append(UInt32(0), to: &header)
            LittleEndian.append(UInt32(variable.name.wireSize), to: &header)
            LittleEndian.append(UInt32(variable.data.count), to: &header)
            header += variable.guid.wireBytes
            body += header + variable.name.wireBytes + variable.data
            while body.count % 4 != 0 { body.append(0xFF) }
        }
        guard 28 + body.count <= Int(storeSize) else {
            throw FormatError("the variables (\(body.count) bytes) do not fit the template's store (\(Int(storeSize) - 28) bytes)")
        }
        var out = template
        let start = store + 28
        out.replaceSubrange(start ..< store + Int(storeSize), with: body + [UInt8](repeating: 0xFF, count: Int(storeSize) - 28 - body.count))
        eraseWriteQueue(&out, after: store + Int(storeSize))
        return out
    }

    /// EDKII_WORKING_BLOCK_SIGNATURE_GUID: the fault-tolerant-write working block's header.
    static let workingBlockSignature = EFIGUID(text: "9e58292b-7c68-497d-a0ce-6500fd9f1b95")!

    /// Erases the write queue of the FTW working block that follows the variable store
    /// (EFI_FAULT_TOLERANT_WORKING_BLOCK_HEADER: Signature GUID, Crc u32, valid/invalid bits
    /// u8, reserved [3], WriteQueueSize u64; the queue follows its 32 bytes). A write the
    /// template's firmware left in flight there would make edk2's FTW driver copy the spare
    /// block over the variable store at the next boot, replacing the exported variables. The
    /// header (and so its CRC) is kept; an erased queue (0xFF) holds no write records.
    static func eraseWriteQueue(_ out: inout [UInt8], after storeEnd: Int) {
        let signature = workingBlockSignature.wireBytes
        var at = (storeEnd + 7) & ~7
        while at + 32 <= out.count {
            if out[at] == signature[0], Array(out[at ..< at + 16]) == signature {
                guard let queueSize = LittleEndian.load(UInt64.self, from: out, at: at + 24),
                      queueSize <= UInt64(out.count - (at + 32)) else { return }
                let queue = at + 32
                out.replaceSubrange(queue ..< queue + Int(queueSize), with: [UInt8](repeating: 0xFF, count: Int(queueSize)))
                return
            }
            at += 8
        }
    }
}
