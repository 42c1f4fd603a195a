/// VarCheck: per-variable properties (edk2 MdeModulePkg/Library/VarCheckLib) and the checks
/// UEFI defines for its own variables (MdeModulePkg/Library/VarCheckUefiLib). Both run only
/// after EndOfDxe, as edk2's VarCheckLibSetVariableCheck does.

/// VAR_CHECK_VARIABLE_PROPERTY, 24 bytes: Revision (u16), Property (u16), Attributes (u32),
/// MinSize (u64), MaxSize (u64).
public struct VariableProperty: Sendable, Equatable {
    public static let revision: UInt16 = 1
    public static let readOnly: UInt16 = 0x0001
    public static let size = 24

    public var revision: UInt16 = VariableProperty.revision
    public var property: UInt16 = 0
    /// 0: any attributes; otherwise a write must carry exactly these (APPEND aside).
    public var attributes: UInt32 = 0
    public var minimumSize: UInt64 = 0
    public var maximumSize: UInt64 = UInt64.max

    public init(property: UInt16 = 0, attributes: UInt32 = 0, minimumSize: UInt64 = 0, maximumSize: UInt64 = UInt64.max) {
        self.property = property
        self.attributes = attributes
        self.minimumSize = minimumSize
        self.maximumSize = maximumSize
    }

    public init?(bytes: [UInt8], at offset: Int) {
        var reader = ByteReader(bytes, start: offset, end: offset &+ Self.size)
        guard offset >= 0, reader.remaining == Self.size,
              let revision = reader.read(UInt16.self), let property = reader.read(UInt16.self),
              let attributes = reader.read(UInt32.self), let minimumSize = reader.read(UInt64.self),
              let maximumSize = reader.read(UInt64.self) else { return nil }
        self.revision = revision
        self.property = property
        self.attributes = attributes
        self.minimumSize = minimumSize
        self.maximumSize = maximumSize
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        LittleEndian.append(revision, to: &out)
        LittleEndian.append(property, to: &out)
        LittleEndian.append(attributes, to: &out)
        LittleEndian.append(minimumSize, to: &out)
        LittleEndian.append(maximumSize, to: &out)
        return out
    }

    public var isReadOnly: Bool { property & Self.readOnly != 0 }
}

/// Which content check a UEFI-defined variable gets on top of its property.
enum UEFIContentCheck: Sendable {
    case none, asciiString, devicePath, wholeUInt16s, wholeGUIDs, loadOption, keyOption
}

/// The UEFI-defined variables edk2's VarCheckUefiLib knows, with their properties.
/// `#` in a name stands for one uppercase hexadecimal digit.
enum UEFIDefinedVariables {
    struct Entry {
        let name: [UInt16]
        let property: VariableProperty
        let check: UEFIContentCheck
    }

    static let bsRt: UInt32 = 0x06, nvBsRt: UInt32 = 0x07, nvBsRtAt: UInt32 = 0x27, nvBsRtHr: UInt32 = 0x0F

    static func entry(_ name: String, _ attributes: UInt32, _ minimum: UInt64, _ maximum: UInt64 = UInt64.max,
                      readOnly: Bool = false, check: UEFIContentCheck = .none) -> Entry {
        Entry(name: Array(name.utf16),
              property: VariableProperty(property: readOnly ? VariableProperty.readOnly : 0, attributes: attributes,
                                         minimumSize: minimum, maximumSize: maximum),
              check: check)
    }

