/// Variable attribute bits (UEFI 2.10 §8.2, edk2 MdePkg/Include/Uefi/UefiMultiPhase.h).
public struct VariableAttributes: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let nonVolatile = VariableAttributes(rawValue: 0x01)
    public static let bootServiceAccess = VariableAttributes(rawValue: 0x02)
    public static let runtimeAccess = VariableAttributes(rawValue: 0x04)
    public static let hardwareErrorRecord = VariableAttributes(rawValue: 0x08)
    /// Deprecated count-based authentication; edk2 treats it as reserved.
    public static let authenticatedWriteAccess = VariableAttributes(rawValue: 0x10)
    public static let timeBasedAuthenticatedWriteAccess = VariableAttributes(rawValue: 0x20)
    /// A request flag: never stored, never returned by GetVariable.
    public static let appendWrite = VariableAttributes(rawValue: 0x40)

    /// edk2 `EFI_VARIABLE_ATTRIBUTES_MASK`: NV|BS|RT|HR|AT|APPEND (0x6F).
    public static let mask: VariableAttributes = [.nonVolatile, .bootServiceAccess, .runtimeAccess,
                                                  .hardwareErrorRecord, .timeBasedAuthenticatedWriteAccess, .appendWrite]
    /// What SetVariable lets past its first check: MASK | AW (0x7F); anything else is
    /// EFI_INVALID_PARAMETER in edk2 (0x80, ENHANCED_AUTHENTICATED_ACCESS, included).
    public static let acceptedBySetVariable: VariableAttributes = mask.union(.authenticatedWriteAccess)

    /// The attributes as stored: APPEND_WRITE stripped.
    public var stored: VariableAttributes { subtracting(.appendWrite) }
}
