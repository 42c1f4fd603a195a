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
        subcommands: [QTest.self, Create.self, Inspect.self, Enroll.self, List.self, Get.self, SetCommand.self, Delete.self, Import.self, Export.self,
                      Sign.self, Verify.self, Keyslot.self, Rekey.self, Demo.self, Bench.self])
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
                configuration.nonVolatileStorageSize = VariableLog<MemoryFlash, Libcrypto>.capacity(segmentBytes: log.device.size)
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

/// The key for an encrypted image, as a command is given it.
struct KeyOptions: ParsableArguments {
    @Option(name: .customLong("key-file"), help: "A file whose bytes are a keyslot secret of the image.")
    var keyFile: String?

    @Option(name: .customLong("passphrase-file"), help: "A file holding a keyslot passphrase (a trailing newline is dropped).")
    var passphraseFile: String?

    @Option(name: .customLong("volume-key-file"), help: "A file holding the raw 64-byte volume key (what an SVSM receives after attestation).")
    var volumeKeyFile: String?

    func access(_ path: String?) -> ImageAccess {
        ImageAccess(path: path, keyFile: keyFile, passphraseFile: passphraseFile, volumeKeyFile: volumeKeyFile)
    }
}

/// The image a command works on, and its key.
struct ImageArguments: ParsableArguments {
    @Argument(help: ArgumentHelp("The image file.", valueName: "image"))
    var path: String

    @OptionGroup var key: KeyOptions

    var access: ImageAccess { key.access(path) }
}

/// How `qtest` finds an encrypted image and its key.
struct ImageOptions: ParsableArguments {
    @Option(name: .customLong("image"), help: "An encrypted LUKS2 variable image (see `varstore create`).")
    var path: String?

    @OptionGroup var key: KeyOptions

    func openStore(minimumGeneration: UInt64 = 0) throws -> HostJournal.ImageLog {
        try key.access(path).openStore(minimumGeneration: minimumGeneration)
    }
}

/// Runs a command's work; any failure other than a usage error becomes one line on stderr
/// naming the problem, and exit status 1.
func reporting(_ command: String, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ValidationError {
        FileHandle.standardError.write("varstore \(command): \(error.message)\n".data(using: .utf8)!)
        throw ExitCode(1)
    } catch {
        FileHandle.standardError.write("varstore \(command): \(describe(error))\n".data(using: .utf8)!)
        throw ExitCode(1)
    }
}

/// `--json`: one JSON object on stdout instead of a line of text.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print the result as one JSON object.")
    var json = false

    /// Prints the result: `text` for people, or `fields` as a JSON object (values already JSON).
    func done(_ text: String, _ fields: [(String, String)]) {
        if json {
            print("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
        } else if !text.isEmpty {
            print(text)
        }
    }
}

/// A progress line for a slow step, on a terminal only (scripts see one line per error).
func progress(_ command: String, _ step: String) {
    if isatty(2) == 1 { FileHandle.standardError.write("varstore \(command): \(step)…\n".data(using: .utf8)!) }
}

/// A JSON string literal.
func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// An image path and whichever key was given for it.
struct ImageAccess {
    var path: String?
    var keyFile: String?
    var passphraseFile: String?
    var volumeKeyFile: String?
    /// Whether to ask on a terminal when no key was given (`inspect` does not: its header
    /// facts need none).
    var prompt = true

    /// The keyslot secret a keyslot command (`keyslot add|remove`, `rekey`) needs: a volume
    /// key opens no keyslot, so it is refused by name rather than ignored.
    func keyslotSecret(_ why: String) throws -> LUKS2Image.Secret {
        guard volumeKeyFile == nil else {
            throw ValidationError("\(why) needs a keyslot secret (--key-file or --passphrase-file); a volume key opens no keyslot")
        }
        guard let secret = try secret() else { throw ValidationError("\(why) needs --key-file or --passphrase-file") }
        return secret
    }

    /// The keyslot secret given, if any. A passphrase typed for a new keyslot (`confirming`)
    /// is asked twice and must match.
    func secret(confirming: Bool = false) throws -> LUKS2Image.Secret? {
        if let keyFile { return try readSecret(keyFile) }
        if let passphraseFile { return try readSecret(passphraseFile, passphrase: true) }
        // On a terminal, ask (the passphrase is not echoed).
        if prompt, volumeKeyFile == nil, isatty(0) == 1, let path, let entered = getpass("Passphrase for \(path): ") {
            let passphrase = Array(String(cString: entered).utf8)
            if let weakness = LUKS2Image.Secret.passphrase(passphrase).weakness { throw ValidationError(weakness) }
            if confirming {
                guard let again = getpass("Again: "), Array(String(cString: again).utf8) == passphrase else {
                    throw ValidationError("the passphrases do not match; nothing was created")
                }
            }
            return .passphrase(passphrase)
        }
        return nil
    }

