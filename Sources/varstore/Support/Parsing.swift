import VarStoreCore

/// Attributes as letters, e.g. NV|BS|RT|AT.
func attributeText(_ attributes: VariableAttributes) -> String {
    let names: [(VariableAttributes, String)] = [(.nonVolatile, "NV"), (.bootServiceAccess, "BS"), (.runtimeAccess, "RT"),
                                                 (.hardwareErrorRecord, "HR"), (.timeBasedAuthenticatedWriteAccess, "AT")]
    return names.filter { attributes.contains($0.0) }.map(\.1).joined(separator: "|")
}

/// "YYYY-MM-DD HH:MM:SS" → EFI_TIME (no range checks beyond the field widths, as efitools).
func parseTime(_ text: String) -> EFITime? {
    let parts = text.split(whereSeparator: { $0 == "-" || $0 == " " || $0 == ":" }).map { UInt16($0) }
    guard parts.count == 6, parts.allSatisfy({ $0 != nil }), parts[1...].allSatisfy({ $0! <= 255 }) else { return nil }
    return EFITime(year: parts[0]!, month: UInt8(parts[1]!), day: UInt8(parts[2]!), hour: UInt8(parts[3]!),
                   minute: UInt8(parts[4]!), second: UInt8(parts[5]!))
}

/// "512K", "1M", "4096" → bytes.
func parseSize(_ text: String) -> UInt64? {
    let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
    if let last = text.last, let unit = units[Character(last.uppercased())] {
        return UInt64(text.dropLast()).flatMap { $0.multipliedReportingOverflow(by: unit).overflow ? nil : $0 * unit }
    }
    return UInt64(text)
}
