import Foundation
import VarStoreCore

/// Keys, certificates and signed updates made at test time by tools that share no code with
/// ours: OpenSSL (keys, certificates, raw PKCS#7), efitools (cert-to-efi-sig-list,
/// sign-efi-sig-list) and sbsigntool (sbvarsign). `.ci/run` installs them.
final class SecureBootTools: @unchecked Sendable {
    /// One shared set of keys; nil if a tool is missing.
    static let shared: SecureBootTools? = try? SecureBootTools()
    static var available: Bool { shared != nil }

    struct ToolError: Error, CustomStringConvertible {
        let description: String
    }

    let directory: URL
    /// Owner GUID written into every test ESL entry.
    static let owner = "11111111-2222-3333-4444-555555555555"

    /// Subject CN of each test identity. OwnerTwin has the same CN as Owner but its own key.
    static let identities: [String: String] = [
        "PK": "Test PK", "PK2": "Test PK 2", "KEK": "Test KEK", "KEK2": "Test KEK 2",
        "Owner": "Test Owner", "OwnerTwin": "Test Owner", "Stranger": "Test Stranger",
    ]

    private init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("varstore-secureboot-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (name, commonName) in Self.identities {
            try run("openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
                    "-subj", "/CN=\(commonName)/", "-keyout", "\(name).key", "-out", "\(name).crt")
        }
        // A certificate with an elliptic-curve key, which no signature database may hold.
        try run("openssl", "req", "-new", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-days", "3650", "-subj", "/CN=Test EC/", "-keyout", "EC.key", "-out", "EC.crt")
    }

    @discardableResult
    func run(_ arguments: String...) throws -> Data { try run(arguments) }

    @discardableResult
    func run(_ arguments: [String], stdin: Data? = nil) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        // sign-efi-sig-list reads -t as local time; pin the zone so the bytes are predictable.
        process.environment = ProcessInfo.processInfo.environment.merging(["TZ": "UTC"]) { $1 }
        let output = Pipe(), errors = Pipe(), input = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ToolError(description: "\(arguments.joined(separator: " ")): \(String(decoding: err, as: UTF8.self))")
        }
        return out
    }

    func file(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: directory.appendingPathComponent(name))) }

    func write(_ bytes: [UInt8], to name: String) throws {
        try Data(bytes).write(to: directory.appendingPathComponent(name))
    }

    /// DER of an identity's certificate.
    func certificateDER(_ identity: String) throws -> [UInt8] {
        [UInt8](try run("openssl", "x509", "-in", "\(identity).crt", "-outform", "DER"))
    }

    /// An EFI_SIGNATURE_LIST holding the identities' certificates, one list each, made by
    /// cert-to-efi-sig-list.
    func signatureList(_ identities: [String]) throws -> [UInt8] {
        var out: [UInt8] = []
        for identity in identities {
            // Tests run in parallel: every output gets its own file.
            let name = "\(identity)-\(UUID().uuidString).esl"
            try run("cert-to-efi-sig-list", "-g", Self.owner, "\(identity).crt", name)
            out += try file(name)
        }
        return out
    }

    /// An EFI_VARIABLE_AUTHENTICATION_2 update made by sign-efi-sig-list (bare SignedData,
    /// no signed attributes): `variable` is PK, KEK, db or dbx (efitools picks the GUID),
    /// signed by `signer` at `time` ("YYYY-MM-DD HH:MM:SS", UTC).
    func signedUpdate(_ variable: String, payload: [UInt8], signer: String, time: String,
                      append: Bool = false) throws -> [UInt8] {
        let name = "update-\(UUID().uuidString)"
        try write(payload, to: "\(name).in")
        var arguments = ["sign-efi-sig-list", "-t", time, "-k", "\(signer).key", "-c", "\(signer).crt"]
        if append { arguments.append("-a") }
        arguments += [variable, "\(name).in", "\(name).auth"]
        try run(arguments)
        return try file("\(name).auth")
    }

    /// An update made by sbvarsign (bare SignedData with signed attributes; time = now, with
    /// sbvarsign's 0-based month) for any variable name and GUID.
    func sbvarsign(_ variable: String, guid: String, payload: [UInt8], signer: String,
                   attributes: String = "NON_VOLATILE,BOOTSERVICE_ACCESS,RUNTIME_ACCESS") throws -> [UInt8] {
        let name = "sbvar-\(UUID().uuidString)"
        try write(payload, to: "\(name).in")
        try run("sbvarsign", "--key", "\(signer).key", "--cert", "\(signer).crt", "--guid", guid,
                "--attr", attributes, "--output", "\(name).auth", variable, "\(name).in")
        return try file("\(name).auth")
    }

    /// A detached PKCS#7 over `content` from `openssl smime` (ContentInfo-wrapped DER, no
    /// signed attributes, SHA-256 unless given).
    func smimeSignature(_ content: [UInt8], signer: String, digest: String = "sha256") throws -> [UInt8] {
        let name = "smime-\(UUID().uuidString)"
        try write(content, to: "\(name).in")
        try run("openssl", "smime", "-sign", "-binary", "-noattr", "-md", digest, "-outform", "DER",
                "-signer", "\(signer).crt", "-inkey", "\(signer).key", "-in", "\(name).in", "-out", "\(name).p7")
        return try file("\(name).p7")
    }
}

