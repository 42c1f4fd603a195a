import Foundation
import VarStoreCore
import VarStoreCrypto

/// `varstore bench`: per-request costs through the MMIO transport (DMA mode), measured on
/// this machine in this run. The `--json` keys are a contract; later issues only add keys.
/// What each figure measures, and the mixed stream's definition: spec/benchmark.md.
public struct Benchmark {
    public struct Report: Sendable {
        /// GetVariable of a stored variable, at N = 10,000 (`getVariableHitByStoreSize[10_000]`).
        public var getVariableHitNanoseconds: Double = 0
        public var getVariableMissNanoseconds: Double = 0
        /// Volatile SetVariable overwriting a stored variable with a new value, at N = 10,000.
        public var setVariableVolatileNanoseconds: Double = 0
        public var setVariableNonVolatileNanoseconds: Double = 0
        /// Per-call GetNextVariableName cost of a full enumeration, by store size.
        public var getNextNanoseconds: [Int: Double] = [:]
        public var getVariableHitByStoreSize: [Int: Double] = [:]
        public var setVariableVolatileByStoreSize: [Int: Double] = [:]
        /// The mixed stream (`MixedStream`): requests per second.
        public var requestsPerSecond: Double = 0
        /// Heap allocations per request, by request kind; empty where the process cannot count.
        public var allocationsPerRequest: [(kind: String, count: Double)] = []
        /// A KEK-signed db append (new SHA-256 entry) through the transport, and a bare
        /// libcrypto verification of the same signature (parse and PKCS7_verify).
        public var authenticatedAppendNanoseconds: Double = 0
        public var bareVerifyNanoseconds: Double = 0
        /// Bytes the flash receives per non-volatile SetVariable on a 1 MiB encrypted image,
        /// compaction included, by how full the store is (percent).
        public var flashBytesPerSet: [Int: Double] = [:]
        /// Opening a full 1 MiB image (header, key check, replay), and one AES-256-GCM pass
        /// over 1 MiB in the same run for scale.
        public var imageOpenNanoseconds: Double = 0
        public var gcmPassNanoseconds: Double = 0
        /// What was measured, as `bench --json` prints it under "configuration".
        public var iterations = 0
    }

    public static let fillLevels = [10, 50, 90]

    /// Signed appends per authenticated measurement (each adds one 76-byte list to db, which
    /// must stay under the 33 KiB variable limit).
    public static let authenticatedUpdates = 200
    public static let authenticatedRounds = 5

    public static let storeSizes = [100, 1_000, 10_000]
    /// The name area of every GetNextVariableName request (VariableNameSize), in bytes.
    public static let nameBufferSize = 128
    /// The DataSize of every GetVariable request.
    public static let getDataSize = 8
    /// Requests per allocation count.
    public static let countedRequests = 1_000

    public var iterations: Int
    /// The process's heap allocations so far (the varstore executable's malloc interposer),
    /// or nil where it cannot count them.
    public var allocationCount: (() -> Int64)?

    public init(iterations: Int = 20_000, allocationCount: (() -> Int64)? = nil) {
        self.iterations = iterations
        self.allocationCount = allocationCount
    }

    /// The anchor's mixed stream (issue 13; spec/benchmark.md): a store of `variables`
    /// volatile BS|RT variables `Var00000`…, 8 data bytes each under one vendor GUID, and a
    /// fixed pseudo-random sequence of `operations` requests, cycled.
    public enum MixedStream {
        public static let variables = 1_000
        public static let operations = 65_536
        public static let getPercent = 70, getNextPercent = 20, setPercent = 10
        public static let seed: UInt64 = 0x5EED_0013
        /// Full cycles timed; the median cycle is reported.
        public static let passes = 3
    }

    /// SplitMix64: the fixed pseudo-random sequence behind the stream and the random names.
    struct SplitMix64 {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// One request as the guest holds it in its own memory, and the replies it accepts.
    struct Request {
        var bytes: [UInt8]
        /// Offset of an 8-byte data field the guest stamps with a fresh value before each send
        /// (SetVariable: every write carries a new value).
        var stampOffset: Int?
        var accepts: (EFIStatus, EFIStatus)

        init(_ bytes: [UInt8], stampOffset: Int? = nil, accepts: EFIStatus, or other: EFIStatus? = nil) {
            self.bytes = bytes
            self.stampOffset = stampOffset
            self.accepts = (accepts, other ?? accepts)
        }
    }