    func volumeKey() throws -> [UInt8]? {
        guard let path else { throw ValidationError("no --image given") }
        if let volumeKeyFile { return [UInt8](try Data(contentsOf: URL(fileURLWithPath: volumeKeyFile))) }
        guard let secret = try secret() else { return nil }
        switch secret {
        case .keyFile(let bytes), .passphrase(let bytes): return try LUKS2Image.volumeKey(path: path, secret: bytes)
        }
    }

    /// Opens the store, with `volumeKey` if one was already derived (so a terminal asks once).
    func openStore(minimumGeneration: UInt64 = 0, volumeKey known: [UInt8]? = nil) throws -> HostJournal.ImageLog {
        guard let path else { throw ValidationError("no --image given") }
        guard let key = try known ?? volumeKey() else {
            throw ValidationError("the image needs --key-file, --passphrase-file or --volume-key-file")
        }
        return try LUKS2Image.openStore(path: path, volumeKey: key, minimumGeneration: minimumGeneration)
    }
}

/// One line naming the problem.
func describe(_ error: Error) -> String {
    if let storage = error as? StorageError { return storage.explanation }
    if let flash = error as? FlashError { return "image I/O failed (\(flash))" }
    if let failure = error as? LUKS2Image.Failure { return failure.description }
    let nsError = error as NSError
    if nsError.domain == NSCocoaErrorDomain, let path = nsError.userInfo[NSFilePathErrorKey] as? String {
        return "\(path): \(nsError.localizedDescription)"
    }
    return "\(error)"
}

extension StorageError {
    var explanation: String {
        switch self {
        case .notLUKS2: return "not a LUKS2 image (no intact header)"
        case .unsupportedHeader(let what): return "unsupported LUKS2 header: \(what)"
        case .malformedMetadata(let what): return "malformed LUKS2 metadata: \(what)"
        case .wrongKey: return "wrong key: the volume key does not match the LUKS2 digest"
        case .notFormatted: return "no variable store in the image authenticates under this key (never formatted, or its superblocks were destroyed)"
        case .tampered(let what): return "the image was tampered with: \(what)"
        case .rolledBack(let generation, let minimum): return "the image is older than allowed: generation \(generation) < minimum \(minimum)"
        case .full: return "the variable store is full"
        case .flash(let error): return "image I/O failed (\(error))"
        case .noRandomness: return "no randomness available"
        case .invalidGeometry(let what): return "invalid geometry: \(what)"
        case .unstorable(let problem): return "refused before writing: \(Provisioning.describe(problem))"
        }
    }
}

struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create an encrypted LUKS2 variable image with an empty store.",
        discussion: "The image is a standard LUKS2 device (aes-xts-plain64, 512-bit volume key, PBKDF2 keyslot), so cryptsetup luksDump and cryptsetup open work on it. See spec/storage.md.")

    @Argument(help: "The image file to create (must not exist).")
    var path: String

    @Option(help: "Image size in bytes (K, M and G suffixes allowed); 512K holds one keyslot (--keyslots 1), 1M two, 2M three.")
    var size: String = "2M"

    @OptionGroup var key: KeyOptions

    @Option(name: .customLong("recovery-passphrase-file"), help: "Also add an Argon2id keyslot for administrators.")
    var recoveryPassphraseFile: String?

    @Option(help: "Room for this many keyslots in all (default: those created plus one spare, so `keyslot add` needs no new image). Each takes 252 KiB of the image.")
    var keyslots: Int?

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() throws {
        guard let bytes = parseSize(size) else { throw ValidationError("bad --size '\(size)'") }
        guard key.volumeKeyFile == nil else { throw ValidationError("create makes its own volume key; give --key-file or --passphrase-file") }
        try reporting("create") {
            guard !FileManager.default.fileExists(atPath: path) else { throw LUKS2Image.Failure("\(path) already exists; not overwriting it") }
            guard let secret = try key.access(path).secret(confirming: true) else {
                throw ValidationError("create needs --key-file or --passphrase-file")
            }
            let recovery = try recoveryPassphraseFile.map { try readSecret($0, passphrase: true).bytes }
            let made = recovery == nil ? 1 : 2
            let room = keyslots ?? made + 1
            guard room >= made, room <= LUKS2Image.maximumKeyslots else {
                throw ValidationError("--keyslots must be \(made) … \(LUKS2Image.maximumKeyslots)")
            }
            progress("create", "formatting LUKS2 and deriving the keyslot key" + (recovery == nil ? "" : "s (Argon2id takes a while)"))
            let volumeKey = try LUKS2Image.create(path: path, size: bytes, secret: secret, recoveryPassphrase: recovery,
                                                  keyslotRoom: room)
            let log = try LUKS2Image.openStore(path: path, volumeKey: volumeKey)
            let capacity = VariableLog<MemoryFlash, Libcrypto>.capacity(segmentBytes: log.device.size)
            if json {
                print("{\"image\": \(jsonString(path)), \"size\": \(bytes), \"keyslot_room\": \(room), \"segment_bytes\": \(log.device.size), \"capacity_bytes\": \(capacity), \"generation\": \(log.generation)}")
            } else {
                print("created \(path): \(bytes) bytes, room for \(room) keyslots, data segment \(log.device.size) bytes, room for \(capacity) bytes of non-volatile variables")
            }
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show an image's LUKS2 header and, with a key, its variable store.")

    @OptionGroup var image: ImageArguments


    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() throws {
        try reporting("inspect") {
            var flash = try FileFlash(path: image.path)
            let header = try LUKS2Header.read(from: &flash, crypto: Libcrypto())
            let keyslots = (try? LUKS2Image.keyslots(path: image.path)) ?? []
            var facts: [(String, String)] = [
                ("uuid", String(decoding: header.uuid, as: UTF8.self)),
                ("header_bytes", "\(header.headerSize)"),
                ("segment_offset", "\(header.segmentOffset)"),
                ("segment_bytes", "\(header.segmentSize)"),
                ("cipher", "aes-xts-plain64"),
                ("sector_bytes", "\(header.sectorSize)"),
                ("keyslots", keyslots.map { "\($0.slot):\($0.kdf)" }.joined(separator: ",")),
            ]
            var options = image.access
            options.prompt = false
            if let volumeKey = try options.volumeKey() {
                let log = try options.openStore(volumeKey: volumeKey)
                let capacity = VariableLog<MemoryFlash, Libcrypto>.capacity(segmentBytes: log.device.size)
                let used = log.live.all.reduce(UInt64(0)) { $0 + 60 + UInt64($1.name.wireSize) + UInt64($1.data.count) }
                facts += [
                    ("generation", "\(log.generation)"),
                    ("state_digest", Hex.string(log.digest)),
                    ("variables", "\(log.live.count)"),
                    ("used_bytes", "\(used)"),
                    ("free_bytes", "\(capacity > used ? capacity - used : 0)"),
                ]
            }
            if json {
                let numeric: Set<String> = ["header_bytes", "segment_offset", "segment_bytes", "sector_bytes", "generation",
                                            "variables", "used_bytes", "free_bytes"]
                let slots = "[" + keyslots.map { "{\"slot\": \($0.slot), \"kdf\": \(jsonString($0.kdf))}" }.joined(separator: ", ") + "]"
                print("{" + facts.map { name, value in
                    "\"\(name)\": " + (name == "keyslots" ? slots : numeric.contains(name) ? value : jsonString(value))
                }.joined(separator: ", ") + "}")
            } else {
                for (name, value) in facts { print(name.padding(toLength: 16, withPad: " ", startingAt: 0) + value) }
            }
        }
    }
}

struct Sign: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make an EFI_VARIABLE_AUTHENTICATION_2 update (set, append or delete) from a certificate and key.",
        discussion: "Byte-compatible with efitools' sign-efi-sig-list for the same inputs and timestamp: PKCS#7 SignedData without the ContentInfo wrapper, SHA-256, no signed attributes. An empty input makes a signed delete.")

    @Argument(help: "The variable: PK, KEK, db, dbx, dbt, dbr, or any name with --guid.")
    var variable: String

    @Argument(help: "The payload (usually an EFI_SIGNATURE_LIST file; empty for a delete).")
    var input: String

    @Argument(help: "Where to write the signed update.")
    var output: String

    @Option(help: "Signing certificate (PEM).")
    var cert: String

    @Option(help: "Its private key (PEM, unencrypted).")
    var key: String

    @Option(help: "Vendor GUID (default: global for PK/KEK, image security database for db/dbx/dbt/dbr).")
    var guid: String?

    @Option(help: "Timestamp \"YYYY-MM-DD HH:MM:SS\" (UTC); default now, or all zero with --append.")
    var time: String?

    @Flag(help: "An APPEND_WRITE update (attributes 0x67 instead of 0x27).")
    var append = false
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("sign") {
            let imageSecurity: Set<String> = ["db", "dbx", "dbt", "dbr"]
            let vendor: EFIGUID
            if let guid {
                guard let parsed = EFIGUID(text: guid) else { throw ValidationError("--guid '\(guid)' is not a GUID") }
                vendor = parsed
            } else if variable == "PK" || variable == "KEK" {
                vendor = .globalVariable
            } else if imageSecurity.contains(variable) {
                vendor = .imageSecurityDatabase
            } else {
                throw ValidationError("\(variable) needs --guid")
            }
            guard let name = VariableName(variable), !name.isEmpty else { throw ValidationError("'\(variable)' is not a variable name") }
            let timestamp: EFITime
            if let time {
                guard let parsed = parseTime(time) else { throw ValidationError("--time '\(time)' is not YYYY-MM-DD HH:MM:SS") }
                timestamp = parsed
            } else if append {
                timestamp = .zero
            } else {
                let now = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: Date())
                timestamp = EFITime(year: UInt16(now.year!), month: UInt8(now.month!), day: UInt8(now.day!),
                                    hour: UInt8(now.hour!), minute: UInt8(now.minute!), second: UInt8(now.second!))
            }
            let identity = try SigningIdentity.load(certificatePEM: [UInt8](try Data(contentsOf: URL(fileURLWithPath: cert))),
                                                    keyPEM: [UInt8](try Data(contentsOf: URL(fileURLWithPath: key))))
            let payload = [UInt8](try Data(contentsOf: URL(fileURLWithPath: input)))
            let update = try identity.authenticatedUpdate(for: VariableKey(guid: vendor, name: name),
                                                          attributes: append ? 0x67 : 0x27, time: timestamp, payload: payload)
            try Data(update).write(to: URL(fileURLWithPath: output))
            format.done("", [("output", jsonString(output)), ("bytes", "\(update.count)")])
        }
    }
}

