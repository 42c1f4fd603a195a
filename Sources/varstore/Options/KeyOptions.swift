import ArgumentParser
import Foundation
import VarStoreHost

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
        if let volumeKeyFile { return try HostFile.read(volumeKeyFile) }
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
