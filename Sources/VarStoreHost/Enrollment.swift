import Foundation
import VarStoreCore
import VarStoreCrypto

/// Pre-boot provisioning of the Secure Boot keys through the service's own authenticated path:
/// in setup mode KEK, db and dbx are written with unsigned EFI_VARIABLE_AUTHENTICATION_2
/// descriptors (as edk2's own enrollment does), PK last; an image already in user mode takes
/// only signed updates. Every write meets the same checks as the guest's.
public struct Enrollment {
    /// Signature owner written into the lists made here from certificates.
    public static let owner = EFIGUID(text: "6e95b4f4-6e5b-4f1c-8d43-7a5b2b0c9f11")!

    public var pk: [UInt8]?
    public var kek: [UInt8] = []
    public var db: [UInt8] = []
    public var dbx: [UInt8] = []
    /// Signed updates (.auth files) to apply as they are, in order.
    public var signed: [(key: VariableKey, data: [UInt8])] = []

    public init() {}

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// An EFI_SIGNATURE_LIST holding one X.509 certificate (DER).
    public static func x509List(_ certificate: [UInt8], owner: EFIGUID = owner) -> [UInt8] {
        var list = SignatureType.x509.wireBytes
        LittleEndian.append(UInt32(28 + 16 + certificate.count), to: &list)
        LittleEndian.append(UInt32(0), to: &list)
        LittleEndian.append(UInt32(16 + certificate.count), to: &list)
        return list + owner.wireBytes + certificate
    }

    /// A file given on the command line: a certificate (PEM or DER) becomes a one-entry X.509
    /// list, an .esl is used as it is, an .auth is a signed update for `key`.
    public mutating func add(file path: String, to key: VariableKey) throws {
        let bytes = try HostFile.read(path)
        let lower = path.lowercased()
        // A signed update, whatever its name: WIN_CERTIFICATE_UEFI_GUID with PKCS#7 at 16.
        let isUpdate = VariableAuthentication2.looksLikeDescriptor(bytes)
        if lower.hasSuffix(".auth") || isUpdate {
            signed.append((key, bytes))
            return
        }
        let list: [UInt8]
        if lower.hasSuffix(".esl") {
            list = bytes
        } else if let text = String(bytes: bytes, encoding: .utf8), text.contains("-----BEGIN CERTIFICATE-----") {
            list = Self.x509List(try Self.checkedCertificate(try Self.derFromPEM(text, path: path), path: path))
        } else if bytes.first == 0x30 {
            list = Self.x509List(try Self.checkedCertificate(bytes, path: path))
        } else {
            throw Failure("\(path): not a certificate (PEM or DER), an .esl or an .auth file")
        }
        append(list, to: key)
    }

    /// The payload of a signed update to a key database (PK, KEK, db, dbx, dbt, dbr), from a
    /// file: a certificate (PEM, or DER starting 0x30) becomes a one-entry X.509 list owned by
    /// `owner`, as efitools' cert-to-efi-sig-list makes it; bytes that parse as signature lists
    /// are used as they are; anything else — a certificate's PEM text wrapped as a payload, say
    /// — is refused.
    public static func signatureListPayload(_ bytes: [UInt8], path: String, owner: EFIGUID) throws -> [UInt8] {
        if let text = String(bytes: bytes, encoding: .utf8), text.contains("-----BEGIN CERTIFICATE-----") {
            return x509List(try checkedCertificate(try derFromPEM(text, path: path), path: path), owner: owner)
        }
        if let lists = SignatureList.parse(bytes[...]), !lists.isEmpty {
            return bytes
        }
        if bytes.first == 0x30 {
            return x509List(try checkedCertificate(bytes, path: path), owner: owner)
        }
        throw Failure("\(path): neither a certificate (PEM or DER) nor EFI_SIGNATURE_LISTs")
    }

    public mutating func append(_ list: [UInt8], to key: VariableKey) {
        switch key {
        case SecureBootVariable.pk: pk = list
        case SecureBootVariable.kek: kek += list
        case SecureBootVariable.db: db += list
        default: dbx += list
        }
    }

