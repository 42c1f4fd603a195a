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
}
