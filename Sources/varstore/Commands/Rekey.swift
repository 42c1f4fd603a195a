import ArgumentParser
import Foundation
import VarStoreHost

struct Rekey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rekey",
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
                        [("rekeyed", JSONValue.string(image.path)), ("keyslots", JSONValue.array(result.keyslots.map(JSONValue.number))),
                         ("old_generation", "\(result.oldGeneration)"), ("generation", "\(result.generation)")])
        }
    }
}
