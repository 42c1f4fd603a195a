// libFuzzer target: authenticated SetVariable — EFI_VARIABLE_AUTHENTICATION_2, PKCS#7 through
// libcrypto, EFI_SIGNATURE_LIST checks and append merging — plus the signature-list parser on
// its own. Built by .ci/fuzz with the core and crypto sources and FuzzSupport.swift.
//
// The input is a program of steps: a selector byte picks the variable (PK, KEK, db, dbx, a
// private variable) or a raw signature-list merge, the next byte the attributes, then a
// 16-bit length and that many Data bytes. A fresh service starts in setup mode, so the seeds
// (.ci/fuzz builds them from Microsoft's signed updates and certificates) can enroll PK and
// KEK unsigned and then reach real signature verification.

func authenticatedKey(_ selector: UInt8) -> VariableKey {
    switch selector % 5 {
    case 0: return SecureBootVariable.pk
    case 1: return SecureBootVariable.kek
    case 2: return SecureBootVariable.db
    case 3: return SecureBootVariable.dbx
    default: return VariableKey(guid: .customModeEnable, name: VariableName("Private")!)
    }
}

/// What must hold after any sequence of requests.
func checkSecureBootInvariants<C: AuthenticationCrypto, J: NonVolatileJournal>(_ service: VariableService<C, J>) {
    checkInvariants(service)
    let pk = service.store.variable(for: SecureBootVariable.pk)
    precondition((pk == nil) == service.secureBootMode.isSetupMode, "mode and PK disagree")
    let setupMode = service.store.variable(for: SecureBootVariable.setupMode)?.data
    precondition(setupMode == nil || setupMode == [service.secureBootMode.setupModeValue], "SetupMode is stale")
    if let pk {
        // PK holds at most one signature: the format check ran before it was stored.
        let lists = SignatureList.parse(pk.data[...])
        precondition(lists != nil && lists!.reduce(0) { $0 + $1.entries.count } <= 1, "malformed PK stored")
    }
    for variable in service.store.all where variable.attributes.contains(.timeBasedAuthenticatedWriteAccess) {
        precondition(variable.timestamp != nil, "authenticated variable without a time")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = Input(bytes: Array(UnsafeBufferPointer(start: data, count: size)))
    var configuration = ServiceConfiguration()
    configuration.nonVolatileStorageSize = 0x20000
    let service = VariableService(configuration: configuration)
    var steps = 0
    while !input.atEnd && steps < 16 {
        steps += 1
        let selector = input.byte()
        let attributeSelector = input.byte()
        let body = input.take(Int(input.u16()))
        if selector >= 250 {
            // The merge on its own: existing and appended halves of the body.
            let split = Int(attributeSelector) * body.count / 256
            let merged = VariableServiceState<Libcrypto, MemoryJournal>.appendableSignatures(existing: Array(body[..<split]), appended: body[split...])
            if let merged { precondition(merged.count <= body.count - split, "merge grew the append") }
            continue
        }
        if selector >= 240 {
            switch selector {
            case 240: service.signalEndOfDxe()
            case 241: service.signalExitBootServices()
            default: service.platformReset()
            }
            continue
        }
        let attributes: [UInt32] = [0x27, 0x67, 0x07, 0x00, 0x25, 0x23]
        let attribute = attributeSelector < 240 ? attributes[Int(attributeSelector) % attributes.count] : UInt32(attributeSelector)
        let before = service.store.variable(for: authenticatedKey(selector))
        do {
            try service.setVariable(authenticatedKey(selector), attributes: attribute, data: body)
        } catch {
            // A refused request changes nothing it was aimed at.
            precondition(service.store.variable(for: authenticatedKey(selector)) == before, "a failed write changed the variable")
        }
        checkSecureBootInvariants(service)
    }
    return 0
}
