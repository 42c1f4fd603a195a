/// The UEFI variable service's state and the rules that change it: GetVariable,
/// GetNextVariableName, SetVariable and QueryVariableInfo with edk2's semantics
/// (MdeModulePkg/Universal/Variable/RuntimeDxe), on parsed, validated arguments. Transports
/// parse guest bytes and call in here; this type never sees a raw buffer.
///
/// A value type: the one `VariableService` both transports share holds it, and a request is
/// one exclusive access to it (VariableService.swift says why).
///
/// Where QEMU's uefi-vars device and edk2 disagree we follow edk2; spec/semantics.md lists
/// each choice.
///
/// Generic over the platform's crypto, which verifies Secure Boot signatures
/// (AuthenticatedVariables.swift), and over the journal that makes non-volatile changes
/// durable before a request is acknowledged; no existential sits in a request path.
public struct VariableServiceState<Crypto: AuthenticationCrypto, Journal: NonVolatileJournal> {
    public let configuration: ServiceConfiguration
    public let crypto: Crypto
    public internal(set) var journal: Journal
    /// The store, its quota and the current step's journal record (JournaledStore.swift):
    /// every change goes through it.
    var variables: JournaledStore
    /// Read freely; changes go through `variables`. (Inside the service, `variables.store` and
    /// `variables.quota`: a copy of the whole store per access costs a reference count per array.)
    public var store: VariableStore { variables.store }
    public var quota: StorageQuota { variables.quota }
    public private(set) var phase = BootPhase()
    /// Variable policies registered by firmware (and by LOCK_VARIABLE).
    public internal(set) var policies = VariablePolicyTable()
    /// VarCheck properties set through SMM function 9, by exact name.
    public internal(set) var properties: [VariableKey: VariableProperty] = [:]
    /// Volatile storage charged for `properties`.
    public internal(set) var propertyBytes: UInt64 = 0
    /// The MOR lock state machine.
    public private(set) var memoryOverwrite = MemoryOverwriteControl()
    /// The policy table as the first DUMP page saw it, for the pages that follow.
    var policyDumpSnapshot: [UInt8]?
    /// The Secure Boot platform mode; SetupMode, AuditMode, DeployedMode and SecureBoot
    /// mirror it (SecureBootMode.swift).
    public internal(set) var secureBootMode = SecureBootMode.setup
    /// edk2's vendor-key state: false once keys changed outside setup mode without a
    /// signature (custom mode). Mirrored by VendorKeysNv and VendorKeys.
    public internal(set) var vendorKeysValid = true
    /// The current request's parsed PKCS#7 (AuthenticatedVariables.swift); dropped when the
    /// request ends.
    var signatureCache: (bytes: ArraySlice<UInt8>, parsed: Crypto.SignedData)?

    /// A service over `journal`, starting from `variables` — what the journal already holds,
    /// in enumeration order (a host reads them from its store first).
    public init(configuration: ServiceConfiguration = ServiceConfiguration(), crypto: Crypto, journal: Journal,
                variables: [Variable] = []) {
        self.configuration = configuration
        self.crypto = crypto
        self.journal = journal
        self.variables = JournaledStore(configuration: configuration)
        self.variables.load(variables)
        initializeSecureBootDurably()
    }

    /// Refreshes the Secure Boot variables (edk2 AuthVariableLibInitialize) as a durable
    /// step. If the journal refuses the step, the mode must still follow from what is stored
    /// — never the setup-mode default, which would accept unsigned keys — so the variables
    /// are rebuilt in memory only; later writes will meet the same journal and fail.
    mutating func initializeSecureBootDurably() {
        do {
            try journaled { $0.initializeSecureBoot() }
        } catch {
            variables.suspended = true
            initializeSecureBoot()
            variables.suspended = false
            variables.discardStep()
        }
    }

    // MARK: Durable steps

