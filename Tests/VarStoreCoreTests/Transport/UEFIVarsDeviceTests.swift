import Testing
@testable import VarStoreTestSupport
@testable import VarStoreCore
import VarStoreCrypto
import VarStoreCrypto

/// The uefi-vars register block (spec/mmio.md).
@Suite struct UEFIVarsDeviceTests {
    func device(usePIO: Bool = false) -> UEFIVarsDevice<FlatMemory, Libcrypto, MemoryJournal> {
        UEFIVarsDevice(service: VariableService(), memory: FlatMemory(), usePIO: usePIO)
    }

    @Test func magicReadsAs0x0EF1AtEveryWidth() {
        let d = device()
        #expect(d.mmioRead(offset: 0x00, size: 2) == 0x0EF1)
        // A 32-bit read at 0 returns the magic only, not magic|status.
        #expect(d.mmioRead(offset: 0x00, size: 4) == 0x0EF1)
        d.mmioWrite(offset: 0x00, size: 2, value: 0x1234)
        #expect(d.mmioRead(offset: 0x00, size: 2) == 0x0EF1)
    }

    @Test func unassignedOffsetsReadAllOnesAndIgnoreWrites() {
        let d = device()
        #expect(d.mmioRead(offset: 0x14, size: 4) == 0xFFFF_FFFF)
        #expect(d.mmioRead(offset: 0x01, size: 2) == 0xFFFF)
        d.mmioWrite(offset: 0x14, size: 4, value: 7)
        #expect(d.mmioRead(offset: 0x14, size: 4) == 0xFFFF_FFFF)
        // An 8-byte read at 0x10 is two 4-byte accesses: the upper half hits 0x14.
        #expect(d.mmioRead(offset: 0x10, size: 8) >> 32 == 0xFFFF_FFFF)
    }

    @Test(arguments: [(UInt64(0), -1), (UInt64(0), 0), (UInt64(0), Int.min), (UInt64(0), 9), (UInt64(0x20), 2), (UInt64.max - 1, 8), (UInt64(0xFFFF_FFFF_FFFF_FFFE), 4)] as [(UInt64, Int)])
    func accessesOutsideTheBlockOrOfImpossibleSizeReachNoRegister(_ offset: UInt64, _ size: Int) {
        let d = device()
        d.mmioWrite(offset: 0x04, size: 4, value: 0x100)
        // An 8-byte write at 2^64-2 would wrap onto CMD_STS with DMA_MM if offsets wrapped.
        d.mmioWrite(offset: offset, size: size, value: 0x0000_0002_0000_0002)
        #expect(d.mmioRead(offset: offset, size: size) == UInt64.max)
        #expect(d.mmioRead(offset: 0x02, size: 2) == 0)
        #expect(d.mmioRead(offset: 0x04, size: 4) == 0x100)
    }

    @Test func flagsAdvertisePIOOnlyWhenConfigured() {
        #expect(device().mmioRead(offset: 0x1C, size: 4) == 0)
        #expect(device(usePIO: true).mmioRead(offset: 0x1C, size: 4) == 1)
    }

    @Test func bufferSizeIsClampedTo64KiB() {
        let d = device()
        d.mmioWrite(offset: 0x04, size: 4, value: 0x20000)
        #expect(d.mmioRead(offset: 0x04, size: 4) == 0x10000)
        d.mmioWrite(offset: 0x04, size: 4, value: 100)
        #expect(d.mmioRead(offset: 0x04, size: 4) == 100)
    }

    @Test func resetClearsBufferAndAddress() {
        let d = device()
        d.mmioWrite(offset: 0x04, size: 4, value: 0x1000)
        d.mmioWrite(offset: 0x08, size: 4, value: 0x2000)
        d.mmioWrite(offset: 0x0C, size: 4, value: 0x1)
        d.mmioWrite(offset: 0x02, size: 2, value: 1)
        #expect(d.mmioRead(offset: 0x02, size: 2) == 0)
        #expect(d.mmioRead(offset: 0x04, size: 4) == 0)
        #expect(d.mmioRead(offset: 0x08, size: 4) == 0)
        #expect(d.mmioRead(offset: 0x0C, size: 4) == 0)
    }

    @Test func unknownCommandIsNotSupported() {
        let d = device()
        d.mmioWrite(offset: 0x02, size: 2, value: 0x05)
        #expect(d.mmioRead(offset: 0x02, size: 2) == 0x11)
        d.mmioWrite(offset: 0x02, size: 2, value: 0)
        #expect(d.mmioRead(offset: 0x02, size: 2) == 0x11)
    }

