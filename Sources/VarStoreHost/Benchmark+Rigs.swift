import Foundation
import VarStoreCore
import VarStoreCrypto

/// The benchmark's rigs for the encrypted image and for authenticated Secure Boot writes.
extension Benchmark {
    /// A 1 MiB image made once with libcryptsetup, copied into memory for each measurement;
    /// the flash under it counts the bytes it receives.
    struct ImageRig {
        typealias Segment = EncryptedSegment<MemoryFlash, Libcrypto>
        let pristine: [UInt8]
        let volumeKey: [UInt8]

        init() throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("varstore-bench-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let path = directory.appendingPathComponent("bench.img").path
            volumeKey = try LUKS2Image.create(path: path, size: 1 << 20, secret: .keyFile([UInt8](repeating: 9, count: 64)))
            pristine = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        }

        func service(_ flash: MemoryFlash) throws -> VariableService<Libcrypto, VariableLog<Segment, Libcrypto>> {
            var device = flash
            let crypto = Libcrypto()
            let header = try LUKS2Header.read(from: &device, crypto: crypto)
            let segment = try EncryptedSegment(device: device, header: header, volumeKey: SecretBytes(volumeKey), crypto: crypto)
            let log = try VariableLog.open(device: segment, crypto: crypto, volumeKey: volumeKey, binding: header.uuid)
            var configuration = ServiceConfiguration()
            configuration.nonVolatileStorageSize = VariableLog<Segment, Libcrypto>.capacity(segmentBytes: segment.size)
            return VariableService(configuration: configuration, crypto: crypto, journal: log, variables: log.live.all)
        }

        static func name(_ index: Int) -> VariableName { VariableName("Fill\(index)")! }

        /// Fills the store to `fillPercent` with 100-byte variables, then rewrites random ones
        /// and counts what reaches the flash per SetVariable.
        func bytesPerSet(fillPercent: Int) throws -> Double {
            let service = try self.service(MemoryFlash(bytes: pristine))
            let capacity = service.quota.capacity(.nonVolatile)
            var index = 0
            while service.quota.used(.nonVolatile) + 200 < capacity * UInt64(fillPercent) / 100 {
                try service.setVariable(VariableKey(guid: Rig.vendor, name: Self.name(index)), attributes: 0x07,
                                        data: [UInt8](repeating: UInt8(index & 0xff), count: 100))
                index += 1
            }
            let before = service.journal.device.device.bytesWritten
            let sets = 1000
            var state: UInt64 = 12345
            for round in 0 ..< sets {
                state = state &* 6364136223846793005 &+ 1
                let target = Int(state >> 33) % max(index, 1)
                try service.setVariable(VariableKey(guid: Rig.vendor, name: Self.name(target)), attributes: 0x07,
                                        data: [UInt8](repeating: UInt8(round & 0xff), count: 100))
            }
            return Double(service.journal.device.device.bytesWritten - before) / Double(sets)
        }

        /// Fills the store to its capacity, then times opening it from the image bytes.
        func openFullImage(measure: (Int, (Int) -> Void) -> Double) throws -> Double {
            let service = try self.service(MemoryFlash(bytes: pristine))
            var index = 0
            while service.quota.remaining(.nonVolatile) > 300 {
                try service.setVariable(VariableKey(guid: Rig.vendor, name: Self.name(index)), attributes: 0x07,
                                        data: [UInt8](repeating: UInt8(index & 0xff), count: 100))
                index += 1
            }
            let full = service.journal.device.device.bytes
            return measure(5) { _ in _ = try? self.service(MemoryFlash(bytes: full)) }
        }
    }

    /// Keys and signed db appends, and services in User mode to apply them to.
    struct SecureBootRig {
        var updates: [[UInt8]] = []
        /// The bytes each update's signature covers.
        var contents: [[UInt8]] = []
        let pkCertificate: [UInt8]
        let kekCertificate: [UInt8]

        init() throws {
            let pk = try SigningIdentity.generate(commonName: "Bench PK")
            let kek = try SigningIdentity.generate(commonName: "Bench KEK")
            pkCertificate = pk.certificateDER
            kekCertificate = kek.certificateDER
            let crypto = Libcrypto()
            for index in 0..<Benchmark.authenticatedUpdates {
                var list = SignatureType.sha256.wireBytes
                LittleEndian.append(UInt32(28 + 48), to: &list)
                LittleEndian.append(UInt32(0), to: &list)
                LittleEndian.append(UInt32(48), to: &list)
                list += Rig.vendor.wireBytes + crypto.digest(.sha256, Array("binary \(index)".utf8))
                let update = try kek.authenticatedUpdate(for: SecureBootVariable.db, attributes: 0x67,
                                                         time: EFITime(year: 2026, month: 1, day: 1), payload: list)
                updates.append(update)
                contents.append(try VariableAuthentication2.parse(update).signedContent(for: SecureBootVariable.db, attributes: 0x67))
            }
        }

        /// A fresh service with KEK and then PK written in setup mode, each with a descriptor
        /// that carries no signature (as edk2's own enrollment does).
        func userModeRig() throws(EFIStatus) -> Rig {
            let rig = Rig(variables: 0)
            let unsigned = VariableAuthentication2.encode(timeStamp: EFITime(year: 2026, month: 1, day: 1), certificate: [])
            try rig.service.setVariable(SecureBootVariable.kek, attributes: 0x27, data: unsigned + Enrollment.x509List(kekCertificate, owner: Rig.vendor))
            try rig.service.setVariable(SecureBootVariable.pk, attributes: 0x27, data: unsigned + Enrollment.x509List(pkCertificate, owner: Rig.vendor))
            return rig
        }
    }
}