    /// Runs `body` as one durable step: its non-volatile changes are committed to the journal
    /// before this returns. If the journal fails, every change the step made is undone and
    /// the step reports EFI_DEVICE_ERROR (a variable it touched may then enumerate last).
    mutating func journaled(_ body: (inout Self) throws(EFIStatus) -> Void) throws(EFIStatus) {
        let start = beginStep()
        var outcome: EFIStatus?
        do {
            try body(&self)
        } catch {
            outcome = error
        }
        try endStep(start, outcome: outcome)
    }

    /// What a durable step puts back if the journal refuses it (the store's own changes are
    /// undone by `variables`).
    struct StepStart {
        let mode: SecureBootMode
        let vendorKeys: Bool
        let overwrite: MemoryOverwriteControl
    }

    /// `journaled` in two halves, for a step whose arguments move into it (SetVariable).
    func beginStep() -> StepStart {
        StepStart(mode: secureBootMode, vendorKeys: vendorKeysValid, overwrite: memoryOverwrite)
    }

    mutating func endStep(_ start: StepStart, outcome: EFIStatus?) throws(EFIStatus) {
        do throws(StorageError) {
            try variables.commitStep(to: &journal)
        } catch {
            secureBootMode = start.mode
            vendorKeysValid = start.vendorKeys
            memoryOverwrite = start.overwrite
            throw .deviceError
        }
        if let outcome { throw outcome }
    }

    // MARK: Loading and resets

    /// Puts already-persisted variables into the store at power-on, in their stored order.
    /// They were accepted by the service when written, so no SetVariable rules run again;
    /// a later duplicate replaces an earlier one.
    /// Refreshing the Secure Boot variables afterwards is a durable step of its own.
    public mutating func load(_ persisted: [Variable]) {
        variables.load(persisted)
        initializeSecureBootDurably()
    }

    /// A platform (hard) reset: volatile variables, locks and boot-phase flags are gone;
    /// non-volatile variables stay.
    public mutating func platformReset() {
        variables.removeVolatile()
        variables.quota.release(policies.byteCount, from: .volatile)
        policies = VariablePolicyTable()
        policyDumpSnapshot = nil
        variables.quota.release(propertyBytes, from: .volatile)
        propertyBytes = 0
        properties = [:]
        memoryOverwrite.reset()
        phase = BootPhase()
        initializeSecureBootDurably()
    }

    public var nonVolatileVariables: [Variable] { variables.store.all.filter { $0.isNonVolatile } }

    // MARK: Boot-phase events

    /// EndOfDxe: VarCheck and policies start to apply, MORLock is initialised, and the policy
    /// interface is locked (edk2 VariableSmm.c SmmEndOfDxeCallback).
    public mutating func signalEndOfDxe() {
        guard !phase.endOfDxe else { return }
        phase.signalEndOfDxe()
        try? journaled { $0.initializeMemoryOverwriteLock() }
        policies.lock()
    }

    /// ReadyToBoot also ends DXE if firmware never signalled EndOfDxe.
    public mutating func signalReadyToBoot() {
        signalEndOfDxe()
        phase.signalReadyToBoot()
    }

    public mutating func signalExitBootServices() { phase.signalExitBootServices() }

    /// edk2 MorLockInitAtEndOfDxe: with MOR present, MORLock starts unlocked (0); without MOR
    /// there is nothing to protect, so both variables are removed and locked for this boot.
    private mutating func initializeMemoryOverwriteLock() {
        if variables.store.variable(for: MemoryOverwriteControl.mor) != nil {
            storeInternally(MemoryOverwriteControl.morLock, attributes: MemoryOverwriteControl.attributes, data: [0])
        } else {
            if let lock = variables.store.variable(for: MemoryOverwriteControl.morLock) { remove(lock) }
            memoryOverwrite.deactivate()
            for key in [MemoryOverwriteControl.mor, MemoryOverwriteControl.morLock] {
                try? registerPolicy(.lockNow(key))
            }
        }
    }

