import ArgumentParser
import Foundation
import VarStoreCore
import VarStoreCrypto
import VarStoreHost

struct Enroll: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
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
                throw CLIError("--secure-boot: nothing gives the image a PK (add --pk or --test-keys); nothing was written")
            }
            let time = EFITime.now()
            do {
                try enrollment.apply(to: service, time: time)
            } catch {
                throw CLIError("\(describe(error)); nothing was written")
            }
            if secureBoot && service.secureBootMode.isSetupMode {
                throw CLIError("--secure-boot: the image would still be in setup mode; nothing was written")
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
                throw CLIError("\(describe(error)); the image may hold the new keys, so they were kept in \(testKeys ?? "")")
            }
            let mode = service.secureBootMode.isSetupMode ? "setup mode" : "user mode (Secure Boot on at the next boot)"
            format.done("enrolled into \(image.path): \(mode)", [("secure_boot", service.secureBootMode.isSetupMode ? "false" : "true"),
                                                           ("generation", "\(log.generation)")])
        }
    }
}
