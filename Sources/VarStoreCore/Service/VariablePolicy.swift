/// edk2's variable policy engine (MdeModulePkg/Library/VariablePolicyLib, protocol
/// Edk2VariablePolicyProtocol): rules that firmware registers during DXE and that constrain
/// SetVariable once enforcement starts.

/// VARIABLE_POLICY_ENTRY.LockPolicyType.
public enum VariablePolicyLockType: UInt8, Sendable {
    case noLock = 0
    case lockNow = 1
    case lockOnCreate = 2
    case lockOnVariableState = 3
}

/// A validated VARIABLE_POLICY_ENTRY (packed, little-endian):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | Version (0x00010000) |
/// | 4 | 2 | Size: the whole entry, lock policy and name included |
/// | 6 | 2 | OffsetToName |
/// | 8 | 16 | Namespace GUID |
/// | 24 | 4 | MinSize (0 = none) |
/// | 28 | 4 | MaxSize (never 0; 0xFFFFFFFF = none) |
/// | 32 | 4 | AttributesMustHave |
/// | 36 | 4 | AttributesCantHave |
/// | 40 | 1 | LockPolicyType |
/// | 41 | 3 | padding |
/// | 44 | … | LOCK_ON_VAR_STATE only: Namespace (16), Value (1), padding (1), Name (CHAR16, NUL) — 18 bytes + name |
/// | OffsetToName | Size − OffsetToName | Name (CHAR16, NUL-terminated exactly at Size); absent = the whole namespace |
public struct VariablePolicyEntry: Sendable, Equatable {
    public static let version: UInt32 = 0x0001_0000
    public static let headerSize = 44
    /// VARIABLE_LOCK_ON_VAR_STATE_POLICY without its name: edk2 packs it to 18 bytes (QEMU's
    /// unpacked struct is 20, which shifts the name: QEMU defect 2).
    public static let lockOnVariableStateHeaderSize = 18
    /// edk2 refuses names with more wildcards than a match priority can count.
    public static let maximumWildcards = 254

    public let namespace: EFIGUID
    /// Empty: the policy covers every variable of the namespace.
    public let name: [UInt16]
    public let minimumSize: UInt32
    public let maximumSize: UInt32
    public let attributesMustHave: UInt32
    public let attributesCantHave: UInt32
    public let lockType: VariablePolicyLockType
    /// LOCK_ON_VAR_STATE: the variable whose one-byte value locks this one.
    public let stateNamespace: EFIGUID?
    public let stateName: [UInt16]
    public let stateValue: UInt8
    /// The entry exactly as registered, for DUMP and GET_INFO.
    public let bytes: [UInt8]

    /// Why bytes are not a valid entry (edk2 RegisterVariablePolicy answers INVALID_PARAMETER).
    public enum ParseError: Error, Equatable {
        case truncated, badVersion, zeroMaximumSize, unknownLockType, badNameOffset
        case badStateName, badName, tooManyWildcards
    }

    /// Parses an entry from `bytes[offset ..< offset + available]`; the entry's own Size must fit.
    public static func parse(_ bytes: [UInt8], at offset: Int, available: Int) -> Result<VariablePolicyEntry, ParseError> {
        guard available >= headerSize, offset >= 0, offset <= bytes.count, bytes.count - offset >= headerSize,
              let version = LittleEndian.load(UInt32.self, from: bytes, at: offset),
              let size16 = LittleEndian.load(UInt16.self, from: bytes, at: offset + 4),
              let nameOffset16 = LittleEndian.load(UInt16.self, from: bytes, at: offset + 6),
              let namespace = EFIGUID(wire: bytes, at: offset + 8),
              let minimumSize = LittleEndian.load(UInt32.self, from: bytes, at: offset + 24),
              let maximumSize = LittleEndian.load(UInt32.self, from: bytes, at: offset + 28),
              let mustHave = LittleEndian.load(UInt32.self, from: bytes, at: offset + 32),
              let cantHave = LittleEndian.load(UInt32.self, from: bytes, at: offset + 36) else { return .failure(.truncated) }
        let size = Int(size16), nameOffset = Int(nameOffset16)
        guard size >= headerSize, size <= available, bytes.count - offset >= size else { return .failure(.truncated) }
        guard version == Self.version else { return .failure(.badVersion) }
        guard maximumSize != 0 else { return .failure(.zeroMaximumSize) }
        guard let lockType = VariablePolicyLockType(rawValue: bytes[offset + 40]) else { return .failure(.unknownLockType) }
        guard nameOffset <= size else { return .failure(.badNameOffset) }

        var stateNamespace: EFIGUID?
        var stateName: [UInt16] = []
        var stateValue: UInt8 = 0
        if lockType == .lockOnVariableState {
            let stateStart = headerSize + lockOnVariableStateHeaderSize
            guard nameOffset > stateStart else { return .failure(.badNameOffset) }
            stateNamespace = EFIGUID(wire: bytes, at: offset + headerSize)
            stateValue = bytes[offset + headerSize + 16]
            // The state variable's name ends with its NUL exactly at OffsetToName.
            guard let units = terminatedName(bytes, from: offset + stateStart, to: offset + nameOffset), !units.isEmpty else {
                return .failure(.badStateName)
            }
            stateName = units
        } else {
            guard nameOffset == headerSize else { return .failure(.badNameOffset) }
        }

        var name: [UInt16] = []
        if size > nameOffset {
            guard let units = terminatedName(bytes, from: offset + nameOffset, to: offset + size) else { return .failure(.badName) }
            name = units
        }
        guard name.filter({ $0 == 0x23 }).count <= maximumWildcards else { return .failure(.tooManyWildcards) }
        return .success(VariablePolicyEntry(
            namespace: namespace, name: name, minimumSize: minimumSize, maximumSize: maximumSize,
            attributesMustHave: mustHave, attributesCantHave: cantHave, lockType: lockType,
            stateNamespace: stateNamespace, stateName: stateName, stateValue: stateValue,
            bytes: Array(bytes[offset ..< offset + size])))
    }

