import CWitnessHTTP
import Foundation
import VarStoreCore

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

    /// The answer to GET .../minimum (spec/rollback.md, "HTTP API"), decoded strictly: a
    /// generation that is not a whole number in UInt64's range is refused, not converted.
    private struct MinimumAnswer: Decodable {
        let minimum_generation: UInt64
        let digest: String?
    }

    /// The witness's highest recorded state for `uuid`; nil if it has none (generation 0 and
    /// digest null, together: any other mix is a malformed answer, never "no anchor").
    func minimum(uuid: String) throws -> (generation: UInt64, digest: [UInt8])? {
        let url = base.appendingPathComponent("v1/images/\(uuid)/minimum")
        let (status, body) = try exchange(url, body: nil)
        guard status == 200 else {
            throw Unreachable(description: "the witness at \(base.absoluteString) answered HTTP \(status) for image \(uuid)")
        }
        guard let answer = try? JSONDecoder().decode(MinimumAnswer.self, from: body) else {
            throw Unreachable(description: "the witness answered a malformed minimum for image \(uuid)")
        }
        switch (answer.minimum_generation, answer.digest) {
        case (0, nil):
            return nil
        case (let generation, let hex?) where generation > 0:
            guard let digest = Hex.bytes(hex), digest.count == 32 else {
                throw Unreachable(description: "the witness answered a malformed digest")
            }
            return (generation, digest)
        default:
            throw Unreachable(description: "the witness answered generation \(answer.minimum_generation) "
                + (answer.digest == nil ? "without a digest" : "with a digest for an unknown image"))
        }
    }

    /// Posts one report; true when the witness recorded it (200: accepted or duplicate).
    func post(_ report: [UInt8]) -> Bool {
        do {
            let (status, body) = try exchange(base.appendingPathComponent("v1/reports"), body: report)
            lastStatus = status
            lastBody = String(decoding: body, as: UTF8.self)
            return status == 200
        } catch {
            lastStatus = nil
            lastBody = "\(error)"
            return false
        }
    }

    /// Answers longer than this are refused (the witness's are a few hundred bytes).
    static let answerLimit = 1 << 20

    /// A GET (`body` nil) or a POST of `body` as application/octet-stream, within 5 s: the
    /// status and body of the answer; when none arrived, an error saying why (libcurl's reason,
    /// or CWitnessHTTP's: no libcurl, not http or https, an answer over the limit).
    private func exchange(_ url: URL, body: [UInt8]?) throws -> (Int, Data) {
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
        guard result == 0 else {
            let reason = withUnsafeBytes(of: reply.error) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            throw Unreachable(description: "the witness at \(base.absoluteString) did not answer: \(reason.isEmpty ? "no reason given" : reason)")
        }
        return (Int(reply.status), reply.body.map { Data(bytes: $0, count: reply.length) } ?? Data())
    }
}
