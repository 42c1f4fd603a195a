import Testing
@testable import VarStoreCore

// VAR_CHECK_POLICY_COMM_HEADER and VARIABLE_POLICY_ENTRY laid out from the reference
// (edk2 VarCheckPolicyMmi.h; spec/semantics.md, variable policy), not from the code under test.

func policyHeader(_ command: UInt32, signature: UInt32 = 0x4350_4356, revision: UInt32 = 1) -> [UInt8] {
    le32(signature) + le32(revision) + le32(command) + le64(0)
}

/// A VARIABLE_POLICY_ENTRY: 44-byte header, optional lock-on-state part, name.
func policyEntry(guid: [UInt8] = WireGUID.vendor, name: String?, min: UInt32 = 0, max: UInt32 = 0xFFFF_FFFF,
                 mustHave: UInt32 = 0, cantHave: UInt32 = 0, type: UInt8 = 0, version: UInt32 = 0x0001_0000,
                 state: (guid: [UInt8], name: String, value: UInt8)? = nil, nameBytes: [UInt8]? = nil) -> [UInt8] {
    var lock: [UInt8] = []
    if let state { lock = state.guid + [state.value, 0] + ucs2(state.name) }
    let nameField = nameBytes ?? (name.map(ucs2) ?? [])
    let offsetToName = 44 + lock.count
    let size = offsetToName + nameField.count
    return le32(version) + le16(UInt16(size)) + le16(UInt16(offsetToName)) + guid + le32(min) + le32(max)
        + le32(mustHave) + le32(cantHave) + [type, 0, 0, 0] + lock + nameField
}

extension Rig {
    /// Sends a policy command; returns (device status, Result, reply bytes).
    func policy(_ command: UInt32, _ parameters: [UInt8] = [], signature: UInt32 = 0x4350_4356, padTo: Int? = nil)
        -> (device: UInt64, result: UInt64, reply: [UInt8]) {
        var payload = policyHeader(command, signature: signature) + parameters
        if let padTo, payload.count < padTo { payload += [UInt8](repeating: 0, count: padTo - payload.count) }
        let (status, reply) = dma(mmMessage(WireGUID.varCheckPolicy, payload))
        return (status, u64(reply, 36), reply)
    }

    func register(_ entry: [UInt8]) -> UInt64 { policy(3, entry).result }
}

@Suite struct VariablePolicyRegistrationTests {
    @Test func validEntriesRegister() {
        let rig = Rig()
        #expect(rig.register(policyEntry(name: "A")) == Status.success)
        #expect(rig.register(policyEntry(name: nil)) == Status.success)
        #expect(rig.register(policyEntry(name: "B", type: 3, state: (WireGUID.vendor, "State", 1))) == Status.success)
    }

    @Test(arguments: [
        policyEntry(name: "A", version: 0x0002_0000),
        policyEntry(name: "A", max: 0),
        policyEntry(name: "A", type: 4),
        policyEntry(name: "A", nameBytes: [0x41, 0x00]),                 // no NUL at Size
        policyEntry(name: "A", nameBytes: [0x41, 0x00, 0x00, 0x00, 0x42, 0x00, 0x00, 0x00]),  // NUL before Size
        policyEntry(name: "A", type: 1, state: (WireGUID.vendor, "S", 1)),  // OffsetToName ≠ 44 for LOCK_NOW
        policyEntry(name: String(repeating: "#", count: 255)),
    ])
    func malformedEntriesAreInvalidParameter(_ entry: [UInt8]) {
        #expect(Rig().register(entry) == Status.invalidParameter)
    }

    @Test func lockOnVariableStateNeedsItsNamedStateVariable() {
        // Type 3 with OffsetToName = 44 + 18: the state struct is there but has no name.
        var entry = policyEntry(name: "A", type: 3, state: (WireGUID.vendor, "S", 1))
        let noName = Array(entry[0..<62]) + ucs2("A")
        entry = noName
        entry.replaceSubrange(4..<6, with: le16(UInt16(entry.count)))
        entry.replaceSubrange(6..<8, with: le16(62))
        #expect(Rig().register(entry) == Status.invalidParameter)
    }

    @Test func entryLargerThanTheMessageIsBadBufferSize() {
        let entry = policyEntry(name: "LongName")
        #expect(Rig().register(Array(entry.prefix(entry.count - 2))) == Status.badBufferSize)
        #expect(Rig().register(Array(entry.prefix(43))) == Status.badBufferSize)
    }

    @Test func duplicateNameInANamespaceIsAlreadyStarted() {
        let rig = Rig()
        #expect(rig.register(policyEntry(name: "A")) == Status.success)
        #expect(rig.register(policyEntry(name: "A", min: 4)) == 0x8000_0000_0000_0014)
        #expect(rig.register(policyEntry(guid: WireGUID.global, name: "A")) == Status.success)
    }

