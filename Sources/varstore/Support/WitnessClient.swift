import CWitnessHTTP
import Foundation

/// The key-release side of `qtest --witness URL` (spec/rollback.md, "HTTP API"): asks the
/// witness for an image's anchor and posts reports, synchronously, over libcurl
/// (CWitnessHTTP), so the varstore binary pulls in no server or NIO stack. libcurl is loaded
/// on the first exchange: linking FoundationNetworking (URLSession) instead loaded it, and
/// its TLS, LDAP and Kerberos libraries, into every varstore process at start-up — about
/// 5 ms of each command's run, witness or not.
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
        guard let (status, body) = send(url, body: nil), status == 200,
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
        let answer = send(base.appendingPathComponent("v1/reports"), body: report)
        lastStatus = answer?.0
        lastBody = answer.map { String(decoding: $0.1, as: UTF8.self) } ?? "unreachable"
        return answer?.0 == 200
    }

    /// Answers longer than this are refused (the witness's are a few hundred bytes).
    static let answerLimit = 1 << 20

    /// A GET (`body` nil) or a POST of `body` as application/octet-stream, within 5 s; the
    /// status and body of the answer, nil if none arrived.
    private func send(_ url: URL, body: [UInt8]?) -> (Int, Data)? {
        var reply = witness_http_reply()
        let result = url.absoluteString.withCString { address in
            if let body {
                return body.withUnsafeBytes { bytes in
                    witness_http_exchange(address, "application/octet-stream", bytes.baseAddress ?? UnsafeRawPointer(address),
                                          bytes.count, 5000, Self.answerLimit, &reply)
                }
            }
            return witness_http_exchange(address, nil, nil, 0, 5000, Self.answerLimit, &reply)
        }
        defer { witness_http_free(&reply) }
        guard result == 0 else { return nil }
        return (Int(reply.status), reply.body.map { Data(bytes: $0, count: reply.length) } ?? Data())
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