    /// UCS-2 units of `bytes[start ..< end]` when that range is a name whose only NUL is its
    /// last code unit; nil otherwise.
    private static func terminatedName(_ bytes: [UInt8], from start: Int, to end: Int) -> [UInt16]? {
        guard end > start, end <= bytes.count else { return nil }
        var reader = ByteReader(bytes, start: start, end: end)
        guard let units = reader.readTerminatedUCS2(size: end - start, terminatorLast: true),
              VariableName(codeUnits: units) != nil else { return nil }
        return units
    }

    /// Builds the entry edk2's RequestToLock registers: LOCK_NOW, no size or attribute limits.
    public static func lockNow(_ key: VariableKey) -> VariablePolicyEntry {
        var bytes: [UInt8] = []
        let size = headerSize + key.name.wireSize
        LittleEndian.append(version, to: &bytes)
        LittleEndian.append(UInt16(truncatingIfNeeded: size), to: &bytes)
        LittleEndian.append(UInt16(headerSize), to: &bytes)
        bytes += key.guid.wireBytes
        LittleEndian.append(UInt32(0), to: &bytes)
        LittleEndian.append(UInt32.max, to: &bytes)
        LittleEndian.append(UInt32(0), to: &bytes)
        LittleEndian.append(UInt32(0), to: &bytes)
        bytes += [VariablePolicyLockType.lockNow.rawValue, 0, 0, 0]
        bytes += key.name.wireBytes
        return VariablePolicyEntry(namespace: key.guid, name: key.name.codeUnits, minimumSize: 0, maximumSize: UInt32.max,
                                   attributesMustHave: 0, attributesCantHave: 0, lockType: .lockNow,
                                   stateNamespace: nil, stateName: [], stateValue: 0, bytes: bytes)
    }

    /// How well this policy matches a variable: 0 is an exact name, each `#` wildcard adds one,
    /// a namespace-wide policy is 255; nil when it does not apply (VariablePolicyLib
    /// IsMatchingVariablePolicy).
    public func matchPriority(_ key: VariableKey) -> Int? {
        guard key.guid == namespace else { return nil }
        if name.isEmpty { return 255 }
        let units = key.name.codeUnits
        guard units.count == name.count else { return nil }
        var priority = 0
        for (policyUnit, unit) in zip(name, units) {
            if policyUnit == 0x23 {  // '#': one hexadecimal digit
                guard Self.isHexDigit(unit) else { return nil }
                priority += 1
            } else if policyUnit != unit {
                return nil
            }
        }
        return priority
    }

    private static func isHexDigit(_ unit: UInt16) -> Bool {
        (unit >= 0x30 && unit <= 0x39) || (unit >= 0x41 && unit <= 0x46) || (unit >= 0x61 && unit <= 0x66)
    }
}

/// The registered policies and the engine's two switches.
public struct VariablePolicyTable: Sendable {
    public private(set) var entries: [VariablePolicyEntry] = []
    /// Once locked, no policy can be registered and the engine cannot be disabled.
    public private(set) var isLocked = false
    /// Enforcement is on unless the platform allowed disabling and firmware did so.
    public private(set) var isEnabled = true
    /// Bytes of all registered entries (charged against volatile storage by the service).
    public private(set) var byteCount: UInt64 = 0

    public init() {}