    static let global: [Entry] = [
        entry("LangCodes", bsRt, 1, check: .asciiString),
        entry("Lang", nvBsRt, 1, check: .asciiString),
        entry("Timeout", nvBsRt, 2, 2),
        entry("PlatformLangCodes", bsRt, 1, check: .asciiString),
        entry("PlatformLang", nvBsRt, 1, check: .asciiString),
        entry("ConIn", nvBsRt, 4, check: .devicePath),
        entry("ConOut", nvBsRt, 4, check: .devicePath),
        entry("ErrOut", nvBsRt, 4, check: .devicePath),
        entry("ConInDev", bsRt, 4, check: .devicePath),
        entry("ConOutDev", bsRt, 4, check: .devicePath),
        entry("ErrOutDev", bsRt, 4, check: .devicePath),
        entry("BootOrder", nvBsRt, 2, check: .wholeUInt16s),
        entry("BootNext", nvBsRt, 2, 2),
        entry("BootCurrent", bsRt, 2, 2),
        entry("BootOptionSupport", bsRt, 4, 4),
        entry("DriverOrder", nvBsRt, 2, check: .wholeUInt16s),
        entry("SysPrepOrder", nvBsRt, 2, check: .wholeUInt16s),
        entry("HwErrRecSupport", nvBsRt, 2, 2),
        entry("SetupMode", bsRt, 1, 1, readOnly: true),
        entry("KEK", nvBsRtAt, 1),
        entry("PK", nvBsRtAt, 1),
        entry("SignatureSupport", bsRt, 16, readOnly: true, check: .wholeGUIDs),
        entry("SecureBoot", bsRt, 1, 1, readOnly: true),
        entry("KEKDefault", bsRt, 1, readOnly: true),
        entry("PKDefault", bsRt, 1, readOnly: true),
        entry("dbDefault", bsRt, 1, readOnly: true),
        entry("dbxDefault", bsRt, 1, readOnly: true),
        entry("dbtDefault", bsRt, 1, readOnly: true),
        entry("OsIndicationsSupported", bsRt, 8, 8),
        entry("OsIndications", nvBsRt, 8, 8),
        entry("VendorKeys", bsRt, 1, 1, readOnly: true),
        // UEFI 2.5+ (edk2 2015's VarCheckUefiLib); AuthenticatedVariables.swift decides when
        // they may be written.
        entry("AuditMode", bsRt, 1, 1),
        entry("DeployedMode", bsRt, 1, 1),
        entry("Boot####", nvBsRt, 6, check: .loadOption),
        entry("Driver####", nvBsRt, 6, check: .loadOption),
        entry("SysPrep####", nvBsRt, 6, check: .loadOption),
        entry("Key####", nvBsRt, 10, 22, check: .keyOption),
        entry("PlatformRecovery####", bsRt, 6, check: .loadOption),
    ]

    static let imageSecurity: [Entry] = [
        entry("db", nvBsRtAt, 1), entry("dbx", nvBsRtAt, 1), entry("dbt", nvBsRtAt, 1),
        // UEFI 2.10 §32.6 (OS recovery); edk2 has no entry for it and rejects it after EndOfDxe.
        entry("dbr", nvBsRtAt, 1),
    ]

    static let hardwareError: [Entry] = [entry("HwErrRec####", nvBsRtHr, 1)]

    /// The table for a UEFI-defined namespace; nil for any other GUID.
    static func table(for guid: EFIGUID) -> [Entry]? {
        switch guid {
        case .globalVariable: return global
        case .imageSecurityDatabase: return imageSecurity
        case .hardwareErrorVariable: return hardwareError
        default: return nil
        }
    }

    static func lookup(_ key: VariableKey) -> Entry? {
        table(for: key.guid)?.first { matches(pattern: $0.name, key.name.codeUnits) }
    }

    /// `#` matches one uppercase hexadecimal digit (edk2 VarCheckLib); anything else exactly.
    static func matches(pattern: [UInt16], _ name: [UInt16]) -> Bool {
        guard pattern.count == name.count else { return false }
        for (p, c) in zip(pattern, name) {
            if p == 0x23 {
                guard (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) else { return false }
            } else if p != c {
                return false
            }
        }
        return true
    }

    // MARK: Content checks (VarCheckUefiLibNullClass.c)

    static func passes(_ check: UEFIContentCheck, _ data: [UInt8]) -> Bool {
        switch check {
        case .none: return true
        // edk2 only asks that the string be NUL-terminated somewhere.
        case .asciiString: return data.contains(0)
        case .devicePath: return isValidDevicePath(data, from: 0, length: data.count)
        case .wholeUInt16s: return data.count % 2 == 0
        case .wholeGUIDs: return data.count % 16 == 0
        case .keyOption: return data.count >= 10 && (data.count - 10) % 4 == 0
        case .loadOption: return isValidLoadOption(data)
        }
    }

