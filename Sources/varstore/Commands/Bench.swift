import ArgumentParser
import VarStoreHost

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure request costs through the MMIO transport (not a test: figures depend on the machine).")

    @Flag(help: "Print one JSON object with stable keys.")
    var json = false

    @Option(help: "Calls per measured operation.")
    var iterations = 20_000

    func run() throws {
        let report = Benchmark(iterations: iterations).run()
        print(json ? Benchmark.json(report) : Benchmark.table(report))
    }
}
