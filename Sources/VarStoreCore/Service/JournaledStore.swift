/// The service's variables as a durable step changes them: the store, the quota it is charged
/// against, and — while a step runs — the step's non-volatile changes for the journal and an
/// undo log. Every change to the store goes through here, so the quota always matches the
/// store (StorageQuota's invariant) and a step is committed, or rolled back, whole.
struct JournaledStore {
    private(set) var store = VariableStore()
    /// Reserved and released directly for bytes that are not variables (policies, VarCheck
    /// properties); variables are charged by the changes below.
    var quota: StorageQuota
    /// The current step's non-volatile changes, in order, for the journal.
    private var pendingChanges: [JournalChange] = []
    /// Every variable the current step replaced or removed, before it did.
    private var undoLog: [UndoEntry] = []
    /// What undoes one change: the variable it replaced or removed (which names its key), or
    /// the key of one it created. (Not a tuple: an array of tuples is emptied through the
    /// runtime's generic value witnesses, a few hundred instructions per request; and no key
    /// beside a previous variable, whose own key it is: a reference count per request.)
    private enum UndoEntry {
        case restore(Variable)
        case removeCreated(VariableKey)

        var key: VariableKey {
            switch self {
            case .restore(let previous): return previous.key
            case .removeCreated(let key): return key
            }
        }
    }
    /// While set, changes are made in memory only and neither journaled nor undoable (the
    /// Secure Boot variables rebuilt after the journal refused them).
    var suspended = false

    init(configuration: ServiceConfiguration) {
        quota = StorageQuota(configuration: configuration)
    }

    /// Puts already-persisted variables into the store, in their stored order, as no step:
    /// they are what the journal holds.
    mutating func load(_ variables: [Variable]) {
        for variable in variables { insertCharged(variable) }
    }

    // MARK: Changes within a step

    /// Stores `variable` (it enumerates last), replacing any with its key; `hint` is where a
    /// lookup found that key (VariableStore.Slot: checked before use).
    mutating func put(_ variable: consuming Variable, at hint: VariableStore.Slot? = nil) {
        let key = variable.key
        // A volatile variable moves into the store; a non-volatile one is also the journal's.
        let change: JournalChange? = variable.isNonVolatile ? .put(variable) : nil
        let previous = insertCharged(variable, at: hint)
        let deletesNonVolatile = change == nil && previous?.isNonVolatile == true
        record(key, previous: previous, change ?? (deletesNonVolatile ? .delete(key) : nil))
    }

    /// Replaces a stored variable where it stands in enumeration order (VariableStore's
    /// rule: same key and attributes); false, changing nothing, otherwise.
    @discardableResult
    mutating func replaceInPlace(_ variable: Variable) -> Bool {
        guard let previous = store.variable(for: variable.key), store.replaceInPlace(variable) else { return false }
        quota.subtract(previous)
        quota.add(variable)
        record(variable.key, previous: previous, variable.isNonVolatile ? .replaceInPlace(variable) : nil)
        return true
    }

    @discardableResult
    mutating func remove(_ key: VariableKey) -> Variable? {
        guard let previous = store.remove(key) else { return nil }
        quota.subtract(previous)
        record(key, previous: previous, previous.isNonVolatile ? .delete(key) : nil)
        return previous
    }

    /// A platform reset: volatile variables go, as no step (nothing durable changes).
    mutating func removeVolatile() {
        for variable in store.all where !variable.isNonVolatile {
            store.remove(variable.key)
            quota.subtract(variable)
        }
        discardStep()
    }

    // MARK: Ending a step

    /// Hands the step's non-volatile changes to `journal`. If it cannot make them durable,
    /// every change of the step is undone (a variable it touched may then enumerate last)
    /// and the journal's error is rethrown. Either way the next step starts clean.
    mutating func commitStep<Journal: NonVolatileJournal>(to journal: inout Journal) throws(StorageError) {
        defer { discardStep() }
        guard !pendingChanges.isEmpty else { return }
        do {
            try journal.commit(pendingChanges)
        } catch {
            for entry in undoLog.reversed() {
                if let current = store.remove(entry.key) { quota.subtract(current) }
                if case .restore(let previous) = entry { insertCharged(previous) }
            }
            throw error
        }
    }

    /// Forgets the step's record (its changes stay in memory).
    mutating func discardStep() {
        // Keeping the capacity spares every request an allocation for its undo record.
        if !pendingChanges.isEmpty { pendingChanges.removeAll(keepingCapacity: true) }
        if !undoLog.isEmpty { undoLog.removeAll(keepingCapacity: true) }
    }

    // MARK: Private

    /// store.insert with the quota kept: the replaced variable's charge off, the new one's on.
    @discardableResult
    private mutating func insertCharged(_ variable: consuming Variable, at hint: VariableStore.Slot? = nil) -> Variable? {
        let storageClass = StorageClass(variable.attributes), charge = quota.charge(variable)
        let previous = store.insert(variable, at: hint)
        if let previous { quota.subtract(previous) }
        quota.reserve(charge, in: storageClass)  // what `quota.add(variable)` charges
        return previous
    }

    /// Notes a change for undo and, when it touches a non-volatile variable, for the journal.
    private mutating func record(_ key: VariableKey, previous: consuming Variable?, _ change: JournalChange?) {
        guard !suspended else { return }
        switch consume previous {
        case .some(let variable): undoLog.append(.restore(variable))
        case .none: undoLog.append(.removeCreated(key))
        }
        if let change { pendingChanges.append(change) }
    }
}
