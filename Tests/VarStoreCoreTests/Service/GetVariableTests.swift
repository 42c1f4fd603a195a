import Testing
@testable import VarStoreCore

/// SMM GET_VARIABLE (function 1): QEMU's length framing, edk2's semantics.
@Suite struct GetVariableTests {
    @Test func returnsDataAndAttributes() {
        let rig = Rig()
        #expect(rig.set("Lang", guid: WireGUID.global, attributes: Attr.nvBsRt, data: Array("eng\0".utf8)) == Status.success)
        let read = rig.get("Lang", guid: WireGUID.global)
        #expect(read.status == Status.success)
        #expect(read.attributes == Attr.nvBsRt)
        #expect(read.dataSize == 4 && read.data == Array("eng\0".utf8))
    }

    @Test func tooSmallDataAreaReportsNeededSizeAndAttributes() {
        let rig = Rig()
        _ = rig.set("V", attributes: Attr.bsRt, data: [1, 2, 3, 4, 5])
        let probe = rig.get("V", dataSize: 0)
        #expect(probe.status == Status.bufferTooSmall)
        #expect(probe.dataSize == 5 && probe.attributes == Attr.bsRt)
        #expect(rig.get("V", dataSize: 4).status == Status.bufferTooSmall)
        #expect(rig.get("V", dataSize: 5).status == Status.success)
    }

    @Test func missingAndEmptyNamesAreNotFound() {
        let rig = Rig()
        #expect(rig.get("Nope").status == Status.notFound)
        // edk2 answers an empty name with EFI_NOT_FOUND.
        #expect(rig.get("").status == Status.notFound)
    }

    @Test func nameIsMatchedTogetherWithTheGUID() {
        let rig = Rig()
        _ = rig.set("Same", guid: WireGUID.vendor, attributes: Attr.bsRt, data: [1])
        #expect(rig.get("Same", guid: WireGUID.global).status == Status.notFound)
        #expect(rig.get("same", guid: WireGUID.vendor).status == Status.notFound)
    }

    @Test func messageShorterThanTheAccessHeaderIsBadBufferSize() {
        let rig = Rig()
        let body = accessVariable(name: [], dataSize: 0, nameSize: 0)
        #expect(body.count == 36)
        #expect(rig.call(1, Array(body.prefix(35))).status == Status.badBufferSize)
    }

    @Test func nameSizeOneByteBeyondTheMessageIsBadBufferSize() {
        let rig = Rig()
        let name = ucs2("Var")
        #expect(rig.call(1, accessVariable(name: name, dataSize: 0, nameSize: UInt64(name.count + 1))).status == Status.badBufferSize)
    }

    @Test(arguments: [UInt64.max, UInt64.max - 51, UInt64(0x40001)])
    func hugeSizeFieldsAreOutOfResources(_ size: UInt64) {
        let rig = Rig()
        let name = ucs2("Var")
        #expect(rig.call(1, accessVariable(name: name, dataSize: size)).status == Status.outOfResources)
        #expect(rig.call(1, accessVariable(name: name, dataSize: 0, nameSize: size)).status == Status.outOfResources)
    }

    @Test func unterminatedOrOddNamesAreInvalidParameter() {
        let rig = Rig()
        #expect(rig.call(1, accessVariable(name: [0x41, 0x00, 0x42, 0x00], dataSize: 0)).status == Status.invalidParameter)
        #expect(rig.call(1, accessVariable(name: [0x41, 0x00, 0x00], dataSize: 0)).status == Status.invalidParameter)
        #expect(rig.call(1, accessVariable(name: le16(0xDC00) + [0, 0], dataSize: 0)).status == Status.invalidParameter)
    }

    @Test func advertisedDataAreaMustFitTheBuffer() {
        let rig = Rig(bufferSize: 0x200)
        _ = rig.set("V", attributes: Attr.bsRt, data: [1])
        let name = ucs2("V")
        // 52 + NameSize + DataSize > buffer size − 24, while the message itself fits.
        let body = accessVariable(name: name, dataSize: UInt64(0x200 - 24 - 52 - name.count + 1))
        #expect(rig.call(1, body).status == Status.badBufferSize)
    }

    @Test func messageMustCoverTheDataItReturns() {
        let rig = Rig()
        _ = rig.set("V", attributes: Attr.bsRt, data: [1, 2, 3, 4])
        let name = ucs2("V")
        // DataSize claims 4 bytes but MessageLength stops 1 byte short of them.
        let body = accessVariable(name: name, dataSize: 4, data: [0, 0, 0])
        let (status, payload) = rig.call(1, body)
        #expect(status == Status.bufferTooSmall)
        #expect(u64(payload, 32) == 4)
    }

    /// UEFI 2.10 §8.2 and QEMU: a name must be NUL-terminated UCS-2 without surrogates; the
    /// lookups that read the name straight from the request refuse the same names as before.
    @Test func namesWithASurrogateOrNoTerminatorAreInvalidParameters() {
        let rig = Rig()
        #expect(rig.set("A", attributes: Attr.bsRt, data: [1]) == Status.success)
        let surrogate = le16(0x0041) + le16(0xD800) + [0, 0]
        let unterminated = le16(0x0041)
        for name in [surrogate, unterminated] {
            #expect(rig.call(1, accessVariable(name: name, dataSize: 8, data: [UInt8](repeating: 0, count: 8))).status
                    == Status.invalidParameter)
            #expect(rig.call(2, nextName(nameSize: UInt64(name.count), name: name)).status == Status.invalidParameter)
            #expect(rig.call(3, accessVariable(name: name, dataSize: 1, attributes: Attr.bsRt, data: [1])).status
                    == Status.invalidParameter)
        }
        #expect(rig.names() == ["A"])
    }

    /// The bytes after the terminator inside NameSize are no part of the name (edk2 StrSize).
    @Test func bytesAfterTheTerminatorAreIgnoredByEveryLookup() {
        let rig = Rig()
        #expect(rig.set("A", attributes: Attr.bsRt, data: [1]) == Status.success)
        #expect(rig.set("B", attributes: Attr.bsRt, data: [2]) == Status.success)
        let padded = ucs2("A") + ucs2("Z")
        let read = rig.call(1, accessVariable(name: padded, dataSize: 1, data: [0]))
        #expect(read.status == Status.success && read.payload[52 + padded.count] == 1)
        let next = rig.call(2, nextName(nameSize: UInt64(padded.count), name: padded))
        #expect(next.status == Status.success && Array(next.payload[40 ..< 44]) == ucs2("B"))
        // An overwrite through the padded name replaces A rather than creating another.
        #expect(rig.call(3, accessVariable(name: padded, dataSize: 1, attributes: Attr.bsRt, data: [3])).status
                == Status.success)
        #expect(rig.names() == ["B", "A"] && rig.get("A").data == [3])
    }
}
