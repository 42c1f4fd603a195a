/// The in-memory variable table.
///
/// Lookup by (GUID, name) is a hash-table probe: O(1) expected. Enumeration order is the order
/// of last write, kept as doubly linked lists threaded through a slot array: one through every
/// variable, and one through the runtime-visible ones (RUNTIME_ACCESS set), which are all a
/// caller sees after ExitBootServices. The successor of a variable is therefore one link away
/// in either phase, GetNextVariableName is O(1) per call and a full walk O(n) — QEMU scans its
/// list for every call, O(n²) for a walk. Replacing a variable unlinks it and appends it at the
/// tail, so an updated or re-created variable enumerates last, as QEMU's device does.
public struct VariableStore: Sendable {
    /// Which of the two orders a walk follows.
    public enum Walk: Sendable {
        /// Every variable (boot time).
        case all
        /// Only variables with RUNTIME_ACCESS (after ExitBootServices).
        case runtimeVisible
    }

    private struct Links: Sendable {
        var previous = VariableStore.none
        var next = VariableStore.none
    }

    private struct Slot: Sendable {
        var variable: Variable
        var all = Links()
        var runtime = Links()
    }

    private struct Ends: Sendable {
        var head = VariableStore.none
        var tail = VariableStore.none
    }

    private static let none = -1
    private var slots: [Slot?] = []
    private var freeSlots: [Int] = []
    private var index: [VariableKey: Int] = [:]
    private var allEnds = Ends()
    private var runtimeEnds = Ends()

    public init() {}

    public var count: Int { index.count }

    public func variable(for key: VariableKey) -> Variable? {
        guard let slot = index[key] else { return nil }
        return slots[slot]?.variable
    }

    private static func isRuntimeVisible(_ variable: Variable) -> Bool {
        variable.attributes.contains(.runtimeAccess)
    }

    /// Stores `variable`, replacing any variable with the same key; it becomes the last one
    /// in enumeration order. Returns the variable it replaced.
    @discardableResult
    public mutating func insert(_ variable: Variable) -> Variable? {
        // A replacement keeps its slot and index entry: one lookup, then it is relinked at the
        // tail (the overwrite every SetVariable of new data makes).
        if let position = index[variable.key], let old = slots[position]?.variable {
            unlink(position, runtimeVisible: Self.isRuntimeVisible(old))
            slots[position] = Slot(variable: variable)
            link(position)
            return old
        }
        let position: Int
        if let reused = freeSlots.popLast() {
            position = reused
        } else {
            slots.append(nil)
            position = slots.count - 1
        }
        slots[position] = Slot(variable: variable)
        link(position)
        index[variable.key] = position
        return nil
    }

    /// Appends the slot at `position` to the tail of the lists its variable belongs to.
    private mutating func link(_ position: Int) {
        slots[position]!.all.previous = allEnds.tail
        if allEnds.tail != Self.none { slots[allEnds.tail]!.all.next = position } else { allEnds.head = position }
        allEnds.tail = position
        if Self.isRuntimeVisible(slots[position]!.variable) {
            slots[position]!.runtime.previous = runtimeEnds.tail
            if runtimeEnds.tail != Self.none { slots[runtimeEnds.tail]!.runtime.next = position } else { runtimeEnds.head = position }
            runtimeEnds.tail = position
        }
    }

    /// Takes the slot at `position` out of the lists it is on (its links are left stale).
    private mutating func unlink(_ position: Int, runtimeVisible: Bool) {
        let links = slots[position]!.all
        if links.previous != Self.none { slots[links.previous]!.all.next = links.next } else { allEnds.head = links.next }
        if links.next != Self.none { slots[links.next]!.all.previous = links.previous } else { allEnds.tail = links.previous }
        if runtimeVisible {
            let runtime = slots[position]!.runtime
            if runtime.previous != Self.none { slots[runtime.previous]!.runtime.next = runtime.next } else { runtimeEnds.head = runtime.next }
            if runtime.next != Self.none { slots[runtime.next]!.runtime.previous = runtime.previous } else { runtimeEnds.tail = runtime.previous }
        }
    }

    /// Replaces a stored variable's data and timestamp where it stands in enumeration order
    /// (edk2 patches SetupMode and SecureBoot in place). Returns false, changing nothing, if
    /// no variable with the same key and attributes is stored.
    @discardableResult
    public mutating func replaceInPlace(_ variable: Variable) -> Bool {
        guard let position = index[variable.key], let old = slots[position]?.variable,
              old.attributes == variable.attributes else { return false }
        slots[position]!.variable = variable
        return true
    }

    @discardableResult
    public mutating func remove(_ key: VariableKey) -> Variable? {
        guard let position = index.removeValue(forKey: key), let slot = slots[position] else { return nil }
        unlink(position, runtimeVisible: Self.isRuntimeVisible(slot.variable))
        slots[position] = nil
        freeSlots.append(position)
        return slot.variable
    }

    /// The first variable of `walk`.
    public func first(_ walk: Walk) -> Variable? {
        let head = walk == .all ? allEnds.head : runtimeEnds.head
        return head == Self.none ? nil : slots[head]?.variable
    }

    public enum Successor: Equatable {
        case found(Variable)
        case end
        /// `key` is not part of the walk (not stored, or not runtime-visible).
        case missing
    }

    /// The variable after `key` in `walk`.
    public func successor(of key: VariableKey, in walk: Walk) -> Successor {
        guard let position = index[key], let slot = slots[position] else { return .missing }
        let next: Int
        switch walk {
        case .all:
            next = slot.all.next
        case .runtimeVisible:
            guard Self.isRuntimeVisible(slot.variable) else { return .missing }
            next = slot.runtime.next
        }
        guard next != Self.none, let found = slots[next]?.variable else { return .end }
        return .found(found)
    }

    /// Every variable in enumeration order.
    public var all: [Variable] {
        var out: [Variable] = []
        out.reserveCapacity(count)
        var position = allEnds.head
        while position != Self.none, let slot = slots[position] {
            out.append(slot.variable)
            position = slot.all.next
        }
        return out
    }
}
