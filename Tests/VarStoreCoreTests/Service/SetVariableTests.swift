import Testing
@testable import VarStoreCore

/// SMM SET_VARIABLE (function 3), one test per rule of edk2's check order
/// (spec/semantics.md, SetVariable).
@Suite struct SetVariableTests {
    @Test func createsAndReplaces() {
        let rig = Rig()
        #expect(rig.set("V", attributes: Attr.nvBsRt, data: [1]) == Status.success)
        #expect(rig.set("V", attributes: Attr.nvBsRt, data: [2, 3]) == Status.success)
        #expect(rig.get("V").data == [2, 3])
    }

    @Test func emptyNameIsInvalidParameter() {
        #expect(Rig().set("", attributes: Attr.bsRt, data: [1]) == Status.invalidParameter)
    }

    @Test(arguments: [UInt32(0x80), 0x100, 0x8000_0007])
    func unknownAttributeBitsAreInvalidParameter(_ attributes: UInt32) {
        #expect(Rig().set("V", attributes: attributes | Attr.bs, data: [1]) == Status.invalidParameter)
    }

    @Test func runtimeWithoutBootServiceIsInvalidParameter() {
        let rig = Rig()
        #expect(rig.set("V", attributes: Attr.rt, data: [1]) == Status.invalidParameter)
        #expect(rig.set("V", attributes: Attr.nv | Attr.rt, data: [1]) == Status.invalidParameter)
        // ... and UNSUPPORTED when the deprecated AW bit is also set.
        #expect(rig.set("V", attributes: Attr.rt | Attr.aw, data: [1]) == Status.unsupported)
    }

    @Test func nonVolatileAloneIsInvalidParameter() {
        let rig = Rig()
        #expect(rig.set("V", attributes: Attr.nv, data: [1]) == Status.invalidParameter)
        #expect(rig.set("V", attributes: Attr.nv | Attr.aw, data: [1]) == Status.unsupported)
    }

    @Test func countBasedAuthenticationIsUnsupported() {
        #expect(Rig().set("V", attributes: Attr.nvBsRt | Attr.aw, data: [1]) == Status.unsupported)
    }

    @Test func malformedAuthenticationDescriptorIsSecurityViolation() {
        // 40 zero bytes: dwLength 0 is below the 24-byte WIN_CERTIFICATE_UEFI_GUID header.
        let rig = Rig()
        #expect(rig.set("V", attributes: Attr.nvBsRt | Attr.at, data: [UInt8](repeating: 0, count: 40)) == Status.securityViolation)
        #expect(rig.get("V").status == Status.notFound)
    }

    @Test func authenticatedVariablesCannotBeDeletedPlainly() {
        let rig = Rig()
        let key = VariableKey(guid: EFIGUID(wire: WireGUID.vendor, at: 0)!, name: VariableName("Auth")!)
        rig.service.load([Variable(key: key, attributes: [.nonVolatile, .bootServiceAccess, .runtimeAccess, .timeBasedAuthenticatedWriteAccess], data: [9])])
        // DataSize 0 cannot hold an EFI_VARIABLE_AUTHENTICATION_2.
        #expect(rig.set("Auth", attributes: Attr.nvBsRt | Attr.at, data: []) == Status.securityViolation)
        #expect(rig.set("Auth", attributes: 0, data: []) == Status.writeProtected)
        #expect(rig.set("Auth", attributes: 0, data: [1]) == Status.writeProtected)
        #expect(rig.set("Auth", attributes: Attr.nvBsRt, data: [1]) == Status.invalidParameter)
        #expect(rig.get("Auth").data == [9])
    }

    @Test func hardwareErrorRecordsNeedAnHRStore() {
        // OVMF has none (PcdHwErrStorageSize 0), and neither has the default configuration.
        #expect(Rig().set("HwErrRec0001", attributes: Attr.nvBsRt | Attr.hr, data: [1]) == Status.invalidParameter)
        var configuration = ServiceConfiguration()
        configuration.hardwareErrorStorageSize = 0x1000
        #expect(Rig(configuration: configuration).set("HwErrRec0001", attributes: Attr.nvBsRt | Attr.hr, data: [1]) == Status.success)
    }

