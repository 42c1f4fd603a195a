import Testing
@testable import VarStoreCore

@Suite struct VariableStoreTests {
    func variable(_ name: String, _ data: [UInt8] = [1]) -> Variable {
        Variable(key: VariableKey(guid: .globalVariable, name: VariableName(name)!), attributes: [.bootServiceAccess], data: data)
    }

    @Test func enumeratesInInsertionOrderAndReplacementMovesToTheEnd() {
        var store = VariableStore()
        for name in ["A", "B", "C"] { store.insert(variable(name)) }
        store.insert(variable("A", [2]))
        #expect(store.all.map(\.name.text) == ["B", "C", "A"])
        #expect(store.variable(for: variable("A").key)?.data == [2])
        #expect(store.count == 3)
    }

    /// UCS-2LE bytes of `name`, as a request carries them (built here, not by the store).
    func wire(_ name: String) -> [UInt8] { name.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }

    @Test func aSlotFromALookupIsUsableUntilTheStoreChanges() {
        var store = VariableStore()
        for name in ["A", "B", "C"] { store.insert(variable(name)) }
        let bytes = wire("B")
        let slot = store.slot(guid: .globalVariable, name: bytes.span)
        #expect(slot != nil)
        #expect(store.slot(guid: .globalVariable, name: wire("Z").span) == nil)
        #expect(store.key(at: slot!) == variable("B").key)
        #expect(store.variable(at: slot!) == variable("B"))
        // Any change makes every earlier slot stale: it finds nothing, and an insert given it
        // looks the key up again.
        store.insert(variable("D"))
        #expect(store.key(at: slot!) == nil)
        #expect(store.variable(at: slot!) == nil)
        store.insert(variable("B", [7]), at: slot)
        #expect(store.all.map(\.name.text) == ["A", "C", "D", "B"])
        #expect(store.variable(for: variable("B").key)?.data == [7])
        #expect(store.count == 4)
    }

    @Test func aSlotFromAnotherStoreIsStaleNotOutOfRange() {
        // Two stores with the same number of changes: the big one's slot has the small one's
        // generation but an index past its end.
        var big = VariableStore(), small = VariableStore()
        for name in ["A", "B", "C", "D"] { big.insert(variable(name)) }
        // Two slots, four changes.
        for name in ["W", "X"] { small.insert(variable(name)) }
        small.replaceInPlace(variable("W", [2]))
        small.replaceInPlace(variable("W", [3]))
        let bytes = wire("D")
        let slot = big.slot(guid: .globalVariable, name: bytes.span)!
        #expect(small.key(at: slot) == nil)
        #expect(small.variable(at: slot) == nil)
        #expect(small.withData(at: slot) { _, data in data.count } == nil)
        #expect(small.withName(at: slot) { _, units in units.count } == nil)
        // An insert given it looks the key up instead.
        small.insert(variable("D", [5]), at: slot)
        #expect(small.all.map(\.name.text) == ["W", "X", "D"])
    }

    @Test func anInsertAtAFreshSlotReplacesAsAPlainInsertDoes() {
        var viaSlot = VariableStore(), plain = VariableStore()
        for name in ["A", "B", "C"] {
            viaSlot.insert(variable(name))
            plain.insert(variable(name))
        }
        let bytes = wire("A")
        let slot = viaSlot.slot(guid: .globalVariable, name: bytes.span)
        #expect(viaSlot.insert(variable("A", [9]), at: slot) == variable("A"))
        #expect(plain.insert(variable("A", [9])) == variable("A"))
        #expect(viaSlot.all == plain.all)
        #expect(viaSlot.count == 3)
        // The index still finds the replacement by name, and a removal unlinks it.
        #expect(viaSlot.variable(for: variable("A").key)?.data == [9])
        viaSlot.remove(variable("A").key)
        #expect(viaSlot.all.map(\.name.text) == ["B", "C"])
    }

    func runtimeVariable(_ name: String) -> Variable {
        Variable(key: VariableKey(guid: .globalVariable, name: VariableName(name)!),
                 attributes: [.bootServiceAccess, .runtimeAccess], data: [1])
    }

    @Test func successorFollowsLinks() {
        var store = VariableStore()
        for name in ["A", "B", "C", "D"] { store.insert(variable(name)) }
        store.remove(variable("B").key)
        #expect(store.successor(of: variable("A").key, in: .all) == .found(variable("C")))
        #expect(store.successor(of: variable("D").key, in: .all) == .end)
        #expect(store.successor(of: variable("B").key, in: .all) == .missing)
    }