    /// A service, the uefi-vars device and flat guest RAM, driven as a guest driver does:
    /// request bytes into its buffer, DMA_MM to CMD_STS, CMD_STS read back, ReturnStatus
    /// read from the reply. No text protocol and no request building in the timed path.
    final class Rig {
        let service: VariableService<Libcrypto, MemoryJournal>
        let ram: FlatGuestRAM
        let device: UEFIVarsDevice<FlatGuestRAM, Libcrypto, MemoryJournal>
        /// For the untimed set-up (enumeration, Secure Boot enrollment).
        let client: MMClient
        static let bufferAddress = 0x10_0000
        private var stamp: UInt64 = 0

        init(variables: Int) {
            var configuration = ServiceConfiguration()
            configuration.volatileStorageSize = 64 << 20
            configuration.nonVolatileStorageSize = 64 << 20
            let service = VariableService(configuration: configuration)
            let ram = FlatGuestRAM(size: Self.bufferAddress + 0x10000)
            let device = UEFIVarsDevice(service: service, memory: ram)
            self.service = service
            self.ram = ram
            self.device = device
            client = MMClient(bus: MMClient.Bus(
                read: { device.mmioRead(offset: $0 - UEFIVarsRegister.x86BaseAddress, size: $1) },
                write: { device.mmioWrite(offset: $0 - UEFIVarsRegister.x86BaseAddress, size: $1, value: $2) },
                readBytes: { address, count in
                    var out = [UInt8](repeating: 0, count: count)
                    try? ram.read(address, into: &out, at: 0, count: count)
                    return out
                },
                writeBytes: { ram.store($1, at: Int($0)) }),
                bufferAddress: UInt64(Self.bufferAddress))
            precondition(client.initialize(), "benchmark device did not initialise")
            for index in 0..<variables {
                var data: [UInt8] = []
                LittleEndian.append(UInt64(index), to: &data)
                try? service.setVariable(Rig.key(index), attributes: 0x06, data: data)
            }
        }

        static let vendor = EFIGUID(0x6a3f_5b2e, 0x1c4d, 0x4e8f, 0x9a, 0x0b, 0x1c, 0x2d, 0x3e, 0x4f, 0x50, 0x61)

        /// `Var00000` … `Var99999`.
        static func key(_ index: Int) -> VariableKey {
            let digits = String(index)
            return VariableKey(guid: vendor, name: VariableName("Var" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits)!)
        }

        static func getRequest(_ key: VariableKey) -> Request {
            Request(MMClient.getVariableRequest(key.name, key.guid, dataSize: Benchmark.getDataSize), accepts: .success)
        }

        static func getNextRequest(after key: VariableKey) -> Request {
            Request(MMClient.getNextVariableNameRequest(after: key.name, key.guid, nameBufferSize: Benchmark.nameBufferSize),
                    accepts: .success, or: .notFound)
        }

        /// SetVariable of 8 data bytes, which the guest stamps with a new value before each send.
        static func setRequest(_ key: VariableKey, attributes: UInt32) -> Request {
            let bytes = MMClient.setVariableRequest(key.name, key.guid, attributes: attributes, data: [UInt8](repeating: 0, count: 8))
            return Request(bytes, stampOffset: bytes.count - 8, accepts: .success)
        }

        /// Sends one request; false if the device or the reply's ReturnStatus refused it.
        @inline(__always)
        func send(_ request: Request) -> Bool {
            ram.store(request.bytes, at: Self.bufferAddress)
            if let offset = request.stampOffset {
                stamp &+= 1
                ram.storeU64(stamp, at: Self.bufferAddress + offset)
            }
            device.mmioWrite(offset: UEFIVarsRegister.commandStatus, size: 2, value: UInt64(UEFIVarsCommand.dmaMM.rawValue))
            guard device.mmioRead(offset: UEFIVarsRegister.commandStatus, size: 2) == UInt64(UEFIVarsStatus.success.rawValue) else {
                return false
            }
            let status = EFIStatus(rawValue: ram.loadU64(at: Self.bufferAddress + 32))
            return status == request.accepts.0 || status == request.accepts.1
        }

        /// Sends `count` requests, `pick(i)` each; traps (the benchmark's own bug, or the
        /// service's) if any reply is not what the request accepts.
        func run(_ count: Int, _ what: String, _ pick: (Int) -> Request) {
            for index in 0..<count {
                guard send(pick(index)) else { preconditionFailure("benchmark: \(what) request \(index) refused") }
            }
        }
    }

    private func measure(_ count: Int, _ body: (Int) -> Void) -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        for index in 0..<count { body(index) }
        let elapsed = clock.now - start
        let nanoseconds = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        return nanoseconds / Double(count)
    }