    @Test func variableLargerThanTheLimitIsInvalidParameterNotOutOfResources() {
        var configuration = ServiceConfiguration()
        configuration.maximumVolatileVariableSize = 60 + 4 + 10  // overhead + "V\0" + 10 data bytes
        let rig = Rig(configuration: configuration)
        #expect(rig.set("V", attributes: Attr.bsRt, data: [UInt8](repeating: 1, count: 10)) == Status.success)
        #expect(rig.set("V", attributes: Attr.bsRt, data: [UInt8](repeating: 1, count: 11)) == Status.invalidParameter)
    }

    @Test func attributesOfAnExistingVariableCannotChange() {
        let rig = Rig()
        _ = rig.set("V", attributes: Attr.nvBsRt, data: [1])
        #expect(rig.set("V", attributes: Attr.bsRt, data: [2]) == Status.invalidParameter)
        // Also for a DataSize-0 write carrying different attributes.
        #expect(rig.set("V", attributes: Attr.bsRt, data: []) == Status.invalidParameter)
        #expect(rig.get("V").data == [1])
    }

    @Test func deleteWithDataSizeZero() {
        let rig = Rig()
        _ = rig.set("V", attributes: Attr.nvBsRt, data: [1])
        #expect(rig.set("V", attributes: Attr.nvBsRt, data: []) == Status.success)
        #expect(rig.get("V").status == Status.notFound)
    }

    @Test func deleteWithAttributesZeroEvenWithData() {
        let rig = Rig()
        _ = rig.set("V", attributes: Attr.bsRt, data: [1])
        #expect(rig.set("V", attributes: 0, data: [5, 6]) == Status.success)
        #expect(rig.get("V").status == Status.notFound)
    }

    @Test func deletingAMissingVariableIsNotFound() {
        let rig = Rig()
        #expect(rig.set("V", attributes: Attr.bsRt, data: []) == Status.notFound)
        #expect(rig.set("V", attributes: 0, data: []) == Status.notFound)
        // NV|APPEND without BS on a new variable is a delete, too (edk2).
        #expect(rig.set("V", attributes: Attr.nv | Attr.append, data: [1]) == Status.notFound)
    }

    @Test func appendConcatenatesAndIsNeverStored() {
        let rig = Rig()
        _ = rig.set("V", attributes: Attr.nvBsRt, data: [1, 2])
        #expect(rig.set("V", attributes: Attr.nvBsRt | Attr.append, data: [3]) == Status.success)
        let read = rig.get("V")
        #expect(read.data == [1, 2, 3])
        #expect(read.attributes == Attr.nvBsRt)
    }

    @Test func appendToAMissingVariableCreatesIt() {
        let rig = Rig()
        #expect(rig.set("V", attributes: Attr.bsRt | Attr.append, data: [4]) == Status.success)
        #expect(rig.get("V").data == [4])
        #expect(rig.get("V").attributes == Attr.bsRt)
    }

    @Test func emptyAppendChangesNothing() {
        let rig = Rig()
        #expect(rig.set("Missing", attributes: Attr.bsRt | Attr.append, data: []) == Status.success)
        #expect(rig.get("Missing").status == Status.notFound)
        _ = rig.set("V", attributes: Attr.bsRt, data: [1])
        _ = rig.set("W", attributes: Attr.bsRt, data: [1])
        #expect(rig.set("V", attributes: Attr.bsRt | Attr.append, data: []) == Status.success)
        #expect(rig.get("V").data == [1])
        #expect(rig.names() == ["V", "W"])
    }

    @Test func appendBeyondTheLimitIsInvalidParameter() {
        var configuration = ServiceConfiguration()
        configuration.maximumVolatileVariableSize = 60 + 4 + 8
        let rig = Rig(configuration: configuration)
        _ = rig.set("V", attributes: Attr.bsRt, data: [UInt8](repeating: 1, count: 6))
        #expect(rig.set("V", attributes: Attr.bsRt | Attr.append, data: [1, 2]) == Status.success)
        #expect(rig.set("V", attributes: Attr.bsRt | Attr.append, data: [3]) == Status.invalidParameter)
        #expect(rig.get("V").dataSize == 8)
    }