// MARK: Variables in an image

/// A variable service over an opened image: what the guest would see before EndOfDxe.
typealias ImageService = VariableService<Libcrypto, HostJournal.ImageLog>

func imageService(_ log: HostJournal.ImageLog) -> ImageService {
    VariableService(configuration: imageConfiguration(log), crypto: Libcrypto(), journal: log, variables: log.live.all)
}

/// Runs one request through a variable service over `log` whose changes — the request's and
/// any the service makes for itself when it starts (CustomMode, VendorKeysNv on a new image)
/// — reach the image as one commit, and only if the request succeeds: a refused request
/// leaves the image byte for byte as it was.
func withStagedService(_ log: HostJournal.ImageLog,
                       _ request: (VariableService<Libcrypto, StagedJournal>) throws -> Void) throws {
    let staged = StagedJournal(log)
    let service = VariableService(configuration: imageConfiguration(log), crypto: Libcrypto(), journal: staged,
                                  variables: log.live.all)
    try request(service)
    try staged.finish()
}

/// The service configuration for an image: its non-volatile quota is what the store can hold.
func imageConfiguration(_ log: HostJournal.ImageLog) -> ServiceConfiguration {
    LUKS2Image.configuration(for: log)
}

/// The name and vendor GUID a command names a variable by.
struct VariableOptions: ParsableArguments {
    @Argument(help: "The variable's name.")
    var name: String

    @Option(help: "Vendor GUID (default: EFI_GLOBAL_VARIABLE; db/dbx/dbt/dbr: the image security database).")
    var guid: String?

    func key() throws -> VariableKey {
        guard let variableName = VariableName(name), !variableName.isEmpty else { throw ValidationError("'\(name)' is not a variable name") }
        if let guid {
            guard let parsed = EFIGUID(text: guid) else { throw ValidationError("--guid '\(guid)' is not a GUID") }
            return VariableKey(guid: parsed, name: variableName)
        }
        let imageSecurity: Set<String> = ["db", "dbx", "dbt", "dbr"]
        return VariableKey(guid: imageSecurity.contains(name) ? .imageSecurityDatabase : .globalVariable, name: variableName)
    }
}

/// Attributes as letters, e.g. NV|BS|RT|AT.
func attributeText(_ attributes: VariableAttributes) -> String {
    let names: [(VariableAttributes, String)] = [(.nonVolatile, "NV"), (.bootServiceAccess, "BS"), (.runtimeAccess, "RT"),
                                                 (.hardwareErrorRecord, "HR"), (.timeBasedAuthenticatedWriteAccess, "AT")]
    return names.filter { attributes.contains($0.0) }.map(\.1).joined(separator: "|")
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the non-volatile variables in an image.")

    @OptionGroup var image: ImageArguments
    @Flag(help: "Print QEMU's uefi-vars JSON v2 instead of a table.")
    var json = false

    func run() throws {
        try reporting("list") {
            let log = try image.access.openStore()
            if json {
                print(QEMUJSONStore.render(log.live.all))
                return
            }
            for variable in log.live.all {
                var line = variable.guid.text + "  " + variable.name.text.padding(toLength: 24, withPad: " ", startingAt: 0)
                line += " " + attributeText(variable.attributes).padding(toLength: 12, withPad: " ", startingAt: 0)
                line += String(format: " %6d bytes", variable.data.count)
                if let time = variable.timestamp, variable.attributes.contains(.timeBasedAuthenticatedWriteAccess) {
                    line += String(format: "  %04d-%02d-%02d %02d:%02d:%02d", time.year, time.month, time.day, time.hour, time.minute, time.second)
                }
                print(line)
            }
        }
    }
}

struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a variable's data as hex, or write it to a file.")

    @OptionGroup var image: ImageArguments
    @OptionGroup var variable: VariableOptions
    @Option(help: "Write the raw data here instead of printing hex.")
    var output: String?
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("get") {
            let log = try image.access.openStore()
            let wanted = try variable.key()
            guard let found = log.live.variable(for: wanted) else {
                throw LUKS2Image.Failure("no variable \(wanted.name.text) with GUID \(wanted.guid.text)")
            }
            if let output { try Data(found.data).write(to: URL(fileURLWithPath: output)) }
            var fields = [("name", jsonString(found.name.text)), ("guid", jsonString(found.guid.text)),
                          ("attr", "\(found.attributes.rawValue)"), ("data", jsonString(Hex.string(found.data)))]
            if found.attributes.contains(.timeBasedAuthenticatedWriteAccess) {
                fields.append(("time", jsonString(Hex.string((found.timestamp ?? .zero).bytes))))
            }
            format.done(output == nil ? Hex.string(found.data) : "", fields)
        }
    }
}

struct SetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Set a variable through the variable service, with every rule the firmware would meet.",
        discussion: "Authenticated variables (PK, KEK, db, dbx, …) need a signed update as data (see `varstore sign`) unless the image is in setup mode.")

    @OptionGroup var image: ImageArguments
    @OptionGroup var variable: VariableOptions
    @Option(help: "Attributes (default 0x7, NV|BS|RT; 0x27 for a signed update, 0x67 to append one).")
    var attributes: String = "0x7"
    @Option(name: .customLong("data-file"), help: "The data (or signed update) from a file.")
    var dataFile: String?
    @Option(help: "The data as hex.")
    var hex: String?
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("set") {
            guard let value = UInt32(attributes.hasPrefix("0x") ? String(attributes.dropFirst(2)) : attributes,
                                     radix: attributes.hasPrefix("0x") ? 16 : 10) else {
                throw ValidationError("--attributes '\(attributes)' is not a number")
            }
            let data: [UInt8]
            if let dataFile {
                data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dataFile)))
            } else if let hex {
                guard let bytes = QEMUJSONStore.hexBytes(hex) else { throw ValidationError("--hex is not hex") }
                data = bytes
            } else {
                throw ValidationError("give --data-file or --hex")
            }
            let log = try image.access.openStore()
            let key = try variable.key()
            try withStagedService(log) { service in
                do {
                    try service.setVariable(key, attributes: value, data: data)
                } catch let status as EFIStatus {
                    throw LUKS2Image.Failure("SetVariable returned \(status.name)")
                }
            }
            format.done("", [("status", jsonString("EFI_SUCCESS")), ("generation", "\(log.generation)")])
        }
    }
}

struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete a variable through the variable service (authenticated ones need a signed empty update: use set).")

    @OptionGroup var image: ImageArguments
    @OptionGroup var variable: VariableOptions
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("delete") {
            let log = try image.access.openStore()
            let key = try variable.key()
            try withStagedService(log) { service in
                do {
                    try service.setVariable(key, attributes: 0, data: [])
                } catch let status as EFIStatus {
                    throw LUKS2Image.Failure("SetVariable returned \(status.name)")
                }
            }
            format.done("", [("status", jsonString("EFI_SUCCESS")), ("generation", "\(log.generation)")])
        }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an image's non-volatile variables as QEMU uefi-vars JSON v2, or as an OVMF_VARS.fd.",
        discussion: "With --template the output is an edk2 OVMF_VARS.fd in the template's layout (its firmware-volume header and size; the FTW write queue is erased so the firmware replays nothing over the store); otherwise QEMU's JSON. The file is replaced atomically.")

    @OptionGroup var image: ImageArguments
    @Argument(help: "The file to write.")
    var output: String
    @Option(help: "Write an OVMF_VARS.fd in this template's layout (e.g. /usr/share/OVMF/OVMF_VARS_4M.fd).")
    var template: String?
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("export") {
            let log = try image.access.openStore()
            let kind: String
            if let template {
                let bytes = try OVMFVarsFile.render(log.live.all, template: [UInt8](try Data(contentsOf: URL(fileURLWithPath: template))))
                try AtomicFile.write(bytes, to: URL(fileURLWithPath: output))
                kind = "ovmf-vars"
            } else {
                try QEMUJSONStore.save(log.live.all, to: URL(fileURLWithPath: output))
                kind = "json"
            }
            format.done("exported \(log.live.count) variables (generation \(log.generation)) to \(output)",
                        [("exported", "\(log.live.count)"), ("format", jsonString(kind)), ("file", jsonString(output)),
                         ("generation", "\(log.generation)")])
        }
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Provision an image from QEMU uefi-vars JSON v2 or an OVMF_VARS.fd, losslessly (times and signer pins included).",
        discussion: "The format is recognised from the content: JSON (also what virt-fw-vars --output-json writes), or an edk2 firmware volume. A provisioning path, not the guest's: variables are written as they are (no signature checks), as one commit — all of them or, if anything is wrong or they do not fit, none. Refused before anything is written: a truncated file, a variable no image can hold (empty name, a signer pin over 255 bytes), attributes or a size the variable service would never store (unless --raw), and more than the image's capacity. Existing variables with the same name and GUID are replaced.")

    @OptionGroup var image: ImageArguments
    @Argument(help: "The JSON or OVMF_VARS.fd file to read.")
    var input: String
    @Flag(help: "Also write variables whose attributes or size the variable service would never store (e.g. 0x1, no BOOTSERVICE_ACCESS). The image can still be read; the firmware may not use them.")
    var raw = false
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("import") {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: input)))
            let variables: [Variable]
            let kind: String
            if bytes.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) == UInt8(ascii: "{") {
                variables = try QEMUJSONStore.load(contentsOf: URL(fileURLWithPath: input))
                kind = "json"
            } else {
                do {
                    variables = try OVMFVarsFile.parse(bytes)
                } catch {
                    throw LUKS2Image.Failure("\(input): neither QEMU JSON nor an edk2 firmware volume (\(describe(error)))")
                }
                kind = "ovmf-vars"
            }
            let log = try image.access.openStore()
            do {
                try LUKS2Image.provision(variables, into: log, raw: raw)
            } catch let refusal as Provisioning.Refusal {
                throw LUKS2Image.Failure("\(input): \(refusal.description); nothing was written")
            }
            format.done("imported \(variables.count) variables (generation \(log.generation))",
                        [("imported", "\(variables.count)"), ("format", jsonString(kind)), ("generation", "\(log.generation)")])
        }
    }
}