    /// ns per request over `count` requests.
    private func time(_ rig: Rig, _ count: Int, _ what: String, _ pick: (Int) -> Request) -> Double {
        measure(1) { _ in rig.run(count, what, pick) } / Double(count)
    }

    /// Heap allocations per request over `countedRequests` requests (after the timed run, so
    /// caches and capacities have settled).
    private func allocations(_ rig: Rig, _ what: String, _ pick: (Int) -> Request) -> Double? {
        guard let allocationCount else { return nil }
        let before = allocationCount()
        rig.run(Self.countedRequests, what, pick)
        return Double(allocationCount() - before) / Double(Self.countedRequests)
    }

    /// `count` pseudo-random indices below `bound` (fixed seed).
    static func randomIndices(_ count: Int, below bound: Int, seed: UInt64) -> [Int] {
        var random = SplitMix64(state: seed)
        return (0..<count).map { _ in Int(random.next() % UInt64(bound)) }
    }

    public func run() -> Report {
        var report = Report()
        report.iterations = iterations
        var counts: [String: Double] = [:]
        for size in Self.storeSizes {
            let rig = Rig(variables: size)
            let keys = rig.client.enumerate()
            // The service adds its own Secure Boot status variables to the N the rig stored.
            precondition(keys.count >= size, "benchmark store holds \(keys.count) of \(size) variables")
            // A full walk: from the empty name to the last name's NOT_FOUND.
            let walk = [Rig.getNextRequest(after: VariableKey(guid: EFIGUID(low: 0, high: 0), name: .empty))]
                + keys.map(Rig.getNextRequest(after:))
            // Several passes so small stores are timed over enough calls.
            let passes = max(1, 20_000 / size)
            report.getNextNanoseconds[size] = time(rig, passes * walk.count, "GetNextVariableName") { walk[$0 % walk.count] }

            let gets = (0..<size).map { Rig.getRequest(Rig.key($0)) }
            let sets = (0..<size).map { Rig.setRequest(Rig.key($0), attributes: 0x06) }
            let order = Self.randomIndices(MixedStream.operations, below: size, seed: UInt64(size))
            report.getVariableHitByStoreSize[size] = time(rig, iterations, "GetVariable") { gets[order[$0 % order.count]] }
            report.setVariableVolatileByStoreSize[size] = time(rig, iterations, "SetVariable") { sets[order[$0 % order.count]] }
            guard size == Self.storeSizes.last! else { continue }

            report.getVariableHitNanoseconds = report.getVariableHitByStoreSize[size]!
            report.setVariableVolatileNanoseconds = report.setVariableVolatileByStoreSize[size]!
            let misses = (0..<1_000).map {
                Request(MMClient.getVariableRequest(VariableName("Missing\($0)")!, Rig.vendor, dataSize: Self.getDataSize),
                        accepts: .notFound)
            }
            report.getVariableMissNanoseconds = time(rig, iterations, "GetVariable miss") { misses[$0 % misses.count] }
            let persistent = Rig.setRequest(VariableKey(guid: Rig.vendor, name: VariableName("BenchNonVolatile")!), attributes: 0x07)
            report.setVariableNonVolatileNanoseconds = time(rig, iterations, "SetVariable NV") { _ in persistent }

            counts["getvariable_hit"] = allocations(rig, "GetVariable") { gets[order[$0]] }
            counts["getvariable_miss"] = allocations(rig, "GetVariable miss") { misses[$0 % misses.count] }
            counts["getnext"] = allocations(rig, "GetNextVariableName") { walk[$0 % walk.count] }
            counts["setvariable_volatile"] = allocations(rig, "SetVariable") { sets[order[$0]] }
            counts["setvariable_nv"] = allocations(rig, "SetVariable NV") { _ in persistent }
        }

        let (rate, mixedAllocations) = mixedStream()
        report.requestsPerSecond = rate
        counts["mixed"] = mixedAllocations
        if allocationCount != nil {
            report.allocationsPerRequest = ["getvariable_hit", "getvariable_miss", "getnext", "setvariable_volatile",
                                            "setvariable_nv", "mixed"].map { ($0, counts[$0] ?? 0) }
        }
        if let secureBoot = try? SecureBootRig() {
            // This machine's timing noise is large next to a few hundred microseconds, so the
            // two are measured alternately over several rounds (each on a fresh service) and
            // the fastest round of each is reported.
            let crypto = Libcrypto()
            var append = Double.infinity, bare = Double.infinity
            for _ in 0..<Self.authenticatedRounds {
                let rig = try? secureBoot.userModeRig()
                guard let rig else { break }
                append = min(append, measure(secureBoot.updates.count) { index in
                    let status = rig.client.setVariable(SecureBootVariable.db.name, SecureBootVariable.db.guid,
                                                        attributes: 0x67, data: secureBoot.updates[index])
                    precondition(status == .success, "benchmark append refused: \(status)")
                })
                bare = min(bare, measure(secureBoot.updates.count) { index in
                    let update = secureBoot.updates[index]
                    let length = Int(LittleEndian.load(UInt32.self, from: update, at: 16) ?? 0)
                    guard let signedData = crypto.parseSignedData(update[40..<(16 + length)]),
                          crypto.verify(signedData, detachedContent: secureBoot.contents[index],
                                        trustedCertificates: [secureBoot.kekCertificate]) else {
                        preconditionFailure("benchmark signature does not verify")
                    }
                })
            }
            report.authenticatedAppendNanoseconds = append.isFinite ? append : 0
            report.bareVerifyNanoseconds = bare.isFinite ? bare : 0
        }
        if let image = try? ImageRig() {
            for level in Self.fillLevels {
                report.flashBytesPerSet[level] = (try? image.bytesPerSet(fillPercent: level)) ?? 0
            }
            report.imageOpenNanoseconds = (try? image.openFullImage(measure: measure)) ?? 0
            let megabyte = [UInt8](repeating: 0xA5, count: 1 << 20)
            let crypto = Libcrypto()
            let key = [UInt8](repeating: 1, count: 32), nonce = [UInt8](repeating: 2, count: 12)
            report.gcmPassNanoseconds = measure(20) { _ in
                _ = crypto.sealAES256GCM(key: key, nonce: nonce, additionalData: [], plaintext: megabyte)
            }
        }
        return report
    }

