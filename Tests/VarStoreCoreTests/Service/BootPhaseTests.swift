import Testing
@testable import VarStoreCore

/// ExitBootServices, EndOfDxe, ReadyToBoot and LOCK_VARIABLE
/// (spec/semantics.md, boot phases).
@Suite struct BootPhaseTests {
    @Test func afterExitBootServicesOnlyRuntimeVariablesAreVisible() {
        let rig = Rig()
        _ = rig.set("BootOnly", attributes: Attr.bs, data: [1])
        _ = rig.set("Runtime", attributes: Attr.bsRt, data: [2])
        _ = rig.set("Persistent", attributes: Attr.nvBsRt, data: [3])
        #expect(rig.call(6, []).status == Status.success)
        #expect(rig.get("BootOnly").status == Status.notFound)
        #expect(rig.get("Runtime").status == Status.success)
        #expect(rig.names() == ["Runtime", "Persistent"])
        #expect(rig.next(after: "BootOnly").status == Status.invalidParameter)
    }

    @Test func exitBootServicesEventGUIDHasTheSameEffect() {
        let rig = Rig()
        _ = rig.set("BootOnly", attributes: Attr.bs, data: [1])
        #expect(rig.signal(WireGUID.exitBootServices) == 0)
        #expect(rig.get("BootOnly").status == Status.notFound)
    }

    @Test func atRuntimeBootOnlyAndVolatileVariablesAreWriteProtected() {
        let rig = Rig()
        _ = rig.set("BootOnly", attributes: Attr.bs, data: [1])
        _ = rig.set("Runtime", attributes: Attr.bsRt, data: [2])
        _ = rig.set("Persistent", attributes: Attr.nvBsRt, data: [3])
        _ = rig.call(6, [])
        #expect(rig.set("BootOnly", attributes: Attr.bs, data: [9]) == Status.writeProtected)
        #expect(rig.set("Runtime", attributes: Attr.bsRt, data: [9]) == Status.writeProtected)
        #expect(rig.set("Runtime", attributes: 0, data: []) == Status.writeProtected)
        #expect(rig.set("Persistent", attributes: Attr.nvBsRt, data: [9]) == Status.success)
        #expect(rig.get("Persistent").data == [9])
    }

    @Test func atRuntimeNewVariablesMustBeNonVolatileRuntime() {
        let rig = Rig()
        _ = rig.call(6, [])
        #expect(rig.set("New", attributes: Attr.bsRt, data: [1]) == Status.invalidParameter)
        #expect(rig.set("New", attributes: Attr.bs, data: [1]) == Status.invalidParameter)
        #expect(rig.set("New", attributes: Attr.nvBsRt, data: [1]) == Status.success)
    }

    @Test func atRuntimeQueryNeedsRuntimeAccess() {
        let rig = Rig()
        _ = rig.call(6, [])
        #expect(rig.query(Attr.nv | Attr.bs).status == Status.invalidParameter)
        #expect(rig.query(Attr.nvBsRt).status == Status.success)
    }

    @Test func eventMessagesLeaveThePayloadAlone() {
        let rig = Rig()
        for guid in [WireGUID.endOfDxe, WireGUID.readyToBoot, WireGUID.exitBootServices] {
            let (status, reply) = rig.dma(mmMessage(guid, [0xA5]))
            #expect(status == 0)
            #expect(reply[24] == 0xA5)
        }
    }

    @Test func lockedVariableBecomesReadOnlyAtEndOfDxe() {
        let rig = Rig()
        _ = rig.set("Locked", attributes: Attr.nvBsRt, data: [1])
        #expect(rig.call(8, nextName(nameSize: 14, name: ucs2("Locked"))).status == Status.success)
        // Before EndOfDxe the lock is registered but not yet enforced.
        #expect(rig.set("Locked", attributes: Attr.nvBsRt, data: [2]) == Status.success)
        #expect(rig.signal(WireGUID.endOfDxe) == 0)
        #expect(rig.set("Locked", attributes: Attr.nvBsRt, data: [3]) == Status.writeProtected)
        #expect(rig.set("Locked", attributes: 0, data: []) == Status.writeProtected)
        #expect(rig.get("Locked").data == [2])
        // Once DXE has ended no new locks are taken.
        #expect(rig.call(8, nextName(nameSize: 8, name: ucs2("Two"))).status == Status.accessDenied)
    }

    @Test func readyToBootEndsDxeToo() {
        let rig = Rig()
        _ = rig.call(8, nextName(nameSize: 4, name: ucs2("L")))
        #expect(rig.call(5, []).status == Status.success)
        #expect(rig.set("L", attributes: Attr.bsRt, data: [1]) == Status.writeProtected)
    }

    @Test func lockRequestFraming() {
        let rig = Rig()
        #expect(rig.call(8, Array(nextName(nameSize: 0, name: []).prefix(23))).status == Status.badBufferSize)
        #expect(rig.call(8, nextName(nameSize: 6, name: ucs2("L"))).status == Status.badBufferSize)
        #expect(rig.call(8, nextName(nameSize: UInt64.max, name: ucs2("L"))).status == Status.badBufferSize)
        #expect(rig.call(8, nextName(nameSize: 2, name: [0, 0])).status == Status.invalidParameter)
    }

    @Test func platformResetDropsVolatileStateAndKeepsNonVolatile() {
        let rig = Rig()
        _ = rig.set("Volatile", attributes: Attr.bsRt, data: [1])
        _ = rig.set("Persistent", attributes: Attr.nvBsRt, data: [2])
        _ = rig.call(8, nextName(nameSize: 22, name: ucs2("Persistent")))
        _ = rig.call(6, [])
        rig.service.platformReset()
        #expect(rig.get("Volatile").status == Status.notFound)
        #expect(rig.get("Persistent").data == [2])
        // Boot services are back and the lock is gone.
        #expect(rig.set("Boot", attributes: Attr.bs, data: [1]) == Status.success)
        _ = rig.signal(WireGUID.endOfDxe)
        #expect(rig.set("Persistent", attributes: Attr.nvBsRt, data: [3]) == Status.success)
    }
}