    @Test func lengthFramingBoundaries() {
        let rig = Rig()
        let name = ucs2("V")
        #expect(rig.call(3, Array(accessVariable(name: [], dataSize: 0, nameSize: 0).prefix(35))).status == Status.badBufferSize)
        // DataSize one byte beyond the message.
        #expect(rig.call(3, accessVariable(name: name, dataSize: 3, attributes: Attr.bsRt, data: [1, 2])).status == Status.badBufferSize)
        #expect(rig.call(3, accessVariable(name: name, dataSize: UInt64.max, attributes: Attr.bsRt, data: [1])).status == Status.outOfResources)
        #expect(rig.call(3, accessVariable(name: name, dataSize: 1, nameSize: UInt64.max - 52, attributes: Attr.bsRt, data: [1])).status == Status.outOfResources)
        #expect(rig.get("V").status == Status.notFound)
    }

    @Test func messageShorterThanTheSMMHeaderIsADeviceError() {
        let rig = Rig()
        let (status, _) = rig.dma(mmMessage(WireGUID.smmVariable, Array(smm(3, []).prefix(15))))
        #expect(status == 0x12)
    }

    @Test func unimplementedFunctionsAreUnsupported() {
        let rig = Rig()
        for function: UInt64 in [7, 12, 13, 14, 15, 0, UInt64.max] {
            #expect(rig.call(function, [UInt8](repeating: 0, count: 64)).status == Status.unsupported)
        }
    }

    @Test func payloadSizeIsBufferMinusBothHeaders() {
        let (status, payload) = Rig().call(11, le64(0))
        #expect(status == Status.success)
        #expect(u64(payload, 16) == 65496)
    }
}

/// Storage quota: writes that do not fit change nothing (spec/semantics.md, quotas).
@Suite struct QuotaTests {
    static var small: ServiceConfiguration {
        var configuration = ServiceConfiguration()
        configuration.volatileStorageSize = 1000 + Baseline.volatile
        return configuration
    }

    @Test func exactlyFullFitsAndOneByteMoreIsOutOfResources() {
        let rig = Rig(configuration: Self.small)
        // Each variable costs 60 + NameSize (4 for "A\0") + DataSize.
        #expect(rig.set("A", attributes: Attr.bsRt, data: [UInt8](repeating: 1, count: 500 - 64)) == Status.success)
        #expect(rig.set("B", attributes: Attr.bsRt, data: [UInt8](repeating: 1, count: 500 - 64 + 1)) == Status.outOfResources)
        #expect(rig.get("B").status == Status.notFound)
        #expect(rig.set("B", attributes: Attr.bsRt, data: [UInt8](repeating: 1, count: 500 - 64)) == Status.success)
        #expect(rig.query(Attr.bsRt).remaining == 0)
        #expect(rig.set("C", attributes: Attr.bsRt, data: [1]) == Status.outOfResources)
    }

    @Test func replacingAVariableReusesItsOwnSpace() {
        let rig = Rig(configuration: Self.small)
        #expect(rig.set("A", attributes: Attr.bsRt, data: [UInt8](repeating: 1, count: 1000 - 64)) == Status.success)
        #expect(rig.set("A", attributes: Attr.bsRt, data: [UInt8](repeating: 2, count: 1000 - 64)) == Status.success)
        #expect(rig.set("A", attributes: Attr.bsRt | Attr.append, data: [3]) == Status.outOfResources)
        #expect(rig.get("A", dataSize: 2000).data.first == 2)
    }

    @Test func classesAreChargedSeparately() {
        let rig = Rig(configuration: Self.small)
        _ = rig.set("A", attributes: Attr.bsRt, data: [UInt8](repeating: 1, count: 1000 - 64))
        #expect(rig.set("N", attributes: Attr.nvBsRt, data: [1]) == Status.success)
    }
}