    /// Writes a variable on the service's own behalf, past every guest-facing check (edk2's
    /// internal "pass-through" writes). Quota still applies; a store that is full keeps the old
    /// value. Rewriting the same value changes nothing, as in edk2.
    @discardableResult
    mutating func storeInternally(_ key: VariableKey, attributes: VariableAttributes, data: [UInt8]) -> Bool {
        let existing = variables.store.variable(for: key)
        if let existing, existing.attributes == attributes, existing.data == data { return true }
        // An authenticated variable always carries a time; the service's own writes use zero.
        let replacement = Variable(key: key, attributes: attributes, data: data,
                                   timestamp: attributes.contains(.timeBasedAuthenticatedWriteAccess) ? .zero : nil)
        guard variables.quota.fits(replacing: existing, newCharge: variables.quota.charge(replacement), in: StorageClass(attributes)) else { return false }
        variables.put(replacement)
        return true
    }

    /// After ExitBootServices only variables with RUNTIME_ACCESS exist for the caller.
    private func isVisible(_ variable: Variable) -> Bool {
        !phase.atRuntime || variable.attributes.contains(.runtimeAccess)
    }

    private var visibleWalk: VariableStore.Walk { phase.atRuntime ? .runtimeVisible : .all }

    // MARK: GetVariable

    public func getVariable(_ key: VariableKey) throws(EFIStatus) -> Variable {
        // edk2 answers an empty name with EFI_NOT_FOUND (Variable.c: VariableServiceGetVariable).
        try visible(key.name.isEmpty ? nil : variables.store.variable(for: key))
    }

    /// Where GetVariable finds a name as a request carries it — its UCS-2LE code units without
    /// the terminator, already checked by `VariableName.validate` — (nil for the empty name,
    /// which edk2 answers with EFI_NOT_FOUND); read it with `readVariable(at:_:)`.
    func slot(guid: EFIGUID, name: Span<UInt8>) -> VariableStore.Slot? {
        name.isEmpty ? nil : variables.store.slot(guid: guid, name: name)
    }

    /// GetVariable of the variable a lookup found: `body` reads its attributes and data in
    /// place (no copy of the variable); EFI_NOT_FOUND if there is none or the caller may not
    /// see it.
    func readVariable<Result>(at slot: VariableStore.Slot?,
                              _ body: (VariableAttributes, UnsafeRawBufferPointer) -> Result) throws(EFIStatus) -> Result {
        let atRuntime = phase.atRuntime
        guard let slot, let result = variables.store.withData(at: slot, { attributes, data -> Result? in
            // After ExitBootServices only variables with RUNTIME_ACCESS exist for the caller.
            guard !atRuntime || attributes.contains(.runtimeAccess) else { return nil }
            return body(attributes, data)
        }), let result else { throw .notFound }
        return result
    }

    private func visible(_ variable: Variable?) throws(EFIStatus) -> Variable {
        guard let variable, isVisible(variable) else { throw .notFound }
        return variable
    }

    /// Where a name as a request carries it is stored, with its key: a write that replaces a
    /// variable reuses its key instead of building the name again, and its slot instead of
    /// looking the key up again.
    func storedKey(guid: EFIGUID, name: Span<UInt8>) -> (key: VariableKey, slot: VariableStore.Slot)? {
        guard let slot = variables.store.slot(guid: guid, name: name),
              let key = variables.store.key(at: slot) else { return nil }
        return (key, slot)
    }

    // MARK: GetNextVariableName

    /// The variable after `key` in enumeration order; an empty name starts the enumeration.
    public func nextVariable(after key: VariableKey) throws(EFIStatus) -> Variable {
        let walk = visibleWalk
        if key.name.isEmpty { return try first(walk) }
        return try next(variables.store.successor(of: key, in: walk))
    }

