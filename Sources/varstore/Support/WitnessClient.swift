import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The key-release side of `qtest --witness URL` (spec/rollback.md, "HTTP API"): asks the
/// witness for an image's anchor and posts reports, synchronously, over Foundation's
/// URLSession (FoundationNetworking on Linux), so the varstore binary pulls in no server or
/// NIO stack.
final class WitnessClient: @unchecked Sendable {
    let base: URL
    /// The last answer to a report: HTTP status (nil: unreachable) and body, for diagnostics.
    private(set) var lastStatus: Int?
    private(set) var lastBody = ""

    init(_ base: URL) {
        self.base = base
    }

    struct Unreachable: Error, CustomStringConvertible {
        let description: String
    }

    /// The witness's highest recorded state for `uuid`; nil if it has none.
    func minimum(uuid: String) throws -> (generation: UInt64, digest: [UInt8])? {
        let url = base.appendingPathComponent("v1/images/\(uuid)/minimum")
        guard let (status, body) = send(URLRequest(url: url)), status == 200,
              let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
              let generation = (object["minimum_generation"] as? NSNumber)?.uint64Value else {
            throw Unreachable(description: "the witness at \(base.absoluteString) did not answer for image \(uuid)")
        }
        guard let hex = object["digest"] as? String else { return nil }
        guard let digest = Self.bytes(hex), digest.count == 32 else {
            throw Unreachable(description: "the witness answered a malformed digest")
        }
        return (generation, digest)
    }

    /// Posts one report; true when the witness recorded it (200: accepted or duplicate).
    func post(_ report: [UInt8]) -> Bool {
        var request = URLRequest(url: base.appendingPathComponent("v1/reports"))
        request.httpMethod = "POST"
        request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(report)
        let answer = send(request)
        lastStatus = answer?.0
        lastBody = answer.map { String(decoding: $0.1, as: UTF8.self) } ?? "unreachable"
        return answer?.0 == 200
    }

    private func send(_ request: URLRequest) -> (Int, Data)? {
        var request = request
        request.timeoutInterval = 5
        final class Box: @unchecked Sendable { var result: (Int, Data)? }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, _ in
            if let http = response as? HTTPURLResponse { box.result = (http.statusCode, data ?? Data()) }
            done.signal()
        }.resume()
        done.wait()
        return box.result
    }

    static func bytes(_ hex: String) -> [UInt8]? {
        let characters = Array(hex.utf8)
        guard characters.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var index = 0
        while index < characters.count {
            guard let byte = UInt8(String(decoding: characters[index ..< index + 2], as: UTF8.self), radix: 16) else { return nil }
            out.append(byte)
            index += 2
        }
        return out
    }
}
