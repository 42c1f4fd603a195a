/// A variable's identity: the UEFI spec names a variable by vendor GUID and name together.
public struct VariableKey: Hashable, Sendable {
    public let guid: EFIGUID
    public let name: VariableName

    public init(guid: EFIGUID, name: VariableName) {
        self.guid = guid
        self.name = name
    }
}

/// One stored variable.
///
/// Invariant: `attributes` never contains APPEND_WRITE, which is a request flag only.
public struct Variable: Sendable, Equatable {
    public let key: VariableKey
    public private(set) var attributes: VariableAttributes
    public var data: [UInt8]
    /// The EFI_TIME of the last authenticated write (time-based authenticated variables only).
    public var timestamp: EFITime?
    /// For private authenticated variables: the digest that binds later updates to the signer
    /// (QEMU's JSON `digest` field).
    public var certificateDigest: [UInt8]?

    public init(key: VariableKey, attributes: VariableAttributes, data: [UInt8],
                timestamp: EFITime? = nil, certificateDigest: [UInt8]? = nil) {
        self.key = key
        self.attributes = attributes.stored
        self.data = data
        self.timestamp = timestamp
        self.certificateDigest = certificateDigest
    }

    public var guid: EFIGUID { key.guid }
    public var name: VariableName { key.name }
    public var isNonVolatile: Bool { attributes.contains(.nonVolatile) }
}