    /// `der` if it is exactly one X.509 certificate (nothing after it) with an RSA key, as
    /// edk2 needs of an X.509 signature list's certificate; else a failure naming the file.
    static func checkedCertificate(_ der: [UInt8], path: String) throws -> [UInt8] {
        guard let length = derElementLength(der), length == der.count,
              let facts = Libcrypto().certificateFacts(der[...]) else {
            throw Failure("\(path): not an X.509 certificate (the DER does not parse as one)")
        }
        guard facts.hasRSAPublicKey else {
            throw Failure("\(path): the certificate's key is not RSA (UEFI X.509 signature lists need an RSA key)")
        }
        return der
    }

    /// The length of the DER element at the start of `bytes` (tag, length, contents), if its
    /// length field is well formed.
    static func derElementLength(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        let first = Int(bytes[1])
        if first < 0x80 { return 2 + first }
        let count = first & 0x7F
        guard count >= 1, count <= 4, bytes.count >= 2 + count else { return nil }
        let length = bytes[2 ..< 2 + count].reduce(0) { $0 << 8 | Int($1) }
        return 2 + count + length
    }

    static func derFromPEM(_ text: String, path: String) throws -> [UInt8] {
        let count = text.components(separatedBy: "-----BEGIN CERTIFICATE-----").count - 1
        guard count == 1 else { throw Failure("\(path): holds \(count) PEM certificates; give one per file") }
        guard let start = text.range(of: "-----BEGIN CERTIFICATE-----"),
              let end = text.range(of: "-----END CERTIFICATE-----", range: start.upperBound ..< text.endIndex),
              let der = Data(base64Encoded: String(text[start.upperBound ..< end.lowerBound]).filter { !$0.isWhitespace }) else {
            throw Failure("\(path): malformed PEM certificate")
        }
        return [UInt8](der)
    }

    /// Microsoft's keys: both KEK CAs, the Windows and third-party UEFI CAs of 2011 and 2023
    /// in db, and the current dbx (the payload of Microsoft's signed dbx update).
    public mutating func addMicrosoft() throws {
        kek += Self.x509List(MicrosoftKeys.kekCA2011, owner: Self.microsoftOwner)
            + Self.x509List(MicrosoftKeys.kekCA2023, owner: Self.microsoftOwner)
        for certificate in [MicrosoftKeys.windowsPCA2011, MicrosoftKeys.uefiCA2011, MicrosoftKeys.windowsUEFICA2023,
                            MicrosoftKeys.uefiCA2023] {
            db += Self.x509List(certificate, owner: Self.microsoftOwner)
        }
        dbx += Array(try VariableAuthentication2.parse(MicrosoftKeys.dbxUpdate).payload)
    }

    /// Microsoft's signature owner (in every Microsoft list).
    public static let microsoftOwner = EFIGUID(text: "77fa9abd-0359-4d32-bd60-28f4e78f784b")!

    /// A generated test key: its variable, file stem and identity (certificate and key).
    public struct TestKey {
        public let stem: String
        public let identity: SigningIdentity
    }

    /// The files `writeTestKeys` makes for each of PK, KEK and db.
    public static let testKeyStems = ["PK", "KEK", "db"]
    public static let testKeyExtensions = ["crt", "der", "key"]

    /// Generates PK, KEK and db test keys and adds their certificates; nothing is written
    /// (see `writeTestKeys`).
    public mutating func addTestKeys() throws -> [TestKey] {
        var keys: [TestKey] = []
        for (stem, key) in zip(Self.testKeyStems, [SecureBootVariable.pk, SecureBootVariable.kek, SecureBootVariable.db]) {
            let identity = try SigningIdentity.generate(commonName: "varstore test \(stem)")
            append(Self.x509List(identity.certificateDER), to: key)
            keys.append(TestKey(stem: stem, identity: identity))
        }
        return keys
    }

    /// Refuses if any file `writeTestKeys` would make already exists in `directory`: keys are
    /// never overwritten.
    public static func checkTestKeysAbsent(in directory: URL) throws {
        for stem in testKeyStems {
            for ext in testKeyExtensions {
                let path = directory.appendingPathComponent("\(stem).\(ext)").path
                if FileManager.default.fileExists(atPath: path) { throw Failure("\(path) already exists; not overwriting keys") }
            }
        }
    }

