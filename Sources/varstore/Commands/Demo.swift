import ArgumentParser
import Foundation
import VarStoreCore
import VarStoreHost

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Drive the simulator through the qtest text protocol: set, read, enumerate, delete and query variables.")

    @Flag(help: "Also print every qtest line exchanged.")
    var transcript = false

    func run() throws {
        let machine = QTestMachine()
        let text = QTestTextBus(machine: machine)
        text.recordTranscript = transcript
        let client = MMClient(bus: text.bus)
        guard client.initialize() else { throw ValidationError("the device did not answer its magic") }
        print("uefi-vars device at 0xFEF10000, 64 KiB DMA buffer at 0x100000 (qtest text protocol)")

        let vendor = EFIGUID(text: "3f1b2a4c-5d6e-4f70-8192-a3b4c5d6e7f8")!
        let nvBsRt: UInt32 = 0x07, bsOnly: UInt32 = 0x02
        func show(_ what: String, _ result: String) {
            print(what.padding(toLength: 58, withPad: " ", startingAt: 0) + result)
        }
        show("SetVariable Greeting (NV|BS|RT) = \"hello\"",
             client.setVariable(VariableName("Greeting")!, vendor, attributes: nvBsRt, data: Array("hello".utf8)).name)
        show("SetVariable BootOnly (BS, volatile) = 2a",
             client.setVariable(VariableName("BootOnly")!, vendor, attributes: bsOnly, data: [0x2a]).name)
        show("SetVariable Counter (BS, volatile) = 01 00",
             client.setVariable(VariableName("Counter")!, vendor, attributes: bsOnly, data: [1, 0]).name)
        show("SetVariable Greeting APPEND_WRITE \" world\"",
             client.setVariable(VariableName("Greeting")!, vendor, attributes: nvBsRt | 0x40, data: Array(" world".utf8)).name)
        let read = client.getVariable(VariableName("Greeting")!, vendor)
        show("GetVariable Greeting", "\(read.status.name) attr=0x\(String(read.attributes, radix: 16)) \"\(String(decoding: read.data, as: UTF8.self))\"")
        show("GetVariable Missing", client.getVariable(VariableName("Missing")!, vendor).status.name)
        show("SetVariable Greeting with other attributes",
             client.setVariable(VariableName("Greeting")!, vendor, attributes: bsOnly, data: [0]).name)
        print("GetNextVariableName walk:")
        for key in client.enumerate() { print("  \(key.guid.text)  \(key.name.text)") }
        show("SetVariable Counter DataSize 0 (delete)",
             client.setVariable(VariableName("Counter")!, vendor, attributes: bsOnly, data: []).name)
        show("SetVariable Counter DataSize 0 again",
             client.setVariable(VariableName("Counter")!, vendor, attributes: bsOnly, data: []).name)
        let query = client.queryVariableInfo(attributes: nvBsRt)
        if let info = query.info {
            show("QueryVariableInfo NV|BS|RT", "\(query.status.name) max=\(info.maximumVariableStorageSize) remaining=\(info.remainingVariableStorageSize) largest=\(info.maximumVariableSize)")
        }
        show("ExitBootServices", client.signal(.exitBootService).name)
        show("GetVariable BootOnly after ExitBootServices", client.getVariable(VariableName("BootOnly")!, vendor).status.name)
        show("SetVariable new BS-only variable at runtime",
             client.setVariable(VariableName("Late")!, vendor, attributes: bsOnly, data: [1]).name)
        if transcript {
            print("\nqtest transcript (\(text.transcript.count) lines):")
            for (sent, received) in text.transcript {
                let shortSent = sent.count > 100 ? String(sent.prefix(100)) + "…" : sent
                let shortReceived = received.count > 100 ? String(received.prefix(100)) + "…" : received
                print("> \(shortSent)\n< \(shortReceived)")
            }
        }
        try secureBootImage()
    }

    /// An encrypted image enrolled for Secure Boot by the image commands themselves — `varstore
    /// create`, `enroll --microsoft --test-keys --secure-boot` and `list`, each printed and run
    /// as a user would run it — then booted by the simulator.
    func secureBootImage() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("varstore-demo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("vars.img").path
        let keyFile = directory.appendingPathComponent("vars.key").path
        let secret = (0 ..< 64).map { _ in UInt8.random(in: 0 ... 255) }
        try AtomicFile.write(secret, to: URL(fileURLWithPath: keyFile))  // 0600, as a key file should be
        let keys = directory.appendingPathComponent("keys").path
        print("\nan encrypted LUKS2 image enrolled for Secure Boot, with the image commands (in \(directory.path)):")
        for arguments in [["create", path, "--key-file", keyFile],
                          ["enroll", path, "--key-file", keyFile, "--microsoft", "--test-keys", keys, "--secure-boot"],
                          ["list", path, "--key-file", keyFile]] {
            print("$ varstore " + arguments.map { $0.replacingOccurrences(of: directory.path + "/", with: "") }.joined(separator: " "))
            var command = try Varstore.parseAsRoot(arguments)
            try command.run()
        }
        let log = try LUKS2Image.openStore(path: path, volumeKey: try LUKS2Image.volumeKey(path: path, secret: secret))
        print("$ varstore qtest --image vars.img --key-file vars.key   (the simulator boots it)")
        let machine = QTestMachine(configuration: imageService(log).configuration, journal: HostJournal(.image(log)))
        let client = MMClient(bus: QTestTextBus(machine: machine).bus)
        guard client.initialize() else { throw ValidationError("the device did not answer its magic") }
        for (name, expected) in [("SetupMode", [UInt8(0)]), ("SecureBoot", [UInt8(1)])] {
            let result = client.getVariable(VariableName(name)!, .globalVariable)
            print("  \(name) = \(result.data.map { String($0) }.joined())")
            // The main job fails loudly if the enrolled image does not boot into Secure Boot.
            guard result.data == expected else { throw ValidationError("\(name) should read \(expected[0]) after enrollment") }
        }
    }
}