    @Test func mmWithoutABufferIsBadBufferSize() {
        let d = device()
        d.mmioWrite(offset: 0x02, size: 2, value: 2)
        #expect(d.mmioRead(offset: 0x02, size: 2) == 0x12)
        d.mmioWrite(offset: 0x04, size: 4, value: 23)
        d.mmioWrite(offset: 0x02, size: 2, value: 3)
        #expect(d.mmioRead(offset: 0x02, size: 2) == 0x12)
    }

    @Test(arguments: [UInt64(0x10000 - 24 + 1), UInt64.max, UInt64.max - 23, UInt64(1) << 63])
    func messageLengthBeyondTheBufferIsBadBufferSize(_ messageLength: UInt64) {
        let rig = Rig()
        let (status, reply) = rig.dma(mmMessage(WireGUID.smmVariable, smm(11, le64(0)), messageLength: messageLength))
        #expect(status == 0x12)
        // Nothing was answered: the guest's bytes are as it left them.
        #expect(u64(reply, 32) == 0)
    }

    @Test func messageFillingTheBufferExactlyIsAccepted() {
        let rig = Rig(bufferSize: 0x100)
        let payload = smm(11, le64(0)) + [UInt8](repeating: 0, count: 0x100 - 24 - 24)
        let (status, reply) = rig.dma(mmMessage(WireGUID.smmVariable, payload))
        #expect(status == 0)
        #expect(u64(reply, 32) == Status.success)
        #expect(u64(reply, 40) == 0x100 - 24 - 16)
    }

    @Test func unknownGUIDIsNotSupported() {
        let rig = Rig()
        let (status, _) = rig.dma(mmMessage(WireGUID.vendor, [1, 2, 3]))
        #expect(status == 0x11)
    }

    @Test func replyHasTheRequestsLengthAndNoMore() {
        let rig = Rig()
        let request = mmMessage(WireGUID.smmVariable, smm(11, le64(0)))
        let (status, after) = rig.dma(request, readBack: request.count + 64)
        #expect(status == 0)
        #expect(u64(after, 40) == 65496)
        // The guest's bytes after the request (0xCC fill) are untouched.
        #expect(after[request.count...].allSatisfy { $0 == 0xCC })
    }

    @Test func dmaOutsideGuestMemoryIsReportedNotTrapped() {
        let rig = Rig()
        rig.device.mmioWrite(offset: 0x08, size: 4, value: 0xFFFF_F000)
        rig.device.mmioWrite(offset: 0x0C, size: 4, value: 0xFFFF_FFFF)
        rig.device.mmioWrite(offset: 0x02, size: 2, value: 2)
        #expect(rig.status == 0x10)
    }

    /// Memory that answers every address (as a careless platform mapping might), so only the
    /// device's own check can refuse a buffer that wraps past 2^64.
    struct AnyAddressMemory: GuestMemory {
        var reads = 0
        mutating func read(_ address: UInt64, into buffer: inout [UInt8], at offset: Int, count: Int) throws(GuestMemoryError) {
            reads += 1
            for index in offset ..< offset + count { buffer[index] = 0 }
        }
        mutating func write(_ address: UInt64, from buffer: [UInt8], range: Range<Int>) throws(GuestMemoryError) {}
    }

    @Test func dmaBufferWrappingTheAddressSpaceIsRefused() {
        let device = UEFIVarsDevice(service: VariableService(), memory: AnyAddressMemory())
        device.mmioWrite(offset: 0x04, size: 4, value: 0x10000)
        device.mmioWrite(offset: 0x08, size: 4, value: 0xFFFF_FFF0)
        device.mmioWrite(offset: 0x0C, size: 4, value: 0xFFFF_FFFF)
        device.mmioWrite(offset: 0x02, size: 2, value: 2)
        // The header (24 bytes from 2^64 − 16) already wraps: refused before it is read.
        #expect(device.mmioRead(offset: 0x02, size: 2) == 0x10)
        #expect(device.memory.reads == 0)
        // The same request well inside the address space is read and answered.
        device.mmioWrite(offset: 0x08, size: 4, value: 0x1000)
        device.mmioWrite(offset: 0x0C, size: 4, value: 0)
        device.mmioWrite(offset: 0x02, size: 2, value: 2)
        #expect(device.mmioRead(offset: 0x02, size: 2) == 0x11)  // an all-zero GUID has no handler
        #expect(device.memory.reads == 2)
    }

