import Foundation
import Testing
@testable import VarStoreTestSupport
import VarStoreCore
import VarStoreCrypto
@testable import VarStoreHost

// Regression tests for the storage review (power cuts inside multi-part snapshots, failed
// flushes, a failed journal at power-on, a cut before a compaction's superblock at high fill,
// write amplification near capacity). Several began as the reviewer's experiments.

struct FailingJournal: NonVolatileJournal {
    func commit(_ changes: [JournalChange]) throws(StorageError) { throw .flash(.ioError) }
    var isPersistent: Bool { true }
    var generation: UInt64 { 0 }
    var stateDigest: [UInt8] { [] }
}

@Suite struct StorageRecoveryTests {
    typealias Log<F: Flash> = VariableLog<F, Libcrypto>
    static let key = [UInt8](repeating: 0x42, count: 64)
    static let binding = Array("11111111-2222-3333-4444-555555555555".utf8)
    static let vendor = EFIGUID(text: "3f1b2a4c-5d6e-4f70-8192-a3b4c5d6e7f8")!
    static func variable(_ name: String, _ data: [UInt8]) -> Variable {
        Variable(key: VariableKey(guid: vendor, name: VariableName(name)!),
                 attributes: [.nonVolatile, .bootServiceAccess, .runtimeAccess], data: data)
    }
    static func open<F: Flash>(_ flash: F) throws(StorageError) -> Log<F> {
        try Log.open(device: flash, crypto: Libcrypto(), volumeKey: key, binding: binding)
    }

    /// A power cut between the parts of a multi-part snapshot.
    @Test func cutInsideAMultiPartSnapshot() throws {
        let formatted = try Log.format(device: FaultInjectingFlash(bytes: [UInt8](repeating: 0, count: 1 << 20)),
                                       crypto: Libcrypto(), volumeKey: Self.key, binding: Self.binding)
        let initial = FaultInjectingFlash(bytes: formatted.device.current)
        let log = try Self.open(initial)
        for index in 0 ..< 3 {
            try log.commit([.put(Self.variable("Big\(index)", [UInt8](repeating: UInt8(index), count: 20000)))])
        }
        let state = log.live.all
        let before = log.device.events.count
        try log.compact()   // what commit() does when the log runs short
        let events = log.device.events
        var bad = 0
        for index in before ..< events.count {
            guard case .write = events[index] else { continue }
            let image = FaultInjectingFlash.replay(events, onto: initial.durable, cut: index, tornBytes: 0)
            do {
                let opened = try Self.open(MemoryFlash(bytes: image))
                if opened.live.all != state { bad += 1 }
            } catch {
                bad += 1
            }
        }
        #expect(bad == 0)
        #expect(events.count - before > 6)  // three parts, flushes and the superblock
    }

    /// A flush that fails and loses its writes; the next commit succeeds.
    @Test func failedFlushThenNextCommitOpensAsTampered() throws {
        let formatted = try Log.format(device: FlakyFlash(bytes: [UInt8](repeating: 0, count: 256 << 10)),
                                       crypto: Libcrypto(), volumeKey: Self.key, binding: Self.binding)
        let log = try Self.open(formatted.device)
        try log.commit([.put(Self.variable("A", [1]))])
        var flash = log.device
        flash.failFlushes = 1
        let log2 = try Self.open(flash)
        var failed = false
        do { try log2.commit([.put(Self.variable("B", [2]))]) } catch { failed = true }
        #expect(failed)
        try log2.commit([.put(Self.variable("C", [3]))])
        let reopened = try Self.open(log2.device)
        #expect(reopened.live.all == log2.live.all)
        #expect(reopened.live.all.map(\.name.text) == ["A", "C"])
    }

    /// A flush that fails but whose writes land anyway.
    @Test func failedFlushResurrectsAnUndoneChange() throws {
        let formatted = try Log.format(device: FlakyFlash(bytes: [UInt8](repeating: 0, count: 256 << 10)),
                                       crypto: Libcrypto(), volumeKey: Self.key, binding: Self.binding)
        var flash = formatted.device
        flash.failFlushes = 1
        flash.loseOnFailure = false
        let log = try Self.open(flash)
        var failed = false
        do { try log.commit([.put(Self.variable("B", [2]))]) } catch { failed = true }
        #expect(failed)
        try log.commit([.put(Self.variable("C", [3]))])
        let reopened = try Self.open(log.device)
        #expect(reopened.live.all == log.live.all)
        #expect(reopened.live.all.map(\.name.text) == ["C"])
    }

