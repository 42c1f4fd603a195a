import ArgumentParser
import CAllocationCounter
import VarStoreHost

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure request costs through the MMIO transport (not a test: figures depend on the machine).")

    @Flag(help: "Print one JSON object with stable keys.")
    var json = false

    @Option(help: "Calls per measured operation.")
    var iterations = 20_000

    @Option(help: ArgumentHelp("Run one workload alone, untimed, for a profiler: \(Benchmark.Workload.allCases.map(\.rawValue).joined(separator: ", ")).", visibility: .hidden))
    var profile: Benchmark.Workload?

    @Option(help: ArgumentHelp("Requests (image opens for `open`) the profiled workload runs.", visibility: .hidden))
    var requests = 100_000

    func validate() throws {
        guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1") }
        guard requests >= 0 else { throw ValidationError("--requests must not be negative") }
    }

    func run() throws {
        if let profile {
            Benchmark.profile(profile, requests: requests)
            return
        }
        // The executable's malloc interposer (Sources/CAllocationCounter); -1 where it cannot count.
        let counting = varstore_allocation_count() >= 0
        let report = Benchmark(iterations: iterations,
                               allocationCount: counting ? { varstore_allocation_count() } : nil).run()
        print(json ? Benchmark.json(report) : Benchmark.table(report))
    }
}

extension Benchmark.Workload: ExpressibleByArgument {}
