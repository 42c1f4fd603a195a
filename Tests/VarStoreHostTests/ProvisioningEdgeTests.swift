import Foundation
import Testing
@testable import VarStoreCore
import VarStoreCrypto
@testable import VarStoreHost

/// Issue 12: the edges an operator or integrator touches may not brick or weaken an image.
/// Nothing reaches the journal that the store cannot read back, a refused input leaves the
/// image byte for byte as it was, and no image is guarded by an empty or short secret.
@Suite struct ProvisioningEdgeTests {
    let directory: URL
    static let secret = [UInt8](repeating: 7, count: 64)
    static let vendorText = "3f1b2a4c-5d6e-4f70-8192-a3b4c5d6e7f8"
    static let vendor = EFIGUID(text: vendorText)!
    static let nvBsRt: VariableAttributes = [.nonVolatile, .bootServiceAccess, .runtimeAccess]

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("varstore-edges-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
    func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(name)))) }

    static func variable(_ name: VariableName, attributes: VariableAttributes = nvBsRt, data: [UInt8] = [1],
                         pin: [UInt8]? = nil) -> Variable {
        Variable(key: VariableKey(guid: vendor, name: name), attributes: attributes, data: data,
                 timestamp: pin == nil ? nil : .zero, certificateDigest: pin)
    }

    /// A 1 MiB image holding one variable, `Keep`.
    func image(_ name: String) throws -> HostJournal.ImageLog {
        let volumeKey = try LUKS2Image.create(path: path(name), size: 1 << 20, secret: .keyFile(Self.secret))
        let log = try LUKS2Image.openStore(path: path(name), volumeKey: volumeKey)
        try log.commit([.put(Self.variable(VariableName("Keep")!))])
        return log
    }

    func reopen(_ name: String) throws -> HostJournal.ImageLog {
        try LUKS2Image.openStore(path: path(name), volumeKey: LUKS2Image.volumeKey(path: path(name), secret: Self.secret))
    }

    // MARK: Secrets

    @Test(arguments: [
        (LUKS2Image.Secret.keyFile([]), "the key file is empty"),
        (.keyFile([UInt8](repeating: 1, count: 31)), "a key file must hold at least 32"),
        (.passphrase([]), "the passphrase is empty"),
        (.passphrase(Array("1234567".utf8)), "a passphrase must have at least 8"),
        // Seven characters in fourteen bytes: characters count, not bytes.
        (.passphrase(Array("ééééééé".utf8)), "the passphrase has 7 characters"),
    ])
    func aWeakSecretMakesNoImage(_ secret: LUKS2Image.Secret, _ message: String) throws {
        #expect {
            try LUKS2Image.create(path: path("weak.img"), size: 1 << 20, secret: secret)
        } throws: { error in
            "\(error)".contains(message)
        }
        #expect(!FileManager.default.fileExists(atPath: path("weak.img")))
    }

    @Test func aWeakSecretGetsNoKeyslotAndTheImageIsUnchanged() throws {
        _ = try image("k.img")
        let before = try bytes("k.img")
        #expect(throws: LUKS2Image.Failure.self) {
            try LUKS2Image.addKeyslot(path: path("k.img"), existing: .keyFile(Self.secret), new: .keyFile([]))
        }
        #expect(throws: LUKS2Image.Failure.self) {
            try LUKS2Image.rekey(path: path("k.img"), secrets: [(.keyFile(Self.secret), "k")], newSecret: .passphrase([0x0A]))
        }
        #expect(try bytes("k.img") == before)
        #expect(LUKS2Image.Secret.keyFile([UInt8](repeating: 1, count: 32)).weakness == nil)
        #expect(LUKS2Image.Secret.passphrase(Array("12345678".utf8)).weakness == nil)
    }

    // MARK: Nothing reaches the journal that the store cannot read back

    @Test func aVariableWithAnEmptyNameIsRefusedBeforeAnythingIsWritten() throws {
        let log = try image("e.img")
        let before = try bytes("e.img")
        #expect(throws: StorageError.unstorable(.emptyName)) {
            try log.commit([.put(Self.variable(VariableName("Fine")!)), .put(Self.variable(.empty))])
        }
        #expect(try bytes("e.img") == before)
        let reopened = try reopen("e.img")
        #expect(reopened.live.all.map(\.name.text) == ["Keep"])
        // The log still takes commits afterwards.
        try reopened.commit([.put(Self.variable(VariableName("After")!))])
        #expect(try reopen("e.img").live.count == 2)
    }

    @Test func aSignerPinLongerThanARecordHoldsIsRefusedBeforeAnythingIsWritten() throws {
        let log = try image("p.img")
        let before = try bytes("p.img")
        let pinned = Self.variable(VariableName("Private")!, attributes: Self.nvBsRt.union(.timeBasedAuthenticatedWriteAccess),
                                   pin: [UInt8](repeating: 0xAB, count: 256))
        #expect(throws: StorageError.unstorable(.pinTooLong(bytes: 256))) { try log.commit([.put(pinned)]) }
        #expect(throws: StorageError.unstorable(.pinTooLong(bytes: 256))) { try log.commit([.replaceInPlace(pinned)]) }
        #expect(try bytes("p.img") == before)
        #expect(try reopen("p.img").live.count == 1)
        // 255 bytes is the most a record holds, and reads back.
        var longest = pinned
        longest.certificateDigest = [UInt8](repeating: 0xAB, count: 255)
        try log.commit([.put(longest)])
        #expect(try reopen("p.img").live.variable(for: longest.key) == longest)
    }

    @Test func aJSONDigestLongerThanARecordHoldsIsRefusedWhenTheFileIsRead() {
        let digest = String(repeating: "ab", count: 256)
        let text = "{\"version\": 2, \"variables\": [{\"guid\": \"\(Self.vendorText)\", \"name\": \"P\", \"attr\": 39, "
            + "\"data\": \"00\", \"digest\": \"\(digest)\"}]}"
        #expect {
            try QEMUJSONStore.parse(Data(text.utf8))
        } throws: { error in
            "\(error)".contains("variables[0] (P): its signer pin (certdb entry or JSON digest) has 256 bytes")
        }
    }

    // MARK: OVMF_VARS.fd

    /// An edk2 firmware volume with an authenticated variable store, laid out from
    /// PiFirmwareVolume.h and VariableFormat.h: FvLength @0x20, "_FVH" @0x28, HeaderLength
    /// @0x30 (0x48); the store header (signature GUID, Size, Format 0x5A, State 0xFE) and then
    /// each variable: StartId 0x55AA, State 0x3F, Attributes, MonotonicCount, TimeStamp,
    /// PubKeyIndex, NameSize @36, DataSize @40, VendorGuid @44, name, data, 4-byte aligned.
    static func firmwareVolume(_ variables: [(name: [UInt8], attributes: UInt32, data: [UInt8])], size: Int = 0x4000) -> [UInt8] {
        var fv = [UInt8](repeating: 0, count: 0x48)
        fv.replaceSubrange(0x20 ..< 0x28, with: le64(UInt64(size)))
        fv.replaceSubrange(0x28 ..< 0x2C, with: Array("_FVH".utf8))
        fv[0x30] = 0x48
        let storeSize = size - 0x48
        fv += wireGUID("aaf32c78-947b-439a-a180-2e144ec37792") + le32(UInt32(storeSize)) + [0x5A, 0xFE] + [UInt8](repeating: 0, count: 6)
        for variable in variables {
            var header: [UInt8] = [0xAA, 0x55, 0x3F, 0] + le32(variable.attributes) + [UInt8](repeating: 0, count: 8 + 16 + 4)
            header += le32(UInt32(variable.name.count)) + le32(UInt32(variable.data.count)) + wireGUID(vendorText)
            fv += header + variable.name + variable.data
            while fv.count % 4 != 0 { fv.append(0xFF) }
        }
        fv += [UInt8](repeating: 0xFF, count: size - fv.count)
        return fv
    }

    static func ucs2(_ text: String) -> [UInt8] { text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } + [0, 0] }

    @Test func anOVMFVarsFileWithAnEmptyNameIsRefused() throws {
        let fd = Self.firmwareVolume([(Self.ucs2("Boot0000"), 7, [1, 2]), ([0, 0], 7, [3])])
        #expect {
            try OVMFVarsFile.parse(fd)
        } throws: { error in
            "\(error)".contains("has an empty name")
        }
        // Without the empty name the same volume reads.
        #expect(try OVMFVarsFile.parse(Self.firmwareVolume([(Self.ucs2("Boot0000"), 7, [1, 2])])).map(\.name.text) == ["Boot0000"])
    }

    @Test(arguments: [0x4000 - 1, 0x2000, 0x100])
    func aTruncatedOVMFVarsFileIsRefusedNotReadAsAPrefix(_ length: Int) {
        let fd = Self.firmwareVolume([(Self.ucs2("Boot0000"), 7, [1, 2]), (Self.ucs2("Boot0001"), 7, [3])])
        #expect {
            try OVMFVarsFile.parse(Array(fd.prefix(length)))
        } throws: { error in
            "\(error)".contains("truncated")
        }
    }

    // MARK: Provisioning

    @Test(arguments: [0x1, 0x6, 0x17, 0x87, 0x5] as [UInt32])
    func attributesTheServiceNeverStoresNeedRaw(_ attributes: UInt32) throws {
        let log = try image("a.img")
        let before = try bytes("a.img")
        let odd = Self.variable(VariableName("Odd")!, attributes: VariableAttributes(rawValue: attributes))
        #expect {
            try LUKS2Image.provision([odd], into: log)
        } throws: { error in
            "\(error)".contains("attributes 0x\(String(attributes, radix: 16))") && "\(error)".contains("--raw")
        }
        #expect(try bytes("a.img") == before)
        try LUKS2Image.provision([odd], into: log, raw: true)
        #expect(try reopen("a.img").live.variable(for: odd.key) == odd)
    }

    @Test func anImportOverTheCapacityIsRefusedUpFrontWithTheFigures() throws {
        let log = try image("c.img")
        let before = try bytes("c.img")
        let capacity = LUKS2Image.configuration(for: log).nonVolatileStorageSize
        // Each within the per-variable limit; together more than the image holds.
        let count = Int(capacity / 30_000) + 1
        let big = (0 ..< count).map { Self.variable(VariableName("Big\($0)")!, data: [UInt8](repeating: 1, count: 30_000)) }
        let needed = (big + [Self.variable(VariableName("Keep")!)]).reduce(0) { $0 + 60 + $1.name.wireSize + $1.data.count }
        #expect {
            try LUKS2Image.provision(big, into: log)
        } throws: { error in
            "\(error)".contains("would need \(needed) bytes") && "\(error)".contains("the image holds \(capacity)")
        }
        #expect(try bytes("c.img") == before)
    }

    @Test func aVariableOverTheServicesLimitNeedsRaw() throws {
        let log = try image("l.img")
        let huge = Self.variable(VariableName("Huge")!, data: [UInt8](repeating: 2, count: 0x8400))
        #expect {
            try LUKS2Image.provision([huge], into: log)
        } throws: { error in
            "\(error)".contains("accepts at most 33792 per variable")
        }
        try LUKS2Image.provision([huge], into: log, raw: true)
        #expect(try reopen("l.img").live.variable(for: huge.key) == huge)
    }

    /// `create` reports the store it formatted without opening the image again: that store is
    /// what an open finds, and the volume key it returns opens the image's keyslot.
    @Test func theStoreCreateFormatsIsTheOneAnOpenFinds() throws {
        let created = try LUKS2Image.createStore(path: path("n.img"), size: 1 << 20, secret: .keyFile(Self.secret))
        let opened = try reopen("n.img")
        #expect(created.volumeKey == (try LUKS2Image.volumeKey(path: path("n.img"), secret: Self.secret)))
        #expect(created.log.generation == opened.generation)
        #expect(created.log.digest == opened.digest)
        #expect(created.log.device.size == opened.device.size)
        #expect(created.log.live.all.isEmpty && opened.live.all.isEmpty)
    }

    /// `enroll --microsoft` writes the bytes of Microsoft's published objects (Tests/Vectors),
    /// as Scripts/generate-microsoft-keys.py embedded them.
    @Test func microsoftKeysAreThePublishedObjects() throws {
        let microsoft = TestVectors.url("microsoft")
        for (embedded, file) in [(MicrosoftKeys.kekCA2011, "MicCorKEKCA2011_2011-06-24.der"),
                                 (MicrosoftKeys.kekCA2023, "microsoft-corporation-kek-2k-ca-2023.der"),
                                 (MicrosoftKeys.windowsPCA2011, "MicWinProPCA2011_2011-10-19.der"),
                                 (MicrosoftKeys.uefiCA2011, "MicCorUEFCA2011_2011-06-27.der"),
                                 (MicrosoftKeys.windowsUEFICA2023, "windows-uefi-ca-2023.der"),
                                 (MicrosoftKeys.uefiCA2023, "microsoft-uefi-ca-2023.der"),
                                 (MicrosoftKeys.dbxUpdate, "DBXUpdate-amd64.bin")] {
            #expect(embedded == [UInt8](try Data(contentsOf: microsoft.appendingPathComponent(file))), "\(file)")
        }
    }

    // MARK: Files that hold variables

    @Test func aNewJSONStoreIsReadableByItsOwnerOnlyAndAnExistingOneKeepsItsMode() throws {
        let url = directory.appendingPathComponent("vars.json")
        try QEMUJSONStore.save([Self.variable(VariableName("A")!)], to: url)
        #expect(try mode(url) == 0o600)
        chmod(url.path, 0o640)
        try QEMUJSONStore.save([], to: url)
        #expect(try mode(url) == 0o640)
    }

    func mode(_ url: URL) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }
}