    @Test func wrongSignatureIsInvalidParameter() {
        let rig = Rig()
        #expect(rig.policy(2, [0], signature: 0x1234).result == Status.invalidParameter)
        #expect(rig.dma(mmMessage(WireGUID.varCheckPolicy, Array(policyHeader(2).prefix(19)))).status == 0x12)
        #expect(rig.policy(99, [0]).result == Status.unsupported)
    }

    @Test func lockStopsRegistrationAndEndOfDxeLocks() {
        let rig = Rig()
        #expect(rig.policy(5).result == Status.success)
        #expect(rig.policy(5).result == Status.writeProtected)
        #expect(rig.register(policyEntry(name: "A")) == Status.writeProtected)
        let other = Rig()
        _ = other.signal(WireGUID.endOfDxe)
        #expect(other.register(policyEntry(name: "A")) == Status.writeProtected)
    }

    @Test func policiesCountAgainstVolatileStorage() {
        var configuration = ServiceConfiguration()
        configuration.volatileStorageSize = 200 + Baseline.volatile
        let rig = Rig(configuration: configuration)
        let entry = policyEntry(name: "Name0001")  // 44 + 18 = 62 bytes
        #expect(rig.register(entry) == Status.success)
        #expect(rig.register(policyEntry(name: "Name0002")) == Status.success)
        #expect(rig.register(policyEntry(name: "Name0003")) == Status.success)
        #expect(rig.register(policyEntry(name: "Name0004")) == Status.outOfResources)
        #expect(rig.query(Attr.bsRt).remaining == 200 - 3 * 62)
    }

    @Test func isEnabledAndDisable() {
        let rig = Rig()
        #expect(rig.policy(2, [0xFF]).reply[44] == 1)
        // Disabling needs the platform's permission (PcdAllowVariablePolicyEnforcementDisable).
        #expect(rig.policy(1).result == Status.writeProtected)
        var configuration = ServiceConfiguration()
        configuration.allowVariablePolicyDisable = true
        let open = Rig(configuration: configuration)
        _ = open.register(policyEntry(name: "A", type: 1))
        #expect(open.policy(1).result == Status.success)
        #expect(open.policy(1).result == 0x8000_0000_0000_0014)
        #expect(open.policy(2, [0xFF]).reply[44] == 0)
        _ = open.signal(WireGUID.endOfDxe)
        #expect(open.set("A", attributes: Attr.bsRt, data: [1]) == Status.success)
        let locked = Rig(configuration: configuration)
        _ = locked.policy(5)
        #expect(locked.policy(1).result == Status.writeProtected)
    }
}