    /// The best-matching policy: lowest priority, the earliest registered on a tie.
    public func bestMatch(_ key: VariableKey) -> VariablePolicyEntry? {
        var best: (entry: VariablePolicyEntry, priority: Int)?
        for entry in entries {
            guard let priority = entry.matchPriority(key) else { continue }
            if best == nil || priority < best!.priority { best = (entry, priority) }
        }
        return best?.entry
    }

    /// RegisterVariablePolicy after validation: WRITE_PROTECTED once locked, ALREADY_STARTED
    /// for a second policy with the same namespace and name.
    public mutating func register(_ entry: VariablePolicyEntry) throws(EFIStatus) {
        if isLocked { throw .writeProtected }
        if entries.contains(where: { $0.namespace == entry.namespace && $0.name == entry.name }) { throw .alreadyStarted }
        entries.append(entry)
        byteCount += UInt64(entry.bytes.count)
    }

    public mutating func lock() { isLocked = true }

    /// DisableVariablePolicy: only where the platform allows it and before the lock.
    public mutating func disable(allowed: Bool) throws(EFIStatus) {
        if isLocked || !allowed { throw .writeProtected }
        if !isEnabled { throw .alreadyStarted }
        isEnabled = false
    }

    /// The whole table as DUMP returns it: the entries back to back, in registration order.
    public var dump: [UInt8] { entries.flatMap { $0.bytes } }
}

// MARK: Variable policy in the service: enforcement on every SetVariable, registration, lock and
// disable (edk2 VariablePolicyLib), and LOCK_VARIABLE as a LOCK_NOW policy.

extension VariableServiceState {
    /// edk2 VariablePolicyLib ValidateSetVariable with the best-matching policy.
    func checkPolicy(_ key: VariableKey, attributes: VariableAttributes, dataSize: Int, isDelete: Bool) throws(EFIStatus) {
        guard policies.isEnabled, let policy = policies.bestMatch(key) else { return }
        if !isDelete {
            let size = UInt64(dataSize)
            if (policy.minimumSize > 0 && size < UInt64(policy.minimumSize)) || size > UInt64(policy.maximumSize) {
                throw .invalidParameter
            }
            if attributes.rawValue & policy.attributesMustHave != policy.attributesMustHave
                || attributes.rawValue & policy.attributesCantHave != 0 {
                throw .invalidParameter
            }
        }
        switch policy.lockType {
        case .noLock:
            return
        case .lockNow:
            throw .writeProtected
        case .lockOnCreate:
            if variables.store.variable(for: key) != nil { throw .writeProtected }
        case .lockOnVariableState:
            guard let namespace = policy.stateNamespace, let stateName = VariableName(codeUnits: policy.stateName),
                  let state = variables.store.variable(for: VariableKey(guid: namespace, name: stateName)) else { return }
            if state.data.count == 1 && state.data[0] == policy.stateValue { throw .writeProtected }
        }
    }

    /// RegisterVariablePolicy. Entries count against volatile storage: an unbounded policy
    /// table would let the guest exhaust the service's memory.
    public mutating func registerPolicy(_ entry: VariablePolicyEntry) throws(EFIStatus) {
        if policies.isLocked { throw .writeProtected }
        guard variables.quota.fits(replacing: nil, newCharge: UInt64(entry.bytes.count), in: .volatile) else { throw .outOfResources }
        try policies.register(entry)
        variables.quota.reserve(UInt64(entry.bytes.count), in: .volatile)
    }

    public mutating func lockPolicies() throws(EFIStatus) {
        if policies.isLocked { throw .writeProtected }
        policies.lock()
    }

    public mutating func disablePolicies() throws(EFIStatus) {
        try policies.disable(allowed: configuration.allowVariablePolicyDisable)
    }

    /// edk2 EDKII_VARIABLE_LOCK_PROTOCOL.RequestToLock: a LOCK_NOW policy, only before
    /// EndOfDxe. Locking an already locked variable succeeds.
    public mutating func lockVariable(_ key: VariableKey) throws(EFIStatus) {
        if phase.endOfDxe { throw .accessDenied }
        guard !key.name.isEmpty else { throw .invalidParameter }
        do {
            try registerPolicy(.lockNow(key))
        } catch .alreadyStarted {
            return
        }
    }
}

/// What QueryVariableInfo reports for one storage class.
public struct StorageInfo: Equatable, Sendable {
    public var maximumVariableStorageSize: UInt64
    public var remainingVariableStorageSize: UInt64
    public var maximumVariableSize: UInt64

    public init(maximumVariableStorageSize: UInt64, remainingVariableStorageSize: UInt64, maximumVariableSize: UInt64) {
        self.maximumVariableStorageSize = maximumVariableStorageSize
        self.remainingVariableStorageSize = remainingVariableStorageSize
        self.maximumVariableSize = maximumVariableSize
    }
}
