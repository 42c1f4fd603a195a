import Foundation
import Testing
import VarStoreCore
import VarStoreCrypto
@testable import VarStoreHost

/// The qtest text protocol (QEMU system/qtest.c) and a scripted session through it.
@Suite struct QTestMachineTests {
    func machine(usePIO: Bool = false) -> QTestMachine { QTestMachine(usePIO: usePIO) }

    @Test func readsAreZeroPaddedSixteenDigitHex() {
        let m = machine()
        #expect(m.handle(line: "readw 0xfef10000") == "OK 0x0000000000000ef1")
        #expect(m.handle(line: "readl 0xfef1001c") == "OK 0x0000000000000000")
        #expect(machine(usePIO: true).handle(line: "readl 0xfef1001c") == "OK 0x0000000000000001")
        #expect(m.handle(line: "readq 0x1000") == "OK 0x0000000000000000")
    }

    @Test func writesAndReadsOfRAM() {
        let m = machine()
        #expect(m.handle(line: "writeq 0x1000 0x1122334455667788") == "OK")
        #expect(m.handle(line: "readb 0x1000") == "OK 0x0000000000000088")
        #expect(m.handle(line: "readl 0x1004") == "OK 0x0000000011223344")
        #expect(m.handle(line: "read 0x1000 4") == "OK 0x88776655")
        #expect(m.handle(line: "write 0x2000 3 0xaabbcc") == "OK")
        #expect(m.handle(line: "read 0x2000 4") == "OK 0xaabbcc00")
        // Bytes past the given hex digits are written as zero, as QEMU does.
        #expect(m.handle(line: "write 0x2000 3 0xff") == "OK")
        #expect(m.handle(line: "read 0x2000 3") == "OK 0xff0000")
        #expect(m.handle(line: "write 0x2000 1 0") == "ERR invalid argument size")
        #expect(m.handle(line: "memset 0x3000 5 0x41") == "OK")
        #expect(m.handle(line: "b64read 0x3000 5") == "OK QUFBQUE=")
        #expect(m.handle(line: "b64write 0x4000 3 AQID") == "OK")
        #expect(m.handle(line: "read 0x4000 3") == "OK 0x010203")
        #expect(m.handle(line: "readw 010") == "OK 0x0000000000000000")
    }

    @Test func unknownAndMalformedCommandsFail() {
        let m = machine()
        #expect(m.handle(line: "outb 0x80 1") == "FAIL Unknown command 'outb'")
        #expect(m.handle(line: "readb") .hasPrefix("FAIL"))
        #expect(m.handle(line: "read 0x1000 0").hasPrefix("FAIL"))
        #expect(m.handle(line: "endianness") == "OK little")
    }

