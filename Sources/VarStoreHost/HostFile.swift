import Foundation
import VarStoreCore

/// Reading and writing the files an operator names, with errors in our words — "no such file:
/// PATH", "permission denied: PATH" — rather than Foundation's "The operation could not be
/// completed".
public enum HostFile {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    public static func read(_ path: String) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw Failure(reason(errno, path)) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw Failure(reason(errno, path)) }
        if status.st_mode & S_IFMT == S_IFDIR { throw Failure("\(path) is a directory, not a file") }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { Foundation.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(reason(errno, path))
            }
            if count == 0 { return bytes }
            bytes += chunk[0 ..< count]
        }
    }

    /// Writes `bytes` to `path`, replacing it (not atomically: for outputs such as a signed
    /// update; files holding variables go through AtomicFile).
    public static func write(_ bytes: [UInt8], to path: String) throws {
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        } catch {
            let code = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError)?.code
            throw Failure(code.map { reason(Int32($0), path) } ?? "cannot write \(path)")
        }
    }

    static func reason(_ code: Int32, _ path: String) -> String {
        switch code {
        case ENOENT: return "no such file: \(path)"
        case EACCES, EPERM: return "permission denied: \(path)"
        case EISDIR: return "\(path) is a directory, not a file"
        case ENOTDIR: return "not a directory on the way to \(path)"
        default: return "cannot use \(path): \(String(cString: strerror(code)))"
        }
    }
}

/// JSON text for the host's writers: one string escaper for QEMU's JSON store and the
/// command-line tool's `--json` objects.
public enum JSONText {
    /// A JSON string literal for `text` (RFC 8259 §7: quote, backslash and controls escaped).
    public static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += "\\u" + Hex.string(UInt64(scalar.value), digits: 4)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// An object of already-JSON values, in the given order (`--json` keys are a contract).
    public static func object(_ fields: [(String, String)]) -> String {
        "{" + fields.map { "\(quoted($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }

    /// An array of already-JSON values.
    public static func array(_ values: [String]) -> String { "[" + values.joined(separator: ", ") + "]" }
}