    /// The anchor's stream: requests per second (the median of `MixedStream.passes` full
    /// cycles) and heap allocations per request.
    private func mixedStream() -> (rate: Double, allocations: Double?) {
        let rig = Rig(variables: MixedStream.variables)
        let stream = Self.mixedRequests((0..<MixedStream.variables).map(Rig.key))
        var cycles: [Double] = []
        for _ in 0..<MixedStream.passes {
            cycles.append(time(rig, stream.count, "mixed stream") { stream[$0] })
        }
        let median = cycles.sorted()[cycles.count / 2]
        return (1e9 / median, allocations(rig, "mixed stream") { stream[$0] })
    }

    /// The stream's fixed sequence of `MixedStream.operations` requests over `keys`.
    static func mixedRequests(_ keys: [VariableKey]) -> [Request] {
        let gets = keys.map(Rig.getRequest)
        let nexts = keys.map(Rig.getNextRequest(after:))
        let sets = keys.map { Rig.setRequest($0, attributes: 0x06) }
        var random = SplitMix64(state: MixedStream.seed)
        return (0..<MixedStream.operations).map { _ in
            let roll = Int(random.next() % 100)
            let target = Int(random.next() % UInt64(keys.count))
            if roll < MixedStream.getPercent { return gets[target] }
            if roll < MixedStream.getPercent + MixedStream.getNextPercent { return nexts[target] }
            return sets[target]
        }
    }
}

extension Benchmark {
    /// One workload alone, for a profiler (`varstore bench --profile KIND`): no timing, no
    /// report. Under `valgrind --tool=callgrind` the instruction count of two runs with
    /// different `requests` gives the cost of one request without the set-up.
    public enum Workload: String, CaseIterable, Sendable {
        case getVariable = "get", getNext = "getnext", setVariable = "set", mixed, open
    }

    public static func profile(_ workload: Workload, requests: Int) {
        switch workload {
        case .open:
            guard let image = try? ImageRig() else { preconditionFailure("benchmark: no image rig") }
            _ = try? image.openFullImage { _, body in
                for index in 0..<requests { body(index) }
                return 0
            }
            return
        default: break
        }
        let rig = Rig(variables: MixedStream.variables)
        let keys = (0..<MixedStream.variables).map(Rig.key)
        let order = randomIndices(MixedStream.operations, below: MixedStream.variables, seed: MixedStream.seed)
        let stream: [Request]
        switch workload {
        case .getVariable: stream = order.map { Rig.getRequest(keys[$0]) }
        case .getNext: stream = order.map { Rig.getNextRequest(after: keys[$0]) }
        case .setVariable: stream = order.map { Rig.setRequest(keys[$0], attributes: 0x06) }
        default: stream = mixedRequests(keys)
        }
        rig.run(requests, "profile") { stream[$0 % stream.count] }
    }
}