    @Test func runtimeWalkLinksOnlyRuntimeVariables() {
        var store = VariableStore()
        store.insert(variable("boot1"))
        store.insert(runtimeVariable("R1"))
        store.insert(variable("boot2"))
        store.insert(runtimeVariable("R2"))
        store.insert(variable("boot3"))
        #expect(store.first(.runtimeVisible) == runtimeVariable("R1"))
        #expect(store.successor(of: runtimeVariable("R1").key, in: .runtimeVisible) == .found(runtimeVariable("R2")))
        #expect(store.successor(of: runtimeVariable("R2").key, in: .runtimeVisible) == .end)
        #expect(store.successor(of: variable("boot2").key, in: .runtimeVisible) == .missing)
        // Re-inserting moves a runtime variable to the end of both walks.
        store.insert(runtimeVariable("R1"))
        #expect(store.first(.runtimeVisible) == runtimeVariable("R2"))
        #expect(store.successor(of: runtimeVariable("R2").key, in: .runtimeVisible) == .found(runtimeVariable("R1")))
        #expect(store.all.map(\.name.text) == ["boot1", "boot2", "R2", "boot3", "R1"])
        store.remove(runtimeVariable("R2").key)
        #expect(store.first(.runtimeVisible) == runtimeVariable("R1"))
        store.remove(runtimeVariable("R1").key)
        #expect(store.first(.runtimeVisible) == nil)
    }

    @Test func slotsAreReusedWithoutDisturbingOrder() {
        var store = VariableStore()
        for index in 0..<100 { store.insert(variable("V\(index)")) }
        for index in stride(from: 0, to: 100, by: 2) { store.remove(variable("V\(index)").key) }
        for index in 0..<10 { store.insert(variable("N\(index)")) }
        let names = store.all.map(\.name.text)
        #expect(names.count == 60)
        #expect(names.prefix(3) == ["V1", "V3", "V5"])
        #expect(names.suffix(2) == ["N8", "N9"])
    }

    func nameBytes(_ name: String) -> [UInt8] { Array(ucs2(name).dropLast(2)) }

    func lookup(_ store: VariableStore, _ guid: EFIGUID, _ name: [UInt8]) -> Variable? {
        store.variable(guid: guid, name: name.span)
    }

    func successor(_ store: VariableStore, _ guid: EFIGUID, _ name: [UInt8]) -> VariableStore.Successor {
        store.successor(guid: guid, name: name.span, in: .all)
    }

    @Test func lookupFromNameBytesFindsWhatTheKeyFinds() {
        var store = VariableStore()
        for name in ["A", "B", "Boot0001", "\u{00E9}t\u{00E9}"] { store.insert(variable(name)) }
        for name in ["A", "B", "Boot0001", "\u{00E9}t\u{00E9}"] {
            #expect(lookup(store, .globalVariable, nameBytes(name)) == variable(name))
        }
        #expect(successor(store, .globalVariable, nameBytes("A")) == .found(variable("B")))
        #expect(successor(store, .globalVariable, nameBytes("Z")) == .missing)
    }

    @Test func lookupFromNameBytesMatchesTheWholeKeyOnly() {
        var store = VariableStore()
        store.insert(variable("Boot0001"))
        #expect(lookup(store, .imageSecurityDatabase, nameBytes("Boot0001")) == nil)
        #expect(lookup(store, .globalVariable, nameBytes("Boot000")) == nil)
        #expect(lookup(store, .globalVariable, nameBytes("Boot00010")) == nil)
        #expect(lookup(store, .globalVariable, ucs2("Boot0001")) == nil)  // with its NUL
        #expect(lookup(store, .globalVariable, Array(nameBytes("Boot0001").dropFirst())) == nil)
        #expect(lookup(store, .globalVariable, [UInt8]()) == nil)
    }

    /// Inserts, replacements and removals in a pseudo-random order, checked against a
    /// dictionary: exercises the index's growth, its probe chains and the backward shift that
    /// closes a removed entry's gap.
    @Test func indexAgreesWithADictionaryThroughChurn() {
        var store = VariableStore()
        var reference: [String: [UInt8]] = [:]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for step in 0 ..< 4000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let name = "V\(state >> 55)"
            if state & 0x300 == 0 {
                #expect((store.remove(variable(name).key) != nil) == (reference.removeValue(forKey: name) != nil))
            } else {
                let data = [UInt8(truncatingIfNeeded: step)]
                store.insert(variable(name, data))
                reference[name] = data
            }
        }
        #expect(store.count == reference.count)
        #expect(store.all.count == reference.count)
        for index in 0 ..< 512 {
            let name = "V\(index)"
            #expect(store.variable(for: variable(name).key)?.data == reference[name])
            #expect(lookup(store, .globalVariable, nameBytes(name))?.data == reference[name])
        }
    }
}