    /// The service's init commit fails: what mode does it run in with PK present?
    @Test func failedInitCommitFallsBackToSetupMode() throws {
        let pk = Variable(key: SecureBootVariable.pk,
                          attributes: [.nonVolatile, .bootServiceAccess, .runtimeAccess, .timeBasedAuthenticatedWriteAccess],
                          data: [1, 2, 3], timestamp: .zero)
        let service = VariableService(crypto: Libcrypto(), journal: FailingJournal(), variables: [pk])
        #expect(!service.secureBootMode.isSetupMode)
        #expect(service.store.variable(for: SecureBootVariable.setupMode)?.data == [0])
        #expect(service.store.variable(for: SecureBootVariable.secureBoot)?.data == [1])
        // And an unsigned KEK is refused, not accepted as in setup mode.
        var unsigned = EFITime(year: 2026, month: 1, day: 1).bytes
        unsigned += [24, 0, 0, 0, 0x00, 0x02, 0xf1, 0x0e] + EFIGUID.certTypePKCS7.wireBytes
        #expect(throws: EFIStatus.self) { try service.setVariable(SecureBootVariable.kek, attributes: 0x27, data: unsigned + [1]) }
    }

    /// Near the promised capacity: does the log keep working, and how often does it compact?
    @Test func nearCapacityWorkload() throws {
        let segment = 757_760
        let capacity = Log<MemoryFlash>.capacity(segmentBytes: UInt64(segment))
        let log = try Log.format(device: MemoryFlash(size: segment), crypto: Libcrypto(), volumeKey: Self.key, binding: Self.binding)
        // Fill to ~the quota capacity with 4,000-byte variables (charge 60 + name + data).
        var charged: UInt64 = 0
        var count = 0
        while true {
            let name = "V\(count)"
            let charge = UInt64(60 + 2 * (name.count + 1) + 4000)
            if charged + charge > capacity { break }
            try log.commit([.put(Self.variable(name, [UInt8](repeating: 7, count: 4000)))])
            charged += charge
            count += 1
        }
        var fails = 0
        let start = log.device.bytesWritten
        for step in 0 ..< 200 {
            do {
                try log.commit([.put(Self.variable("V\(step % count)", [UInt8](repeating: UInt8(step & 0xff), count: 4000)))])
            } catch {
                fails += 1
            }
        }
        var deleteFailed = false
        do { try log.commit([.delete(Self.variable("V0", []).key)]) } catch { deleteFailed = true }
        #expect(fails == 0 && !deleteFailed)
        // Compaction is amortised: far less than the whole 256 KB state per 4 KB change.
        #expect((log.device.bytesWritten - start) / 200 < 64 << 10)
    }
}

extension StorageRecoveryTests {
    /// A power cut after a full compaction's parts are durable but before its superblock is,
    /// at a high fill level: does the reopened store accept commits again?
    @Test(arguments: [70, 80, 85, 90, 93, 95, 98]) func cutBeforeTheSuperblockAtHighFill(percent: Int) throws {
        let segment = 757_760
        let capacity = Log<MemoryFlash>.capacity(segmentBytes: UInt64(segment))
        let formatted = try Log.format(device: FaultInjectingFlash(bytes: [UInt8](repeating: 0, count: segment)),
                                       crypto: Libcrypto(), volumeKey: Self.key, binding: Self.binding)
        let log = try Self.open(FaultInjectingFlash(bytes: formatted.device.current))
        var charged: UInt64 = 0
        var count = 0
        while true {
            let name = "V\(count)"
            let charge = UInt64(60 + 2 * (name.count + 1) + 4000)
            if charged + charge > capacity * UInt64(percent) / 100 { break }
            try log.commit([.put(Self.variable(name, [UInt8](repeating: 7, count: 4000)))])
            charged += charge
            count += 1
        }
        let base = FaultInjectingFlash(bytes: log.device.current)
        let log2 = try Self.open(base)
        try log2.compact()
        let events = log2.device.events
        // Superblock writes are the 512-byte writes to segment sector 0 or 1.
        var results: [String] = []
        for (index, event) in events.enumerated() {
            guard case .write(let offset, let bytes) = event, offset < 1024, bytes.count == 512 else { continue }
            let image = FaultInjectingFlash.replay(events, onto: base.durable, cut: index, tornBytes: 0)
            let reopened = try Self.open(MemoryFlash(bytes: image))
            var outcome = "ok"
            for step in 0 ..< 5 {
                do { try reopened.commit([.delete(Self.variable("V\(step + 10)", []).key)]) }
                catch { outcome = "commit \(step) after reopen: \(error)"; break }
            }
            results.append("cut before superblock write at event \(index): \(outcome)")
        }
        #expect(!results.isEmpty)
        #expect(results.allSatisfy { $0.hasSuffix("ok") }, "\(results)")
    }
}