struct Enroll: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Enroll Secure Boot keys (PK, KEK, db, dbx) into an image through the variable service.",
        discussion: "Each FILE is a certificate (PEM or DER), an EFI_SIGNATURE_LIST (.esl) or a signed update (.auth). In setup mode lists are written with unsigned descriptors, KEK, db and dbx first and PK last; once PK exists only signed updates are accepted, exactly as for the guest. Everything is checked first and written as one commit: if any entry is refused, or --secure-boot would not hold, nothing is written. --test-keys never overwrites key files; private keys are created with mode 0600.")

    @OptionGroup var image: ImageArguments
    @Option(help: "PK: a certificate, .esl or .auth.")
    var pk: String?
    @Option(help: "KEK entries (repeatable).")
    var kek: [String] = []
    @Option(help: "db entries (repeatable).")
    var db: [String] = []
    @Option(help: "dbx entries (repeatable).")
    var dbx: [String] = []
    @Flag(help: "Add Microsoft's keys: both KEK CAs, the Windows and UEFI CAs 2011 and 2023 in db, the current dbx.")
    var microsoft = false
    @Option(name: .customLong("test-keys"), help: "Generate PK, KEK and db test keys, write them (certificate and private key) into this directory and enroll them.")
    var testKeys: String?
    @Flag(name: .customLong("secure-boot"), help: "Refuse unless the image ends with a PK (Secure Boot enforced at the next boot).")
    var secureBoot = false
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("enroll") {
            // Everything is read and checked before the image is touched, and the image gets
            // every change or none (one commit at the end).
            var enrollment = Enrollment()
            if testKeys != nil && pk != nil {
                throw ValidationError("--pk and --test-keys both give PK; choose one")
            }
            let keyDirectory = testKeys.map { URL(fileURLWithPath: $0) }
            if let keyDirectory { try Enrollment.checkTestKeysAbsent(in: keyDirectory) }
            let generated = keyDirectory == nil ? [] : try enrollment.addTestKeys()
            if microsoft { try enrollment.addMicrosoft() }
            if let pk { try enrollment.add(file: pk, to: SecureBootVariable.pk) }
            for file in kek { try enrollment.add(file: file, to: SecureBootVariable.kek) }
            for file in db { try enrollment.add(file: file, to: SecureBootVariable.db) }
            for file in dbx { try enrollment.add(file: file, to: SecureBootVariable.dbx) }
            guard let volumeKey = try image.access.volumeKey() else {
                throw ValidationError("the image needs --key-file, --passphrase-file or --volume-key-file")
            }
            let log = try image.access.openStore(volumeKey: volumeKey)
            let staged = StagedJournal(log)
            let service = VariableService(configuration: imageConfiguration(log), crypto: Libcrypto(), journal: staged,
                                          variables: log.live.all)
            let getsPK = enrollment.pk != nil || enrollment.signed.contains { $0.key == SecureBootVariable.pk }
            if secureBoot && service.secureBootMode.isSetupMode && !getsPK {
                throw LUKS2Image.Failure("--secure-boot: nothing gives the image a PK (add --pk or --test-keys); nothing was written")
            }
            let now = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: Date())
            let time = EFITime(year: UInt16(now.year!), month: UInt8(now.month!), day: UInt8(now.day!),
                               hour: UInt8(now.hour!), minute: UInt8(now.minute!), second: UInt8(now.second!))
            do {
                try enrollment.apply(to: service, time: time)
            } catch {
                throw LUKS2Image.Failure("\(describe(error)); nothing was written")
            }
            if secureBoot && service.secureBootMode.isSetupMode {
                throw LUKS2Image.Failure("--secure-boot: the image would still be in setup mode; nothing was written")
            }
            // The key files first (never overwriting), so an image never holds keys whose
            // private halves were lost; they go again if the image cannot be written.
            let written = try keyDirectory.map { try Enrollment.writeTestKeys(generated, to: $0) } ?? []
            do {
                try staged.finish()
            } catch {
                // A write can fail after its data landed; the keys go only if the image, read
                // again, certainly does not hold the enrollment.
                let before = log.live.all
                if let reread = try? LUKS2Image.openStore(path: image.path, volumeKey: volumeKey), reread.live.all == before {
                    for url in written { try? FileManager.default.removeItem(at: url) }
                    throw error
                }
                throw LUKS2Image.Failure("\(describe(error)); the image may hold the new keys, so they were kept in \(testKeys ?? "")")
            }
            let mode = service.secureBootMode.isSetupMode ? "setup mode" : "user mode (Secure Boot on at the next boot)"
            format.done("enrolled into \(image.path): \(mode)", [("secure_boot", service.secureBootMode.isSetupMode ? "false" : "true"),
                                                           ("generation", "\(log.generation)")])
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a signed update against an image's current keys without applying it.")

    @OptionGroup var image: ImageArguments
    @OptionGroup var variable: VariableOptions
    @Option(name: .customLong("update"), help: "The signed update (.auth).")
    var update: String
    @Flag(help: "Check it as an APPEND_WRITE update (attributes 0x67).")
    var append = false
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("verify") {
            let log = try image.access.openStore()
            // The same service and rules, over a copy that is thrown away.
            let scratch = VariableService(configuration: imageService(log).configuration, crypto: Libcrypto(),
                                          journal: MemoryJournal(), variables: log.live.all)
            let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: update)))
            do {
                try scratch.setVariable(try variable.key(), attributes: append ? 0x67 : 0x27, data: data)
                format.done("valid: the update would apply", [("valid", "true")])
            } catch let status as EFIStatus {
                throw LUKS2Image.Failure("the update would be refused: \(status.name)")
            }
        }
    }
}

