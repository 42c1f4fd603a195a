import ArgumentParser
import VarStoreHost

struct Keyslot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyslot",
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
                        [("keyslots", keyslotsJSON(slots))])
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

/// `keyslots` as `--json` gives them (keyslot list, inspect): `[{slot, kdf}]`.
func keyslotsJSON(_ slots: [(slot: Int, kdf: String)]) -> String {
    JSONValue.array(slots.map { JSONValue.object([("slot", JSONValue.number($0.slot)), ("kdf", JSONValue.string($0.kdf))]) })
}
