import ArgumentParser
import VarStoreCore
import VarStoreCrypto
import VarStoreHost

struct Sign: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Make an EFI_VARIABLE_AUTHENTICATION_2 update (set, append or delete) from a certificate and key.",
        discussion: "Byte-compatible with efitools' sign-efi-sig-list for the same inputs and timestamp: PKCS#7 SignedData without the ContentInfo wrapper, SHA-256, no signed attributes. For PK, KEK, db, dbx, dbt and dbr the input is a certificate (PEM or DER: made into a one-entry list owned by --owner, as cert-to-efi-sig-list does) or EFI_SIGNATURE_LISTs; anything else is refused. An empty input makes a signed delete.")

    @Argument(help: "The variable: PK, KEK, db, dbx, dbt, dbr, or any name with --guid.")
    var variable: String

    @Argument(help: "The payload: for the key databases a certificate or EFI_SIGNATURE_LIST file; empty for a delete.")
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

    @Option(help: "Signature owner GUID for a list made from a certificate (default: this tool's owner GUID).")
    var owner: String?

    @Flag(help: "An APPEND_WRITE update (attributes 0x67 instead of 0x27).")
    var append = false
    @OptionGroup var format: OutputOptions

    /// The variables whose data are EFI_SIGNATURE_LISTs (UEFI 2.10 §32.6).
    static let keyDatabases: Set<String> = ["PK", "KEK", "db", "dbx", "dbt", "dbr"]

    func run() throws {
        try reporting("sign") {
            let vendor: EFIGUID
            if let guid {
                guard let parsed = EFIGUID(text: guid) else { throw ValidationError("--guid '\(guid)' is not a GUID") }
                vendor = parsed
            } else if Self.keyDatabases.contains(variable) {
                vendor = Defaults.vendor(for: variable)
            } else {
                throw ValidationError("\(variable) needs --guid")
            }
            guard let name = VariableName(variable), !name.isEmpty else { throw ValidationError("'\(variable)' is not a variable name") }
            let timestamp: EFITime
            if let time {
                guard let parsed = parseTime(time) else { throw ValidationError("--time '\(time)' is not YYYY-MM-DD HH:MM:SS") }
                timestamp = parsed
            } else {
                // efitools signs appends with the zero time (UEFI 2.10 §8.2.6 allows it).
                timestamp = append ? .zero : .now()
            }
            let signatureOwner: EFIGUID
            if let owner {
                guard let parsed = EFIGUID(text: owner) else { throw ValidationError("--owner '\(owner)' is not a GUID") }
                signatureOwner = parsed
            } else {
                signatureOwner = Enrollment.owner
            }
            let identity = try SigningIdentity.load(certificatePEM: try HostFile.read(cert),
                                                    keyPEM: try HostFile.read(key))
            var payload = try HostFile.read(input)
            // A key database holds signature lists: a certificate becomes one, and anything
            // that is neither (a PEM file wrapped as it is) is refused rather than signed.
            if Self.keyDatabases.contains(variable), !payload.isEmpty {
                payload = try Enrollment.signatureListPayload(payload, path: input, owner: signatureOwner)
            }
            let update = try identity.authenticatedUpdate(for: VariableKey(guid: vendor, name: name),
                                                          attributes: append ? 0x67 : 0x27, time: timestamp, payload: payload)
            try HostFile.write(update, to: output)
            format.done("", [("output", JSONValue.string(output)), ("bytes", "\(update.count)")])
        }
    }
}