struct Rekey: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move an image to a new random volume key, keeping every variable and keyslot; crash-safe.",
        discussion: """
            A complete new image is written beside the old one and renamed over it, so an interruption leaves the old image intact. \
            Each keyslot is carried over with its number and key derivation, so each needs its secret: the one given with \
            --key-file/--passphrase-file (optionally replaced by --new-key-file) and the others with --other-key-file or \
            --other-passphrase-file; a keyslot left without one is refused unless --drop-other-keyslots. The new image keeps \
            the old one's size, keyslot room, mode and owner, and its store generation continues past the old one's. \
            An SVSM given the volume key needs the new one.
            """)

    @OptionGroup var image: ImageArguments
    @Option(name: .customLong("new-key-file"), help: "Protect the new image with this key file instead of the current secret.")
    var newKeyFile: String?
    @Option(name: .customLong("other-key-file"), help: "The secret of another keyslot to carry over (repeatable).")
    var otherKeyFiles: [String] = []
    @Option(name: .customLong("other-passphrase-file"), help: "The passphrase of another keyslot to carry over (repeatable).")
    var otherPassphraseFiles: [String] = []
    @Flag(name: .customLong("drop-other-keyslots"), help: "Drop the keyslots no secret given opens.")
    var dropOthers = false
    @Option(name: .customLong("minimum-generation"), help: "Refuse an image whose store generation is older (the rollback anchor), so a rolled-back image is not carried past it.")
    var minimumGeneration: UInt64 = 0
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("rekey") {
            let secret = try image.access.keyslotSecret("rekey")
            let newSecret = try newKeyFile.map { try readSecret($0) }
            let others = try otherKeyFiles.map { (try readSecret($0), $0) }
                + otherPassphraseFiles.map { (try readSecret($0, passphrase: true), $0) }
            // Progress for the slow steps (key derivation), on a terminal only, so scripts see
            // one line per error and nothing else.
            let interactive = isatty(2) == 1
            let result = try LUKS2Image.rekey(path: image.path, secrets: [(secret, "the key given")] + others,
                                              newSecret: newSecret, dropOthers: dropOthers,
                                              minimumGeneration: minimumGeneration) { step in
                if interactive { FileHandle.standardError.write("varstore rekey: \(step)\n".data(using: .utf8)!) }
            }
            let slots = result.keyslots.map(String.init).joined(separator: ", ")
            format.done("rekeyed \(image.path): keyslots \(slots), generation \(result.oldGeneration) → \(result.generation)",
                        [("rekeyed", jsonString(image.path)), ("keyslots", "[\(slots)]"),
                         ("old_generation", "\(result.oldGeneration)"), ("generation", "\(result.generation)")])
        }
    }
}

