/// The in-memory variable table.
///
/// Lookup by (GUID, name) is a hash-table probe: O(1) expected, from a key or straight from a
/// request's name bytes. Enumeration order is the order
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

    /// A slot's places in the two orders, kept apart from the variables so that following or
    /// changing a link never copies a variable.
    private struct SlotLinks: Sendable {
        var all = Links()
        var runtime = Links()
    }

    private struct Ends: Sendable {
        var head = VariableStore.none
        var tail = VariableStore.none
    }

    /// One entry of the open-addressing index: a slot and its key's hash.
    private struct Bucket: Sendable {
        var hash = 0
        var position = VariableStore.none
    }

    private static let none = -1
    /// The variables by slot; nil marks a free slot.
    private var slots: [Variable?] = []
    private var links: [SlotLinks] = []
    private var freeSlots: [Int] = []
    /// (GUID, name) → slot: linear probing in a power-of-two table at most half full. A key
    /// hashes as its GUID and its name's UCS-2LE bytes (`hash(_:_:)`), so a request's name is
    /// looked up from its wire bytes without building a VariableName. The hash is keyed with
    /// a secret (`hasher`), so a guest cannot choose names that collide.
    private var buckets: [Bucket] = []
    public private(set) var count = 0
    /// Counts changes, so a Slot can tell that it is stale.
    private var generation: UInt64 = 0
    private var allEnds = Ends()
    private var runtimeEnds = Ends()

    /// The index's hash, keyed from the runtime's per-process random seed (Hasher is seeded
    /// at start-up; two finalisations of different inputs give the two key words).
    private let hasher: SipHash<SipHash13>

    public init() {
        var first = Hasher(), second = Hasher()
        first.combine(UInt64(0x7661_7273_746F_7265))  // "varstore"
        second.combine(UInt64(0x7661_7273_746F_7266))
        hasher = SipHash<SipHash13>(k0: UInt64(truncatingIfNeeded: first.finalize()), k1: UInt64(truncatingIfNeeded: second.finalize()))
    }

    public func variable(for key: VariableKey) -> Variable? {
        guard let position = position(of: key) else { return nil }
        return slots[position]
    }

    /// The variable named `name` — UCS-2LE code units without the terminator, as a request
    /// carries them — under `guid`. Bytes that are no valid name match nothing.
    public func variable(guid: EFIGUID, name: Span<UInt8>) -> Variable? {
        guard let position = position(guid: guid, name: name) else { return nil }
        return slots[position]
    }

    /// Where a lookup found a variable: a SetVariable that found its variable stores the
    /// replacement there without a second lookup. Valid until the store next changes (the
    /// store counts its changes); a stale slot finds nothing.
    public struct Slot: Equatable, Sendable {
        fileprivate let index: Int
        fileprivate let generation: UInt64
    }

    /// The slot of the variable named `name` (as `variable(guid:name:)` takes it) under `guid`.
    public func slot(guid: EFIGUID, name: Span<UInt8>) -> Slot? {
        position(guid: guid, name: name).map { Slot(index: $0, generation: generation) }
    }

    /// A slot from this store's current generation. (The bounds are checked too: a slot from
    /// another store, or a copy of this one, is then merely stale, never out of range.)
    private func isValid(_ slot: Slot) -> Bool {
        slot.generation == generation && slot.index >= 0 && slot.index < slots.count
    }

    /// The key of the variable at `slot` (no copy of its data), unless the slot is stale.
    public func key(at slot: Slot) -> VariableKey? {
        isValid(slot) ? slots[slot.index]?.key : nil
    }

    /// Lets `body` read the attributes and data of the variable at `slot` where they are
    /// stored, unless the slot is stale: a reply copies the data from there without first
    /// copying the variable (each copy of one is a reference count on its name and its data).
    public func withData<Result>(at slot: Slot, _ body: (VariableAttributes, UnsafeRawBufferPointer) -> Result) -> Result? {
        guard isValid(slot) else { return nil }
        return slots.withUnsafeBufferPointer { stored in
            guard let attributes = stored[slot.index]?.attributes else { return nil }
            return stored[slot.index]?.data.withUnsafeBytes { body(attributes, $0) }
        }
    }

    /// The variable at `slot`, unless the slot is stale.
    public func variable(at slot: Slot) -> Variable? {
        isValid(slot) ? slots[slot.index] : nil
    }

    private static func isRuntimeVisible(_ attributes: VariableAttributes) -> Bool {
        attributes.contains(.runtimeAccess)
    }

    /// Stores `variable`, replacing any variable with the same key; it becomes the last one
    /// in enumeration order. Returns the variable it replaced.
    @discardableResult
    public mutating func insert(_ variable: consuming Variable) -> Variable? {
        insert(variable, at: nil)
    }

    /// `insert`, replacing the variable at `hint` straight away when that slot still holds
    /// `variable`'s key (a key copied from the stored variable compares in a few instructions).
    @discardableResult
    ///
    /// Precondition: a `hint` is where `variable`'s key was found (the service checks the key
    /// before it passes one).
    mutating func insert(_ variable: consuming Variable, at hint: Slot?) -> Variable? {
        if let hint, isValid(hint), slots[hint.index]?.attributes != nil {
            generation &+= 1
            assert(slots[hint.index]?.key == variable.key, "a slot hint for another key")
            return replace(at: hint.index, with: variable)
        }
        generation &+= 1
        let hash = hash(variable.key)
        let probe = find(hash) { $0.key == variable.key }
        // A replacement keeps its slot and index entry: one lookup, then it is relinked at the
        // tail (the overwrite every SetVariable of new data makes).
        if probe.found {
            return replace(at: buckets[probe.bucket].position, with: variable)
        }
        let position: Int
        if let reused = freeSlots.popLast() {
            position = reused
            slots[position] = variable
        } else {
            position = slots.count
            slots.append(variable)
            links.append(SlotLinks())
        }
        link(position, runtimeVisible: Self.isRuntimeVisible(variable.attributes))
        count += 1
        if 2 * count > buckets.count {
            grow()
            buckets[find(hash) { _ in false }.bucket] = Bucket(hash: hash, position: position)
        } else {
            buckets[probe.bucket] = Bucket(hash: hash, position: position)
        }
        return nil
    }

    /// Puts `variable` in place of the one at `position` (same key), moves it to the tail and
    /// returns the one it replaced. Moves, not copies: each copy of a variable is a reference
    /// count on its name and on its data.
    private mutating func replace(at position: Int, with variable: consuming Variable) -> Variable {
        let old = slots[position].take()!
        unlink(position, runtimeVisible: Self.isRuntimeVisible(old.attributes))
        let runtimeVisible = Self.isRuntimeVisible(variable.attributes)
        slots[position] = consume variable
        link(position, runtimeVisible: runtimeVisible)
        return old
    }

    /// Appends the slot at `position` to the tail of the lists its variable belongs to.
    private mutating func link(_ position: Int, runtimeVisible: Bool) {
        links[position].all = Links(previous: allEnds.tail)
        if allEnds.tail != Self.none { links[allEnds.tail].all.next = position } else { allEnds.head = position }
        allEnds.tail = position
        if runtimeVisible {
            links[position].runtime = Links(previous: runtimeEnds.tail)
            if runtimeEnds.tail != Self.none { links[runtimeEnds.tail].runtime.next = position } else { runtimeEnds.head = position }
            runtimeEnds.tail = position
        }
    }

    /// Takes the slot at `position` out of the lists it is on (its links are left stale).
    private mutating func unlink(_ position: Int, runtimeVisible: Bool) {
        let all = links[position].all
        if all.previous != Self.none { links[all.previous].all.next = all.next } else { allEnds.head = all.next }
        if all.next != Self.none { links[all.next].all.previous = all.previous } else { allEnds.tail = all.previous }
        if runtimeVisible {
            let runtime = links[position].runtime
            if runtime.previous != Self.none { links[runtime.previous].runtime.next = runtime.next } else { runtimeEnds.head = runtime.next }
            if runtime.next != Self.none { links[runtime.next].runtime.previous = runtime.previous } else { runtimeEnds.tail = runtime.previous }
        }
    }

    /// Replaces a stored variable's data and timestamp where it stands in enumeration order
    /// (edk2 patches SetupMode and SecureBoot in place). Returns false, changing nothing, if
    /// no variable with the same key and attributes is stored.
    @discardableResult
    public mutating func replaceInPlace(_ variable: Variable) -> Bool {
        generation &+= 1
        guard let position = position(of: variable.key), slots[position]?.attributes == variable.attributes else {
            return false
        }
        slots[position] = variable
        return true
    }

    @discardableResult
    public mutating func remove(_ key: VariableKey) -> Variable? {
        generation &+= 1
        let probe = find(hash(key)) { $0.key == key }
        guard probe.found else { return nil }
        let position = buckets[probe.bucket].position
        let old = slots[position]
        unlink(position, runtimeVisible: Self.isRuntimeVisible(old!.attributes))
        slots[position] = nil
        freeSlots.append(position)
        removeBucket(probe.bucket)
        count -= 1
        return old
    }

    /// The first variable of `walk`.
    public func first(_ walk: Walk) -> Variable? {
        let head = walk == .all ? allEnds.head : runtimeEnds.head
        return head == Self.none ? nil : slots[head]
    }

    public enum Successor: Equatable {
        case found(Variable)
        case end
        /// `key` is not part of the walk (not stored, or not runtime-visible).
        case missing
    }

    /// The variable after `key` in `walk`.
    public func successor(of key: VariableKey, in walk: Walk) -> Successor {
        successor(of: position(of: key), in: walk)
    }

    /// The variable after the one named by `guid` and `name` (UCS-2LE code units, no
    /// terminator) in `walk`.
    public func successor(guid: EFIGUID, name: Span<UInt8>, in walk: Walk) -> Successor {
        successor(of: position(guid: guid, name: name), in: walk)
    }

    private func successor(of position: Int?, in walk: Walk) -> Successor {
        switch successorPosition(of: position, in: walk) {
        case .found(let next): return slots[next].map(Successor.found) ?? .end
        case .end: return .end
        case .missing: return .missing
        }
    }

    /// A walk's next step by slot, for a reply written from the store in place (`withName`).
    public enum SlotSuccessor: Equatable {
        case found(Slot)
        case end
        case missing
    }

    /// The slot of the variable after the one named by `guid` and `name` in `walk`.
    public func successorSlot(guid: EFIGUID, name: Span<UInt8>, in walk: Walk) -> SlotSuccessor {
        switch successorPosition(of: position(guid: guid, name: name), in: walk) {
        case .found(let next): return .found(Slot(index: next, generation: generation))
        case .end: return .end
        case .missing: return .missing
        }
    }

    /// The slot of the first variable of `walk`.
    public func firstSlot(_ walk: Walk) -> Slot? {
        let head = walk == .all ? allEnds.head : runtimeEnds.head
        return head == Self.none ? nil : Slot(index: head, generation: generation)
    }

    /// Lets `body` read the GUID and name of the variable at `slot` where they are stored,
    /// unless the slot is stale (no copy of the variable).
    public func withName<Result>(at slot: Slot, _ body: (EFIGUID, UnsafeBufferPointer<UInt16>) -> Result) -> Result? {
        guard isValid(slot) else { return nil }
        return slots.withUnsafeBufferPointer { stored in
            guard let guid = stored[slot.index]?.key.guid else { return nil }
            return stored[slot.index]?.key.name.codeUnits.withUnsafeBufferPointer { body(guid, $0) }
        }
    }

    private enum PositionSuccessor {
        case found(Int)
        case end
        case missing
    }

    private func successorPosition(of position: Int?, in walk: Walk) -> PositionSuccessor {
        guard let position else { return .missing }
        let next: Int
        switch walk {
        case .all:
            next = links[position].all.next
        case .runtimeVisible:
            guard let attributes = slots[position]?.attributes, Self.isRuntimeVisible(attributes) else { return .missing }
            next = links[position].runtime.next
        }
        // (A trivial field, not the whole optional: comparing that with nil would copy it.)
        guard next != Self.none, slots[next]?.attributes != nil else { return .end }
        return .found(next)
    }

    // MARK: The index

    /// A key's hash: SipHash-1-3 under the store's secret key of its GUID, then its name's
    /// UCS-2LE bytes (the form a request carries).
    private func hash(_ guid: EFIGUID, ucs2LE name: UnsafeRawBufferPointer) -> Int {
        Int(truncatingIfNeeded: hasher.hash(words: (guid.low, guid.high), bytes: name))
    }

    private func hash(_ key: VariableKey) -> Int {
        #if _endian(little)
        key.name.codeUnits.withUnsafeBytes { hash(key.guid, ucs2LE: $0) }
        #else
        key.name.wireBytes.dropLast(2).withUnsafeBytes { hash(key.guid, ucs2LE: $0) }
        #endif
    }

    private func position(of key: VariableKey) -> Int? {
        let probe = find(hash(key)) { $0.key == key }
        return probe.found ? buckets[probe.bucket].position : nil
    }

    private func position(guid: EFIGUID, name: Span<UInt8>) -> Int? {
        let nameHash = name.withUnsafeBytes { hash(guid, ucs2LE: $0) }
        let probe = find(nameHash) { $0.key.guid == guid && $0.key.name.isEncoded(by: name) }
        return probe.found ? buckets[probe.bucket].position : nil
    }

    /// The bucket holding the variable with `hash` that `matches` accepts, or else the empty
    /// bucket where it would go (bucket 0 of an empty table).
    private func find(_ hash: Int, matching matches: (Variable) -> Bool) -> (bucket: Int, found: Bool) {
        guard !buckets.isEmpty else { return (0, false) }
        let mask = buckets.count - 1
        var bucket = hash & mask
        // Never full (at most half), so the probe meets an empty bucket.
        while true {
            let entry = buckets[bucket]
            if entry.position == Self.none { return (bucket, false) }
            if entry.hash == hash, let variable = slots[entry.position], matches(variable) { return (bucket, true) }
            bucket = (bucket + 1) & mask
        }
    }

    /// Doubles the table and reinserts every entry by its stored hash.
    private mutating func grow() {
        let old = buckets
        buckets = Array(repeating: Bucket(), count: max(16, 2 * old.count))
        let mask = buckets.count - 1
        for entry in old where entry.position != Self.none {
            var bucket = entry.hash & mask
            while buckets[bucket].position != Self.none { bucket = (bucket + 1) & mask }
            buckets[bucket] = entry
        }
    }

    /// Empties `bucket` and shifts back the entries after it that probed past it, so every
    /// entry stays reachable from its home bucket without tombstones.
    private mutating func removeBucket(_ bucket: Int) {
        let mask = buckets.count - 1
        var hole = bucket
        var next = (bucket + 1) & mask
        while buckets[next].position != Self.none {
            let home = buckets[next].hash & mask
            // The entry may fill the hole if the hole lies on its probe path (home … next).
            if (next - home) & mask >= (next - hole) & mask {
                buckets[hole] = buckets[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        buckets[hole] = Bucket()
    }

    /// Every variable in enumeration order.
    public var all: [Variable] {
        var out: [Variable] = []
        out.reserveCapacity(count)
        var position = allEnds.head
        while position != Self.none, let variable = slots[position] {
            out.append(variable)
            position = links[position].all.next
        }
        return out
    }
}
