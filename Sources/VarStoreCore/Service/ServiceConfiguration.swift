/// Sizes and limits of one variable service instance.
///
/// Storage is split into the three classes QueryVariableInfo reports on separately:
/// non-volatile, volatile and hardware-error-record (HR). Each variable is charged
/// `recordOverhead + NameSize + DataSize` bytes against its class, so the figures that
/// QueryVariableInfo returns are exactly what further SetVariable calls can use.
public struct ServiceConfiguration: Sendable {
    /// Bytes for non-volatile variables (without HR). QEMU's `size` property defaults to 256 KiB.
    public var nonVolatileStorageSize: UInt64 = 0x40000
    /// Bytes for volatile variables.
    public var volatileStorageSize: UInt64 = 0x40000
    /// Bytes for HR variables; 0 — OVMF's setting of edk2 `PcdHwErrStorageSize` — means the
    /// platform has no HwErrRec store, and HR writes are refused.
    public var hardwareErrorStorageSize: UInt64 = 0

    /// Largest `recordOverhead + NameSize + DataSize` of one variable, per class
    /// (edk2 `PcdMaxVariableSize`, `PcdMaxVolatileVariableSize`, `PcdMaxHardwareErrorVariableSize`;
    /// the values are OVMF's 4 MiB build).
    public var maximumVariableSize: UInt64 = 0x8400
    public var maximumVolatileVariableSize: UInt64 = 0x8400
    public var maximumHardwareErrorVariableSize: UInt64 = 0x8000

    /// Per-variable bookkeeping charged on top of name and data: the size of edk2's
    /// AUTHENTICATED_VARIABLE_HEADER, the record an edk2 authenticated-format store writes.
    public var recordOverhead: UInt64 = 60

    /// edk2 `PcdAllowVariablePolicyEnforcementDisable` (FALSE by default): whether the policy
    /// MMI's DISABLE may switch enforcement off before the interface is locked.
    public var allowVariablePolicyDisable = false

    /// Whether firmware running before EndOfDxe counts as a physically present user (edk2
    /// UserPhysicalPresent). A VM has no physical user; with this set, the platform's own
    /// early-boot code may set CustomMode and SecureBootEnable, and leave User mode for Audit
    /// mode, as a present user could on hardware. After EndOfDxe nobody is present.
    public var physicalPresenceBeforeEndOfDxe = true

    /// Whether CustomMode can be switched on at all (edk2's custom mode lets a present user
    /// change PK, KEK and the databases without signatures). When false, every write of
    /// CustomMode is EFI_WRITE_PROTECTED, like QEMU's `disable-custom-mode`.
    public var allowCustomMode = true

    public init() {}

    /// The sanity limit for NameSize and DataSize fields in MM requests: QEMU rejects either
    /// above its total storage with EFI_OUT_OF_RESOURCES before looking any further.
    public var maximumFieldSize: UInt64 {
        max(nonVolatileStorageSize, volatileStorageSize, hardwareErrorStorageSize)
    }
}
