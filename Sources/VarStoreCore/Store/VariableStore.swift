/// The in-memory variable table.
///
/// Lookup by (GUID, name) is a hash-table probe: O(1) expected. Enumeration order is insertion
/// order, kept as a doubly linked list threaded through a slot array, so the successor of a
/// variable is one link away: GetNextVariableName is O(1) per call and a full enumeration is
/// O(n) — QEMU scans a list for every call, O(n²) in all. Replacing a variable unlinks it and
/// appends it at the tail, so an updated or re-created variable enumerates last, as QEMU's
/// device and edk2's log-structured store both do.
public struct VariableStore: Sendable {
    private struct Slot: Sendable {
        var variable: Variable
        var previous: Int
        var next: Int
    }

    private static let none = -1
    private var slots: [Slot?] = []
    private var freeSlots: [Int] = []
    private var index: [VariableKey: Int] = [:]
    private var head = VariableStore.none
    private var tail = VariableStore.none

    public init() {}

    public var count: Int { index.count }

    public func variable(for key: VariableKey) -> Variable? {
        guard let slot = index[key] else { return nil }
        return slots[slot]?.variable
    }

    /// Stores `variable`, replacing any variable with the same key; it becomes the last one
    /// in enumeration order.
    public mutating func insert(_ variable: Variable) {
        remove(variable.key)
        let slot = Slot(variable: variable, previous: tail, next: VariableStore.none)
        let position: Int
        if let reused = freeSlots.popLast() {
            slots[reused] = slot
            position = reused
        } else {
            slots.append(slot)
            position = slots.count - 1
        }
        if tail != VariableStore.none { slots[tail]!.next = position } else { head = position }
        tail = position
        index[variable.key] = position
    }

    @discardableResult
    public mutating func remove(_ key: VariableKey) -> Variable? {
        guard let position = index.removeValue(forKey: key), let slot = slots[position] else { return nil }
        if slot.previous != VariableStore.none { slots[slot.previous]!.next = slot.next } else { head = slot.next }
        if slot.next != VariableStore.none { slots[slot.next]!.previous = slot.previous } else { tail = slot.previous }
        slots[position] = nil
        freeSlots.append(position)
        return slot.variable
    }

    /// The first variable in enumeration order that satisfies `isVisible`.
    public func first(where isVisible: (Variable) -> Bool) -> Variable? {
        walk(from: head, isVisible)
    }

    /// The variable after `key` that satisfies `isVisible`. `.missing` when `key` is not stored.
    public func successor(of key: VariableKey, where isVisible: (Variable) -> Bool) -> Successor {
        guard let position = index[key], let slot = slots[position] else { return .missing }
        if let next = walk(from: slot.next, isVisible) { return .found(next) }
        return .end
    }

    public enum Successor: Equatable {
        case found(Variable)
        case end
        case missing
    }

    private func walk(from start: Int, _ isVisible: (Variable) -> Bool) -> Variable? {
        var position = start
        while position != VariableStore.none, let slot = slots[position] {
            if isVisible(slot.variable) { return slot.variable }
            position = slot.next
        }
        return nil
    }

    /// Every variable in enumeration order.
    public var all: [Variable] {
        var out: [Variable] = []
        out.reserveCapacity(count)
        var position = head
        while position != VariableStore.none, let slot = slots[position] {
            out.append(slot.variable)
            position = slot.next
        }
        return out
    }

    /// Removes every variable for which `shouldRemove` is true, keeping the order of the rest.
    public mutating func removeAll(where shouldRemove: (Variable) -> Bool) {
        for variable in all where shouldRemove(variable) { remove(variable.key) }
    }
}
