import ArgumentParser
import Foundation
import Hummingbird
import VarStoreCore

/// The reference witness (spec/rollback.md, "HTTP API"): `varstore-witness serve`.
@main
struct VarstoreWitness: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "varstore-witness",
        abstract: "The reference witness for varstore images: a ledger of witnessed generations over HTTP.",
        subcommands: [Serve.self])
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve POST /v1/reports and GET /v1/images/{uuid}/minimum (spec/rollback.md).")

    @Option(help: "The SQLite ledger (created if missing).")
    var database: String

    @Option(help: "A directory of witness keys, one <uuid>.key per image (64 hex digits; see `varstore inspect --witness-key`).")
    var keys: String

    @Option(help: "Address to listen on (loopback unless told otherwise).")
    var host = "127.0.0.1"

    @Option(help: "Port; 0 picks a free one (printed as `listening on HOST:PORT`).")
    var port = 0

    func run() async throws {
        let ledger = try Ledger(path: database, keys: keys)
        let router = Router()
        router.get("/v1/health") { _, _ in "ok" }
        router.get("/v1/images/:uuid/minimum") { _, context -> Response in
            let uuid = try context.parameters.require("uuid")
            let digest = try ledger.latest(uuid)
            let text = digest.map { "{\"minimum_generation\":\($0.generation),\"digest\":\"\(Hex.string($0.digest))\"}" }
                ?? "{\"minimum_generation\":0,\"digest\":null}"
            return json(.ok, text)
        }
        router.post("/v1/reports") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 4096)
            switch try ledger.decide(Array(body.readableBytesView)) {
            case .accepted(let generation): return json(.ok, "{\"result\":\"accepted\",\"generation\":\(generation)}")
            case .duplicate(let generation): return json(.ok, "{\"result\":\"duplicate\",\"generation\":\(generation)}")
            case .malformed: return json(.badRequest, "{\"error\":\"malformed\"}")
            case .badMAC: return json(.forbidden, "{\"error\":\"bad-mac\"}")
            case .refused(let reason, let generation, let digest):
                return json(.conflict, "{\"error\":\"\(reason)\",\"generation\":\(generation),\"digest\":\"\(Hex.string(digest))\"}")
            }
        }
        let host = host
        let port = port
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port)),
                              onServerRunning: { channel in
                                  // Unbuffered: the first line is how a test learns the port.
                                  FileHandle.standardOutput.write(Data("listening on \(host):\(channel.localAddress?.port ?? port)\n".utf8))
                              })
        try await app.runService()
    }
}

func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
    Response(status: status, headers: [.contentType: "application/json"],
             body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
}
