/// The names and GUIDs of the Secure Boot key hierarchy and its status variables.
extension EFIGUID {
    /// EFI_CERT_TYPE_PKCS7_GUID: WIN_CERTIFICATE_UEFI_GUID.CertType of an AUTHENTICATION_2.
    public static let certTypePKCS7 = EFIGUID(0x4aafd29d, 0x68df, 0x49ee, 0x8a, 0xa9, 0x34, 0x7d, 0x37, 0x56, 0x65, 0xa7)
    /// edk2 gEfiSecureBootEnableDisableGuid: `SecureBootEnable`.
    public static let secureBootEnableDisable = EFIGUID(0xf0a30bc7, 0xaf08, 0x4556, 0x99, 0xc4, 0x00, 0x10, 0x09, 0xc9, 0x3a, 0x44)
    /// edk2 gEfiCustomModeEnableGuid: `CustomMode`.
    public static let customModeEnable = EFIGUID(0xc076ec0c, 0x7028, 0x4399, 0xa0, 0x72, 0x71, 0xee, 0x5c, 0x44, 0x8b, 0x9f)
    /// edk2 gEfiVendorKeysNvGuid: `VendorKeysNv`.
    public static let vendorKeysNv = EFIGUID(0x9073e4e0, 0x60ec, 0x4b6e, 0x99, 0x03, 0x4c, 0x22, 0x3c, 0x26, 0x0f, 0x3c)
}

/// Well-known variables of the Secure Boot hierarchy (UEFI 2.10 §3.3 and §32.3, edk2
/// SecurityPkg). `VariableName(_:)` cannot fail for these ASCII literals.
public enum SecureBootVariable {
    static func key(_ guid: EFIGUID, _ name: String) -> VariableKey {
        VariableKey(guid: guid, name: VariableName(name) ?? .empty)
    }

    public static let pk = key(.globalVariable, "PK")
    public static let kek = key(.globalVariable, "KEK")
    public static let db = key(.imageSecurityDatabase, "db")
    public static let dbx = key(.imageSecurityDatabase, "dbx")
    public static let dbt = key(.imageSecurityDatabase, "dbt")
    public static let dbr = key(.imageSecurityDatabase, "dbr")

    public static let setupMode = key(.globalVariable, "SetupMode")
    public static let secureBoot = key(.globalVariable, "SecureBoot")
    public static let auditMode = key(.globalVariable, "AuditMode")
    public static let deployedMode = key(.globalVariable, "DeployedMode")
    public static let signatureSupport = key(.globalVariable, "SignatureSupport")
    public static let vendorKeys = key(.globalVariable, "VendorKeys")

    public static let secureBootEnable = key(.secureBootEnableDisable, "SecureBootEnable")
    public static let customMode = key(.customModeEnable, "CustomMode")
    public static let vendorKeysNv = key(.vendorKeysNv, "VendorKeysNv")

    /// The signature databases authorised by KEK (or PK).
    public static let databases = [db, dbx, dbt, dbr]
}
