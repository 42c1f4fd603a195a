import Foundation
import Testing
import VarStoreCore
@testable import VarStoreHost

@Suite struct QEMUJSONStoreTests {
    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("varstore-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test(arguments: ["a-first-boot-empty.after.json", "d-setvar-reset.after.json"])
    func qemuWrittenStoresRoundTripByteForByte(_ file: String) throws {
        let url = TestVectors.url("ovmf/\(file)")
        let original = try String(contentsOf: url, encoding: .utf8)
        let variables = try QEMUJSONStore.load(contentsOf: url)
        #expect(variables.count > 10)
        #expect(QEMUJSONStore.render(variables) == original)
    }

    @Test
    func qemuStoreFieldsAreDecoded() throws {
        let variables = try QEMUJSONStore.load(contentsOf: TestVectors.url("ovmf/a-first-boot-empty.after.json"))
        let keys = try #require(variables.first { $0.name.text == "VendorKeysNv" })
        #expect(keys.guid == .globalVariable)
        #expect(keys.attributes.rawValue == 35)
        #expect(keys.timestamp == .zero)
        #expect(keys.data == [0])
        let lang = try #require(variables.first { $0.name.text == "PlatformLang" })
        #expect(lang.data == Array("en-US\0".utf8))
    }

    @Test func emptyFileIsAnEmptyStore() throws {
        #expect(try QEMUJSONStore.parse(Data()).isEmpty)
        #expect(try QEMUJSONStore.parse(Data("{\"version\": 2, \"variables\": []}".utf8)).isEmpty)
    }

    @Test(arguments: [
        ("{", "not valid JSON"),
        ("[]", "top level is not a JSON object"),
        ("{\"variables\": []}", "member 'version' is missing"),
        ("{\"version\": 2}", "member 'variables' is missing"),
        ("{\"version\": true, \"variables\": []}", "'version' is not an integer"),
        ("{\"version\": 2, \"variables\": [{\"name\": \"A\", \"attr\": 7, \"data\": \"00\"}]}", "variables[0]: member 'guid' is missing"),
        ("{\"version\": 2, \"variables\": [{\"guid\": \"nope\", \"name\": \"A\", \"attr\": 7, \"data\": \"00\"}]}", "variables[0].guid 'nope' is not a GUID"),
        ("{\"version\": 2, \"variables\": [{\"guid\": \"8be4df61-93ca-11d2-aa0d-00e098032b8c\", \"name\": \"\", \"attr\": 7, \"data\": \"00\"}]}", "variables[0].name is empty"),
        ("{\"version\": 2, \"variables\": [{\"guid\": \"8be4df61-93ca-11d2-aa0d-00e098032b8c\", \"name\": \"A\", \"attr\": -1, \"data\": \"00\"}]}", "variables[0] (A).attr is not a 32-bit unsigned integer"),
        ("{\"version\": 2, \"variables\": [{\"guid\": \"8be4df61-93ca-11d2-aa0d-00e098032b8c\", \"name\": \"A\", \"attr\": 7, \"data\": \"0g\"}]}", "variables[0] (A).data is not an even-length hex string"),
        ("{\"version\": 2, \"variables\": [{\"guid\": \"8be4df61-93ca-11d2-aa0d-00e098032b8c\", \"name\": \"A\", \"attr\": 6, \"data\": \"00\"}]}", "variables[0] (A).attr 0x6 is not a stored non-volatile variable's"),
        ("{\"version\": 2, \"variables\": [{\"guid\": \"8be4df61-93ca-11d2-aa0d-00e098032b8c\", \"name\": \"A\", \"attr\": 71, \"data\": \"00\"}]}", "variables[0] (A).attr 0x47 is not a stored non-volatile variable's"),
        ("{\"version\": 2, \"variables\": [{\"guid\": \"8be4df61-93ca-11d2-aa0d-00e098032b8c\", \"name\": \"A\", \"attr\": 5, \"data\": \"00\"}]}", "variables[0] (A).attr 0x5 is not a stored non-volatile variable's"),
        ("{\"version\": 2, \"variables\": [{\"guid\": \"8be4df61-93ca-11d2-aa0d-00e098032b8c\", \"name\": \"A\", \"attr\": 7, \"data\": \"000\"}]}", "variables[0] (A).data is not an even-length hex string"),
        ("{\"version\": 2, \"variables\": [{\"guid\": \"8be4df61-93ca-11d2-aa0d-00e098032b8c\", \"name\": \"A\", \"attr\": 39, \"data\": \"00\", \"time\": \"00\"}]}", "variables[0] (A).time is not 32 hex digits"),
    ])
    func malformedStoresNameTheProblem(_ text: String, _ expected: String) {
        #expect {
            try QEMUJSONStore.parse(Data(text.utf8))
        } throws: { error in
            "\(error)".contains(expected)
        }
    }

    @Test func saveWritesOnlyNonVolatileVariablesAndReplacesAtomically() throws {
        let directory = try temporaryDirectory()
        let url = directory.appendingPathComponent("vars.json")
        let persistent = Variable(key: VariableKey(guid: .globalVariable, name: VariableName("Timeout")!),
                                  attributes: [.nonVolatile, .bootServiceAccess, .runtimeAccess], data: [5, 0])
        let volatile = Variable(key: VariableKey(guid: .globalVariable, name: VariableName("BootCurrent")!),
                                attributes: [.bootServiceAccess, .runtimeAccess], data: [1, 0])
        try QEMUJSONStore.save([persistent, volatile], to: url)
        let loaded = try QEMUJSONStore.load(contentsOf: url)
        #expect(loaded == [persistent])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(leftovers == ["vars.json"])
    }

    @Test func aMalformedFileIsNeitherLoadedNorOverwritten() throws {
        let directory = try temporaryDirectory()
        let url = directory.appendingPathComponent("vars.json")
        let garbage = "{\"version\": 2, \"variables\": [{\"guid\": 1}]}"
        try garbage.write(to: url, atomically: false, encoding: .utf8)
        #expect(throws: QEMUJSONStore.FormatError.self) { try QEMUJSONStore.load(contentsOf: url) }
        #expect(try String(contentsOf: url, encoding: .utf8) == garbage)
    }

    @Test func onlyTimeAuthenticatedVariablesCarryATimeSoAStoreRoundTrips() throws {
        // Found by the convert fuzzer: an AT variable without "time" rendered with a zero one,
        // and a "time" on a plain variable was dropped on rendering.
        let text = """
            {"version": 2, "variables": [
              {"name": "A", "guid": "8be4df61-93ca-11d2-aa0d-00e098032b8c", "attr": 35, "data": "00"},
              {"name": "B", "guid": "8be4df61-93ca-11d2-aa0d-00e098032b8c", "attr": 7, "data": "01",
               "time": "e9070101000000000000000000000000"}]}
            """
        let loaded = try QEMUJSONStore.parse(Data(text.utf8))
        #expect(loaded[0].timestamp == .zero)
        #expect(loaded[1].timestamp == nil)
        #expect(try QEMUJSONStore.parse(Data(QEMUJSONStore.render(loaded).utf8)) == loaded)
    }
}
