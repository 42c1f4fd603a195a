import Foundation
import VarStoreCore

/// An `MMClient.Bus` that speaks the qtest text protocol to a machine, line by line, exactly
/// as an external harness would over `varstore qtest`'s stdin/stdout.
public final class QTestTextBus {
    public let machine: QTestMachine
    /// Every line sent and received, in order (for transcripts).
    public private(set) var transcript: [(sent: String, received: String)] = []
    public var recordTranscript = false

    public init(machine: QTestMachine) {
        self.machine = machine
    }

    @discardableResult
    public func send(_ line: String) -> String {
        let reply = machine.handle(line: line)
        if recordTranscript { transcript.append((line, reply)) }
        return reply
    }

    public var bus: MMClient.Bus {
        MMClient.Bus(
            read: { [self] address, size in
                let command = ["", "readb", "readw", "", "readl", "", "", "", "readq"][size]
                let reply = send("\(command) 0x\(String(address, radix: 16))")
                return QTestMachine.parseNumber(String(reply.dropFirst(3))) ?? 0
            },
            write: { [self] address, size, value in
                let command = ["", "writeb", "writew", "", "writel", "", "", "", "writeq"][size]
                send("\(command) 0x\(String(address, radix: 16)) 0x\(String(value, radix: 16))")
            },
            readBytes: { [self] address, count in
                let reply = send("b64read 0x\(String(address, radix: 16)) \(count)")
                return [UInt8](Data(base64Encoded: String(reply.dropFirst(3))) ?? Data())
            },
            writeBytes: { [self] address, bytes in
                send("b64write 0x\(String(address, radix: 16)) \(bytes.count) \(Data(bytes).base64EncodedString())")
            })
    }
}
