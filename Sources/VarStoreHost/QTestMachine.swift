import Foundation
import VarStoreCore
import VarStoreCrypto

/// A machine that answers QEMU's qtest text protocol (QEMU docs/devel/qtest.rst,
/// system/qtest.c): simulated guest RAM from address 0 and the uefi-vars device at
/// 0xFEF10000, as `qemu-system-x86_64 -qtest stdio -device uefi-vars-x64` would present them.
///
/// One command per line, words separated by single spaces; numbers in C notation (0x hex,
/// leading 0 octal, else decimal). Replies are QEMU's: `OK`, `OK 0x%016x` for
/// readb/readw/readl/readq, `OK 0x<hex>` for read, `OK <base64>` for b64read, `FAIL …`.
/// Where QEMU would abort on a malformed command, the machine answers `FAIL <reason>`.
public final class QTestMachine {
    public let ram: SparseGuestRAM
    public let device: UEFIVarsDevice<SparseGuestRAM, Libcrypto, HostJournal>
    /// The SVSM transport into the same service, over the same RAM (the `svsm` command).
    public let svsm: SVSMUEFIMM<SparseGuestRAM, Libcrypto, HostJournal>
    public let deviceBase: UInt64

    /// A machine whose service starts from what `journal` holds and commits every
    /// non-volatile change to it before answering.
    public init(configuration: ServiceConfiguration = ServiceConfiguration(), journal: HostJournal = HostJournal(),
                ramSize: UInt64 = 256 << 20, usePIO: Bool = false, deviceBase: UInt64 = UEFIVarsRegister.x86BaseAddress) {
        let service = VariableService(configuration: configuration, crypto: Libcrypto(), journal: journal,
                                      variables: journal.variables)
        ram = SparseGuestRAM(size: ramSize)
        device = UEFIVarsDevice(service: service, memory: ram, usePIO: usePIO)
        svsm = SVSMUEFIMM(service: service, memory: ram)
        self.deviceBase = deviceBase
    }

    public var service: VariableService<Libcrypto, HostJournal> { device.service }

    /// Handles one line (without its newline) and returns the reply line (without newline).
    public func handle(line: String) -> String {
        let words = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard let command = words.first, !command.isEmpty else { return "FAIL Unknown command ''" }
        func number(_ index: Int) -> UInt64? {
            guard index < words.count else { return nil }
            return Self.parseNumber(words[index])
        }
        switch command {
        case "readb", "readw", "readl", "readq":
            guard let address = number(1) else { return "FAIL \(command): bad address" }
            let size = Self.width(command)
            let value = busRead(address, size: size)
            return "OK 0x" + Hex.string(value, digits: 16)
        case "writeb", "writew", "writel", "writeq":
            guard let address = number(1), let value = number(2) else { return "FAIL \(command): bad arguments" }
            busWrite(address, size: Self.width(command), value: value)
            return "OK"
        case "read", "b64read":
            guard let address = number(1), let length = number(2) else { return "FAIL \(command): bad arguments" }
            guard length > 0, length <= 1 << 26 else { return "FAIL \(command): bad length" }
            let bytes = busReadBytes(address, count: Int(length))
            return command == "read" ? "OK 0x" + Hex.string(bytes) : "OK " + Data(bytes).base64EncodedString()
        case "write":
            guard let address = number(1), let length = number(2), words.count > 3 else {
                return "FAIL write: bad arguments"
            }
            guard length <= 1 << 26 else { return "FAIL write: bad length" }
            let text = Array(words[3].utf8)
            if text.count < 3 { return "ERR invalid argument size" }
            // As QEMU: bytes past the given hex digits are written as zero.
            var bytes = [UInt8](repeating: 0, count: Int(length))
            for index in 0..<bytes.count where index * 2 + 4 <= text.count {
                let high = Hex.nibble(text[index * 2 + 2]) ?? 0
                let low = Hex.nibble(text[index * 2 + 3]) ?? 0
                bytes[index] = high << 4 | low
            }
            busWriteBytes(address, bytes)
            return "OK"
        case "b64write":
            guard let address = number(1), let length = number(2), words.count > 3 else {
                return "FAIL b64write: bad arguments"
            }
            guard length <= 1 << 26 else { return "FAIL b64write: bad length" }
            if words[3].utf8.count < 3 { return "ERR invalid argument size" }
            guard let decoded = Data(base64Encoded: words[3]) else { return "FAIL b64write: bad base64" }
            var bytes = [UInt8](decoded.prefix(Int(length)))
            bytes += [UInt8](repeating: 0, count: Int(length) - bytes.count)
            busWriteBytes(address, bytes)
            return "OK"
        case "memset":
            guard let address = number(1), let length = number(2), let pattern = number(3) else {
                return "FAIL memset: bad arguments"
            }
            guard length <= 1 << 26 else { return "FAIL memset: bad length" }
            if length > 0 {
                busWriteBytes(address, [UInt8](repeating: UInt8(truncatingIfNeeded: pattern), count: Int(length)))
            }
            return "OK"
        case "endianness":
            return "OK little"
        case "svsm":
            // Not a QEMU command: an SVSM call with RAX RCX RDX [R8] against guest RAM, answered
            // "OK <rax> <rcx>" (spec/simulator.md).
            guard words.count == 4 || words.count == 5, let rax = number(1), let rcx = number(2), let rdx = number(3),
                  words.count == 4 || number(4) != nil else {
                return "FAIL svsm: bad arguments"
            }
            let result = svsm.call(SVSMCall(rax: rax, rcx: rcx, rdx: rdx, r8: words.count == 5 ? number(4) ?? 0 : 0))
            return "OK 0x" + Hex.string(result.rax, digits: 16) + " 0x" + Hex.string(result.rcx, digits: 16)
        default:
            return "FAIL Unknown command '\(command)'"
        }
    }

