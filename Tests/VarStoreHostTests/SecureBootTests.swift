import Foundation
import Testing
import VarStoreCore
import VarStoreCrypto
import VarStoreHost

/// Secure Boot and authenticated variables against updates made by efitools, sbsigntool and
/// OpenSSL at test time (spec/semantics.md, authenticated variables).
@Suite(.enabled(if: SecureBootTools.available, "openssl, efitools and sbsigntool are needed"))
struct SecureBootTests {
    typealias Service = VariableService<Libcrypto, MemoryJournal>
    var tools: SecureBootTools { SecureBootTools.shared! }

    static let global = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
    static let imageSecurity = "d719b2cb-3d3a-4596-a3bc-dad00e67656f"
    static let privateGUID = "15edf297-e832-4d30-8200-a525a931e33e"
    /// NV|BS|RT|AT, and the same with APPEND_WRITE.
    static let authenticated: UInt32 = 0x27
    static let appendAuthenticated: UInt32 = 0x67

    static func key(_ name: String, _ guid: String) -> VariableKey {
        VariableKey(guid: EFIGUID(text: guid)!, name: VariableName(name)!)
    }
    static let pk = key("PK", global), kek = key("KEK", global)
    static let db = key("db", imageSecurity), dbx = key("dbx", imageSecurity)

    func set(_ service: Service, _ key: VariableKey, _ attributes: UInt32, _ data: [UInt8]) -> EFIStatus {
        do {
            try service.setVariable(key, attributes: attributes, data: data)
            return .success
        } catch {
            return error
        }
    }

    func value(_ service: Service, _ name: String, _ guid: String = global) -> [UInt8]? {
        try? service.getVariable(Self.key(name, guid)).data
    }

    /// The payload of an AUTHENTICATION_2 update (what follows 16 + dwLength bytes).
    func payload(of update: [UInt8]) -> [UInt8] {
        let length = Int(update[16]) | Int(update[17]) << 8 | Int(update[18]) << 16 | Int(update[19]) << 24
        return Array(update[(16 + length)...])
    }

    /// A service in User mode: PK = "PK", KEK = "KEK", both written at 2026-01-01.
    func userMode(_ configuration: ServiceConfiguration = ServiceConfiguration()) throws -> Service {
        let service = Service(configuration: configuration)
        let pkUpdate = try tools.signedUpdate("PK", payload: tools.signatureList(["PK"]), signer: "PK", time: "2026-01-01 00:00:00")
        #expect(set(service, Self.pk, Self.authenticated, pkUpdate) == .success)
        let kekUpdate = try tools.signedUpdate("KEK", payload: tools.signatureList(["KEK"]), signer: "PK", time: "2026-01-01 00:00:00")
        #expect(set(service, Self.kek, Self.authenticated, kekUpdate) == .success)
        return service
    }

    // MARK: The key hierarchy

    @Test func enrollingPKLeavesSetupModeAndTurnsSecureBootOn() throws {
        let service = Service()
        #expect(value(service, "SetupMode") == [1] && value(service, "SecureBoot") == [0])
        let esl = try tools.signatureList(["PK"])
        let update = try tools.signedUpdate("PK", payload: esl, signer: "PK", time: "2026-01-01 00:00:00")
        #expect(set(service, Self.pk, Self.authenticated, update) == .success)
        #expect(value(service, "PK") == esl)
        #expect(value(service, "SetupMode") == [0] && value(service, "SecureBoot") == [1])
        #expect(value(service, "AuditMode") == [0] && value(service, "DeployedMode") == [0])
        #expect(value(service, "SecureBootEnable", "f0a30bc7-af08-4556-99c4-001009c93a44") == [1])
        #expect(try service.getVariable(Self.pk).attributes.rawValue == Self.authenticated)
        // The mode survives a reset: it follows from PK.
        service.platformReset()
        #expect(value(service, "SetupMode") == [0] && value(service, "SecureBoot") == [1])
    }

    @Test func kekSignedByPKThenDbAppendAndDeleteSignedByKEK() throws {
        let service = try userMode()
        let first = try tools.signatureList(["Owner"])
        let add = try tools.signedUpdate("db", payload: first, signer: "KEK", time: "2026-02-01 00:00:00")
        #expect(set(service, Self.db, Self.authenticated, add) == .success)
        let second = try tools.signatureList(["Stranger"])
        let append = try tools.signedUpdate("db", payload: second, signer: "KEK", time: "2026-01-15 00:00:00", append: true)
        #expect(set(service, Self.db, Self.appendAuthenticated, append) == .success)
        #expect(value(service, "db", Self.imageSecurity) == first + second)
        // The append kept the later timestamp, so a rewrite dated between the two fails.
        let between = try tools.signedUpdate("db", payload: first, signer: "KEK", time: "2026-01-20 00:00:00")
        #expect(set(service, Self.db, Self.authenticated, between) == .securityViolation)
        // A signed empty payload deletes.
        let delete = try tools.signedUpdate("db", payload: [], signer: "KEK", time: "2026-03-01 00:00:00")
        #expect(set(service, Self.db, Self.authenticated, delete) == .success)
        #expect(value(service, "db", Self.imageSecurity) == nil)
    }

