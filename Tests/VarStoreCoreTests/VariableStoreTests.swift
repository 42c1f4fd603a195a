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

    @Test func successorFollowsLinksAndSkipsInvisible() {
        var store = VariableStore()
        for name in ["A", "B", "C", "D"] { store.insert(variable(name)) }
        store.remove(variable("B").key)
        #expect(store.successor(of: variable("A").key, where: { _ in true }) == .found(variable("C")))
        #expect(store.successor(of: variable("A").key, where: { $0.name.text != "C" }) == .found(variable("D")))
        #expect(store.successor(of: variable("D").key, where: { _ in true }) == .end)
        #expect(store.successor(of: variable("B").key, where: { _ in true }) == .missing)
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
