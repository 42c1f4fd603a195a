import ArgumentParser
import Foundation
import VarStoreHost

struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
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

    @OptionGroup var format: OutputOptions

    func run() throws {
        guard let bytes = parseSize(size) else { throw ValidationError("bad --size '\(size)'") }
        guard key.volumeKeyFile == nil else { throw ValidationError("create makes its own volume key; give --key-file or --passphrase-file") }
        try reporting("create") {
            guard !FileManager.default.fileExists(atPath: path) else { throw CLIError("\(path) already exists; not overwriting it") }
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
            // The store create formatted is reported as it is: opening it again would only read
            // back what was just written (the next command that opens the image checks it).
            let log = try LUKS2Image.createStore(path: path, size: bytes, secret: secret, recoveryPassphrase: recovery,
                                                 keyslotRoom: room).log
            let capacity = Defaults.capacity(log)
            format.done("created \(path): \(bytes) bytes, room for \(room) keyslots, data segment \(log.device.size) bytes, "
                        + "room for \(capacity) bytes of non-volatile variables",
                        [("image", JSONValue.string(path)), ("size", JSONValue.number(bytes)), ("keyslot_room", JSONValue.number(room)),
                         ("segment_bytes", JSONValue.number(log.device.size)), ("capacity_bytes", JSONValue.number(capacity)),
                         ("generation", JSONValue.number(log.generation))])
        }
    }
}