    /// Writes `NAME.crt`, `NAME.der` and `NAME.key` for each key into `directory` (created if
    /// needed). Each file is created exclusively (never overwriting), private keys with mode
    /// 0600 from the start. On failure the files written so far are removed. Returns them.
    ///
    /// When it returns the files are durable: each is flushed, and so is the directory that
    /// names them (and the parent of each directory it created), since a file's own fsync does
    /// not make its name durable. The image's commit follows, and an image must never hold
    /// keys whose private halves a power cut could lose.
    @discardableResult
    public static func writeTestKeys(_ keys: [TestKey], to directory: URL) throws -> [URL] {
        var missing: [URL] = []
        var ancestor = directory.standardizedFileURL
        while !FileManager.default.fileExists(atPath: ancestor.path), ancestor.pathComponents.count > 1 {
            missing.append(ancestor)
            ancestor = ancestor.deletingLastPathComponent()
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var written: [URL] = []
        do {
            for key in keys {
                for (ext, bytes, mode) in [("crt", key.identity.certificatePEM, 0o644), ("der", key.identity.certificateDER, 0o644),
                                           ("key", key.identity.privateKeyPEM, 0o600)] as [(String, [UInt8], mode_t)] {
                    let url = directory.appendingPathComponent("\(key.stem).\(ext)")
                    try createExclusively(url, bytes, mode: mode)
                    written.append(url)
                }
            }
            try synchronizeDirectory(directory)
            for created in missing { try synchronizeDirectory(created.deletingLastPathComponent()) }
        } catch {
            for url in written { try? FileManager.default.removeItem(at: url) }
            throw error
        }
        return written
    }

    static func synchronizeDirectory(_ url: URL) throws {
        let descriptor = open(url.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw Failure("\(url.path): cannot open (\(String(cString: strerror(errno))))") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw Failure("\(url.path): cannot flush (\(String(cString: strerror(errno))))") }
    }

    static func createExclusively(_ url: URL, _ bytes: [UInt8], mode: mode_t) throws {
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw Failure("\(url.path): cannot create (\(String(cString: strerror(errno))))") }
        defer { close(descriptor) }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: false)
        do {
            try handle.write(contentsOf: bytes)
            try handle.synchronize()
        } catch {
            unlink(url.path)
            throw Failure("\(url.path): cannot write (\(error))")
        }
    }

    /// Applies everything to `service`: unsigned lists only in setup mode (KEK, db, dbx, then
    /// PK), then the signed updates. Throws naming the variable and the EFI status.
    public func apply<J: NonVolatileJournal>(to service: VariableService<Libcrypto, J>, time: EFITime) throws {
        var unsigned: [(VariableKey, [UInt8])] = []
        if !kek.isEmpty { unsigned.append((SecureBootVariable.kek, kek)) }
        if !db.isEmpty { unsigned.append((SecureBootVariable.db, db)) }
        if !dbx.isEmpty { unsigned.append((SecureBootVariable.dbx, dbx)) }
        if let pk { unsigned.append((SecureBootVariable.pk, pk)) }
        if !unsigned.isEmpty && !service.secureBootMode.isSetupMode {
            throw Failure("the image has a PK (user mode): give signed .auth updates, or delete PK with a signed update first")
        }
        let descriptor = VariableAuthentication2.encode(timeStamp: time, certificate: [])
        for (key, list) in unsigned {
            do {
                try service.setVariable(key, attributes: 0x27, data: descriptor + list)
            } catch {
                throw Failure("\(key.name.text): SetVariable returned \(error.name)")
            }
        }
        for update in signed {
            do {
                try service.setVariable(update.key, attributes: 0x27, data: update.data)
            } catch .securityViolation {
                // Updates signed for APPEND_WRITE (Microsoft's, efitools -a) verify only as appends.
                do {
                    try service.setVariable(update.key, attributes: 0x67, data: update.data)
                } catch {
                    throw Failure("\(update.key.name.text): the signed update was refused (\(error.name))")
                }
            } catch {
                throw Failure("\(update.key.name.text): the signed update was refused (\(error.name))")
            }
        }
    }
}