@Suite struct VariablePolicyEnforcementTests {
    func rig(_ entries: [UInt8]...) -> Rig {
        let rig = Rig()
        for entry in entries { #expect(rig.register(entry) == Status.success) }
        return rig
    }

    @Test func notEnforcedBeforeEndOfDxeOrLock() {
        let r = rig(policyEntry(name: "A", type: 1))
        #expect(r.set("A", attributes: Attr.bsRt, data: [1]) == Status.success)
        _ = r.signal(WireGUID.endOfDxe)
        #expect(r.set("A", attributes: Attr.bsRt, data: [2]) == Status.writeProtected)
    }

    @Test func lockingTheInterfaceStartsEnforcement() {
        let r = rig(policyEntry(name: "A", type: 1))
        _ = r.policy(5)
        #expect(r.set("A", attributes: Attr.bsRt, data: [1]) == Status.writeProtected)
    }

    @Test func sizeLimits() {
        let r = rig(policyEntry(name: "A", min: 2, max: 4))
        _ = r.signal(WireGUID.endOfDxe)
        #expect(r.set("A", attributes: Attr.bsRt, data: [1]) == Status.invalidParameter)
        #expect(r.set("A", attributes: Attr.bsRt, data: [1, 2]) == Status.success)
        #expect(r.set("A", attributes: Attr.bsRt, data: [1, 2, 3, 4]) == Status.success)
        #expect(r.set("A", attributes: Attr.bsRt, data: [1, 2, 3, 4, 5]) == Status.invalidParameter)
        // Deletes are not size-checked.
        #expect(r.set("A", attributes: Attr.bsRt, data: []) == Status.success)
    }

    @Test func mustHaveAndCantHaveAttributes() {
        let r = rig(policyEntry(name: "A", mustHave: Attr.nv), policyEntry(name: "B", cantHave: Attr.rt))
        _ = r.signal(WireGUID.endOfDxe)
        #expect(r.set("A", attributes: Attr.bsRt, data: [1]) == Status.invalidParameter)
        #expect(r.set("A", attributes: Attr.nvBsRt, data: [1]) == Status.success)
        #expect(r.set("B", attributes: Attr.bsRt, data: [1]) == Status.invalidParameter)
        #expect(r.set("B", attributes: Attr.bs, data: [1]) == Status.success)
    }

    @Test func lockNowRefusesCreateUpdateAndDelete() {
        let r = rig(policyEntry(name: "A", type: 1), policyEntry(name: "New", type: 1))
        _ = r.set("A", attributes: Attr.bsRt, data: [1])
        _ = r.signal(WireGUID.endOfDxe)
        #expect(r.set("A", attributes: Attr.bsRt, data: [2]) == Status.writeProtected)
        #expect(r.set("A", attributes: Attr.bsRt, data: []) == Status.writeProtected)
        #expect(r.set("New", attributes: Attr.bsRt, data: [1]) == Status.writeProtected)
    }

    @Test func lockOnCreateAllowsOnlyTheCreation() {
        let r = rig(policyEntry(name: "A", type: 2))
        _ = r.signal(WireGUID.endOfDxe)
        #expect(r.set("A", attributes: Attr.bsRt, data: [1]) == Status.success)
        #expect(r.set("A", attributes: Attr.bsRt, data: [2]) == Status.writeProtected)
        #expect(r.set("A", attributes: Attr.bsRt, data: []) == Status.writeProtected)
    }

    @Test func lockOnVariableStateFollowsTheOneByteStateVariable() {
        let r = rig(policyEntry(name: "A", type: 3, state: (WireGUID.global, "Gate", 1)))
        _ = r.signal(WireGUID.endOfDxe)
        #expect(r.set("A", attributes: Attr.bsRt, data: [1]) == Status.success)       // no state variable
        _ = r.set("Gate", guid: WireGUID.global, attributes: Attr.bsRt, data: [0])
        #expect(r.set("A", attributes: Attr.bsRt, data: [2]) == Status.success)       // other value
        // (Gate is not a UEFI-defined global name, so VarCheck refuses it after EndOfDxe;
        // set the state before EndOfDxe in a second rig.)
        let gated = rig(policyEntry(name: "A", type: 3, state: (WireGUID.vendor, "Gate", 1)))
        _ = gated.set("Gate", attributes: Attr.bsRt, data: [1])
        _ = gated.signal(WireGUID.endOfDxe)
        #expect(gated.set("A", attributes: Attr.bsRt, data: [1]) == Status.writeProtected)
        #expect(gated.set("Gate", attributes: Attr.bsRt, data: [1, 1]) == Status.success)  // 2 bytes: not a state
        #expect(gated.set("A", attributes: Attr.bsRt, data: [1]) == Status.success)
    }

    @Test func namespaceWidePolicyCoversEveryName() {
        let r = rig(policyEntry(name: nil, type: 1))
        _ = r.signal(WireGUID.endOfDxe)
        #expect(r.set("Anything", attributes: Attr.bsRt, data: [1]) == Status.writeProtected)
        #expect(r.set("Anything", guid: Array(repeating: 7, count: 16), attributes: Attr.bsRt, data: [1]) == Status.success)
    }

    @Test func exactBeatsWildcardBeatsNamespace() {
        let r = rig(policyEntry(name: nil, type: 1),
                    policyEntry(name: "Var##", max: 1),
                    policyEntry(name: "Var#1", max: 2),
                    policyEntry(name: "Var01", max: 3))
        _ = r.signal(WireGUID.endOfDxe)
        #expect(r.set("Var01", attributes: Attr.bsRt, data: [1, 2, 3]) == Status.success)
        #expect(r.set("VarA1", attributes: Attr.bsRt, data: [1, 2]) == Status.success)
        #expect(r.set("VarA1", attributes: Attr.bsRt, data: [1, 2, 3]) == Status.invalidParameter)
        #expect(r.set("VarAB", attributes: Attr.bsRt, data: [1]) == Status.success)
        #expect(r.set("VarAB", attributes: Attr.bsRt, data: [1, 2]) == Status.invalidParameter)
        // '#' matches hex digits only; anything else falls back to the namespace policy.
        #expect(r.set("VarXY", attributes: Attr.bsRt, data: [1]) == Status.writeProtected)
        #expect(r.set("Var", attributes: Attr.bsRt, data: [1]) == Status.writeProtected)
    }

    @Test func onATieTheFirstRegisteredWins() {
        let r = rig(policyEntry(name: "A#", max: 1), policyEntry(name: "#B", type: 1))
        _ = r.signal(WireGUID.endOfDxe)
        #expect(r.set("AB", attributes: Attr.bsRt, data: [1]) == Status.success)
    }

    @Test func lockVariableIsALockNowPolicy() {
        let r = Rig()
        #expect(r.call(8, nextName(nameSize: 4, name: ucs2("L"))).status == Status.success)
        let info = r.getInfo("L")
        #expect(info.result == Status.success)
        #expect(info.reply[68 + 40] == 1)  // LockPolicyType LOCK_NOW
    }
}

extension Rig {
    /// GET_INFO (6) or GET_LOCK_VAR_STATE_INFO (7) for a name, with an output name area.
    func getInfo(_ name: String, command: UInt32 = 6, outputSize: UInt32 = 64) -> (result: UInt64, reply: [UInt8], outputNameSize: UInt32) {
        let input = ucs2(name)
        let parameters = WireGUID.vendor + le32(UInt32(input.count)) + le32(outputSize) + [UInt8](repeating: 0, count: 44) + input
        let (_, result, reply) = policy(command, parameters, padTo: 16360)
        return (result, reply, u32(reply, 64))
    }