/// A key file's bytes, or a passphrase file's without its trailing newline, refused when too
/// weak to guard an image (LUKS2Image.Secret.weakness) wherever it is read: for a new keyslot
/// and to open one. A file others can read gets a warning, not a refusal: the operator may
/// be mid-way through provisioning.
func readSecret(_ path: String, passphrase: Bool = false) throws -> LUKS2Image.Secret {
    guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("no such file: \(path)") }
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    if passphrase, bytes.last == 0x0A { bytes.removeLast() }
    let secret: LUKS2Image.Secret = passphrase ? .passphrase(bytes) : .keyFile(bytes)
    if let weakness = secret.weakness {
        throw ValidationError("\(path): \(weakness); refusing it as a secret")
    }
    var status = stat()
    if stat(path, &status) == 0, status.st_mode & 0o077 != 0 {
        FileHandle.standardError.write(("varstore: warning: \(path) can be read by others (mode "
            + String(status.st_mode & 0o777, radix: 8) + "); chmod 600 it\n").data(using: .utf8)!)
    }
    return secret
}

struct Keyslot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage an image's LUKS2 keyslots (libcryptsetup).",
        subcommands: [KeyslotList.self, KeyslotAdd.self, KeyslotRemove.self])
}

struct KeyslotList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the keyslots in use.")
    @Argument(help: "The image file.")
    var path: String
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("keyslot list") {
            let slots = try LUKS2Image.keyslots(path: path)
            format.done(slots.map { "\($0.slot): \($0.kdf)" }.joined(separator: "\n"),
                        [("keyslots", "[" + slots.map { "{\"slot\": \($0.slot), \"kdf\": \(jsonString($0.kdf))}" }.joined(separator: ", ") + "]")])
        }
    }
}

struct KeyslotAdd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add",
        abstract: "Add a keyslot for a new secret, authorised by an existing one.")
    @OptionGroup var image: ImageArguments
    @Option(name: .customLong("new-key-file"), help: "The new secret (a key file; a PBKDF2 keyslot an SVSM can open).")
    var newKeyFile: String?
    @Option(name: .customLong("new-passphrase-file"), help: "The new secret (a passphrase; an Argon2id keyslot for administrators).")
    var newPassphraseFile: String?
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("keyslot add") {
            let existing = try image.access.keyslotSecret("keyslot add")
            let new: LUKS2Image.Secret
            if let newKeyFile {
                new = try readSecret(newKeyFile)
            } else if let newPassphraseFile {
                new = try readSecret(newPassphraseFile, passphrase: true)
            } else {
                throw ValidationError("give --new-key-file or --new-passphrase-file")
            }
            progress("keyslot add", "deriving the keys of the current and the new keyslot")
            let slot = try LUKS2Image.addKeyslot(path: image.path, existing: existing, new: new)
            format.done("added keyslot \(slot)", [("keyslot", "\(slot)")])
        }
    }
}

struct KeyslotRemove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove",
        abstract: "Remove the keyslot a secret opens (never the last one).",
        discussion: "This does not revoke the secret: a host that kept an older copy of the image's LUKS2 header can still unwrap the volume key with it. To revoke a secret, run `varstore rekey` (a new volume key) instead.")
    @OptionGroup var image: ImageArguments
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("keyslot remove") {
            let secret = try image.access.keyslotSecret("keyslot remove")
            let slot = try LUKS2Image.removeKeyslot(path: image.path, secret: secret)
            format.done("removed keyslot \(slot); this does not revoke its secret against an older copy of the header "
                        + "(the host may keep one): `varstore rekey` does", [("keyslot", "\(slot)"), ("revoked", "false")])
        }
    }
}

/// "YYYY-MM-DD HH:MM:SS" → EFI_TIME (no range checks beyond the field widths, as efitools).
func parseTime(_ text: String) -> EFITime? {
    let parts = text.split(whereSeparator: { $0 == "-" || $0 == " " || $0 == ":" }).map { UInt16($0) }
    guard parts.count == 6, parts.allSatisfy({ $0 != nil }), parts[1...].allSatisfy({ $0! <= 255 }) else { return nil }
    return EFITime(year: parts[0]!, month: UInt8(parts[1]!), day: UInt8(parts[2]!), hour: UInt8(parts[3]!),
                   minute: UInt8(parts[4]!), second: UInt8(parts[5]!))
}

/// "512K", "1M", "4096" → bytes.
func parseSize(_ text: String) -> UInt64? {
    let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
    if let last = text.last, let unit = units[Character(last.uppercased())] {
        return UInt64(text.dropLast()).flatMap { $0.multipliedReportingOverflow(by: unit).overflow ? nil : $0 * unit }
    }
    return UInt64(text)
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
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
