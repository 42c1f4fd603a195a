import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import VarStoreCore
import VarStoreCrypto
import VarStoreHost

/// The processes the end-to-end tests drive: `varstore-witness serve` on 127.0.0.1 (port 0,
/// the port read from its first line) and `varstore qtest` simulators speaking the qtest text
/// protocol over pipes. Every wait is bounded; every process is stopped by the test.
enum Build {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static func binary(_ name: String) -> String { root.appendingPathComponent(".build/debug/\(name)").path }

    /// Runs a command to completion (bounded: 120 s); returns status, stdout and stderr.
    @discardableResult
    static func run(_ name: String, _ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary(name))
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
                String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }
}

/// Reads lines from a pipe with a deadline.
final class LineReader {
    let handle: FileHandle
    var buffer: [UInt8] = []

    init(_ handle: FileHandle) { self.handle = handle }

    func line(timeout: TimeInterval = 60) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let newline = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            guard Date() < deadline else { return nil }
            var poll = pollfd(fd: handle.fileDescriptor, events: Int16(POLLIN), revents: 0)
            guard Glibc.poll(&poll, 1, 200) >= 0 else { return nil }
            if poll.revents != 0 {
                let chunk = handle.availableData
                if chunk.isEmpty { return nil }
                buffer += chunk
            }
        }
    }
}

final class WitnessServer {
    let process = Process()
    let directory: URL
    let keys: URL
    private(set) var url: URL!

    /// Starts `varstore-witness serve` on 127.0.0.1:`port` (0: any free port).
    init(directory: URL, port: Int = 0) throws {
        self.directory = directory
        keys = directory.appendingPathComponent("keys")
        try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: Build.binary("varstore-witness"))
        process.arguments = ["serve", "--database", directory.appendingPathComponent("ledger.sqlite").path,
                             "--keys", keys.path, "--host", "127.0.0.1", "--port", "\(port)"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.standardError
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let reader = LineReader(out.fileHandleForReading)
        while let line = reader.line(timeout: 60) {
            if line.hasPrefix("listening on ") {
                url = URL(string: "http://" + line.dropFirst("listening on ".count))
                break
            }
        }
        guard url != nil else {
            stop()
            throw Failure("the witness did not start")
        }
    }

    var port: Int { url.port ?? 0 }

    /// Provisions the image's witness key (what `varstore inspect --witness-key` prints).
    func provision(image: String, keyFile: String) throws {
        let inspect = try Build.run("varstore", ["inspect", image, "--key-file", keyFile, "--witness-key", "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(inspect.out.utf8)) as? [String: Any]
        guard let uuid = object?["uuid"] as? String, let key = object?["witness_key"] as? String else {
            throw Failure("inspect --witness-key: \(inspect.err)")
        }
        try (key + "\n").write(to: keys.appendingPathComponent(uuid + ".key"), atomically: true, encoding: .utf8)
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    deinit { stop() }

    /// One HTTP request to the server (URLSession, bounded by its timeout).
    func request(_ path: String, post body: [UInt8]? = nil) -> (status: Int, body: String) {
        var request = URLRequest(url: url.appendingPathComponent(path))
        request.timeoutInterval = 10
        if let body {
            request.httpMethod = "POST"
            request.httpBody = Data(body)
        }
        final class Box: @unchecked Sendable { var result = (0, "") }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, _ in
            box.result = ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data ?? Data(), as: UTF8.self))
            done.signal()
        }.resume()
        done.wait()
        return box.result
    }

    func minimum(_ uuid: String) -> (generation: UInt64, digest: String?) {
        let answer = request("v1/images/\(uuid)/minimum")
        let object = (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8))) as? [String: Any]
        return ((object?["minimum_generation"] as? NSNumber)?.uint64Value ?? 0, object?["digest"] as? String)
    }
}

/// A `varstore qtest` process: the guest's view through MMClient over the qtest text protocol.
final class SimulatedVM {
    let process = Process()
    let input = Pipe()
    let reader: LineReader
    let errors = Pipe()

    init(_ arguments: [String]) throws {
        signal(SIGPIPE, SIG_IGN)
        process.executableURL = URL(fileURLWithPath: Build.binary("varstore"))
        process.arguments = ["qtest"] + arguments
        let out = Pipe()
        process.standardInput = input
        process.standardOutput = out
        process.standardError = errors
        try process.run()
        reader = LineReader(out.fileHandleForReading)
    }

    func command(_ line: String) -> String {
        // A simulator that refused to start has closed its input: the write fails, no reply.
        guard (try? input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))) != nil else { return "" }
        return reader.line() ?? ""
    }

    private func value(_ reply: String) -> UInt64 {
        guard reply.hasPrefix("OK 0x") else { return 0 }
        return UInt64(reply.dropFirst(5), radix: 16) ?? 0
    }

    lazy var client: MMClient = {
        let names = [1: "b", 2: "w", 4: "l", 8: "q"]
        let bus = MMClient.Bus(
            read: { address, size in self.value(self.command("read\(names[size]!) 0x\(String(address, radix: 16))")) },
            write: { address, size, value in
                _ = self.command("write\(names[size]!) 0x\(String(address, radix: 16)) 0x\(String(value, radix: 16))")
            },
            readBytes: { address, count in
                let reply = self.command("read 0x\(String(address, radix: 16)) \(count)")
                return Hex.bytes(String(reply.dropFirst(5))) ?? []
            },
            writeBytes: { address, bytes in
                _ = self.command("write 0x\(String(address, radix: 16)) \(bytes.count) 0x\(Hex.string(bytes))")
            })
        let client = MMClient(bus: bus)
        _ = client.initialize()
        return client
    }()

    /// Ends the session as a shutdown does (end of input); returns the exit status and stderr.
    func shutdown() -> (status: Int32, err: String) {
        try? input.fileHandleForWriting.close()
        return finish()
    }

    /// A power cut: SIGKILL.
    func powerCut() {
        kill(process.processIdentifier, SIGKILL)
        _ = finish()
    }

    private func finish() -> (status: Int32, err: String) {
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    deinit {
        if process.isRunning { powerCut() }
    }
}

struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