    /// GetNextVariableName for a name as a request carries it (see `slot(guid:name:)`), by
    /// slot: the reply is written from the store in place (`VariableStore.withName`).
    func nextSlot(afterGUID guid: EFIGUID, name: Span<UInt8>) throws(EFIStatus) -> VariableStore.Slot {
        let walk = visibleWalk
        if name.isEmpty {
            guard let first = variables.store.firstSlot(walk) else { throw .notFound }
            return first
        }
        // The same answers as `next(_:)` gives.
        switch variables.store.successorSlot(guid: guid, name: name, in: walk) {
        case .found(let next): return next
        case .end: throw .notFound
        case .missing: throw .invalidParameter
        }
    }

    /// The GUID and name of the variable at `slot`, read in place by `body`.
    func withName<Result>(at slot: VariableStore.Slot, _ body: (EFIGUID, UnsafeBufferPointer<UInt16>) -> Result) -> Result? {
        variables.store.withName(at: slot, body)
    }

    private func first(_ walk: VariableStore.Walk) throws(EFIStatus) -> Variable {
        guard let first = variables.store.first(walk) else { throw .notFound }
        return first
    }

    private func next(_ successor: VariableStore.Successor) throws(EFIStatus) -> Variable {
        // UEFI 2.10 §8.2: a name/GUID pair that does not exist is EFI_INVALID_PARAMETER;
        // at runtime a boot-service-only variable does not exist for the caller.
        switch successor {
        case .found(let next): return next
        case .end: throw .notFound
        case .missing: throw .invalidParameter
        }
    }

    // MARK: SetVariable

    /// SetVariable, with edk2's check order (VariableServiceSetVariable, then UpdateVariable).
    /// The first failing check decides the status; a failed call changes nothing.
    /// A non-volatile change is acknowledged only once the journal holds it.
    /// `storedAt` is where the caller's lookup found `key`, if it did (checked before use).
    /// The key and data move into the stored variable (a copy of each would be a reference
    /// count, twice, for every write).
    public mutating func setVariable(_ key: consuming VariableKey, attributes rawAttributes: UInt32, data: consuming [UInt8],
                                     storedAt slot: VariableStore.Slot? = nil) throws(EFIStatus) {
        let start = beginStep()
        var outcome: EFIStatus?
        do {
            try checkedSetVariable(key, attributes: rawAttributes, data: data, storedAt: slot)
        } catch {
            outcome = error
        }
        try endStep(start, outcome: outcome)
    }