    @Test func scriptedSessionSetsReadsEnumeratesDeletesAndQueries() throws {
        let m = machine()
        // The edk2 init sequence: magic, RESET, BUFFER_SIZE, DMA address.
        #expect(m.handle(line: "readw 0xfef10000") == "OK 0x0000000000000ef1")
        #expect(m.handle(line: "writew 0xfef10002 0x1") == "OK")
        #expect(m.handle(line: "readw 0xfef10002") == "OK 0x0000000000000000")
        #expect(m.handle(line: "writel 0xfef10004 0x10000") == "OK")
        #expect(m.handle(line: "writel 0xfef10008 0x100000") == "OK")
        #expect(m.handle(line: "writel 0xfef1000c 0x0") == "OK")

        func mm(_ payload: [UInt8]) -> [UInt8] {
            // gEfiSmmVariableProtocolGuid, then MessageLength.
            let guid: [UInt8] = [0x33, 0xd5, 0x32, 0xed, 0xe6, 0x99, 0x09, 0x42, 0x9c, 0xc0, 0x2d, 0x72, 0xcd, 0xd9, 0x98, 0xa7]
            return guid + le64(UInt64(payload.count)) + payload
        }
        func exchange(_ request: [UInt8]) -> [UInt8] {
            let hex = request.map { String(format: "%02x", $0) }.joined()
            #expect(m.handle(line: "write 0x100000 \(request.count) 0x\(hex)") == "OK")
            #expect(m.handle(line: "writew 0xfef10002 0x2") == "OK")
            #expect(m.handle(line: "readw 0xfef10002") == "OK 0x0000000000000000")
            let reply = m.handle(line: "read 0x100000 \(request.count)")
            return QEMUJSONStore.hexBytes(String(reply.dropFirst(5))) ?? []
        }
        let vendor: [UInt8] = Array(0x10 ..< 0x20)
        let name = [0x48, 0x00, 0x69, 0x00, 0x00, 0x00] as [UInt8]  // "Hi"
        func access(_ function: UInt64, dataSize: UInt64, attributes: UInt32, data: [UInt8]) -> [UInt8] {
            mm(le64(function) + le64(0) + vendor + le64(dataSize) + le64(UInt64(name.count)) + le32(attributes) + name + data)
        }

        // SetVariable NV|BS|RT "Hi" = 01 02 03.
        #expect(u64(exchange(access(3, dataSize: 3, attributes: 7, data: [1, 2, 3])), 32) == 0)
        // GetVariable with room for 8 bytes.
        let get = exchange(access(1, dataSize: 8, attributes: 0, data: [UInt8](repeating: 0, count: 8)))
        #expect(u64(get, 32) == 0)
        #expect(u64(get, 56) == 3 && u32(get, 72) == 7)
        #expect(Array(get[82 ..< 85]) == [1, 2, 3])
        // GetNextVariableName after the service's last own variable (VendorKeys, global GUID)
        // finds it; after it, EFI_NOT_FOUND.
        let global: [UInt8] = [0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c]
        var vendorKeys: [UInt8] = []
        for unit in "VendorKeys".utf16 { vendorKeys += [UInt8(unit & 0xff), UInt8(unit >> 8)] }
        vendorKeys += [UInt8](repeating: 0, count: 32 - vendorKeys.count)
        var request: [UInt8] = le64(2) + le64(0)
        request += global + le64(32) + vendorKeys
        let first = exchange(mm(request))
        #expect(u64(first, 32) == 0)
        #expect(Array(first[40 ..< 56]) == vendor && u64(first, 56) == 6 && Array(first[64 ..< 70]) == name)
        let end = exchange(mm(le64(2) + le64(0) + vendor + le64(32) + name + [UInt8](repeating: 0, count: 26)))
        #expect(u64(end, 32) == 0x8000_0000_0000_000E)
        // QueryVariableInfo(NV|BS|RT): 256 KiB, less 60 + 6 + 3 for "Hi" and the service's
        // CustomMode (60 + 22 + 1) and VendorKeysNv (60 + 26 + 1).
        let query = exchange(mm(le64(4) + le64(0) + le64(0) + le64(0) + le64(0) + le32(7)))
        #expect(u64(query, 32) == 0)
        #expect(u64(query, 40) == 0x40000 && u64(query, 48) == 0x40000 - 69 - 83 - 87)
        // Delete, then GetVariable is EFI_NOT_FOUND and a second delete is EFI_NOT_FOUND too.
        #expect(u64(exchange(access(3, dataSize: 0, attributes: 7, data: [])), 32) == 0)
        #expect(u64(exchange(access(1, dataSize: 8, attributes: 0, data: [UInt8](repeating: 0, count: 8))), 32) == 0x8000_0000_0000_000E)
        #expect(u64(exchange(access(3, dataSize: 0, attributes: 7, data: [])), 32) == 0x8000_0000_0000_000E)
    }
}

func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * UInt32($0))) & 0xff) } }
func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8((v >> (8 * UInt64($0))) & 0xff) } }
func u32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) } }
func u64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) } }
