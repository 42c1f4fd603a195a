import ArgumentParser
import VarStoreCore
import VarStoreHost

struct Upgrade: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrade",
        abstract: "Move an image's store to the current version, whose keys survive cryptsetup reencrypt; crash-safe.",
        discussion: """
            A version-1 store (images made before store version 2) seals its records with keys derived from the volume key, \
            so `cryptsetup reencrypt` would make every variable unreadable. Upgrading writes the variables again under a new \
            random store master key kept inside the data segment, then a superblock naming them: a power cut leaves either \
            version, with the same variables. The first write to a version-1 store (set, delete, enroll, import, a guest's \
            SetVariable) upgrades it too. A version-2 store is left as it is. Upgrade before `cryptsetup reencrypt`.
            """)

    @OptionGroup var image: ImageArguments
    @Option(name: .customLong("minimum-generation"), help: "Refuse an image whose store generation is older (the rollback anchor).")
    var minimumGeneration: UInt64 = 0
    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("upgrade") {
            let log = try image.access.openStore(minimumGeneration: minimumGeneration)
            let before = log.storeVersion
            let oldGeneration = log.generation
            try log.upgrade()
            let text = before == log.storeVersion
                ? "\(image.path): store version \(before.rawValue) is current; nothing written"
                : "upgraded \(image.path): store version \(before.rawValue) → \(log.storeVersion.rawValue), generation \(oldGeneration) → \(log.generation)"
            format.done(text, [("upgraded", JSONValue.bool(before != log.storeVersion)),
                               ("old_store_version", JSONValue.number(before.rawValue)),
                               ("store_version", JSONValue.number(log.storeVersion.rawValue)),
                               ("old_generation", "\(oldGeneration)"), ("generation", "\(log.generation)")])
        }
    }
}
