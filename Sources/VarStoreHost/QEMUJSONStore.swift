import Foundation
import VarStoreCore

/// QEMU's uefi-vars JSON store, version 2 (qapi/uefi.json; what `-device
/// uefi-vars-x64,jsonfile=` and `virt-fw-vars --output-json` read and write).
///
/// Reading is strict where QEMU is lenient (QEMU reads bad hex digits as 0 and drops an odd
/// nibble): a malformed file is refused with an error that names the variable and field.
/// Writing matches QEMU's pretty-printed layout and only ever replaces the file atomically.
public enum QEMUJSONStore {
    public struct FormatError: Error, CustomStringConvertible, Equatable {
        public let message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    // MARK: Reading

    public static func load(contentsOf url: URL) throws -> [Variable] {
        let bytes: Data
        do {
            bytes = Data(try HostFile.read(url.path))
        } catch {
            throw FormatError("\(error)")
        }
        do {
            return try parse(bytes)
        } catch let error as FormatError {
            throw FormatError("\(url.path): \(error.message)")
        }
    }

    /// Parses a store. An empty file is an empty store, as QEMU treats it.
    public static func parse(_ bytes: Data) throws -> [Variable] {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return [] }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: bytes, options: [])
        } catch {
            throw FormatError("not valid JSON (\(error.localizedDescription))")
        }
        guard let top = object as? [String: Any] else { throw FormatError("top level is not a JSON object") }
        guard let version = top["version"] else { throw FormatError("member 'version' is missing") }
        guard integer(version) != nil else { throw FormatError("'version' is not an integer") }
        guard let list = top["variables"] else { throw FormatError("member 'variables' is missing") }
        guard let entries = list as? [Any] else { throw FormatError("'variables' is not an array") }
        var variables: [Variable] = []
        for (index, entry) in entries.enumerated() {
            variables.append(try parseVariable(entry, index: index))
        }
        return variables
    }

    private static func parseVariable(_ entry: Any, index: Int) throws -> Variable {
        let place = "variables[\(index)]"
        guard let fields = entry as? [String: Any] else { throw FormatError("\(place) is not an object") }
        func string(_ key: String, required: Bool) throws -> String? {
            guard let value = fields[key] else {
                if required { throw FormatError("\(place): member '\(key)' is missing") }
                return nil
            }
            guard let text = value as? String else { throw FormatError("\(place).\(key) is not a string") }
            return text
        }
        let guidText = try string("guid", required: true)!
        guard let guid = EFIGUID(text: guidText) else {
            throw FormatError("\(place).guid '\(guidText)' is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
        }
        let nameText = try string("name", required: true)!
        guard !nameText.isEmpty else { throw FormatError("\(place).name is empty") }
        guard let name = VariableName(nameText) else {
            throw FormatError("\(place).name '\(nameText)' has a NUL or a character outside UCS-2")
        }
        let place2 = "\(place) (\(nameText))"
        guard let attrValue = fields["attr"] else { throw FormatError("\(place2): member 'attr' is missing") }
        guard let attr = integer(attrValue), attr >= 0, attr <= Int64(UInt32.max) else {
            throw FormatError("\(place2).attr is not a 32-bit unsigned integer")
        }
        // The store holds what SetVariable stored (StorableVariable's attribute rule): a file
        // claiming anything else was not written by a variable service.
        let attributes = VariableAttributes(rawValue: UInt32(attr))
        if case .attributes(_, let rule) = StorableVariable.attributeProblem(attributes) {
            throw FormatError("\(place2).attr 0x\(String(attr, radix: 16)) is not a stored non-volatile variable's: \(rule)")
        }
        let dataText = try string("data", required: true)!
        guard let data = hexBytes(dataText) else {
            throw FormatError("\(place2).data is not an even-length hex string")
        }
        var timestamp: EFITime?
        if let timeText = try string("time", required: false) {
            guard timeText.count == 32, let raw = hexBytes(timeText), let time = EFITime(bytes: raw, at: 0) else {
                throw FormatError("\(place2).time is not 32 hex digits (a 16-byte EFI_TIME)")
            }
            timestamp = time
        }
        var digest: [UInt8]?
        if let digestText = try string("digest", required: false) {
            guard let raw = hexBytes(digestText) else { throw FormatError("\(place2).digest is not a hex string") }
            digest = raw
        }
        // Only a time-authenticated variable has a timestamp (and the rendered store writes
        // one for each of them): a missing one is the zero time, as the service reads it,
        // and one on any other variable means nothing and is dropped.
        if attributes.contains(.timeBasedAuthenticatedWriteAccess) {
            timestamp = timestamp ?? .zero
        } else {
            timestamp = nil
        }
        let variable = Variable(key: VariableKey(guid: guid, name: name), attributes: attributes,
                                data: data, timestamp: timestamp, certificateDigest: digest)
        // What no image could hold is refused here, where the file and field can be named.
        if let problem = StorableVariable.formatProblem(variable) {
            throw FormatError("\(place2): \(Provisioning.describe(problem))")
        }
        return variable
    }

    private static func integer(_ value: Any) -> Int64? {
        // JSON true/false also arrive as NSNumber; their type code is 'c' (char) or 'B'.
        guard let number = value as? NSNumber else { return nil }
        let typeCode = String(cString: number.objCType)
        guard typeCode != "c", typeCode != "B" else { return nil }
        let double = number.doubleValue
        guard double == double.rounded(), abs(double) < 9.0e18 else { return nil }
        return number.int64Value
    }

    /// Decodes hex (either case); nil for an odd length or a non-hex character.
    public static func hexBytes(_ text: String) -> [UInt8]? { Hex.bytes(text) }

    // MARK: Writing

    /// The store as QEMU writes it: non-volatile variables only, in enumeration order,
    /// four-space indentation, no trailing newline.
    public static func render(_ variables: [Variable]) -> String {
        let persistent = variables.filter { $0.isNonVolatile }
        var out = "{\n    \"version\": 2,\n    \"variables\": ["
        if persistent.isEmpty {
            out += "]\n}"
            return out
        }
        for (index, variable) in persistent.enumerated() {
            out += index == 0 ? "\n" : ",\n"
            var members: [String] = []
            members.append("\"name\": \(JSONText.quoted(variable.name.text))")
            members.append("\"guid\": \"\(variable.guid.text)\"")
            members.append("\"attr\": \(variable.attributes.rawValue)")
            if variable.attributes.contains(.timeBasedAuthenticatedWriteAccess) {
                members.append("\"time\": \"\(Hex.string((variable.timestamp ?? .zero).bytes))\"")
            }
            members.append("\"data\": \"\(Hex.string(variable.data))\"")
            if let digest = variable.certificateDigest {
                members.append("\"digest\": \"\(Hex.string(digest))\"")
            }
            out += "        {\n" + members.map { "            " + $0 }.joined(separator: ",\n") + "\n        }"
        }
        out += "\n    ]\n}"
        return out
    }

    /// Replaces the file atomically (AtomicFile: a crash leaves the old or the new store; a new
    /// file is readable by its owner only).
    public static func save(_ variables: [Variable], to url: URL) throws {
        try AtomicFile.write(Array(render(variables).utf8), to: url)
    }
}