    @Test func pkMaySignTheDatabasesToo() throws {
        let service = try userMode()
        let update = try tools.signedUpdate("dbx", payload: tools.signatureList(["Stranger"]), signer: "PK", time: "2026-02-01 00:00:00")
        #expect(set(service, Self.dbx, Self.authenticated, update) == .success)
    }

    @Test func pkRotationAndReturnToSetupMode() throws {
        let service = try userMode()
        let rotate = try tools.signedUpdate("PK", payload: tools.signatureList(["PK2"]), signer: "PK", time: "2026-02-01 00:00:00")
        #expect(set(service, Self.pk, Self.authenticated, rotate) == .success)
        #expect(value(service, "SetupMode") == [0])
        // The old PK no longer signs anything; the new one does.
        let oldSigned = try tools.signedUpdate("KEK", payload: tools.signatureList(["KEK2"]), signer: "PK", time: "2026-03-01 00:00:00")
        #expect(set(service, Self.kek, Self.authenticated, oldSigned) == .securityViolation)
        let newSigned = try tools.signedUpdate("KEK", payload: tools.signatureList(["KEK2"]), signer: "PK2", time: "2026-03-01 00:00:00")
        #expect(set(service, Self.kek, Self.authenticated, newSigned) == .success)
        // Deleting PK (a signed empty list) returns to setup mode at once.
        let delete = try tools.signedUpdate("PK", payload: [], signer: "PK2", time: "2026-04-01 00:00:00")
        #expect(set(service, Self.pk, Self.authenticated, delete) == .success)
        #expect(value(service, "PK") == nil)
        #expect(value(service, "SetupMode") == [1] && value(service, "SecureBoot") == [0])
        #expect(value(service, "SecureBootEnable", "f0a30bc7-af08-4556-99c4-001009c93a44") == nil)
        // In setup mode KEK is written without a signature check.
        let unsigned = try tools.signedUpdate("KEK", payload: tools.signatureList(["KEK"]), signer: "Stranger", time: "2020-01-01 00:00:00")
        #expect(set(service, Self.kek, Self.authenticated, unsigned) == .success)
    }

    @Test func atRuntimeSecureBootKeepsItsBootValue() throws {
        let service = try userMode()
        service.signalExitBootServices()
        let delete = try tools.signedUpdate("PK", payload: [], signer: "PK", time: "2026-02-01 00:00:00")
        #expect(set(service, Self.pk, Self.authenticated, delete) == .success)
        #expect(value(service, "SetupMode") == [1] && value(service, "SecureBoot") == [1])
    }

    @Test func databaseUpdateWithoutKEKIsNotFound() throws {
        // edk2 returns the failed KEK lookup's status.
        let service = Service()
        let pkUpdate = try tools.signedUpdate("PK", payload: tools.signatureList(["PK"]), signer: "PK", time: "2026-01-01 00:00:00")
        #expect(set(service, Self.pk, Self.authenticated, pkUpdate) == .success)
        let db = try tools.signedUpdate("db", payload: tools.signatureList(["Owner"]), signer: "Stranger", time: "2026-02-01 00:00:00")
        #expect(set(service, Self.db, Self.authenticated, db) == .notFound)
    }

    // MARK: Refused updates

    @Test func wrongSignersAreRefused() throws {
        let service = try userMode()
        let esl = try tools.signatureList(["Owner"])
        let byStranger = try tools.signedUpdate("db", payload: esl, signer: "Stranger", time: "2026-02-01 00:00:00")
        #expect(set(service, Self.db, Self.authenticated, byStranger) == .securityViolation)
        // PK must be signed by PK itself, not by KEK.
        let pkByKEK = try tools.signedUpdate("PK", payload: tools.signatureList(["PK2"]), signer: "KEK", time: "2026-02-01 00:00:00")
        #expect(set(service, Self.pk, Self.authenticated, pkByKEK) == .securityViolation)
        let kekByKEK = try tools.signedUpdate("KEK", payload: tools.signatureList(["KEK2"]), signer: "KEK", time: "2026-02-01 00:00:00")
        #expect(set(service, Self.kek, Self.authenticated, kekByKEK) == .securityViolation)
        #expect(value(service, "db", Self.imageSecurity) == nil)
        #expect(value(service, "PK") == (try tools.signatureList(["PK"])))
    }

    @Test func tamperedUpdatesAreRefused() throws {
        let service = try userMode()
        let update = try tools.signedUpdate("db", payload: tools.signatureList(["Owner"]), signer: "KEK", time: "2026-02-01 00:00:00")
        var payloadFlip = update
        payloadFlip[payloadFlip.count - 40] ^= 0x01
        #expect(set(service, Self.db, Self.authenticated, payloadFlip) == .securityViolation)
        var timeFlip = update
        timeFlip[6] ^= 0x01  // Second
        #expect(set(service, Self.db, Self.authenticated, timeFlip) == .securityViolation)
        // The same bytes under another name, or with other attributes, do not verify.
        #expect(set(service, Self.dbx, Self.authenticated, update) == .securityViolation)
        #expect(set(service, Self.db, Self.appendAuthenticated, update) == .securityViolation)
        // Nothing was stored along the way; the genuine update still applies.
        #expect(value(service, "db", Self.imageSecurity) == nil)
        #expect(set(service, Self.db, Self.authenticated, update) == .success)
    }

