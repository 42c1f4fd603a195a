/// The UEFI variable service both transports share: one `VariableServiceState` (the store,
/// the journal, the boot phase, Secure Boot, policies and MOR, with every rule that changes
/// them) behind one reference.
///
/// Why the state is a value inside a class: the MMIO device and the SVSM call answer from one
/// store, so something must be shared, and Swift checks every access to a class's stored
/// property at run time for overlapping writes (the law of exclusivity). With the service's
/// dozen properties on the class, a SetVariable made some twenty of those checks, a third of
/// its instructions. Here a request makes one: the dispatcher takes `state` inout for the
/// whole request, and inside it the compiler proves exclusivity statically, as it does for
/// any struct. Nothing is unchecked: a request that re-entered the service while another
/// held the state would still be caught (the Embedded build, which has no run-time check,
/// refuses re-entry at its C boundary instead: CABI.swift's `busy`).
///
/// The methods below are for hosts and tests; each is one access to the state.
public final class VariableService<Crypto: AuthenticationCrypto, Journal: NonVolatileJournal> {
    public internal(set) var state: VariableServiceState<Crypto, Journal>

    /// A service over `journal`, starting from `variables` — what the journal already holds,
    /// in enumeration order (a host reads them from its store first).
    public init(configuration: ServiceConfiguration = ServiceConfiguration(), crypto: Crypto, journal: Journal,
                variables: [Variable] = []) {
        state = VariableServiceState(configuration: configuration, crypto: crypto, journal: journal, variables: variables)
    }

    // MARK: Reading the state

    public var configuration: ServiceConfiguration { state.configuration }
    public var crypto: Crypto { state.crypto }
    public var journal: Journal { state.journal }
    public var store: VariableStore { state.store }
    public var quota: StorageQuota { state.quota }
    public var phase: BootPhase { state.phase }
    public var policies: VariablePolicyTable { state.policies }
    public var properties: [VariableKey: VariableProperty] { state.properties }
    public var propertyBytes: UInt64 { state.propertyBytes }
    public var memoryOverwrite: MemoryOverwriteControl { state.memoryOverwrite }
    public var secureBootMode: SecureBootMode { state.secureBootMode }
    public var vendorKeysValid: Bool { state.vendorKeysValid }
    public var nonVolatileVariables: [Variable] { state.nonVolatileVariables }

    // MARK: Power and boot phases

    public func load(_ persisted: [Variable]) { state.load(persisted) }
    public func platformReset() { state.platformReset() }
    public func signalEndOfDxe() { state.signalEndOfDxe() }
    public func signalReadyToBoot() { state.signalReadyToBoot() }
    public func signalExitBootServices() { state.signalExitBootServices() }

    // MARK: Variable services

    public func getVariable(_ key: VariableKey) throws(EFIStatus) -> Variable { try state.getVariable(key) }

    public func nextVariable(after key: VariableKey) throws(EFIStatus) -> Variable {
        try state.nextVariable(after: key)
    }

    public func setVariable(_ key: VariableKey, attributes: UInt32, data: [UInt8]) throws(EFIStatus) {
        try state.setVariable(key, attributes: attributes, data: data)
    }

    public func queryVariableInfo(attributes: UInt32) throws(EFIStatus) -> StorageInfo {
        try state.queryVariableInfo(attributes: attributes)
    }

    // MARK: VarCheck and variable policy

    public func variableProperty(_ key: VariableKey) -> VariableProperty? { state.variableProperty(key) }

    public func setVariableProperty(_ key: VariableKey, _ property: VariableProperty) throws(EFIStatus) {
        try state.setVariableProperty(key, property)
    }

    public func registerPolicy(_ entry: VariablePolicyEntry) throws(EFIStatus) { try state.registerPolicy(entry) }
    public func lockPolicies() throws(EFIStatus) { try state.lockPolicies() }
    public func disablePolicies() throws(EFIStatus) { try state.disablePolicies() }
    public func lockVariable(_ key: VariableKey) throws(EFIStatus) { try state.lockVariable(key) }
}
