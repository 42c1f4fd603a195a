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
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let lower = path.lowercased()
        // A signed update, whatever its name: WIN_CERTIFICATE_UEFI_GUID with PKCS#7 at 16.
        let isUpdate = bytes.count >= 40 && Array(bytes[20 ..< 24]) == [0x00, 0x02, 0xF1, 0x0E]
            && EFIGUID(wire: bytes, at: 24) == .certTypePKCS7
        if lower.hasSuffix(".auth") || isUpdate {
            signed.append((key, bytes))
            return
        }
        let list: [UInt8]
        if lower.hasSuffix(".esl") {
            list = bytes
        } else if let text = String(bytes: bytes, encoding: .utf8), text.contains("-----BEGIN CERTIFICATE-----") {
            list = Self.x509List(try Self.derFromPEM(text, path: path))
        } else if bytes.first == 0x30 {
            list = Self.x509List(bytes)
        } else {
            throw Failure("\(path): not a certificate (PEM or DER), an .esl or an .auth file")
        }
        append(list, to: key)
    }

    public mutating func append(_ list: [UInt8], to key: VariableKey) {
        switch key {
        case SecureBootVariable.pk: pk = list
        case SecureBootVariable.kek: kek += list
        case SecureBootVariable.db: db += list
        default: dbx += list
        }
    }

    static func derFromPEM(_ text: String, path: String) throws -> [UInt8] {
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

    /// Generates PK, KEK and db test keys, writes `NAME.crt`, `NAME.der` and `NAME.key` for each
    /// into `directory`, and adds their certificates.
    public mutating func addTestKeys(writingTo directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (name, key) in [("PK", SecureBootVariable.pk), ("KEK", SecureBootVariable.kek), ("db", SecureBootVariable.db)] {
            let identity = try SigningIdentity.generate(commonName: "varstore test \(name)")
            try Data(identity.certificatePEM).write(to: directory.appendingPathComponent("\(name).crt"))
            try Data(identity.certificateDER).write(to: directory.appendingPathComponent("\(name).der"))
            let keyFile = directory.appendingPathComponent("\(name).key")
            try Data(identity.privateKeyPEM).write(to: keyFile)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyFile.path)
            append(Self.x509List(identity.certificateDER), to: key)
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
        var descriptor = time.bytes
        LittleEndian.append(UInt32(VariableAuthentication2.certificateHeaderSize), to: &descriptor)
        LittleEndian.append(VariableAuthentication2.winCertificateRevision, to: &descriptor)
        LittleEndian.append(VariableAuthentication2.winCertificateTypeEFIGUID, to: &descriptor)
        descriptor += EFIGUID.certTypePKCS7.wireBytes
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