    @Test func replayedAndOlderUpdatesAreRefused() throws {
        let service = try userMode()
        let esl = try tools.signatureList(["Owner"])
        let newer = try tools.signedUpdate("db", payload: esl, signer: "KEK", time: "2026-06-01 00:00:00")
        let older = try tools.signedUpdate("db", payload: esl, signer: "KEK", time: "2026-05-01 00:00:00")
        #expect(set(service, Self.db, Self.authenticated, newer) == .success)
        #expect(set(service, Self.db, Self.authenticated, newer) == .securityViolation)
        #expect(set(service, Self.db, Self.authenticated, older) == .securityViolation)
        // An append is not ordered (Microsoft's updates all carry 2010-03-06).
        let olderAppend = try tools.signedUpdate("db", payload: tools.signatureList(["Stranger"]), signer: "KEK",
                                                 time: "2020-01-01 00:00:00", append: true)
        #expect(set(service, Self.db, Self.appendAuthenticated, olderAppend) == .success)
    }

    @Test func unsignedDeletesAreRefused() throws {
        let service = try userMode()
        let update = try tools.signedUpdate("db", payload: tools.signatureList(["Owner"]), signer: "KEK", time: "2026-02-01 00:00:00")
        #expect(set(service, Self.db, Self.authenticated, update) == .success)
        // A plain delete: the key variables need NV and AT (edk2 ProcessVarWithPk).
        #expect(set(service, Self.db, 0, []) == .invalidParameter)
        #expect(set(service, Self.pk, 0, []) == .invalidParameter)
        // DataSize 0 with AT cannot hold the descriptor.
        #expect(set(service, Self.db, Self.authenticated, []) == .securityViolation)
        // A descriptor with no PKCS#7 at all.
        let bare = Authentication2.descriptor(time: Authentication2.time(2027, 1, 1), pkcs7: [])
        #expect(set(service, Self.db, Self.authenticated, bare) == .securityViolation)
        #expect(value(service, "db", Self.imageSecurity) != nil)
    }

    @Test func malformedDescriptorsAreSecurityViolations() throws {
        let service = try userMode()
        let update = try tools.signedUpdate("db", payload: tools.signatureList(["Owner"]), signer: "KEK", time: "2026-02-01 00:00:00")
        // Truncated inside the WIN_CERTIFICATE header, and cut short of dwLength.
        #expect(set(service, Self.db, Self.authenticated, Array(update.prefix(30))) == .securityViolation)
        #expect(set(service, Self.db, Self.authenticated, Array(update.prefix(200))) == .securityViolation)
        // dwLength below the 24-byte header.
        var short = update
        short[16] = 23; short[17] = 0; short[18] = 0; short[19] = 0
        #expect(set(service, Self.db, Self.authenticated, short) == .securityViolation)
        // Another certificate type (WIN_CERT_TYPE_PKCS_SIGNED_DATA = 0x0002), another CertType GUID.
        var type = update
        type[22] = 0x02; type[23] = 0x00
        #expect(set(service, Self.db, Self.authenticated, type) == .securityViolation)
        var certType = update
        certType[24] ^= 0xFF
        #expect(set(service, Self.db, Self.authenticated, certType) == .securityViolation)
        // Garbage where the PKCS#7 should be.
        var garbage = update
        for index in 40..<60 { garbage[index] = 0x55 }
        #expect(set(service, Self.db, Self.authenticated, garbage) == .securityViolation)
    }

    /// Signs `payload` for `variable` ourselves with `openssl smime` (ContentInfo-wrapped
    /// PKCS#7) over the documented signed-content layout, with the given EFI_TIME.
    func smimeUpdate(_ variable: String, _ guid: String, attributes: UInt32, time: [UInt8], payload: [UInt8],
                     signer: String, digest: String = "sha256") throws -> [UInt8] {
        let content = Authentication2.signedContent(name: variable, guid: guid, attributes: attributes, time: time, payload: payload)
        let signature = try tools.smimeSignature(content, signer: signer, digest: digest)
        return Authentication2.descriptor(time: time, pkcs7: signature) + payload
    }