    @Test func guestRewritingItsBufferDuringTheRequestCannotChangeTheAnswer() {
        let set = mmMessage(WireGUID.smmVariable, smm(3, accessVariable(name: ucs2("Key"), dataSize: 2, attributes: Attr.bsRt, data: [7, 7])))
        let rig = Rig()
        // Another vCPU rewrites the buffer right after each read the device makes: first the
        // header (GUID and MessageLength), then the body (Function, sizes, name, data).
        var copies = 0
        rig.device.memory.afterRead = { bytes in
            copies += 1
            let start = 0x1000, end = copies == 1 ? 0x1000 + 24 : 0x1000 + 512
            for index in start ..< end { bytes[index] ^= 0x5A }
        }
        let (status, reply) = rig.dma(set)
        // The answer is the one for the bytes as they were when each part was copied.
        #expect(status == 0)
        #expect(u64(reply, 32) == Status.success)
        #expect(rig.device.memory.reads == 2)
        rig.device.memory.afterRead = nil
        let read = rig.get("Key")
        #expect(read.status == Status.success && read.data == [7, 7] && read.attributes == Attr.bsRt)
    }

    @Test func fieldsPastMessageLengthReadAsZeroEvenAfterALongerRequest() {
        let rig = Rig()
        // A full QUERY_VARIABLE_INFO leaves valid Attributes (NV|BS|RT) in the service's buffer ...
        #expect(rig.query(Attr.nvBsRt).status == Status.success)
        // ... a second one whose message stops before Attributes must read them as 0.
        let (status, payload) = rig.call(4, le64(0) + le64(0) + le64(0), messageLength: 40)
        #expect(status == Status.invalidParameter)
        #expect(payload.count == 40)
    }
}

/// PIO transfer mode (spec/mmio.md, edk2 QemuMmio.c sequence).
@Suite struct PIOTransferTests {
    func crc32c(_ bytes: [UInt8]) -> UInt32 {
        // Bitwise CRC-32C, written independently of the table-driven one under test.
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        return ~crc
    }

    @Test func requestAndReplyStreamThroughTheWindowWithCRC() {
        let rig = Rig(usePIO: true)
        let d = rig.device
        var request = mmMessage(WireGUID.smmVariable, smm(3, accessVariable(name: ucs2("P"), dataSize: 3, attributes: Attr.bsRt, data: [1, 2, 3])))
        let words = (request.count + 3) / 4
        request += [UInt8](repeating: 0, count: words * 4 - request.count)
        d.mmioWrite(offset: 0x02, size: 2, value: 4)  // PIO_ZERO_OFFSET
        for word in 0..<words { d.mmioWrite(offset: 0x10, size: 4, value: UInt64(u32(request, word * 4))) }
        #expect(d.mmioRead(offset: 0x18, size: 4) == UInt64(crc32c(request)))
        d.mmioWrite(offset: 0x02, size: 2, value: 3)  // PIO_MM
        #expect(rig.status == 0)
        d.mmioWrite(offset: 0x02, size: 2, value: 4)
        var reply: [UInt8] = []
        for _ in 0..<words { reply += le32(UInt32(d.mmioRead(offset: 0x10, size: 4))) }
        #expect(d.mmioRead(offset: 0x18, size: 4) == UInt64(crc32c(reply)))
        #expect(u64(reply, 32) == Status.success)
        #expect(rig.get("P").data == [1, 2, 3])
    }

    @Test func transfersPastTheBufferAreIgnored() {
        let rig = Rig(usePIO: true, bufferSize: 8)
        let d = rig.device
        d.mmioWrite(offset: 0x02, size: 2, value: 4)
        d.mmioWrite(offset: 0x10, size: 4, value: 0x1111_1111)
        d.mmioWrite(offset: 0x10, size: 4, value: 0x2222_2222)
        d.mmioWrite(offset: 0x10, size: 4, value: 0x3333_3333)  // would pass the 8-byte buffer
        #expect(d.pioOffset == 8)
        #expect(d.mmioRead(offset: 0x10, size: 4) == 0)  // at the end: reads 0, offset unchanged
        d.mmioWrite(offset: 0x02, size: 2, value: 4)
        #expect(d.mmioRead(offset: 0x10, size: 4) == 0x1111_1111)
        #expect(d.mmioRead(offset: 0x10, size: 4) == 0x2222_2222)
    }

    @Test func oneByteAccessesAreWidenedToTwo() {
        let rig = Rig(usePIO: true, bufferSize: 8)
        let d = rig.device
        d.mmioWrite(offset: 0x02, size: 2, value: 4)
        d.mmioWrite(offset: 0x10, size: 1, value: 0xAB)
        #expect(d.pioOffset == 2)
    }

    @Test func resizingTheBufferZeroFillsIt() {
        let rig = Rig(usePIO: true, bufferSize: 8)
        let d = rig.device
        d.mmioWrite(offset: 0x02, size: 2, value: 4)
        d.mmioWrite(offset: 0x10, size: 4, value: 0xDEAD_BEEF)
        d.mmioWrite(offset: 0x04, size: 4, value: 8)
        d.mmioWrite(offset: 0x02, size: 2, value: 4)
        #expect(d.mmioRead(offset: 0x10, size: 4) == 0)
    }
}
