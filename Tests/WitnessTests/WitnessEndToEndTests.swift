import Foundation
import Testing
import VarStoreCore
import VarStoreCrypto
import VarStoreHost

/// spec/rollback.md end to end: `varstore qtest --witness` against a real
/// `varstore-witness serve` on 127.0.0.1, with images made and enrolled by the varstore binary.
@Suite(.serialized)
struct WitnessEndToEndTests {
    /// An enrolled image (test keys, Secure Boot on), its key file and the KEK that signs dbx.
    struct Image {
        let directory: URL
        let path: String
        let keyFile: String
        let kek: SigningIdentity

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("witness-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            path = directory.appendingPathComponent("vars.img").path
            keyFile = directory.appendingPathComponent("vars.key").path
            var key = [UInt8](repeating: 0, count: 64)
            for index in key.indices { key[index] = UInt8.random(in: 0...255) }
            FileManager.default.createFile(atPath: keyFile, contents: Data(key), attributes: [.posixPermissions: 0o600])
            let keys = directory.appendingPathComponent("keys").path
            for arguments in [["create", path, "--size", "1M", "--key-file", keyFile],
                              ["enroll", path, "--key-file", keyFile, "--test-keys", keys, "--secure-boot"]] {
                let result = try Build.run("varstore", arguments)
                guard result.status == 0 else { throw Failure("varstore \(arguments[0]): \(result.err)") }
            }
            kek = try SigningIdentity.load(certificatePEM: Array(try Data(contentsOf: URL(fileURLWithPath: keys + "/KEK.crt"))),
                                           keyPEM: Array(try Data(contentsOf: URL(fileURLWithPath: keys + "/KEK.key"))))
        }

        /// uuid, generation, state digest and witness key, from `varstore inspect --json --witness-key`.
        func inspect() throws -> (uuid: String, generation: UInt64, digest: String, witnessKey: [UInt8]) {
            let result = try Build.run("varstore", ["inspect", path, "--key-file", keyFile, "--witness-key", "--json"])
            guard let object = try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any],
                  let uuid = object["uuid"] as? String, let generation = (object["generation"] as? NSNumber)?.uint64Value,
                  let digest = object["state_digest"] as? String, let key = object["witness_key"] as? String,
                  let keyBytes = Hex.bytes(key) else { throw Failure("inspect: \(result.err)") }
            return (uuid, generation, digest, keyBytes)
        }

        /// A simulator that has finished opening the image (asked the witness for the minimum,
        /// replayed the log) before this returns, as a booted VM has: its first qtest reply
        /// comes only after that, or never if it refused the image.
        func vm(_ witness: WitnessServer, path: String? = nil) throws -> SimulatedVM {
            let vm = try SimulatedVM(["--image", path ?? self.path, "--key-file", keyFile, "--witness", witness.url.absoluteString])
            _ = vm.command("endianness")
            return vm
        }

        func copy(to name: String) throws -> String {
            let target = directory.appendingPathComponent(name).path
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.copyItem(atPath: path, toPath: target)
            return target
        }

