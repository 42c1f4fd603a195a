import ArgumentParser
import Foundation
import VarStoreCore
import VarStoreCrypto
import VarStoreHost

@main
struct Varstore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "varstore",
        abstract: "UEFI variable service for confidential VMs: simulator, tools and benchmarks.",
        subcommands: [QTest.self, Demo.self, Bench.self])
}

/// Options shared by commands that build a service.
struct ServiceOptions: ParsableArguments {
    @Option(name: .customLong("size"), help: "Non-volatile storage in bytes (QEMU's uefi-vars 'size' property).")
    var storageSize: UInt64 = 0x40000

    func configuration() -> ServiceConfiguration {
        var configuration = ServiceConfiguration()
        configuration.nonVolatileStorageSize = storageSize
        return configuration
    }
}

struct QTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qtest",
        abstract: "Serve QEMU's qtest text protocol on stdin/stdout with a uefi-vars device at 0xFEF10000.",
        discussion: "Each input line is a qtest command (readb/w/l/q, writeb/w/l/q, read, write, memset, b64read, b64write, endianness); each gets one reply line. See spec/simulator.md.")

    @Option(help: "QEMU uefi-vars JSON store: loaded at start, rewritten after every change of a non-volatile variable.")
    var json: String?

    @Flag(name: .customLong("use-pio"), help: "Advertise PIO transfer mode in FLAGS (QEMU's use-pio=on).")
    var usePIO = false

    @Option(name: .customLong("ram-size"), help: "Simulated guest RAM in bytes, from address 0.")
    var ramSize: UInt64 = 256 << 20

    @OptionGroup var service: ServiceOptions

    func run() throws {
        let variableService = VariableService(configuration: service.configuration())
        var store: URL?
        if let json {
            let url = URL(fileURLWithPath: json)
            store = url
            if FileManager.default.fileExists(atPath: url.path) {
                do {
                    variableService.load(try QEMUJSONStore.load(contentsOf: url))
                } catch {
                    FileHandle.standardError.write("varstore qtest: \(error)\n".data(using: .utf8)!)
                    throw ExitCode(1)
                }
            } else {
                try QEMUJSONStore.save([], to: url)
            }
        }
        let machine = QTestMachine(service: variableService, ramSize: ramSize, usePIO: usePIO)
        var saved = variableService.nonVolatileChangeCount
        while let line = readLine(strippingNewline: true) {
            let reply = machine.handle(line: line)
            if let store, variableService.nonVolatileChangeCount != saved {
                do {
                    try QEMUJSONStore.save(variableService.nonVolatileVariables, to: store)
                    saved = variableService.nonVolatileChangeCount
                } catch {
                    FileHandle.standardError.write("varstore qtest: \(error)\n".data(using: .utf8)!)
                }
            }
            FileHandle.standardOutput.write((reply + "\n").data(using: .utf8)!)
        }
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drive the simulator through the qtest text protocol: set, read, enumerate, delete and query variables.")

    @Flag(help: "Also print every qtest line exchanged.")
    var transcript = false

    func run() throws {
        let machine = QTestMachine(service: VariableService())
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
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure request costs through the MMIO transport (not a test: figures depend on the machine).")

    @Flag(help: "Print one JSON object with stable keys.")
    var json = false

    @Option(help: "Calls per measured operation.")
    var iterations = 20_000

    func run() throws {
        let report = Benchmark(iterations: iterations).run()
        print(json ? Benchmark.json(report) : Benchmark.table(report))
    }
}
