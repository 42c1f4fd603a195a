import ArgumentParser
import Foundation
import VarStoreCore
import VarStoreCrypto
import VarStoreHost

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show an image's LUKS2 header and, with a key, its variable store.")

    @OptionGroup var image: ImageArguments

    @Flag(name: .customLong("witness-key"), help: "With a key: also print the image's witness key (spec/rollback.md), for provisioning a witness. It is a secret.")
    var witnessKey = false

    @OptionGroup var format: OutputOptions

    func run() throws {
        try reporting("inspect") {
            var flash = try FileFlash(path: image.path)
            let header = try LUKS2Header.read(from: &flash, crypto: Libcrypto())
            let keyslots = (try? LUKS2Image.keyslots(path: image.path)) ?? []
            // Each fact as people read it and as `--json` gives it.
            var facts: [(name: String, text: String, json: String)] = [
                ("uuid", String(decoding: header.uuid, as: UTF8.self), JSONValue.string(String(decoding: header.uuid, as: UTF8.self))),
                ("header_bytes", "\(header.headerSize)", JSONValue.number(header.headerSize)),
                ("segment_offset", "\(header.segmentOffset)", JSONValue.number(header.segmentOffset)),
                ("segment_bytes", "\(header.segmentSize)", JSONValue.number(header.segmentSize)),
                ("cipher", "aes-xts-plain64", JSONValue.string("aes-xts-plain64")),
                ("sector_bytes", "\(header.sectorSize)", JSONValue.number(header.sectorSize)),
                ("keyslots", keyslots.map { "\($0.slot):\($0.kdf)" }.joined(separator: ","), keyslotsJSON(keyslots)),
            ]
            var options = image.access
            options.prompt = false
            if let volumeKey = try options.volumeKey() {
                let log = try options.openStore(volumeKey: volumeKey)
                let capacity = Defaults.capacity(log)
                let used = log.live.all.reduce(UInt64(0)) { $0 + 60 + UInt64($1.name.wireSize) + UInt64($1.data.count) }
                let free = capacity > used ? capacity - used : 0
                facts += [
                    ("store_version", "\(log.storeVersion.rawValue)", JSONValue.number(log.storeVersion.rawValue)),
                    ("generation", "\(log.generation)", JSONValue.number(log.generation)),
                    ("state_digest", Hex.string(log.digest), JSONValue.string(Hex.string(log.digest))),
                    ("variables", "\(log.live.count)", JSONValue.number(log.live.count)),
                    ("used_bytes", "\(used)", JSONValue.number(used)),
                    ("free_bytes", "\(free)", JSONValue.number(free)),
                ]
                if witnessKey {
                    let key = Hex.string(EncryptedImage.witnessKey(of: log).bytes)
                    facts.append(("witness_key", key, JSONValue.string(key)))
                }
            }
            format.done(facts.map { $0.name.padding(toLength: 16, withPad: " ", startingAt: 0) + $0.text }.joined(separator: "\n"),
                        facts.map { ($0.name, $0.json) })
        }
    }
}
