import Testing
@testable import VarStoreCore

/// VarCheck properties (SMM functions 9/10) and the UEFI-defined variable checks
/// (edk2 VarCheckLib, VarCheckUefiLib; spec/semantics.md, VarCheck).
@Suite struct VarCheckPropertyTests {
    /// SMM_VARIABLE_COMMUNICATE_VAR_CHECK_VARIABLE_PROPERTY: Guid, NameSize, property (24), Name.
    func propertyMessage(_ name: String, revision: UInt16 = 1, property: UInt16 = 0, attributes: UInt32 = 0,
                         min: UInt64 = 0, max: UInt64 = UInt64.max) -> [UInt8] {
        let n = ucs2(name)
        return WireGUID.vendor + le64(UInt64(n.count)) + le16(revision) + le16(property) + le32(attributes) + le64(min) + le64(max) + n
    }

    @Test func setThenGet() {
        let rig = Rig()
        #expect(rig.call(9, propertyMessage("P", attributes: Attr.bsRt, min: 2, max: 4)).status == Status.success)
        let (status, payload) = rig.call(10, propertyMessage("P"))
        #expect(status == Status.success)
        #expect(u32(payload, 44) == Attr.bsRt && u64(payload, 48) == 2 && u64(payload, 56) == 4)
        #expect(rig.call(10, propertyMessage("None")).status == Status.notFound)
    }

    @Test func badRevisionIsInvalidAndSetAfterEndOfDxeIsDenied() {
        let rig = Rig()
        #expect(rig.call(9, propertyMessage("P", revision: 2)).status == Status.invalidParameter)
        _ = rig.signal(WireGUID.endOfDxe)
        #expect(rig.call(9, propertyMessage("P")).status == Status.accessDenied)
        #expect(rig.call(9, Array(propertyMessage("P").prefix(47))).status == Status.badBufferSize)
    }

    @Test func propertiesCountAgainstVolatileStorage() {
        var configuration = ServiceConfiguration()
        configuration.volatileStorageSize = 60 + Baseline.volatile
        let rig = Rig(configuration: configuration)
        // 24 + NameSize each: "P1\0" costs 30.
        #expect(rig.call(9, propertyMessage("P1")).status == Status.success)
        #expect(rig.call(9, propertyMessage("P1", property: 1)).status == Status.success)  // replacing is free
        #expect(rig.call(9, propertyMessage("P2")).status == Status.success)
        #expect(rig.call(9, propertyMessage("P3")).status == Status.outOfResources)
        #expect(rig.query(Attr.bsRt).remaining == 0)
        rig.service.platformReset()
        #expect(rig.query(Attr.bsRt).remaining == 60)
    }

    @Test func propertiesApplyAfterEndOfDxe() {
        let rig = Rig()
        _ = rig.call(9, propertyMessage("Sized", attributes: Attr.bsRt, min: 2, max: 4))
        _ = rig.call(9, propertyMessage("Frozen", property: 1))
        _ = rig.set("Frozen", attributes: Attr.bsRt, data: [1])
        #expect(rig.set("Sized", attributes: Attr.bsRt, data: [1]) == Status.success)  // not yet enforced
        _ = rig.signal(WireGUID.endOfDxe)
        #expect(rig.set("Sized", attributes: Attr.bsRt, data: [1]) == Status.invalidParameter)
        #expect(rig.set("Sized", attributes: Attr.bsRt, data: [1, 2, 3, 4, 5]) == Status.invalidParameter)
        #expect(rig.set("Sized", attributes: Attr.bsRt, data: [1, 2]) == Status.success)
        #expect(rig.set("Frozen", attributes: Attr.bsRt, data: [2]) == Status.writeProtected)
        #expect(rig.set("Frozen", attributes: 0, data: []) == Status.writeProtected)
        let other = Rig()
        _ = other.call(9, propertyMessage("Attr", attributes: Attr.nvBsRt))
        _ = other.signal(WireGUID.endOfDxe)
        #expect(other.set("Attr", attributes: Attr.bsRt, data: [1]) == Status.invalidParameter)
        #expect(other.set("Attr", attributes: Attr.nvBsRt | Attr.append, data: [1]) == Status.success)
    }
}

@Suite struct UEFIDefinedVariableTests {
    func afterEndOfDxe() -> Rig {
        let rig = Rig()
        _ = rig.signal(WireGUID.endOfDxe)
        return rig
    }

    /// EFI_LOAD_OPTION: Attributes, FilePathListLength, "A\0", one end node, optional data.
    func loadOption(filePathLength: UInt16 = 4, end: [UInt8] = [0x7F, 0xFF, 0x04, 0x00], extra: [UInt8] = []) -> [UInt8] {
        le32(1) + le16(filePathLength) + ucs2("A") + end + extra
    }

    @Test func unknownNamesInTheGlobalNamespaceAreRefused() {
        let rig = afterEndOfDxe()
        #expect(rig.set("MyOwnVariable", guid: WireGUID.global, attributes: Attr.bsRt, data: [1]) == Status.invalidParameter)
        #expect(rig.set("MyOwnVariable", attributes: Attr.bsRt, data: [1]) == Status.success)
    }