    @Test func contentInfoWrappedSignaturesAndTheTimeFieldRules() throws {
        let service = try userMode()
        let esl = try tools.signatureList(["Owner"])
        // A correctly signed update whose EFI_TIME has a non-zero pad or nanosecond is refused.
        let pad = try smimeUpdate("db", Self.imageSecurity, attributes: Self.authenticated,
                                  time: Authentication2.time(2026, 2, 1, pad1: 1), payload: esl, signer: "KEK")
        #expect(set(service, Self.db, Self.authenticated, pad) == .securityViolation)
        let nanosecond = try smimeUpdate("db", Self.imageSecurity, attributes: Self.authenticated,
                                         time: Authentication2.time(2026, 2, 1, nanosecond: 5), payload: esl, signer: "KEK")
        #expect(set(service, Self.db, Self.authenticated, nanosecond) == .securityViolation)
        // SHA-1 is not one of the digests edk2 accepts; SHA-384 is.
        let sha1 = try smimeUpdate("db", Self.imageSecurity, attributes: Self.authenticated,
                                   time: Authentication2.time(2026, 2, 1), payload: esl, signer: "KEK", digest: "sha1")
        #expect(set(service, Self.db, Self.authenticated, sha1) == .securityViolation)
        // The same with clean fields verifies: the ContentInfo form is accepted, and no range
        // check applies to the date (month 13).
        let clean = try smimeUpdate("db", Self.imageSecurity, attributes: Self.authenticated,
                                    time: Authentication2.time(2026, 13, 1), payload: esl, signer: "KEK", digest: "sha384")
        #expect(set(service, Self.db, Self.authenticated, clean) == .success)
        #expect(value(service, "db", Self.imageSecurity) == esl)
    }

    // MARK: Signature list rules

