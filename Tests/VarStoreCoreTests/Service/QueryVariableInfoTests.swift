import Testing
@testable import VarStoreCore

/// SMM QUERY_VARIABLE_INFO (function 4): edk2's check order, figures per storage class.
@Suite struct QueryVariableInfoTests {
    @Test(arguments: [
        (UInt32(0), Status.invalidParameter),
        (Attr.nvBsRt | Attr.aw, Status.unsupported),
        (UInt32(0x80), Status.unsupported),
        (Attr.nv, Status.invalidParameter),
        (Attr.rt, Status.invalidParameter),
        (Attr.nv | Attr.rt, Status.invalidParameter),
        (Attr.bsRt | Attr.hr, Status.invalidParameter),
    ])
    func invalidCombinations(_ attributes: UInt32, _ expected: UInt64) {
        #expect(Rig().query(attributes).status == expected)
    }

    @Test func hardwareErrorClassNeedsAStore() {
        #expect(Rig().query(Attr.nvBsRt | Attr.hr).status == Status.unsupported)
        var configuration = ServiceConfiguration()
        configuration.hardwareErrorStorageSize = 0x1000
        let rig = Rig(configuration: configuration)
        let hr = rig.query(Attr.nvBsRt | Attr.hr)
        #expect(hr.status == Status.success && hr.maximum == 0x1000)
    }

    @Test func figuresAddUpAfterSetsAndDeletes() {
        let rig = Rig()
        let start = rig.query(Attr.nvBsRt)
        #expect(start.maximum == 0x40000 && start.remaining == 0x40000 - Baseline.nonVolatile)
        #expect(start.largest == 0x8400 - 60)
        _ = rig.set("First", attributes: Attr.nvBsRt, data: [UInt8](repeating: 1, count: 100))    // 60 + 12 + 100
        _ = rig.set("Second", attributes: Attr.nvBsRt, data: [UInt8](repeating: 1, count: 50))    // 60 + 14 + 50
        _ = rig.set("Volatile", attributes: Attr.bsRt, data: [UInt8](repeating: 1, count: 10))    // other class
        #expect(rig.query(Attr.nvBsRt).remaining == 0x40000 - Baseline.nonVolatile - 172 - 124)
        _ = rig.set("First", attributes: Attr.nvBsRt, data: [])
        #expect(rig.query(Attr.nvBsRt).remaining == 0x40000 - Baseline.nonVolatile - 124)
        _ = rig.set("Second", attributes: Attr.nvBsRt | Attr.append, data: [1, 2])
        #expect(rig.query(Attr.nvBsRt).remaining == 0x40000 - Baseline.nonVolatile - 126)
        #expect(rig.query(Attr.bsRt).remaining == 0x40000 - Baseline.volatile - (60 + 18 + 10))
    }

    @Test func largestVariableIsClampedToTheSpaceLeft() {
        var configuration = ServiceConfiguration()
        configuration.volatileStorageSize = 500 + Baseline.volatile
        let rig = Rig(configuration: configuration)
        _ = rig.set("A", attributes: Attr.bsRt, data: [UInt8](repeating: 1, count: 100))   // 164 charged
        let info = rig.query(Attr.bsRt)
        #expect(info.remaining == 336 && info.largest == 276)
        // The figure is true: a variable of exactly that NameSize + DataSize fits.
        #expect(rig.set("B", attributes: Attr.bsRt, data: [UInt8](repeating: 1, count: 276 - 4)) == Status.success)
        #expect(rig.query(Attr.bsRt).remaining == 0)
    }

    @Test func queryMessageMustFitTheBuffer() {
        let rig = Rig(bufferSize: 24 + 16 + 27)
        let (status, _) = rig.dma(mmMessage(WireGUID.smmVariable, smm(4, [])))
        #expect(status == 0)
        #expect(rig.call(4, [], messageLength: 16).status == Status.badBufferSize)
    }
}
