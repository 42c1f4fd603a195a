/// The Secure Boot platform modes of UEFI 2.10 §32.3 (Figure 32-4): Setup, User, Audit and
/// Deployed. edk2 implemented all four in 2015 (Mantis 1263) and later kept only Setup and
/// User; we implement the spec's four (spec/semantics.md, "Secure Boot modes").
///
///     mode      SetupMode  SecureBoot*  AuditMode  DeployedMode
///     Setup     1          0            0          0
///     User      0          1            0          0
///     Audit     1          0            1          0
///     Deployed  0          1            0          1
///
/// *SecureBoot also needs `SecureBootEnable` = 1 at boot, as in edk2.
///
/// Raw values are edk2's 2015 SECURE_BOOT_MODE_TYPE, which we persist in the `SecureBootMode`
/// variable while the platform is in Audit or Deployed mode (Setup and User follow from
/// whether PK exists).
public enum SecureBootMode: UInt8, Sendable {
    case user = 0
    case setup = 1
    case audit = 2
    case deployed = 3

    /// SetupMode = 1: no PK, so key writes are not verified.
    public var isSetupMode: Bool { self == .setup || self == .audit }
    public var setupModeValue: UInt8 { isSetupMode ? 1 : 0 }
    public var auditModeValue: UInt8 { self == .audit ? 1 : 0 }
    public var deployedModeValue: UInt8 { self == .deployed ? 1 : 0 }

    /// The mode after PK has been enrolled (or deleted) from this one.
    public func afterPlatformKeyEnrolled() -> SecureBootMode {
        switch self {
        case .setup: return .user
        case .audit: return .deployed
        case .user, .deployed: return self
        }
    }

    public func afterPlatformKeyDeleted() -> SecureBootMode {
        switch self {
        case .user, .deployed: return .setup
        case .setup, .audit: return self
        }
    }

    /// The mode a boot starts in, from the persisted mode (if any) and whether PK exists —
    /// the reconciliation of edk2's 2015 AuthVariableLibInitialize.
    public static func atBoot(persisted: SecureBootMode?, platformKeyPresent: Bool) -> SecureBootMode {
        switch (persisted, platformKeyPresent) {
        case (.audit, true), (.deployed, true): return .deployed
        case (.audit, false): return .audit
        case (_, true): return .user
        case (_, false): return .setup
        }
    }
}

extension EFIGUID {
    /// edk2 (2015) gEdkiiSecureBootModeGuid, under which the mode is persisted.
    public static let secureBootModePersisted = EFIGUID(0x0c573b77, 0xeb93, 0x4d3d, 0xaf, 0xfc, 0x5f, 0xeb, 0xca, 0xfb, 0x65, 0xb0)
}

extension SecureBootVariable {
    /// NV|BS, one byte (SecureBootMode raw value); present only in Audit and Deployed mode.
    public static let persistedMode = key(.secureBootModePersisted, "SecureBootMode")

    /// Status variables the guest may read but never write, at any phase: the service keeps
    /// them true. (edk2 protects the global ones through VarCheck after EndOfDxe only.)
    public static let readOnly: [VariableKey] = [setupMode, secureBoot, signatureSupport, vendorKeys,
                                                 vendorKeysNv, persistedMode]

    /// edk2 mSignatureSupport: the signature types the platform verifies.
    public static let supportedSignatureTypes: [EFIGUID] = [SignatureType.sha1, SignatureType.sha256,
                                                            SignatureType.sha384, SignatureType.sha512,
                                                            SignatureType.rsa2048, SignatureType.x509]
}

// MARK: The service's mode variables

extension VariableServiceState {
    static var statusAttributes: VariableAttributes { [.bootServiceAccess, .runtimeAccess] }
    static var platformAttributes: VariableAttributes { [.nonVolatile, .bootServiceAccess] }