    /// EFI_DEVICE_PATH_PROTOCOL nodes (Type u8, SubType u8, Length u16) up to the first
    /// End-Entire node (0x7F/0xFF, length exactly 4); every node at least 4 bytes and inside
    /// `length`. Bytes after the end node are allowed, as in edk2's IsDevicePathValid.
    static func isValidDevicePath(_ data: [UInt8], from start: Int, length: Int) -> Bool {
        guard start >= 0, length >= 4, start <= data.count, data.count - start >= length else { return false }
        var position = start
        let end = start + length
        while end - position >= 4 {
            let type = data[position], subType = data[position + 1]
            let nodeLength = Int(data[position + 2]) | Int(data[position + 3]) << 8
            guard nodeLength >= 4, nodeLength <= end - position else { return false }
            if type == 0x7F && subType == 0xFF { return nodeLength == 4 }
            position += nodeLength
        }
        return false
    }

    /// EFI_LOAD_OPTION: Attributes u32, FilePathListLength u16, Description (CHAR16, NUL),
    /// FilePathList (a valid device path of FilePathListLength ≥ 4 bytes), optional data.
    static func isValidLoadOption(_ data: [UInt8]) -> Bool {
        guard data.count >= 6 else { return false }
        let filePathLength = Int(data[4]) | Int(data[5]) << 8
        var position = 6
        while true {
            guard data.count - position >= 2 else { return false }
            let unit = UInt16(data[position]) | UInt16(data[position + 1]) << 8
            position += 2
            if unit == 0 { break }
        }
        guard filePathLength >= 4, data.count - position >= filePathLength else { return false }
        return isValidDevicePath(data, from: position, length: filePathLength)
    }
}

// MARK: VarCheck in the service: the properties SMM function 9 sets and 10 reads, checked on every
// SetVariable after EndOfDxe (edk2 VarCheckLib).

extension VariableServiceState {
    /// The property that applies to a variable: one set through SMM function 9, else the
    /// UEFI-defined table's.
    public func variableProperty(_ key: VariableKey) -> VariableProperty? {
        properties[key] ?? UEFIDefinedVariables.lookup(key)?.property
    }

    /// edk2 VarCheckLibSetVariableCheck and VarCheckUefiLib's handler.
    func checkProperties(_ key: VariableKey, attributes: VariableAttributes, data: ArraySlice<UInt8>, isDelete: Bool) throws(EFIStatus) {
        let property = variableProperty(key)
        if let property {
            if property.isReadOnly { throw .writeProtected }
            if !isDelete {
                if property.attributes != 0 && attributes.stored.rawValue != property.attributes { throw .invalidParameter }
                let size = UInt64(data.count)
                if size != 0 && (size < property.minimumSize || size > property.maximumSize) { throw .invalidParameter }
            }
        }
        guard !isDelete else { return }
        if attributes.contains(.hardwareErrorRecord) {
            guard key.guid == .hardwareErrorVariable,
                  UEFIDefinedVariables.matches(pattern: Array("HwErrRec####".utf16), key.name.codeUnits) else {
                throw .invalidParameter
            }
        }
        // A UEFI namespace holds only the variables UEFI defines.
        if UEFIDefinedVariables.table(for: key.guid) != nil && property == nil { throw .invalidParameter }
        if !data.isEmpty, let entry = UEFIDefinedVariables.lookup(key), !UEFIDefinedVariables.passes(entry.check, Array(data)) {
            throw .invalidParameter
        }
    }

    /// VAR_CHECK_VARIABLE_PROPERTY_SET: only before EndOfDxe. Each new entry is charged
    /// against volatile storage, like a policy, so the table cannot grow without bound.
    public mutating func setVariableProperty(_ key: VariableKey, _ property: VariableProperty) throws(EFIStatus) {
        if phase.endOfDxe { throw .accessDenied }
        guard !key.name.isEmpty, property.revision == VariableProperty.revision else { throw .invalidParameter }
        if properties[key] == nil {
            let charge = Self.propertyCharge(key)
            guard variables.quota.fits(replacing: nil, newCharge: charge, in: .volatile) else { throw .outOfResources }
            variables.quota.reserve(charge, in: .volatile)
            propertyBytes += charge
        }
        properties[key] = property
    }

    /// Bytes a property entry costs: the 24-byte property and the name.
    static func propertyCharge(_ key: VariableKey) -> UInt64 {
        UInt64(VariableProperty.size + key.name.wireSize)
    }
}