    private mutating func checkedSetVariable(_ key: consuming VariableKey, attributes rawAttributes: UInt32, data: consuming [UInt8],
                                             storedAt slot: VariableStore.Slot?) throws(EFIStatus) {
        let attributes = VariableAttributes(rawValue: rawAttributes)
        let significant = attributes.intersection(.mask)
        let legacyAuth = attributes.contains(.authenticatedWriteAccess)

        guard !key.name.isEmpty else { throw .invalidParameter }
        guard VariableAttributes.acceptedBySetVariable.isSuperset(of: attributes) else { throw .invalidParameter }
        if attributes.contains(.runtimeAccess) && !attributes.contains(.bootServiceAccess) {
            throw legacyAuth ? .unsupported : .invalidParameter
        }
        if significant == .nonVolatile {
            throw legacyAuth ? .unsupported : .invalidParameter
        }
        // Count-based AUTHENTICATED_WRITE_ACCESS is deprecated; edk2 answers every real use
        // with EFI_UNSUPPORTED.
        if legacyAuth { throw .unsupported }
        if attributes.contains(.hardwareErrorRecord) && configuration.hardwareErrorStorageSize == 0 {
            throw .invalidParameter
        }
        // An authenticated write's descriptor is sanity-checked before anything else looks at
        // sizes (EFI_SECURITY_VIOLATION); the rules below then see only the payload.
        var descriptor: VariableAuthentication2?
        var payload = data[...]
        if attributes.contains(.timeBasedAuthenticatedWriteAccess) {
            let parsed = try VariableAuthentication2.parse(data)
            descriptor = parsed
            payload = parsed.payload
        }

        // edk2 checks the size limit (EFI_INVALID_PARAMETER, not OUT_OF_RESOURCES) before it
        // looks the variable up.
        let requestClass = StorageClass(attributes)
        guard let requestCharge = variables.quota.charge(nameSize: key.name.wireSize, dataSize: payload.count),
              requestCharge <= variables.quota.maximumVariableSize(requestClass) else { throw .invalidParameter }

        let append = attributes.contains(.appendWrite)
        let isDelete = (payload.isEmpty && !append) || attributes.isDisjoint(with: [.bootServiceAccess, .runtimeAccess])

        // MOR and MORLock (edk2 step 12, before VarCheck).
        switch memoryOverwrite.check(key, attributes: rawAttributes, data: data, deletesAllowed: !policies.isEnabled) {
        case .proceed:
            break
        case .storeLockValue(let value):
            storeInternally(key, attributes: MemoryOverwriteControl.attributes, data: [value])
            return
        case .refuse(let status, let newLockValue):
            if let newLockValue {
                storeInternally(key, attributes: MemoryOverwriteControl.attributes, data: [newLockValue])
            }
            throw status
        }

        // The Secure Boot status variables are the service's to keep true, at every phase.
        if SecureBootVariable.readOnly.contains(key) { throw .writeProtected }

        // VarCheck (edk2 step 13): properties, UEFI-defined checks and variable policy.
        if phase.endOfDxe {
            try checkProperties(key, attributes: attributes, data: payload, isDelete: isDelete)
        }
        if phase.endOfDxe || policies.isLocked {
            try checkPolicy(key, attributes: attributes, dataSize: payload.count, isDelete: isDelete)
        }

        // The caller's slot is used only once it is known to hold this key.
        let existing: Variable?
        var existingSlot: VariableStore.Slot?
        if let slot, let found = variables.store.variable(at: slot), found.key == key {
            existing = found
            existingSlot = slot
        } else {
            existing = variables.store.variable(for: key)
        }
        if let existing {
            if phase.atRuntime && !existing.attributes.contains(.runtimeAccess) { throw .writeProtected }
            // A variable may not change its attributes; 0 (delete) and APPEND are exempt.
            if rawAttributes != 0 && attributes.stored != existing.attributes { throw .invalidParameter }
        }

        // Authenticated-variable processing (AuthVariableLib), which ends in update().
        defer { if signatureCache != nil { signatureCache = nil } }
        try processVariable(AuthenticatedRequest(key: key, rawAttributes: rawAttributes, attributes: attributes,
                                                 data: data, descriptor: descriptor, payload: consume payload,
                                                 existing: consume existing, existingSlot: existingSlot))
    }