    /// edk2 AuthVariableLibInitialize, at power-on and every platform reset: the mode follows
    /// from PK and the persisted Audit/Deployed record, and the status variables are written
    /// from it. CustomMode returns to 0 at every boot.
    mutating func initializeSecureBoot() {
        let persisted = variables.store.variable(for: SecureBootVariable.persistedMode).flatMap { variable in
            variable.data.count == 1 ? SecureBootMode(rawValue: variable.data[0]) : nil
        }
        let mode = SecureBootMode.atBoot(persisted: persisted,
                                         platformKeyPresent: variables.store.variable(for: SecureBootVariable.pk) != nil)
        secureBootMode = mode
        persist(mode)
        storeInternally(SecureBootVariable.setupMode, attributes: Self.statusAttributes, data: [mode.setupModeValue])
        var support: [UInt8] = []
        for type in SecureBootVariable.supportedSignatureTypes { support += type.wireBytes }
        storeInternally(SecureBootVariable.signatureSupport, attributes: Self.statusAttributes, data: support)
        if !mode.isSetupMode && variables.store.variable(for: SecureBootVariable.secureBootEnable) == nil {
            storeInternally(SecureBootVariable.secureBootEnable, attributes: Self.platformAttributes, data: [1])
        }
        // A missing SecureBootEnable counts as enabled: the record can be missing only because
        // PK was enrolled at runtime or the store had no room for it, and neither may turn
        // Secure Boot off (fail closed).
        let enabled = variables.store.variable(for: SecureBootVariable.secureBootEnable).map { $0.data == [1] } ?? true
        storeInternally(SecureBootVariable.secureBoot, attributes: Self.statusAttributes,
                        data: [!mode.isSetupMode && enabled ? 1 : 0])
        storeInternally(SecureBootVariable.auditMode, attributes: Self.statusAttributes, data: [mode.auditModeValue])
        storeInternally(SecureBootVariable.deployedMode, attributes: Self.statusAttributes, data: [mode.deployedModeValue])
        storeInternally(SecureBootVariable.customMode, attributes: Self.platformAttributes, data: [0])
        if let record = variables.store.variable(for: SecureBootVariable.vendorKeysNv), record.data.count == 1 {
            vendorKeysValid = record.data[0] != 0
        } else {
            vendorKeysValid = true
            storeInternally(SecureBootVariable.vendorKeysNv,
                            attributes: [.nonVolatile, .bootServiceAccess, .timeBasedAuthenticatedWriteAccess], data: [1])
        }
        storeInternally(SecureBootVariable.vendorKeys, attributes: Self.statusAttributes, data: [vendorKeysValid ? 1 : 0])
    }

    /// Moves to `mode` and keeps every mirror true at once (edk2 UpdatePlatformMode patches
    /// the volatile bytes in place). SecureBoot and SecureBootEnable follow PK only while boot
    /// services run: at runtime SecureBoot keeps the value the OS was booted with.
    mutating func transition(to mode: SecureBootMode) {
        let before = secureBootMode
        secureBootMode = mode
        persist(mode)
        patchStatus(SecureBootVariable.setupMode, mode.setupModeValue)
        patchStatus(SecureBootVariable.auditMode, mode.auditModeValue)
        patchStatus(SecureBootVariable.deployedMode, mode.deployedModeValue)
        guard before.isSetupMode != mode.isSetupMode, !phase.atRuntime else { return }
        patchStatus(SecureBootVariable.secureBoot, mode.isSetupMode ? 0 : 1)
        if mode.isSetupMode {
            if let enable = variables.store.variable(for: SecureBootVariable.secureBootEnable) { remove(enable) }
        } else {
            storeInternally(SecureBootVariable.secureBootEnable, attributes: Self.platformAttributes, data: [1])
        }
    }

    /// Audit and Deployed mode survive a reset only through this record. Returns false if the
    /// store has no room for it.
    @discardableResult
    mutating func persist(_ mode: SecureBootMode) -> Bool {
        if mode == .audit || mode == .deployed {
            return storeInternally(SecureBootVariable.persistedMode, attributes: Self.platformAttributes, data: [mode.rawValue])
        }
        if let record = variables.store.variable(for: SecureBootVariable.persistedMode) { remove(record) }
        return true
    }

    private mutating func patchStatus(_ key: VariableKey, _ value: UInt8) {
        let patched = Variable(key: key, attributes: Self.statusAttributes, data: [value])
        if !variables.replaceInPlace(patched) {
            storeInternally(key, attributes: Self.statusAttributes, data: [value])
        }
    }
}