    static func width(_ command: String) -> Int {
        switch command.last {
        case "b": return 1
        case "w": return 2
        case "l": return 4
        default: return 8
        }
    }

    /// C-style unsigned number: 0x… hex, 0… octal, otherwise decimal (qemu_strtou64 base 0).
    public static func parseNumber(_ word: String) -> UInt64? {
        if word.hasPrefix("0x") || word.hasPrefix("0X") {
            return word.count > 2 ? UInt64(word.dropFirst(2), radix: 16) : nil
        }
        if word.count > 1 && word.hasPrefix("0") { return UInt64(word.dropFirst(), radix: 8) }
        return UInt64(word, radix: 10)
    }

    // MARK: The guest-physical bus

    private func deviceOffset(_ address: UInt64) -> UInt64? {
        guard address >= deviceBase, address - deviceBase < UEFIVarsRegister.regionSize else { return nil }
        return address - deviceBase
    }

    /// One access of 1, 2, 4 or 8 bytes. Addresses that are neither RAM nor the device read
    /// zero and ignore writes, as QEMU's unassigned memory does.
    public func busRead(_ address: UInt64, size: Int) -> UInt64 {
        if let offset = deviceOffset(address) { return device.mmioRead(offset: offset, size: size) }
        guard let bytes = try? ram.bytes(at: address, count: size) else { return 0 }
        var value: UInt64 = 0
        for (index, byte) in bytes.enumerated() { value |= UInt64(byte) << UInt64(8 * index) }
        return value
    }

    public func busWrite(_ address: UInt64, size: Int, value: UInt64) {
        if let offset = deviceOffset(address) {
            device.mmioWrite(offset: offset, size: size, value: value)
            return
        }
        var bytes: [UInt8] = []
        for index in 0..<size { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(8 * index))) }
        try? ram.store(bytes, at: address)
    }

    /// Bulk transfers; the part that falls on the device is split into aligned accesses of
    /// at most 4 bytes, as QEMU's address_space_rw splits MMIO.
    public func busReadBytes(_ address: UInt64, count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var done = 0
        while done < count {
            let current = address &+ UInt64(done)
            if deviceOffset(current) != nil {
                let size = Self.mmioChunk(current, remaining: count - done)
                let value = busRead(current, size: size)
                for index in 0..<size { out.append(UInt8(truncatingIfNeeded: value >> UInt64(8 * index))) }
                done += size
            } else {
                let chunk = min(count - done, bytesUntilDevice(current))
                if let bytes = try? ram.bytes(at: current, count: chunk) {
                    out += bytes
                } else {
                    out += [UInt8](repeating: 0, count: chunk)
                }
                done += chunk
            }
        }
        return out
    }

    public func busWriteBytes(_ address: UInt64, _ bytes: [UInt8]) {
        var done = 0
        while done < bytes.count {
            let current = address &+ UInt64(done)
            if deviceOffset(current) != nil {
                let size = Self.mmioChunk(current, remaining: bytes.count - done)
                var value: UInt64 = 0
                for index in 0..<size { value |= UInt64(bytes[done + index]) << UInt64(8 * index) }
                busWrite(current, size: size, value: value)
                done += size
            } else {
                let chunk = min(bytes.count - done, bytesUntilDevice(current))
                try? ram.write(current, from: bytes, range: done..<(done + chunk))
                done += chunk
            }
        }
    }

    private func bytesUntilDevice(_ address: UInt64) -> Int {
        guard address < deviceBase else { return Int.max }
        return Int(min(deviceBase - address, UInt64(Int.max)))
    }

    private static func mmioChunk(_ address: UInt64, remaining: Int) -> Int {
        for size in [4, 2] where remaining >= size && address % UInt64(size) == 0 { return size }
        return 1
    }
}