    @Test func bootOrderIsWholeUInt16s() {
        let rig = afterEndOfDxe()
        #expect(rig.set("BootOrder", guid: WireGUID.global, attributes: Attr.nvBsRt, data: [1, 0, 2]) == Status.invalidParameter)
        #expect(rig.set("BootOrder", guid: WireGUID.global, attributes: Attr.nvBsRt, data: [1, 0, 2, 0]) == Status.success)
        #expect(rig.set("BootOrder", guid: WireGUID.global, attributes: Attr.bsRt, data: [1, 0]) == Status.invalidParameter)
    }

    @Test func fixedSizes() {
        let rig = afterEndOfDxe()
        #expect(rig.set("Timeout", guid: WireGUID.global, attributes: Attr.nvBsRt, data: [5]) == Status.invalidParameter)
        #expect(rig.set("Timeout", guid: WireGUID.global, attributes: Attr.nvBsRt, data: [5, 0]) == Status.success)
        #expect(rig.set("OsIndications", guid: WireGUID.global, attributes: Attr.nvBsRt, data: [UInt8](repeating: 0, count: 8)) == Status.success)
        #expect(rig.set("OsIndications", guid: WireGUID.global, attributes: Attr.nvBsRt, data: [0, 0, 0, 0]) == Status.invalidParameter)
    }

    @Test func loadOptionsMustBeWellFormed() {
        let rig = afterEndOfDxe()
        #expect(rig.set("Boot0001", guid: WireGUID.global, attributes: Attr.nvBsRt, data: loadOption(extra: [9, 9])) == Status.success)
        #expect(rig.set("Boot0002", guid: WireGUID.global, attributes: Attr.nvBsRt, data: loadOption(filePathLength: 8)) == Status.invalidParameter)
        #expect(rig.set("Boot0003", guid: WireGUID.global, attributes: Attr.nvBsRt, data: loadOption(end: [0x7F, 0xFF, 0x05, 0x00])) == Status.invalidParameter)
        #expect(rig.set("Boot0004", guid: WireGUID.global, attributes: Attr.nvBsRt, data: le32(1) + le16(4) + [0x41, 0x00]) == Status.invalidParameter)
        // '#' stands for an uppercase hex digit: Boot000g is no UEFI name.
        #expect(rig.set("Boot000g", guid: WireGUID.global, attributes: Attr.nvBsRt, data: loadOption()) == Status.invalidParameter)
    }

    @Test func devicePathVariables() {
        let rig = afterEndOfDxe()
        let node: [UInt8] = [0x02, 0x01, 0x0C, 0x00] + [UInt8](repeating: 0, count: 8)
        #expect(rig.set("ConOut", guid: WireGUID.global, attributes: Attr.nvBsRt, data: node + [0x7F, 0xFF, 0x04, 0x00]) == Status.success)
        #expect(rig.set("ConOut", guid: WireGUID.global, attributes: Attr.nvBsRt, data: node) == Status.invalidParameter)
        #expect(rig.set("ConOut", guid: WireGUID.global, attributes: Attr.nvBsRt, data: [0x02, 0x01, 0x02, 0x00, 0x7F, 0xFF, 0x04, 0x00]) == Status.invalidParameter)
    }

    @Test func languageStringsNeedANul() {
        let rig = afterEndOfDxe()
        #expect(rig.set("PlatformLang", guid: WireGUID.global, attributes: Attr.nvBsRt, data: Array("en-US".utf8)) == Status.invalidParameter)
        #expect(rig.set("PlatformLang", guid: WireGUID.global, attributes: Attr.nvBsRt, data: Array("en-US\0".utf8)) == Status.success)
    }

    @Test func readOnlyModeVariables() {
        let rig = afterEndOfDxe()
        #expect(rig.set("SetupMode", guid: WireGUID.global, attributes: Attr.bsRt, data: [0]) == Status.writeProtected)
        #expect(rig.set("SecureBoot", guid: WireGUID.global, attributes: Attr.bsRt, data: [1]) == Status.writeProtected)
    }

    @Test func deletesAreExemptFromContentChecks() {
        let rig = Rig()
        _ = rig.set("BootOrder", guid: WireGUID.global, attributes: Attr.nvBsRt, data: [1, 0])
        _ = rig.set("Unknown", guid: WireGUID.global, attributes: Attr.bsRt, data: [1])
        _ = rig.signal(WireGUID.endOfDxe)
        #expect(rig.set("BootOrder", guid: WireGUID.global, attributes: Attr.nvBsRt, data: []) == Status.success)
        #expect(rig.set("Unknown", guid: WireGUID.global, attributes: 0, data: []) == Status.success)
    }

    @Test func hardwareErrorRecordsNeedTheirName() {
        var configuration = ServiceConfiguration()
        configuration.hardwareErrorStorageSize = 0x1000
        let rig = Rig(configuration: configuration)
        _ = rig.signal(WireGUID.endOfDxe)
        let hwErr: [UInt8] = [0xdd, 0x6b, 0x4e, 0x41, 0x7b, 0xe4, 0xcc, 0x47, 0xb2, 0x44, 0xbb, 0x61, 0x02, 0x0c, 0xf5, 0x16]
        #expect(rig.set("HwErrRec0001", guid: hwErr, attributes: 0x0F, data: [1]) == Status.success)
        #expect(rig.set("HwErrRecXY01", guid: hwErr, attributes: 0x0F, data: [1]) == Status.invalidParameter)
        #expect(rig.set("HwErrRec0001", attributes: 0x0F, data: [1]) == Status.invalidParameter)
    }
}