    /// One EFI_SIGNATURE_LIST from the spec's layout.
    func list(type: String, signatureSize: UInt32, entries: [[UInt8]], header: [UInt8] = []) -> [UInt8] {
        let size = UInt32(28 + header.count + entries.reduce(0) { $0 + $1.count })
        func le(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * UInt32($0))) & 0xff) } }
        return wireGUID(type) + le(size) + le(UInt32(header.count)) + le(signatureSize) + header + entries.flatMap { $0 }
    }

    static let sha256Type = "c1c41626-504c-4092-aca9-41f936934328"

    func hashEntry(_ fill: UInt8, size: Int = 32, owner: String = SecureBootTools.owner) -> [UInt8] {
        wireGUID(owner) + [UInt8](repeating: fill, count: size)
    }

    @Test func everySignatureTypeIsAcceptedWithItsSize() throws {
        // (type, data size without the owner): the UEFI spec's EFI_CERT_* table.
        let types: [(String, Int)] = [
            ("c1c41626-504c-4092-aca9-41f936934328", 32), ("826ca512-cf10-4ac9-b187-be01496631bd", 20),
            ("0b6e5233-a65c-44c9-9407-d9ab83bfc8bd", 28), ("ff3e5307-9fd0-48c9-85f1-8ad56c701e01", 48),
            ("093e0fae-a6c4-4f50-9f1b-d41e2b89c19a", 64), ("3c5766e8-269c-4e34-aa14-ed776e85b3b6", 256),
            ("e2b36190-879b-4a3d-ad8d-f2e7bba32784", 256), ("67f8444f-8743-48f1-a328-1eaab8736080", 256),
            ("3bd2a492-96c0-4079-b420-fcf98ef103ed", 48), ("7076876e-80c2-4ee6-aad2-28b349a6865b", 64),
            ("446dbf63-2502-4cda-bcfa-2465d2b0fe9d", 80),
        ]
        var all: [UInt8] = []
        for (type, size) in types {
            all += list(type: type, signatureSize: UInt32(16 + size), entries: [hashEntry(1, size: size), hashEntry(2, size: size)])
            // One byte short of the type's size is refused.
            let wrong = list(type: type, signatureSize: UInt32(15 + size), entries: [hashEntry(1, size: size - 1)])
            let service = Service()
            let update = try tools.signedUpdate("dbx", payload: wrong, signer: "Stranger", time: "2026-01-01 00:00:00")
            #expect(set(service, Self.dbx, Self.authenticated, update) == .invalidParameter, "type \(type)")
        }
        all += try tools.signatureList(["Owner"])
        let service = Service()
        let update = try tools.signedUpdate("dbx", payload: all, signer: "Stranger", time: "2026-01-01 00:00:00")
        #expect(set(service, Self.dbx, Self.authenticated, update) == .success)
        #expect(value(service, "dbx", Self.imageSecurity) == all)
    }

    @Test func malformedSignatureListsAreInvalidParameter() throws {
        let good = list(type: Self.sha256Type, signatureSize: 48, entries: [hashEntry(1)])
        let cases: [(String, String, [UInt8])] = [
            ("trailing byte", "db", good + [0]),
            ("list size beyond the data", "db", Array(good.dropLast())),
            ("header size not zero", "db", list(type: Self.sha256Type, signatureSize: 48, entries: [hashEntry(1)], header: [0, 0, 0, 0])),
            ("unknown type", "db", list(type: "01234567-89ab-cdef-0123-456789abcdef", signatureSize: 48, entries: [hashEntry(1)])),
            ("short header", "db", Array(good.prefix(20))),
            ("two certificates in PK", "PK", try tools.signatureList(["PK", "PK2"])),
            ("elliptic-curve certificate", "KEK", try tools.signatureList(["EC"])),
        ]
        for (what, variable, payload) in cases {
            let service = Service()
            let key = variable == "PK" ? Self.pk : variable == "KEK" ? Self.kek : Self.db
            let update = try tools.signedUpdate(variable, payload: payload, signer: "Stranger", time: "2026-01-01 00:00:00")
            #expect(set(service, key, Self.authenticated, update) == .invalidParameter, "\(what)")
            #expect(value(service, variable, key.guid.text) == nil, "\(what)")
        }
        // Verified but malformed: the KEK-signed path reports the format error.
        let service = try userMode()
        let bad = try tools.signedUpdate("db", payload: good + [0], signer: "KEK", time: "2026-02-01 00:00:00")
        #expect(set(service, Self.db, Self.authenticated, bad) == .invalidParameter)
    }

    @Test func appendsAddOnlySignaturesNotAlreadyPresent() throws {
        let service = try userMode()
        let first = list(type: Self.sha256Type, signatureSize: 48, entries: [hashEntry(1), hashEntry(2)])
        let add = try tools.signedUpdate("dbx", payload: first, signer: "KEK", time: "2026-02-01 00:00:00")
        #expect(set(service, Self.dbx, Self.authenticated, add) == .success)
        // Hash 2 is there already; hash 3 is new; hash 1 under another owner is a different entry.
        let other = "99999999-8888-7777-6666-555555555555"
        let more = list(type: Self.sha256Type, signatureSize: 48, entries: [hashEntry(2), hashEntry(3), hashEntry(1, owner: other)])
        let append = try tools.signedUpdate("dbx", payload: more, signer: "KEK", time: "2026-01-01 00:00:00", append: true)
        #expect(set(service, Self.dbx, Self.appendAuthenticated, append) == .success)
        let expected = first + list(type: Self.sha256Type, signatureSize: 48, entries: [hashEntry(3), hashEntry(1, owner: other)])
        #expect(value(service, "dbx", Self.imageSecurity) == expected)
        // Appending only known signatures changes nothing but succeeds.
        #expect(set(service, Self.dbx, Self.appendAuthenticated, append) == .success)
        #expect(value(service, "dbx", Self.imageSecurity) == expected)
    }

    // MARK: Real Microsoft updates

    @Test
    func microsoftDbxAndDbUpdatesApplyUnderTheMicrosoftKEKs() throws {
        let service = Service()
        let pk = try tools.signedUpdate("PK", payload: tools.signatureList(["PK"]), signer: "PK", time: "2026-01-01 00:00:00")
        #expect(set(service, Self.pk, Self.authenticated, pk) == .success)
        // KEK: both Microsoft KEK CAs, as X.509 lists made by cert-to-efi-sig-list, signed by PK.
        let microsoft = TestVectors.url("microsoft")
        for (name, file) in [("MSKEK2011", "MicCorKEKCA2011_2011-06-24.der"), ("MSKEK2023", "microsoft-corporation-kek-2k-ca-2023.der")] {
            try tools.run("openssl", "x509", "-inform", "DER", "-in", microsoft.appendingPathComponent(file).path, "-out", "\(name).crt")
        }
        let kek = try tools.signedUpdate("KEK", payload: tools.signatureList(["MSKEK2011", "MSKEK2023"]), signer: "PK", time: "2026-01-01 00:00:00")
        #expect(set(service, Self.kek, Self.authenticated, kek) == .success)

        let dbxUpdate = [UInt8](try Data(contentsOf: microsoft.appendingPathComponent("DBXUpdate-amd64.bin")))
        let dbUpdate = [UInt8](try Data(contentsOf: microsoft.appendingPathComponent("DBUpdate2024-amd64.bin")))
        // Microsoft signs the attributes with APPEND_WRITE: as a plain write they do not verify.
        #expect(set(service, Self.dbx, Self.authenticated, dbxUpdate) == .securityViolation)
        #expect(set(service, Self.dbx, Self.appendAuthenticated, dbxUpdate) == .success)
        #expect(set(service, Self.db, Self.appendAuthenticated, dbUpdate) == .success)
        #expect(value(service, "dbx", Self.imageSecurity) == payload(of: dbxUpdate))
        #expect(value(service, "db", Self.imageSecurity) == payload(of: dbUpdate))
        // 443 SHA-256 entries in one list (reference §5.1).
        let dbx = try #require(value(service, "dbx", Self.imageSecurity))
        #expect(dbx.count == 28 + 443 * 48)
        // Applying them again adds nothing.
        #expect(set(service, Self.dbx, Self.appendAuthenticated, dbxUpdate) == .success)
        #expect(value(service, "dbx", Self.imageSecurity) == dbx)
        // They do not verify when KEK holds only our own key.
        let other = try userMode()
        #expect(set(other, Self.dbx, Self.appendAuthenticated, dbxUpdate) == .securityViolation)
    }

    // MARK: Private authenticated variables

    @Test func privateVariablesAreBoundToTheirFirstSigner() throws {
        let service = Service()
        let key = Self.key("MyVar", Self.privateGUID)
        // Created by sbvarsign (bare SignedData with signed attributes).
        let create = try tools.sbvarsign("MyVar", guid: Self.privateGUID, payload: Array("0123456789".utf8), signer: "Owner")
        #expect(set(service, key, Self.authenticated, create) == .success)
        #expect(value(service, "MyVar", Self.privateGUID) == Array("0123456789".utf8))
        // Later updates (sign-efi-sig-list with -g for the GUID) need the same certificate:
        // the same CN with another key is refused (FWTS AuthVarCreateDiff), as is a stranger.
        let later = "2099-01-01 00:00:00"
        let twin = try signedPrivate(Array("twin".utf8), signer: "OwnerTwin", time: later)
        #expect(set(service, key, Self.authenticated, twin) == .securityViolation)
        let stranger = try signedPrivate(Array("stranger".utf8), signer: "Stranger", time: later)
        #expect(set(service, key, Self.authenticated, stranger) == .securityViolation)
        let update = try signedPrivate(Array("ABCDEF".utf8), signer: "Owner", time: later)
        #expect(set(service, key, Self.authenticated, update) == .success)
        #expect(value(service, "MyVar", Self.privateGUID) == Array("ABCDEF".utf8))
        // Under another GUID the same bytes do not verify.
        #expect(set(service, Self.key("MyVar", Self.global), Self.authenticated, update) == .securityViolation)
        // Append, then plain writes and deletes are refused.
        let append = try signedPrivate(Array("+".utf8), signer: "Owner", time: "2000-01-01 00:00:00", append: true)
        #expect(set(service, key, Self.appendAuthenticated, append) == .success)
        #expect(value(service, "MyVar", Self.privateGUID) == Array("ABCDEF+".utf8))
        #expect(set(service, key, 0, []) == .writeProtected)
        #expect(set(service, key, 0x07, [1]) == .invalidParameter)
        // A signed delete frees the name; another key may then create it.
        let delete = try signedPrivate([], signer: "Owner", time: "2099-06-01 00:00:00")
        #expect(set(service, key, Self.authenticated, delete) == .success)
        #expect(value(service, "MyVar", Self.privateGUID) == nil)
        #expect(set(service, key, Self.authenticated, twin) == .success)
    }

    func signedPrivate(_ payload: [UInt8], signer: String, time: String, append: Bool = false) throws -> [UInt8] {
        let attributes = append ? Self.appendAuthenticated : Self.authenticated
        let parts = time.split(whereSeparator: { $0 == "-" || $0 == " " || $0 == ":" }).map { Int($0)! }
        let efiTime = Authentication2.time(UInt16(parts[0]), UInt8(parts[1]), UInt8(parts[2]), UInt8(parts[3]), UInt8(parts[4]), UInt8(parts[5]))
        return try smimeUpdate("MyVar", Self.privateGUID, attributes: attributes, time: efiTime, payload: payload, signer: signer)
    }

    // MARK: Status variables and modes

    @Test func statusVariablesAreReadOnly() throws {
        let service = Service()
        for (name, guid, attributes) in [("SetupMode", Self.global, UInt32(6)), ("SecureBoot", Self.global, 6),
                                         ("SignatureSupport", Self.global, 6), ("VendorKeys", Self.global, 6),
                                         ("VendorKeysNv", "9073e4e0-60ec-4b6e-9903-4c223c260f3c", 0x03)] {
            #expect(set(service, Self.key(name, guid), attributes, [0]) == .writeProtected, "\(name)")
            #expect(set(service, Self.key(name, guid), 0, []) == .writeProtected, "\(name)")
        }
        #expect(value(service, "SetupMode") == [1])
        // edk2's SignatureSupport: SHA-1, SHA-256, SHA-384, SHA-512, RSA-2048, X.509.
        let support = ["826ca512-cf10-4ac9-b187-be01496631bd", "c1c41626-504c-4092-aca9-41f936934328",
                       "ff3e5307-9fd0-48c9-85f1-8ad56c701e01", "093e0fae-a6c4-4f50-9f1b-d41e2b89c19a",
                       "3c5766e8-269c-4e34-aa14-ed776e85b3b6", "a5c059a1-94e4-4aa7-87b5-ab155c2bf072"]
        #expect(value(service, "SignatureSupport") == support.flatMap(wireGUID))
    }

    @Test func auditModeThenDeployedMode() throws {
        let service = Service()
        #expect(set(service, Self.key("DeployedMode", Self.global), 6, [1]) == .writeProtected)
        #expect(set(service, Self.key("AuditMode", Self.global), 6, [2]) == .invalidParameter)
        #expect(set(service, Self.key("AuditMode", Self.global), 6, [1]) == .success)
        #expect(value(service, "AuditMode") == [1] && value(service, "SetupMode") == [1])
        #expect(set(service, Self.key("AuditMode", Self.global), 6, [0]) == .writeProtected)
        // Enrolling PK in Audit mode enters Deployed mode, which survives a reset.
        let pk = try tools.signedUpdate("PK", payload: tools.signatureList(["PK"]), signer: "PK", time: "2026-01-01 00:00:00")
        #expect(set(service, Self.pk, Self.authenticated, pk) == .success)
        service.platformReset()
        #expect(value(service, "DeployedMode") == [1] && value(service, "AuditMode") == [0])
        #expect(value(service, "SetupMode") == [0] && value(service, "SecureBoot") == [1])
        #expect(set(service, Self.key("DeployedMode", Self.global), 6, [0]) == .writeProtected)
        // Deleting PK leaves Deployed mode for Setup mode.
        let delete = try tools.signedUpdate("PK", payload: [], signer: "PK", time: "2026-02-01 00:00:00")
        #expect(set(service, Self.pk, Self.authenticated, delete) == .success)
        service.platformReset()
        #expect(value(service, "DeployedMode") == [0] && value(service, "SetupMode") == [1])
    }

    @Test func userModeToDeployedAndToAudit() throws {
        let service = try userMode()
        // User → Audit deletes PK without a signature, so only the platform may ask (before EndOfDxe).
        service.signalEndOfDxe()
        #expect(set(service, Self.key("AuditMode", Self.global), 6, [1]) == .securityViolation)
        #expect(value(service, "PK") != nil)
        #expect(set(service, Self.key("DeployedMode", Self.global), 6, [1]) == .success)
        #expect(value(service, "DeployedMode") == [1] && value(service, "SecureBoot") == [1])

        let early = try userMode()
        #expect(set(early, Self.key("AuditMode", Self.global), 6, [1]) == .success)
        #expect(value(early, "PK") == nil && value(early, "AuditMode") == [1] && value(early, "SetupMode") == [1])
        early.signalExitBootServices()
        #expect(set(early, Self.key("DeployedMode", Self.global), 6, [1]) == .writeProtected)
    }

    @Test func customModeSkipsSignaturesOnlyWhileThePlatformIsPresent() throws {
        let customMode = Self.key("CustomMode", "c076ec0c-7028-4399-a072-71ee5c448b9f")
        let service = try userMode()
        #expect(value(service, "VendorKeys") == [1])
        #expect(set(service, customMode, 0x03, [1]) == .success)
        let unsigned = try tools.signedUpdate("KEK", payload: tools.signatureList(["KEK2"]), signer: "Stranger", time: "2000-01-01 00:00:00")
        #expect(set(service, Self.kek, Self.authenticated, unsigned) == .success)
        // Keys changed without a signature outside setup mode: no longer only the vendor's.
        #expect(value(service, "VendorKeys") == [0])
        #expect(value(service, "VendorKeysNv", "9073e4e0-60ec-4b6e-9903-4c223c260f3c") == [0])
        // After EndOfDxe nobody is present: custom mode no longer applies and cannot be set.
        service.signalEndOfDxe()
        let again = try tools.signedUpdate("KEK", payload: tools.signatureList(["KEK"]), signer: "Stranger", time: "2000-01-02 00:00:00")
        #expect(set(service, Self.kek, Self.authenticated, again) == .securityViolation)
        #expect(set(service, customMode, 0x03, [0]) == .securityViolation)
        // A reset returns CustomMode to 0; VendorKeys stays 0.
        service.platformReset()
        #expect(value(service, "CustomMode", "c076ec0c-7028-4399-a072-71ee5c448b9f") == [0])
        #expect(value(service, "VendorKeys") == [0])

        var configuration = ServiceConfiguration()
        configuration.allowCustomMode = false
        let locked = Service(configuration: configuration)
        #expect(set(locked, customMode, 0x03, [1]) == .writeProtected)
    }

    // MARK: Our own signer (host tooling and the benchmark)

    @Test func ourSignerMatchesSignEfiSigListByteForByte() throws {
        // Same certificate, key, payload and timestamp: `varstore sign` (SigningIdentity) and
        // efitools' sign-efi-sig-list produce the same bytes — set, append (zero time), delete.
        let identity = try SigningIdentity.load(certificatePEM: tools.file("KEK.crt"), keyPEM: tools.file("KEK.key"))
        let esl = try tools.signatureList(["Owner"])
        let cases: [(String, VariableKey, [UInt8], Bool, String?, EFITime)] = [
            ("db", Self.db, esl, false, "2026-01-02 03:04:05", EFITime(year: 2026, month: 1, day: 2, hour: 3, minute: 4, second: 5)),
            ("dbx", Self.dbx, esl, true, nil, .zero),
            ("KEK", Self.kek, [], false, "2030-12-31 23:59:59", EFITime(year: 2030, month: 12, day: 31, hour: 23, minute: 59, second: 59)),
        ]
        for (name, key, payload, append, time, efiTime) in cases {
            let reference: [UInt8]
            if let time {
                reference = try tools.signedUpdate(name, payload: payload, signer: "KEK", time: time, append: append)
            } else {
                let file = "ours-\(UUID().uuidString)"
                try tools.write(payload, to: "\(file).in")
                try tools.run("sign-efi-sig-list", "-a", "-k", "KEK.key", "-c", "KEK.crt", name, "\(file).in", "\(file).auth")
                reference = try tools.file("\(file).auth")
            }
            let ours = try identity.authenticatedUpdate(for: key, attributes: append ? 0x67 : 0x27, time: efiTime, payload: payload)
            #expect(ours == reference, "\(name)")
        }
        // A certificate with another key is refused.
        #expect(throws: SigningIdentity.Failure.self) {
            _ = try SigningIdentity.load(certificatePEM: tools.file("KEK.crt"), keyPEM: tools.file("PK.key"))
        }
    }

    @Test func aKeyDatabasePayloadIsACertificateListOrARefusal() throws {
        // `varstore sign db cert.crt …` once wrapped the PEM text itself as the payload. A
        // certificate becomes the list efitools' cert-to-efi-sig-list makes of it (same owner);
        // a signature list passes as it is; anything else is refused.
        let owner = EFIGUID(text: SecureBootTools.owner)!
        let reference = try tools.signatureList(["KEK"])
        #expect(try Enrollment.signatureListPayload(tools.file("KEK.crt"), path: "KEK.crt", owner: owner) == reference)
        #expect(try Enrollment.signatureListPayload(tools.certificateDER("KEK"), path: "KEK.der", owner: owner) == reference)
        #expect(try Enrollment.signatureListPayload(reference, path: "KEK.esl", owner: owner) == reference)
        for junk in [Array("hello, world\n".utf8), [UInt8](repeating: 0x30, count: 40), Array(reference.dropLast())] {
            #expect(throws: Enrollment.Failure.self) {
                _ = try Enrollment.signatureListPayload(junk, path: "junk", owner: owner)
            }
        }
    }

    @Test func updatesFromSigningIdentityVerifyWithOpenSSLAndApply() throws {
        let identity = try SigningIdentity.generate(commonName: "Host Signer")
        let key = Self.key("MyVar", Self.privateGUID)
        let time = EFITime(year: 2026, month: 3, day: 1)
        let update = try identity.authenticatedUpdate(for: key, attributes: Self.authenticated, time: time, payload: [1, 2, 3])
        // openssl verifies the signature over the documented content; it reads only a
        // ContentInfo, so wrap the bare SignedData (2-byte DER lengths, as edk2 does).
        let length = Int(update[16]) | Int(update[17]) << 8
        let signedData = Array(update[40..<(16 + length)])
        func be16(_ value: Int) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }
        let oid: [UInt8] = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]
        let wrapped = [0x30, 0x82] + be16(signedData.count + 15) + oid + [0xa0, 0x82] + be16(signedData.count) + signedData
        let content = Authentication2.signedContent(name: "MyVar", guid: Self.privateGUID, attributes: Self.authenticated,
                                                    time: Authentication2.time(2026, 3, 1), payload: [1, 2, 3])
        try tools.write(wrapped, to: "host-signed.p7")
        try tools.write(content, to: "host-signed.content")
        try tools.write(identity.certificateDER, to: "host-signer.der")
        try tools.run("openssl", "x509", "-inform", "DER", "-in", "host-signer.der", "-out", "host-signer.pem")
        try tools.run("openssl", "smime", "-verify", "-binary", "-inform", "DER", "-in", "host-signed.p7",
                      "-content", "host-signed.content", "-CAfile", "host-signer.pem", "-partial_chain", "-out", "/dev/null")
        let service = Service()
        #expect(set(service, key, Self.authenticated, update) == .success)
        #expect(value(service, "MyVar", Self.privateGUID) == [1, 2, 3])
    }

    // MARK: Failing closed (review findings)

    @Test func secureBootStaysOnWhenItsEnableRecordIsMissing() throws {
        // PK enrolled from the OS (at runtime): SecureBootEnable is not written then. After a
        // reset the platform is in User mode and must boot with Secure Boot on.
        let service = Service()
        service.signalExitBootServices()
        let pk = try tools.signedUpdate("PK", payload: tools.signatureList(["PK"]), signer: "PK", time: "2026-01-01 00:00:00")
        #expect(set(service, Self.pk, Self.authenticated, pk) == .success)
        #expect(value(service, "SecureBootEnable", "f0a30bc7-af08-4556-99c4-001009c93a44") == nil)
        service.platformReset()
        #expect(value(service, "SetupMode") == [0] && value(service, "SecureBoot") == [1])
    }

    @Test func aModeThatCannotBePersistedIsRefused() throws {
        var small = ServiceConfiguration()
        small.nonVolatileStorageSize = 0x4000
        let service = try userMode(small)
        // Fill the non-volatile store so the 91-byte SecureBootMode record cannot fit.
        let remaining = try service.queryVariableInfo(attributes: 0x07).remainingVariableStorageSize
        let filler = Self.key("Filler", Self.privateGUID)
        #expect(set(service, filler, 0x07, [UInt8](repeating: 1, count: Int(remaining) - 60 - 14 - 50)) == .success)
        #expect(set(service, Self.key("DeployedMode", Self.global), 6, [1]) == .outOfResources)
        #expect(value(service, "DeployedMode") == [0] && value(service, "SetupMode") == [0])
        service.platformReset()
        #expect(value(service, "DeployedMode") == [0])
    }

    @Test func nobodyIsPresentAtRuntimeEvenWithoutEndOfDxe() throws {
        let customMode = Self.key("CustomMode", "c076ec0c-7028-4399-a072-71ee5c448b9f")
        let service = try userMode()
        #expect(set(service, customMode, 0x03, [1]) == .success)
        service.signalExitBootServices()
        let unsigned = try tools.signedUpdate("KEK", payload: tools.signatureList(["KEK2"]), signer: "Stranger", time: "2030-01-01 00:00:00")
        #expect(set(service, Self.kek, Self.authenticated, unsigned) == .securityViolation)
    }
}
