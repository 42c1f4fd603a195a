import Foundation
import VarStoreCore
import VarStoreCrypto

/// `varstore bench` output: the table for people and the `--json` object (its keys are a
/// contract, spec/benchmark.md).
extension Benchmark {
    public static func json(_ report: Report) -> String {
        func number(_ value: Double) -> String { String(Int(value.rounded())) }
        func bySize(_ values: [Int: Double]) -> String {
            "{" + storeSizes.map { "\"\($0)\": \(number(values[$0] ?? 0))" }.joined(separator: ", ") + "}"
        }
        let allocations = report.allocationsPerRequest.isEmpty ? "null"
            : "{" + report.allocationsPerRequest.map { "\"\($0.kind)\": \(String(format: "%.2f", $0.count))" }.joined(separator: ", ") + "}"
        let configuration = "{\"store_sizes\": [\(storeSizes.map(String.init).joined(separator: ", "))], "
            + "\"iterations\": \(report.iterations), "
            + "\"transport\": \"uefi-vars DMA_MM, 64 KiB buffer, flat guest RAM, prepared request bytes\", "
            + "\"getvariable_data_size\": \(getDataSize), \"getnext_name_buffer\": \(nameBufferSize), "
            + "\"allocations_counted_over\": \(countedRequests), "
            + "\"stream\": {\"variables\": \(MixedStream.variables), \"names\": \"\(Rig.key(0).name.text)..\(Rig.key(MixedStream.variables - 1).name.text)\", "
            + "\"attributes\": 6, \"data_size\": 8, \"operations\": \(MixedStream.operations), "
            + "\"getvariable_percent\": \(MixedStream.getPercent), \"getnext_percent\": \(MixedStream.getNextPercent), "
            + "\"setvariable_percent\": \(MixedStream.setPercent), \"seed\": \(MixedStream.seed), \"passes\": \(MixedStream.passes)}}"
        return "{\"getvariable_hit_ns\": \(number(report.getVariableHitNanoseconds)), "
            + "\"getvariable_miss_ns\": \(number(report.getVariableMissNanoseconds)), "
            + "\"setvariable_volatile_ns\": \(number(report.setVariableVolatileNanoseconds)), "
            + "\"setvariable_nv_ns\": \(number(report.setVariableNonVolatileNanoseconds)), "
            + "\"getnext_ns\": \(bySize(report.getNextNanoseconds)), "
            + "\"getvariable_hit_ns_by_n\": \(bySize(report.getVariableHitByStoreSize)), "
            + "\"setvariable_volatile_ns_by_n\": \(bySize(report.setVariableVolatileByStoreSize)), "
            + "\"requests_per_second\": \(number(report.requestsPerSecond)), "
            + "\"allocations_per_request\": \(allocations), "
            + "\"authenticated_db_append_ns\": \(number(report.authenticatedAppendNanoseconds)), "
            + "\"pkcs7_verify_ns\": \(number(report.bareVerifyNanoseconds)), "
            + "\"nv_set_flash_bytes\": {\(fillLevels.map { "\"\($0)\": \(number(report.flashBytesPerSet[$0] ?? 0))" }.joined(separator: ", "))}, "
            + "\"image_open_ns\": \(number(report.imageOpenNanoseconds)), "
            + "\"aes_gcm_1mib_ns\": \(number(report.gcmPassNanoseconds)), "
            + "\"configuration\": \(configuration)}"
    }

    public static func table(_ report: Report) -> String {
        func row(_ label: String, _ value: Double, _ unit: String = "ns/call", decimals: Int = 0) -> String {
            label.padding(toLength: 44, withPad: " ", startingAt: 0) + String(format: "%12.\(decimals)f ", value) + unit
        }
        var lines = ["uefi-vars MMIO transport, DMA mode, flat guest RAM; \(report.iterations) calls per figure"]
        for size in storeSizes {
            lines.append(row("GetVariable, hit, \(size) variables", report.getVariableHitByStoreSize[size] ?? 0))
        }
        lines.append(row("GetVariable, miss, \(storeSizes.last!) variables", report.getVariableMissNanoseconds))
        for size in storeSizes {
            lines.append(row("SetVariable, volatile overwrite, \(size)", report.setVariableVolatileByStoreSize[size] ?? 0))
        }
        lines.append(row("SetVariable, non-volatile (in memory)", report.setVariableNonVolatileNanoseconds))
        for size in storeSizes {
            lines.append(row("GetNextVariableName, full walk of \(size)", report.getNextNanoseconds[size] ?? 0))
        }
        if let small = report.getNextNanoseconds[storeSizes.first!], let big = report.getNextNanoseconds[storeSizes.last!], small > 0 {
            lines.append(row("  ratio \(storeSizes.last!) / \(storeSizes.first!) (target <= 1.5)", big / small, "x", decimals: 2))
        }
        lines.append(row("Mixed stream (\(MixedStream.variables) vars, 70/20/10 get/next/set)", report.requestsPerSecond, "requests/s"))
        if report.allocationsPerRequest.isEmpty {
            lines.append("heap allocations per request: not counted (needs glibc)")
        } else {
            lines.append("heap allocations per request (over \(countedRequests) requests)")
            for (kind, count) in report.allocationsPerRequest {
                lines.append(row("  " + kind, count, "allocations", decimals: 2))
            }
        }
        lines.append(row("Authenticated db append (KEK-signed)", report.authenticatedAppendNanoseconds))
        lines.append(row("  bare libcrypto verification, same update", report.bareVerifyNanoseconds))
        if report.bareVerifyNanoseconds > 0 {
            lines.append(row("  ratio append / bare (target <= 1.2)",
                             report.authenticatedAppendNanoseconds / report.bareVerifyNanoseconds, "x", decimals: 2))
        }
        lines.append("encrypted 1 MiB image (LUKS2 + sealed log), 100-byte variables")
        for level in fillLevels {
            lines.append(row("  flash bytes per NV SetVariable, \(level)% full", report.flashBytesPerSet[level] ?? 0, "bytes"))
        }
        lines.append(row("  open a full image", report.imageOpenNanoseconds))
        lines.append(row("  one AES-256-GCM pass over 1 MiB", report.gcmPassNanoseconds))
        return lines.joined(separator: "\n")
    }
}