    /// DUMP (4) of one page: (Result, TotalSize, PageSize, HasMore, page bytes).
    func dumpPage(_ page: UInt32) -> (result: UInt64, total: UInt32, size: UInt32, hasMore: UInt8, bytes: [UInt8]) {
        let (_, result, reply) = policy(4, le32(page) + le32(0) + le32(0) + [0], padTo: 16360)
        let size = u32(reply, 52)
        return (result, u32(reply, 48), size, reply[56], Array(reply[57 ..< 57 + Int(min(size, 16327))]))
    }
}

@Suite struct VariablePolicyQueryTests {
    @Test func dumpReturnsTheEntriesInPages() {
        let rig = Rig()
        let a = policyEntry(name: "A"), b = policyEntry(name: "Bee", type: 2)
        _ = rig.register(a)
        _ = rig.register(b)
        let first = rig.dumpPage(0)
        #expect(first.result == Status.success && first.total == UInt32(a.count + b.count) && first.size == 0 && first.hasMore == 1)
        let page = rig.dumpPage(1)
        #expect(page.result == Status.success && page.hasMore == 0)
        #expect(page.bytes == a + b)
        // The snapshot is gone once the last page was read.
        #expect(rig.dumpPage(1).result == 0x8000_0000_0000_0012)
    }

    @Test func dumpPagesALargeTable() {
        let rig = Rig()
        var expected: [UInt8] = []
        for index in 0..<300 {
            let entry = policyEntry(name: "Policy\(index)")
            expected += entry
            #expect(rig.register(entry) == Status.success)
        }
        let first = rig.dumpPage(0)
        #expect(Int(first.total) == expected.count)
        var collected: [UInt8] = []
        var page: UInt32 = 1
        while true {
            let next = rig.dumpPage(page)
            #expect(next.result == Status.success)
            collected += next.bytes
            if next.hasMore == 0 { break }
            page += 1
        }
        #expect(page == 2)
        #expect(collected == expected)
        _ = rig.dumpPage(0)
        #expect(rig.dumpPage(3).result == Status.invalidParameter)
    }

    @Test func emptyTableDumpsNothing() {
        let first = Rig().dumpPage(0)
        #expect(first.result == Status.success && first.total == 0 && first.hasMore == 0)
    }

    @Test func dumpNeedsTheFullBuffer() {
        #expect(Rig().policy(4, le32(0) + le32(0) + le32(0) + [0]).result == Status.invalidParameter)
    }

    @Test func getInfoReturnsTheBestMatch() {
        let rig = Rig()
        _ = rig.register(policyEntry(name: "Boot####", max: 100))
        let info = rig.getInfo("Boot0001")
        #expect(info.result == Status.success)
        #expect(u32(info.reply, 68 + 28) == 100)
        #expect(info.outputNameSize == UInt32(ucs2("Boot####").count))
        let nameStart = 112 + ucs2("Boot0001").count
        #expect(Array(info.reply[nameStart ..< nameStart + 18]) == ucs2("Boot####"))
        #expect(rig.getInfo("Other").result == Status.notFound)
        let small = rig.getInfo("Boot0001", outputSize: 4)
        #expect(small.result == Status.bufferTooSmall && small.outputNameSize == 18)
    }

    @Test func getLockOnVariableStateInfo() {
        let rig = Rig()
        _ = rig.register(policyEntry(name: "A", type: 3, state: (WireGUID.global, "Gate", 7)))
        _ = rig.register(policyEntry(name: "B", type: 1))
        let info = rig.getInfo("A", command: 7)
        #expect(info.result == Status.success)
        #expect(Array(info.reply[68 ..< 84]) == WireGUID.global && info.reply[84] == 7)
        let nameStart = 112 + ucs2("A").count
        #expect(Array(info.reply[nameStart ..< nameStart + 10]) == ucs2("Gate"))
        #expect(rig.getInfo("B", command: 7).result == Status.notFound)
    }
}