    /// edk2 UpdateVariable: applies a write that every check has accepted. Returns whether it
    /// deleted the variable. `timeStamp` is the descriptor's time for authenticated writes;
    /// `certificateDigest` the signer pin of a newly created private variable.
    @discardableResult
    mutating func update(_ request: AuthenticatedRequest, timeStamp: EFITime?, certificateDigest: [UInt8]?) throws(EFIStatus) -> Bool {
        // `request.existing` is read in place: a local copy of a variable is a reference count
        // on its name and on its data.
        let attributes = request.attributes
        let append = request.isAppend
        let requestClass = StorageClass(attributes)
        let isDelete = (request.payload.isEmpty && !append)
            || attributes.isDisjoint(with: [.bootServiceAccess, .runtimeAccess])
        let existingAttributes = request.existing?.attributes
        // At runtime existing volatile variables are read-only.
        if let existingAttributes, phase.atRuntime && !existingAttributes.contains(.nonVolatile) { throw .writeProtected }

        if isDelete {
            guard existingAttributes != nil else { throw .notFound }
            variables.remove(request.key)
            return true
        }
        // An empty append changes nothing, whether or not the variable exists — except that
        // an authenticated one takes the later timestamp.
        if append && request.payload.isEmpty {
            if let existing = request.existing, let timeStamp, timeStamp.isLater(than: existing.timestamp ?? .zero) {
                var stamped = existing
                stamped.timestamp = timeStamp
                variables.replaceInPlace(stamped)
            }
            return false
        }
        if !append, timeStamp == nil, request.existing?.data.elementsEqual(request.payload) == true {
            // edk2 skips the flash write; QEMU still moves the variable to the end of the
            // enumeration order, and we keep QEMU's order (spec/semantics.md).
            variables.put(request.existing!, at: request.existingSlot)
            return false
        }
        if existingAttributes == nil && phase.atRuntime
            && !attributes.isSuperset(of: [.nonVolatile, .bootServiceAccess, .runtimeAccess]) {
            throw .invalidParameter
        }

        var newData = Array(request.payload)
        var newTime = timeStamp
        if append, let existing = request.existing {
            let key = request.key
            // Appending to a signature database adds only signatures it does not hold yet.
            if key == SecureBootVariable.kek || SecureBootVariable.databases.contains(key) {
                guard let fresh = Self.appendableSignatures(existing: existing.data, appended: request.payload) else {
                    throw .invalidParameter
                }
                newData = existing.data + fresh
            } else {
                newData = existing.data + newData
            }
            guard let appendedCharge = variables.quota.charge(nameSize: key.name.wireSize, dataSize: newData.count),
                  appendedCharge <= variables.quota.maximumVariableSize(requestClass) else { throw .invalidParameter }
            // An append keeps the later of the two times (edk2; QEMU takes the new one).
            if let stored = existing.timestamp, let time = timeStamp, !time.isLater(than: stored) { newTime = stored }
        }
        let replacement = Variable(key: request.key, attributes: attributes, data: newData, timestamp: newTime,
                                   certificateDigest: certificateDigest ?? request.existing?.certificateDigest)
        guard variables.quota.fits(replacing: request.existing, newCharge: variables.quota.charge(replacement),
                                   in: requestClass) else {
            throw .outOfResources
        }
        variables.put(replacement, at: request.existingSlot)
        return false
    }

    mutating func remove(_ variable: Variable) {
        variables.remove(variable.key)
    }

    // MARK: QueryVariableInfo


    /// QueryVariableInfo with edk2's check order (VariableServiceQueryVariableInfo); the
    /// figures are those of the storage class the attributes select.
    public func queryVariableInfo(attributes rawAttributes: UInt32) throws(EFIStatus) -> StorageInfo {
        let attributes = VariableAttributes(rawValue: rawAttributes)
        let significant = attributes.intersection(.mask)
        guard rawAttributes != 0 else { throw .invalidParameter }
        if attributes.contains(.authenticatedWriteAccess) { throw .unsupported }
        if significant.isEmpty { throw .unsupported }
        if significant == .nonVolatile { throw .invalidParameter }
        if attributes.contains(.runtimeAccess) && !attributes.contains(.bootServiceAccess) { throw .invalidParameter }
        if phase.atRuntime && !attributes.contains(.runtimeAccess) { throw .invalidParameter }
        if attributes.contains(.hardwareErrorRecord) {
            if !attributes.contains(.nonVolatile) { throw .invalidParameter }
            if configuration.hardwareErrorStorageSize == 0 { throw .unsupported }
        }
        let storageClass = StorageClass(attributes)
        return StorageInfo(maximumVariableStorageSize: variables.quota.capacity(storageClass),
                           remainingVariableStorageSize: variables.quota.remaining(storageClass),
                           maximumVariableSize: variables.quota.largestNewVariable(storageClass))
    }
}