/// EFI_VARIABLE_AUTHENTICATION_2 built from the UEFI spec's layout (not from the code under
/// test): EFI_TIME, WIN_CERTIFICATE_UEFI_GUID header, PKCS#7, payload.
enum Authentication2 {
    static let pkcs7GUID: [UInt8] = [0x9d, 0xd2, 0xaf, 0x4a, 0xdf, 0x68, 0xee, 0x49, 0x8a, 0xa9, 0x34, 0x7d, 0x37, 0x56, 0x65, 0xa7]

    /// EFI_TIME: Year u16, Month, Day, Hour, Minute, Second, Pad1, Nanosecond u32,
    /// TimeZone i16, Daylight, Pad2.
    static func time(_ year: UInt16, _ month: UInt8, _ day: UInt8, _ hour: UInt8 = 0, _ minute: UInt8 = 0,
                     _ second: UInt8 = 0, pad1: UInt8 = 0, nanosecond: UInt32 = 0) -> [UInt8] {
        var out = [UInt8(year & 0xff), UInt8(year >> 8), month, day, hour, minute, second, pad1]
        out += (0..<4).map { UInt8((nanosecond >> (8 * UInt32($0))) & 0xff) }
        out += [0, 0, 0, 0]
        return out
    }

    static func descriptor(time: [UInt8], pkcs7: [UInt8]) -> [UInt8] {
        let length = UInt32(24 + pkcs7.count)
        var out = time
        out += (0..<4).map { UInt8((length >> (8 * UInt32($0))) & 0xff) }
        out += [0x00, 0x02, 0xf1, 0x0e] + pkcs7GUID + pkcs7
        return out
    }

    /// The bytes a signature covers: name (UCS-2, no NUL) ‖ GUID ‖ attributes ‖ time ‖ payload.
    static func signedContent(name: String, guid: String, attributes: UInt32, time: [UInt8], payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for unit in name.utf16 { out += [UInt8(unit & 0xff), UInt8(unit >> 8)] }
        out += wireGUID(guid)
        out += (0..<4).map { UInt8((attributes >> (8 * UInt32($0))) & 0xff) }
        return out + time + payload
    }
}

/// A GUID's 16 wire bytes from its text (UEFI Appendix A: the first three fields little-endian).
func wireGUID(_ text: String) -> [UInt8] {
    let u = UUID(uuidString: text)!.uuid
    return [u.3, u.2, u.1, u.0, u.5, u.4, u.7, u.6, u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15]
}
