import Foundation
import GRDB
import VarStoreCore
import VarStoreCrypto

/// The witness's ledger (spec/rollback.md, "The witness's rules", "Schema"): per image UUID the
/// highest witnessed generation and its digest, every accepted report, every refusal. Each
/// report is decided and recorded in one write transaction, so racing forks get one
/// `accepted` and one `fork`.
final class Ledger: Sendable {
    enum Decision: Equatable {
        case accepted(generation: UInt64)
        case duplicate(generation: UInt64)
        case malformed
        case badMAC
        case refused(reason: String, generation: UInt64, digest: [UInt8])
    }

    let database: DatabaseQueue
    let keysDirectory: URL

    init(path: String, keys: String) throws {
        database = try DatabaseQueue(path: path)
        keysDirectory = URL(fileURLWithPath: keys, isDirectory: true)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE image (uuid TEXT PRIMARY KEY NOT NULL, generation INTEGER NOT NULL,
                                    digest BLOB NOT NULL, updated_at TEXT NOT NULL);
                CREATE TABLE report (uuid TEXT NOT NULL, generation INTEGER NOT NULL, digest BLOB NOT NULL,
                                     previous_generation INTEGER NOT NULL, previous_digest BLOB NOT NULL,
                                     bytes BLOB NOT NULL, received_at TEXT NOT NULL,
                                     PRIMARY KEY (uuid, generation));
                CREATE TABLE refusal (id INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT, reason TEXT NOT NULL,
                                      bytes BLOB NOT NULL, received_at TEXT NOT NULL);
                """)
        }
        try migrator.migrate(database)
    }

    /// The image's witness key: `DIR/<uuid>.key`, 64 hex digits, read per request (writing the
    /// file provisions the image). Only UUID characters name a file.
    func key(for uuid: String) -> [UInt8]? {
        guard !uuid.isEmpty, uuid.allSatisfy({ $0.isHexDigit || $0 == "-" }),
              let text = try? String(contentsOf: keysDirectory.appendingPathComponent(uuid + ".key"), encoding: .utf8) else {
            return nil
        }
        // A witness key is 32 bytes (spec/rollback.md); anything else provisions nothing.
        guard let key = Hex.bytes(text.trimmingCharacters(in: .whitespacesAndNewlines)), key.count == 32 else { return nil }
        return key
    }

    /// The highest witnessed state of `uuid`, or nil if it was never witnessed.
    func latest(_ uuid: String) throws -> (generation: UInt64, digest: [UInt8])? {
        try database.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT generation, digest FROM image WHERE uuid = ?", arguments: [uuid]) else {
                return nil
            }
            return (UInt64(row["generation"] as Int64), [UInt8](row["digest"] as Data))
        }
    }

    func decide(_ bytes: [UInt8]) throws -> Decision {
        let now = ISO8601DateFormatter().string(from: Date())
        guard let fields = try? WitnessReport(parsingUnauthenticated: bytes) else {
            try refuse(nil, "malformed", bytes, now)
            return .malformed
        }
        let uuid = String(decoding: fields.uuid, as: UTF8.self)
        guard let key = key(for: uuid), let report = try? WitnessReport(parsing: bytes, key: key, crypto: Libcrypto()) else {
            try refuse(uuid, "bad-mac", bytes, now)
            return .badMAC
        }
        let decision: Decision = try database.write { db in
            if let row = try Row.fetchOne(db, sql: "SELECT generation, digest FROM image WHERE uuid = ?", arguments: [uuid]) {
                let generation = UInt64(row["generation"] as Int64)
                let digest = [UInt8](row["digest"] as Data)
                if report.generation == generation && report.digest == digest { return .duplicate(generation: generation) }
                if report.generation < generation { return .refused(reason: "rollback", generation: generation, digest: digest) }
                if report.generation == generation || report.previousGeneration != generation || report.previousDigest != digest {
                    return .refused(reason: "fork", generation: generation, digest: digest)
                }
                try db.execute(sql: "UPDATE image SET generation = ?, digest = ?, updated_at = ? WHERE uuid = ?",
                               arguments: [Int64(report.generation), Data(report.digest), now, uuid])
            } else {
                try db.execute(sql: "INSERT INTO image (uuid, generation, digest, updated_at) VALUES (?, ?, ?, ?)",
                               arguments: [uuid, Int64(report.generation), Data(report.digest), now])
            }
            try db.execute(sql: """
                INSERT INTO report (uuid, generation, digest, previous_generation, previous_digest, bytes, received_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [uuid, Int64(report.generation), Data(report.digest), Int64(report.previousGeneration),
                                 Data(report.previousDigest), Data(bytes), now])
            return .accepted(generation: report.generation)
        }
        if case .refused(let reason, _, _) = decision { try refuse(uuid, reason, bytes, now) }
        return decision
    }

    private func refuse(_ uuid: String?, _ reason: String, _ bytes: [UInt8], _ now: String) throws {
        try database.write { db in
            try db.execute(sql: "INSERT INTO refusal (uuid, reason, bytes, received_at) VALUES (?, ?, ?, ?)",
                           arguments: [uuid, reason, Data(bytes), now])
        }
    }
}
