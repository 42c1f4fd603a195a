import ArgumentParser
import Foundation
import VarStoreHost

struct QTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qtest",
        abstract: "Serve QEMU's qtest text protocol on stdin/stdout with a uefi-vars device at 0xFEF10000.",
        discussion: "Each input line is a qtest command (readb/w/l/q, writeb/w/l/q, read, write, memset, b64read, b64write, endianness); each gets one reply line. See spec/simulator.md.")

    @Option(help: "QEMU uefi-vars JSON store: loaded at start, rewritten before every change of a non-volatile variable is acknowledged.")
    var json: String?

    @OptionGroup var image: ImageOptions

    @Option(name: .customLong("minimum-generation"), help: "Refuse an image whose store generation is older (a rollback anchor).")
    var minimumGeneration: UInt64 = 0

    @Flag(name: .customLong("use-pio"), help: "Advertise PIO transfer mode in FLAGS (QEMU's use-pio=on).")
    var usePIO = false

    @Option(name: .customLong("ram-size"), help: "Simulated guest RAM in bytes, from address 0.")
    var ramSize: UInt64 = 256 << 20

    @OptionGroup var service: ServiceOptions

    func validate() throws {
        if json != nil && image.path != nil { throw ValidationError("--json and --image are alternatives") }
    }

    func run() throws {
        var configuration = service.configuration()
        let journal: HostJournal
        do {
            if let json {
                let url = URL(fileURLWithPath: json)
                // One writer per store, as for images: two would each rewrite the file from
                // their own view and lose the other's updates.
                try ImageLock.holdJSONStore(json)
                journal = HostJournal(.json(url))
                if FileManager.default.fileExists(atPath: url.path) {
                    journal.seed(try QEMUJSONStore.load(contentsOf: url))
                } else {
                    try QEMUJSONStore.save([], to: url)
                }
            } else if image.path != nil {
                let log = try image.openStore(minimumGeneration: minimumGeneration)
                // The image decides how much non-volatile storage there is.
                configuration.nonVolatileStorageSize = Defaults.capacity(log)
                journal = HostJournal(.image(log))
            } else {
                journal = HostJournal()
            }
        } catch let error as ValidationError {
            // A key file or store that cannot be used: one line, as for every image command.
            FileHandle.standardError.write("varstore qtest: \(error.message)\n".data(using: .utf8)!)
            throw ExitCode(1)
        } catch {
            FileHandle.standardError.write("varstore qtest: \(describe(error))\n".data(using: .utf8)!)
            throw ExitCode(1)
        }
        let machine = QTestMachine(configuration: configuration, journal: journal, ramSize: ramSize, usePIO: usePIO)
        while let line = readLine(strippingNewline: true) {
            let reply = machine.handle(line: line)
            FileHandle.standardOutput.write((reply + "\n").data(using: .utf8)!)
        }
    }
}
