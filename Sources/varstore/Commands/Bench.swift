import ArgumentParser
import CAllocationCounter
import VarStoreHost

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure request costs through the MMIO transport (not a test: figures depend on the machine).")

    @Flag(help: "Print one JSON object with stable keys.")
    var json = false

    @Option(help: "Calls per measured operation.")
    var iterations = 20_000

    func run() throws {
        // The executable's malloc interposer (Sources/CAllocationCounter); -1 where it cannot count.
        let counting = varstore_allocation_count() >= 0
        let report = Benchmark(iterations: iterations,
                               allocationCount: counting ? { varstore_allocation_count() } : nil).run()
        print(json ? Benchmark.json(report) : Benchmark.table(report))
    }
}
