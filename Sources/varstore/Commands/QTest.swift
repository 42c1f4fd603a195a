import ArgumentParser
import Foundation
import VarStoreCore
import VarStoreCrypto
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

    @Option(name: .customLong("witness"), help: "A witness (spec/rollback.md, `varstore-witness serve`): ask it for the image's minimum generation before opening, and report witnessed commits to it.")
    var witness: String?

    @Flag(name: .customLong("witness-every-change"), help: "With --witness: every non-volatile change waits for the witness, not only the Secure Boot variables.")
    var witnessEveryChange = false

    @Flag(name: .customLong("use-pio"), help: "Advertise PIO transfer mode in FLAGS (QEMU's use-pio=on).")
    var usePIO = false

    @Option(name: .customLong("ram-size"), help: "Simulated guest RAM in bytes, from address 0.")
    var ramSize: UInt64 = 256 << 20

    @OptionGroup var service: ServiceOptions

    func validate() throws {
        if json != nil && image.path != nil { throw ValidationError("--json and --image are alternatives") }
        if witness != nil && image.path == nil { throw ValidationError("--witness needs --image") }
        if let witness {
            guard let url = URL(string: witness), url.host != nil,
                  ["http", "https"].contains(url.scheme?.lowercased() ?? "") else {
                throw ValidationError("--witness needs an http://HOST:PORT or https:// URL")
            }
        }
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
            } else if let path = image.path, let witness, let url = URL(string: witness) {
                journal = try witnessedJournal(path: path, url: url, configuration: &configuration)
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
        // Shutdown: lazy commits not yet witnessed are reported now.
        if case .witnessedImage(let witnessed) = journal.backend, witnessed.isPending, !witnessed.reportPending() {
            FileHandle.standardError.write("varstore qtest: at shutdown the witness did not record generation \(witnessed.generation)\n".data(using: .utf8)!)
        }
    }

    /// spec/rollback.md, "Open": the witness's anchor first (unreachable → refused), then the
    /// image with it as the minimum generation; at the anchor's generation the digest must be
    /// the witnessed one; a newer state is reported at once (refused → a fork, not served).
    func witnessedJournal(path: String, url: URL, configuration: inout ServiceConfiguration) throws -> HostJournal {
        var flash = try FileFlash(path: path)
        let uuid = String(decoding: try LUKS2Header.read(from: &flash, crypto: Libcrypto()).uuid, as: UTF8.self)
        let client = WitnessClient(url)
        let anchor: (generation: UInt64, digest: [UInt8])?
        do {
            anchor = try client.minimum(uuid: uuid)
        } catch {
            throw ValidationError("witness unreachable: \(error)")
        }
        let log = try image.openStore(minimumGeneration: max(minimumGeneration, anchor?.generation ?? 0))
        if let anchor, log.generation == anchor.generation, log.digest != anchor.digest {
            throw ValidationError("forked: the image is at the witnessed generation \(anchor.generation) in another state")
        }
        configuration.nonVolatileStorageSize = Defaults.capacity(log)
        let witnessed = WitnessedLog(log: log, witnessKey: EncryptedImage.witnessKey(of: log), anchor: anchor,
                                     policy: WitnessPolicy(everyChange: witnessEveryChange),
                                     witness: ClosureWitness { report in
                                         if client.post(report) { return true }
                                         FileHandle.standardError.write("varstore qtest: witness: \(client.lastBody)\n".data(using: .utf8)!)
                                         return false
                                     })
        if witnessed.isPending, !witnessed.reportPending(), let status = client.lastStatus {
            // 409 is the witness's "another state at this generation" (spec/rollback.md); any
            // other refusal is not evidence of a fork.
            if status == 409 {
                throw ValidationError("forked: the witness refused the image's state at generation \(log.generation) (HTTP 409: \(client.lastBody))")
            }
            throw ValidationError("the witness refused the image's state at generation \(log.generation) (HTTP \(status): \(client.lastBody))")
        }
        return HostJournal(.witnessedImage(witnessed))
    }
}