        /// A KEK-signed dbx append of one SHA-256 entry.
        func dbxAppend(_ hash: [UInt8]) throws -> [UInt8] {
            var list = SignatureType.sha256.wireBytes
            LittleEndian.append(UInt32(28 + 48), to: &list)
            LittleEndian.append(UInt32(0), to: &list)
            LittleEndian.append(UInt32(48), to: &list)
            list += Enrollment.owner.wireBytes + hash
            return try kek.authenticatedUpdate(for: SecureBootVariable.dbx, attributes: 0x67,
                                               time: EFITime(year: 2026, month: 1, day: 1), payload: list)
        }
    }

    static func setDBX(_ vm: SimulatedVM, _ image: Image, hash: [UInt8]) throws -> EFIStatus {
        vm.client.setVariable(SecureBootVariable.dbx.name, SecureBootVariable.dbx.guid, attributes: 0x67,
                              data: try image.dbxAppend(hash))
    }

    static func dbx(_ vm: SimulatedVM) -> [UInt8] {
        let answer = vm.client.getVariable(SecureBootVariable.dbx.name, SecureBootVariable.dbx.guid, dataSize: 60000)
        return answer.status == .success ? answer.data : []
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        return (0...(haystack.count - needle.count)).contains { Array(haystack[$0 ..< $0 + needle.count]) == needle }
    }

    static func plainSet(_ vm: SimulatedVM, _ name: String, _ value: [UInt8]) -> EFIStatus {
        vm.client.setVariable(VariableName(name)!, EFIGUID(text: "8be4df61-93ca-11d2-aa0d-00e098032b8c")!, attributes: 7, data: value)
    }

    @Test func rolledBackImageIsRefusedAndStaleDBXNeverServed() throws {
        let image = try Image()
        let witness = try WitnessServer(directory: image.directory.appendingPathComponent("witness"))
        defer { witness.stop() }
        try witness.provision(image: image.path, keyFile: image.keyFile)
        let before = try image.copy(to: "before-dbx.img")

        let vm = try image.vm(witness)
        let revoked = [UInt8](repeating: 0xB1, count: 32)
        #expect(try Self.setDBX(vm, image, hash: revoked) == .success)
        #expect(Self.contains(Self.dbx(vm), revoked))
        #expect(vm.shutdown().status == 0)
        let updated = try image.inspect()
        #expect(witness.minimum(updated.uuid).generation == updated.generation)

        try FileManager.default.removeItem(atPath: image.path)
        try FileManager.default.copyItem(atPath: before, toPath: image.path)
        let restored = try image.vm(witness)
        // The simulator refuses before serving anything: no reply to the guest, a named error.
        #expect(restored.command("readw 0xfef10000") == "")
        let end = restored.shutdown()
        #expect(end.status == 1)
        #expect(end.err.contains("older than allowed"))
    }

    @Test func forkedCopiesSecondWitnessedCommitIsRefused() throws {
        let image = try Image()
        let witness = try WitnessServer(directory: image.directory.appendingPathComponent("witness"))
        defer { witness.stop() }
        try witness.provision(image: image.path, keyFile: image.keyFile)
        #expect(try image.vm(witness).shutdown().status == 0)  // the witness records the image
        let copy = try image.copy(to: "fork.img")

        let first = try image.vm(witness)
        let second = try image.vm(witness, path: copy)
        #expect(try Self.setDBX(first, image, hash: [UInt8](repeating: 1, count: 32)) == .success)
        #expect(try Self.setDBX(second, image, hash: [UInt8](repeating: 2, count: 32)) == .deviceError)
        #expect(!Self.contains(Self.dbx(second), [UInt8](repeating: 2, count: 32)))
        #expect(first.shutdown().status == 0)
        #expect(second.shutdown().err.contains("fork"))
    }

    @Test func unreachableWitnessFailsRequiredCommitAndLaterReportsLazyOne() throws {
        let image = try Image()
        let directory = image.directory.appendingPathComponent("witness")
        let witness = try WitnessServer(directory: directory)
        try witness.provision(image: image.path, keyFile: image.keyFile)
        let vm = try image.vm(witness)
        #expect(vm.client.initialize())  // served: it asked the witness and opened
        witness.stop()

        let revoked = [UInt8](repeating: 0xD3, count: 32)
        #expect(try Self.setDBX(vm, image, hash: revoked) == .deviceError)
        #expect(!Self.contains(Self.dbx(vm), revoked))
        #expect(vm.shutdown().status == 0)
        let afterRefusal = try image.inspect()

        // Unchanged: the same generation and state digest as the witness recorded at open.
        let again = try WitnessServer(directory: directory)
        defer { again.stop() }
        #expect(again.minimum(afterRefusal.uuid).generation == afterRefusal.generation)
        #expect(again.minimum(afterRefusal.uuid).digest == afterRefusal.digest)

        // A lazy commit while the witness is away works and is reported at shutdown.
        let lazyVM = try image.vm(again)
        #expect(lazyVM.client.initialize())
        let port = again.port
        again.stop()
        #expect(Self.plainSet(lazyVM, "LazyVar", [1, 2, 3]) == .success)
        let back = try WitnessServer(directory: directory, port: port)
        defer { back.stop() }
        #expect(lazyVM.shutdown().status == 0)
        let after = try image.inspect()
        #expect(after.generation == afterRefusal.generation + 1)
        #expect(back.minimum(after.uuid).generation == after.generation)
        #expect(back.minimum(after.uuid).digest == after.digest)
    }

    @Test func tamperedWrongKeyAndReplayedReportsAreRefused() throws {
        let image = try Image()
        let witness = try WitnessServer(directory: image.directory.appendingPathComponent("witness"))
        defer { witness.stop() }
        try witness.provision(image: image.path, keyFile: image.keyFile)
        #expect(try image.vm(witness).shutdown().status == 0)
        let state = try image.inspect()
        let key = SecretBytes(state.witnessKey)
        func report(_ generation: UInt64, _ digest: UInt8, after previous: UInt64, _ previousDigest: [UInt8],
                    key: SecretBytes) -> [UInt8] {
            WitnessReport(flags: .required, uuid: Array(state.uuid.utf8), generation: generation,
                          digest: [UInt8](repeating: digest, count: 32), previousGeneration: previous,
                          previousDigest: previousDigest)!.encoded(key: key, crypto: Libcrypto())
        }
        let first = report(state.generation + 1, 0xA1, after: state.generation, Hex.bytes(state.digest)!, key: key)
        let second = report(state.generation + 2, 0xA2, after: state.generation + 1, [UInt8](repeating: 0xA1, count: 32), key: key)
        #expect(witness.request("v1/reports", post: first).status == 200)

        for bit in [0, 8 * 60 + 3, 8 * 100, 8 * 163 + 7] {  // magic, digest, previous digest, MAC
            var flipped = second
            flipped[bit / 8] ^= UInt8(1) << UInt8(bit % 8)
            // 400 malformed (the magic) or 403 bad MAC; not merely "not 200", which a dead server passes.
            #expect([400, 403].contains(witness.request("v1/reports", post: flipped).status))
        }
        let wrongKey = report(state.generation + 2, 0xA2, after: state.generation + 1, [UInt8](repeating: 0xA1, count: 32),
                              key: SecretBytes([UInt8](repeating: 7, count: 32)))
        #expect(witness.request("v1/reports", post: wrongKey).status == 403)
        #expect(witness.request("v1/reports", post: second).status == 200)
        let replayed = witness.request("v1/reports", post: first)
        #expect(replayed.status == 409 && replayed.body.contains("rollback"))
        #expect(witness.minimum(state.uuid).generation == state.generation + 2)
    }

    @Test func reportLostToAPowerCutIsResentAndAcceptedOnce() throws {
        let image = try Image()
        let witness = try WitnessServer(directory: image.directory.appendingPathComponent("witness"))
        defer { witness.stop() }
        try witness.provision(image: image.path, keyFile: image.keyFile)
        #expect(try image.vm(witness).shutdown().status == 0)
        let witnessed = try image.inspect()

        let vm = try image.vm(witness)
        #expect(Self.plainSet(vm, "CutVar", [9]) == .success)  // durable, acknowledged, not yet reported
        vm.powerCut()
        let cut = try image.inspect()
        #expect(cut.generation == witnessed.generation + 1)
        #expect(witness.minimum(cut.uuid).generation == witnessed.generation)

        // Reopening re-sends it; the witness takes it.
        let reopened = try image.vm(witness)
        #expect(reopened.shutdown().status == 0)
        #expect(witness.minimum(cut.uuid).generation == cut.generation)
        #expect(witness.minimum(cut.uuid).digest == cut.digest)

        // The same report again is a duplicate, and the ledger holds it once.
        let resent = WitnessReport(flags: [], uuid: Array(cut.uuid.utf8), generation: cut.generation,
                                   digest: Hex.bytes(cut.digest)!, previousGeneration: witnessed.generation,
                                   previousDigest: Hex.bytes(witnessed.digest)!)!
            .encoded(key: SecretBytes(cut.witnessKey), crypto: Libcrypto())
        let answer = witness.request("v1/reports", post: resent)
        #expect(answer.status == 200 && answer.body.contains("duplicate"))
        let count = try Build.python("""
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            print(db.execute("SELECT COUNT(*) FROM report WHERE uuid = ? AND generation = ?", (sys.argv[2], int(sys.argv[3]))).fetchone()[0])
            """, [witness.directory.appendingPathComponent("ledger.sqlite").path, cut.uuid, "\(cut.generation)"])
        #expect(count == "1")
    }
}

extension Build {
    static func python(_ script: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + arguments
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        process.waitUntilExit()
        return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
