import Testing
@testable import VarStoreCore

/// SMM GET_NEXT_VARIABLE_NAME (function 2).
@Suite struct GetNextVariableNameTests {
    @Test func enumeratesEveryVariableOnceInInsertionOrder() {
        let rig = Rig()
        for name in ["One", "Two", "Three"] { _ = rig.set(name, attributes: Attr.bsRt, data: [1]) }
        _ = rig.set("G", guid: WireGUID.global, attributes: Attr.bsRt, data: [1])
        #expect(rig.names() == ["One", "Two", "Three", "G"])
    }

    @Test func everySuccessfulWriteMovesTheVariableToTheEnd() {
        // QEMU's device order, which the recorded OVMF boots depend on: an update, even one
        // with identical data, and a re-creation after a delete both enumerate last.
        let rig = Rig()
        for name in ["A", "B", "C"] { _ = rig.set(name, attributes: Attr.bsRt, data: [1]) }
        _ = rig.set("A", attributes: Attr.bsRt, data: [1])
        #expect(rig.names() == ["B", "C", "A"])
        _ = rig.set("B", attributes: Attr.bsRt, data: [2])
        #expect(rig.names() == ["C", "A", "B"])
        _ = rig.set("C", attributes: Attr.bsRt, data: [])
        _ = rig.set("C", attributes: Attr.bsRt, data: [3])
        #expect(rig.names() == ["A", "B", "C"])
        // A failed write leaves the order alone.
        _ = rig.set("A", attributes: Attr.nvBsRt, data: [1])
        #expect(rig.names() == ["A", "B", "C"])
    }

    @Test func aFreshServiceEnumeratesItsSecureBootVariables() {
        // Created at power-on in this order; nothing else exists yet.
        let rig = Rig()
        #expect(rig.names(includingService: true) == ["SetupMode", "SignatureSupport", "SecureBoot", "AuditMode",
                                                       "DeployedMode", "CustomMode", "VendorKeysNv", "VendorKeys"])
        #expect(rig.next(after: "VendorKeys", guid: WireGUID.global).status == Status.notFound)
    }

    @Test func lastVariableIsFollowedByNotFound() {
        let rig = Rig()
        _ = rig.set("Only", attributes: Attr.bsRt, data: [1])
        #expect(rig.next(after: "Only").status == Status.notFound)
    }

    @Test func unknownPreviousNameIsInvalidParameter() {
        let rig = Rig()
        _ = rig.set("Only", attributes: Attr.bsRt, data: [1])
        #expect(rig.next(after: "Other").status == Status.invalidParameter)
        #expect(rig.next(after: "Only", guid: WireGUID.global).status == Status.invalidParameter)
    }

    @Test func smallOutputBufferReportsTheNeededSize() {
        let rig = Rig()
        _ = rig.set("AMuchLongerName", attributes: Attr.bsRt, data: [1])
        // The service's own variables come first; ask for the one after the last of them,
        // with a buffer that holds that name but not the next.
        let small = rig.next(after: "VendorKeys", guid: WireGUID.global, bufferSize: UInt64(ucs2("VendorKeys").count))
        #expect(small.status == Status.bufferTooSmall)
        #expect(small.nameSize == UInt64(ucs2("AMuchLongerName").count))
        let exact = rig.next(after: "VendorKeys", guid: WireGUID.global, bufferSize: UInt64(ucs2("AMuchLongerName").count))
        #expect(exact.status == Status.success && exact.name == "AMuchLongerName")
        #expect(exact.guid == WireGUID.vendor)
    }

    @Test func aTooSmallBufferStillCarriesAsMuchOfTheNextNameAsTheMessageHolds() {
        let rig = Rig()
        _ = rig.set("AMuchLongerName", attributes: Attr.bsRt, data: [1])
        // QEMU writes the GUID, the size and the part of the name that fits, even when the
        // caller's NameSize is too small; here 22 of the name's 32 wire bytes.
        let previous = ucs2("VendorKeys")
        let size = previous.count
        let (status, payload) = rig.call(2, nextName(guid: WireGUID.global, nameSize: UInt64(size), name: previous))
        #expect(status == Status.bufferTooSmall)
        #expect(u64(payload, 32) == UInt64(ucs2("AMuchLongerName").count))
        #expect(Array(payload[40 ..< 40 + size]) == Array(ucs2("AMuchLongerName").prefix(size)))
        // One more byte in the message: the room ends in the low byte of a unit.
        let odd = rig.call(2, nextName(guid: WireGUID.global, nameSize: UInt64(size), name: previous + [0xEE]))
        #expect(odd.status == Status.bufferTooSmall)
        #expect(Array(odd.payload[40 ..< 41 + size]) == Array(ucs2("AMuchLongerName").prefix(size + 1)))
    }

    @Test func previousNameMustBeTerminatedWithinNameSize() {
        let rig = Rig()
        _ = rig.set("AB", attributes: Attr.bsRt, data: [1])
        // NameSize 4 covers "AB" but not its NUL.
        #expect(rig.call(2, nextName(nameSize: 4, name: ucs2("AB"))).status == Status.invalidParameter)
        #expect(rig.call(2, nextName(nameSize: 0, name: [])).status == Status.invalidParameter)
    }

    @Test func lengthFramingBoundaries() {
        let rig = Rig()
        #expect(rig.call(2, Array(nextName(nameSize: 0, name: []).prefix(23))).status == Status.badBufferSize)
        #expect(rig.call(2, nextName(nameSize: 6, name: [0, 0, 0, 0])).status == Status.badBufferSize)
        #expect(rig.call(2, nextName(nameSize: UInt64.max, name: [0, 0])).status == Status.outOfResources)
        #expect(rig.call(2, nextName(nameSize: UInt64.max - 39, name: [0, 0])).status == Status.outOfResources)
    }

    @Test func deletingDuringEnumerationKeepsTheRestReachable() {
        let rig = Rig()
        for name in ["A", "B", "C"] { _ = rig.set(name, attributes: Attr.bsRt, data: [1]) }
        #expect(rig.next(after: "A").name == "B")
        _ = rig.set("B", attributes: Attr.bsRt, data: [])
        #expect(rig.next(after: "A").name == "C")
        #expect(rig.next(after: "B").status == Status.invalidParameter)
    }
}
