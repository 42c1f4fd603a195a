import Testing
@testable import VarStoreCore

@Suite struct EFIGUIDTests {
    @Test func wireOrderIsMixedEndian() {
        #expect(EFIGUID.globalVariable.wireBytes == WireGUID.global)
        #expect(EFIGUID.smmVariableProtocol.wireBytes == WireGUID.smmVariable)
        #expect(EFIGUID.exitBootServicesEvent.wireBytes == WireGUID.exitBootServices)
    }

    @Test func canonicalTextIsLowercase() {
        #expect(EFIGUID.globalVariable.text == "8be4df61-93ca-11d2-aa0d-00e098032b8c")
        #expect(EFIGUID(text: "8BE4DF61-93CA-11D2-AA0D-00E098032B8C") == .globalVariable)
        #expect(EFIGUID(wire: WireGUID.global, at: 0) == .globalVariable)
    }

    @Test(arguments: ["", "8be4df61-93ca-11d2-aa0d-00e098032b8", "8be4df61x93ca-11d2-aa0d-00e098032b8c",
                      "8be4df61-93ca-11d2-aa0d-00e098032b8g", "8be4df61-93ca-11d2-aa0d-00e098032b8c0"])
    func malformedTextIsRejected(_ text: String) {
        #expect(EFIGUID(text: text) == nil)
    }

    @Test func shortWireIsRejected() {
        #expect(EFIGUID(wire: [UInt8](repeating: 0, count: 15), at: 0) == nil)
        #expect(EFIGUID(wire: [UInt8](repeating: 0, count: 16), at: 1) == nil)
        #expect(EFIGUID(wire: [UInt8](repeating: 0, count: 16), at: -1) == nil)
    }
}

@Suite struct EFIStatusTests {
    @Test func errorsCarryTheHighBit() {
        #expect(EFIStatus.notFound.rawValue == 0x8000_0000_0000_000E)
        #expect(EFIStatus.securityViolation.rawValue == 0x8000_0000_0000_001A)
        #expect(EFIStatus.success.isError == false)
        #expect(EFIStatus.writeProtected.isError)
        #expect(EFIStatus.bufferTooSmall.name == "EFI_BUFFER_TOO_SMALL")
    }
}
