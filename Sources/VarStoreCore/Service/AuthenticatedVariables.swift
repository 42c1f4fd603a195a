/// Authenticated variables and the Secure Boot key hierarchy: edk2's AuthVariableLib
/// (SecurityPkg/Library/AuthVariableLib: AuthVariableLibProcessVariable, ProcessVarWithPk,
/// ProcessVarWithKek, ProcessVariable, VerifyTimeBasedPayload), on top of the generic
/// SetVariable checks in VariableService.swift. spec/semantics.md, "Authenticated variables",
/// names each rule and every place we differ from edk2 or QEMU.

/// Who must have signed a time-based authenticated write.
enum SignatureAuthority {
    /// The certificate enrolled in PK (PK and KEK; db and friends first).
    case platformKey
    /// Any X.509 certificate in KEK (db, dbx, dbt, dbr).
    case keyExchangeKey
    /// The signer pinned when the variable was created (private authenticated variables).
    case pinnedSigner
}

/// An EFI_SIGNATURE_DATA with its list's type: equal keys are edk2's duplicates (same type,
/// same size, same bytes with the owner).
struct SignatureEntryKey: Hashable {
    let type: EFIGUID
    let bytes: ArraySlice<UInt8>
}

/// One SetVariable request after the generic checks.
struct AuthenticatedRequest {
    let key: VariableKey
    /// As the caller sent them (APPEND included: the signature covers them).
    let rawAttributes: UInt32
    let attributes: VariableAttributes
    /// The whole Data, descriptor included.
    let data: [UInt8]
    /// Present when the request carries TIME_BASED_AUTHENTICATED_WRITE_ACCESS.
    let descriptor: VariableAuthentication2?
    /// Data without the descriptor.
    let payload: ArraySlice<UInt8>
    let existing: Variable?
    /// Where `existing` is stored (a hint for the store: VariableStore.Slot).
    var existingSlot: VariableStore.Slot? = nil

    var isAppend: Bool { attributes.contains(.appendWrite) }
}

extension VariableServiceState {
    // MARK: Dispatch (AuthVariableLibProcessVariable)

    mutating func processVariable(_ request: AuthenticatedRequest) throws(EFIStatus) {
        let key = request.key
        if key == SecureBootVariable.pk {
            try processKeyVariable(request, isPlatformKey: true)
        } else if key == SecureBootVariable.kek {
            try processKeyVariable(request, isPlatformKey: false)
        } else if SecureBootVariable.databases.contains(key) {
            // edk2 tries the PK path first and, on any error, the KEK path, whose status wins.
            do {
                try processKeyVariable(request, isPlatformKey: false)
            } catch {
                try processSignatureDatabase(request)
            }
        } else if key == SecureBootVariable.auditMode || key == SecureBootVariable.deployedMode {
            try processModeVariable(request)
        } else {
            try processPrivateVariable(request)
        }
    }

    /// Whether a physically present user stands behind the current call. A VM has no such
    /// user; when configured, platform firmware before EndOfDxe stands in for one, as OVMF's
    /// PlatformSecureLib asserts presence only during early boot.
    var userPhysicallyPresent: Bool {
        configuration.physicalPresenceBeforeEndOfDxe && !phase.endOfDxe && !phase.atRuntime
    }

    /// edk2 InCustomMode() && UserPhysicalPresent().
    var customModeInEffect: Bool {
        guard configuration.allowCustomMode, userPhysicallyPresent,
              let custom = variables.store.variable(for: SecureBootVariable.customMode) else { return false }
        return custom.data.first == 1
    }

    // MARK: PK, KEK and the first attempt for db/dbx/dbt/dbr (ProcessVarWithPk)

    private mutating func processKeyVariable(_ request: AuthenticatedRequest, isPlatformKey: Bool) throws(EFIStatus) {
        guard request.attributes.contains(.nonVolatile), let descriptor = request.descriptor else {
            throw .invalidParameter
        }
        let modeBefore = secureBootMode
        let deleted: Bool
        if customModeInEffect || modeBefore.isSetupMode {
            // No signature, timestamp or descriptor checks: the platform owner is enrolling.
            try checkSignatureListFormat(request.key, request.payload)
            deleted = try update(request, timeStamp: descriptor.timeStamp, certificateDigest: nil)
            if !modeBefore.isSetupMode { markVendorKeysModified() }
        } else {
            deleted = try verifyAndUpdate(request, descriptor, authority: .platformKey)
        }
        guard isPlatformKey else { return }
        if modeBefore.isSetupMode && !deleted && variables.store.variable(for: SecureBootVariable.pk) != nil {
            transition(to: modeBefore.afterPlatformKeyEnrolled())
        } else if !modeBefore.isSetupMode && deleted {
            transition(to: modeBefore.afterPlatformKeyDeleted())
        }
    }

    /// ProcessVarWithKek: db, dbx, dbt and dbr signed by a KEK certificate.
    private mutating func processSignatureDatabase(_ request: AuthenticatedRequest) throws(EFIStatus) {
        guard request.attributes.contains(.nonVolatile), let descriptor = request.descriptor else {
            throw .invalidParameter
        }
        if !secureBootMode.isSetupMode && !customModeInEffect {
            _ = try verifyAndUpdate(request, descriptor, authority: .keyExchangeKey)
        } else {
            try checkSignatureListFormat(request.key, request.payload)
            _ = try update(request, timeStamp: descriptor.timeStamp, certificateDigest: nil)
            if !secureBootMode.isSetupMode { markVendorKeysModified() }
        }
    }

    // MARK: Everything else (ProcessVariable)

    private mutating func processPrivateVariable(_ request: AuthenticatedRequest) throws(EFIStatus) {
        let key = request.key
        if key == SecureBootVariable.customMode && !configuration.allowCustomMode { throw .writeProtected }
        // edk2 NeedPhysicallyPresent: these two switch Secure Boot policy, so only a present
        // user may write them.
        if (key == SecureBootVariable.customMode || key == SecureBootVariable.secureBootEnable)
            && !userPhysicallyPresent {
            throw .securityViolation
        }
        if let descriptor = request.descriptor {
            _ = try verifyAndUpdate(request, descriptor, authority: .pinnedSigner)
            return
        }
        // An authenticated variable changes only through a signed write. (edk2 also lets a
        // physically present user, or a disabled policy engine, delete one unsigned; we never
        // do: spec/semantics.md.)
        if let existing = request.existing, existing.attributes.contains(.timeBasedAuthenticatedWriteAccess) {
            throw .writeProtected
        }
        _ = try update(request, timeStamp: nil, certificateDigest: nil)
    }

    // MARK: AuditMode and DeployedMode (UEFI 2.10 §32.3; edk2 2015)

    private mutating func processModeVariable(_ request: AuthenticatedRequest) throws(EFIStatus) {
        if phase.atRuntime { throw .writeProtected }
        guard request.payload.count == 1, request.rawAttributes != 0, request.descriptor == nil else {
            throw .invalidParameter
        }
        let isAudit = request.key == SecureBootVariable.auditMode
        let mode = secureBootMode
        // Read-only per the spec's table: AuditMode in Audit and Deployed mode, DeployedMode
        // everywhere but User mode (and Deployed under custom mode, the platform's way out).
        if isAudit && (mode == .audit || mode == .deployed) { throw .writeProtected }
        if !isAudit && (mode == .setup || mode == .audit || (mode == .deployed && !customModeInEffect)) {
            throw .writeProtected
        }
        let value = request.payload[request.payload.startIndex]
        guard value <= 1 else { throw .invalidParameter }
        let current = isAudit ? mode.auditModeValue : mode.deployedModeValue
        if value == current { return }
        let target: SecureBootMode = isAudit ? .audit : (value == 1 ? .deployed : .user)
        // User → Audit deletes PK without a signature; we require a present user for that
        // (edk2 2015 allowed any boot-time caller).
        if isAudit && mode == .user && !userPhysicallyPresent { throw .securityViolation }
        // The mode must survive a reset; without room for its record the write fails whole.
        guard persist(target) else { throw .outOfResources }
        if isAudit && mode == .user, let pk = variables.store.variable(for: SecureBootVariable.pk) { remove(pk) }
        transition(to: target)
    }

    // MARK: Verification (VerifyTimeBasedPayloadAndUpdate, VerifyTimeBasedPayload)

    /// Verifies a time-based authenticated write and applies it. Returns whether it deleted
    /// the variable.
    private mutating func verifyAndUpdate(_ request: AuthenticatedRequest, _ descriptor: VariableAuthentication2,
                                 authority: SignatureAuthority) throws(EFIStatus) -> Bool {
        let pin = try verifyTimeBasedPayload(request, descriptor, authority: authority)
        return try update(request, timeStamp: descriptor.timeStamp, certificateDigest: pin)
    }

    /// edk2 VerifyTimeBasedPayload, in its order. Returns the signer pin to store when a
    /// private variable is created.
    private mutating func verifyTimeBasedPayload(_ request: AuthenticatedRequest, _ descriptor: VariableAuthentication2,
                                        authority: SignatureAuthority) throws(EFIStatus) -> [UInt8]? {
        guard descriptor.hasCleanTimeStamp else { throw .securityViolation }
        // Replay protection, before any crypto: a rewrite must carry a strictly later time.
        if let existing = request.existing, !request.isAppend,
           !descriptor.timeStamp.isLater(than: existing.timestamp ?? .zero) {
            throw .securityViolation
        }
        guard descriptor.isPKCS7, let signedData = parsedSignature(descriptor.certificate),
              let algorithm = crypto.digestAlgorithm(of: signedData) else { throw .securityViolation }
        let content = descriptor.signedContent(for: request.key, attributes: request.rawAttributes)

        var pin: [UInt8]?
        let verified: Bool
        switch authority {
        case .platformKey:
            // The signer must be the enrolled PK certificate itself, byte for byte.
            guard let signer = crypto.signerCertificates(of: signedData).first,
                  let pk = variables.store.variable(for: SecureBootVariable.pk),
                  let enrolled = Self.firstSignatureData(pk.data), enrolled.elementsEqual(signer) else {
                throw .securityViolation
            }
            verified = crypto.verify(signedData, detachedContent: content, trustedCertificates: [signer])
        case .keyExchangeKey:
            // No KEK: edk2 returns the failed lookup's status.
            guard let kek = variables.store.variable(for: SecureBootVariable.kek) else { throw .notFound }
            let anchors = Self.x509Certificates(kek.data)
            verified = !anchors.isEmpty
                && crypto.verify(signedData, detachedContent: content, trustedCertificates: anchors)
        case .pinnedSigner:
            guard let signer = crypto.signerCertificates(of: signedData).first else { throw .securityViolation }
            if let existing = request.existing {
                guard let stored = existing.certificateDigest, !stored.isEmpty,
                      let computed = signerPin(signer, algorithm), stored == computed else {
                    throw .securityViolation
                }
            } else if !request.payload.isEmpty {
                guard let computed = signerPin(signer, algorithm) else { throw .securityViolation }
                pin = computed
            }
            // The anchor is the signer itself: this proves possession of its key.
            verified = crypto.verify(signedData, detachedContent: content, trustedCertificates: [signer])
        }
        guard verified else { throw .securityViolation }
        try checkSignatureListFormat(request.key, request.payload)
        return pin
    }

    /// The request's PKCS#7, parsed once: db and its kin try the PK path and then the KEK
    /// path with the same signature, and parsing (certificates included) is most of the cost.
    private mutating func parsedSignature(_ certificate: ArraySlice<UInt8>) -> Crypto.SignedData? {
        if let cached = signatureCache, cached.bytes.elementsEqual(certificate) { return cached.parsed }
        guard let parsed = crypto.parseSignedData(certificate) else { return nil }
        signatureCache = (certificate, parsed)
        return parsed
    }

    /// edk2 CalculatePrivAuthVarSignChainSHADigest: H(CN ‖ TBSCertificate) of the signer,
    /// with the message's digest algorithm; the CN is cut to 127 bytes as edk2's buffer does.
    /// nil if the certificate has no CN or does not parse.
    private func signerPin(_ certificate: [UInt8], _ algorithm: DigestAlgorithm) -> [UInt8]? {
        guard let facts = crypto.certificateFacts(certificate[...]), let commonName = facts.commonName else {
            return nil
        }
        var input = Array(commonName.prefix(127))
        // edk2 measures the name with AsciiStrLen: it ends at an embedded NUL.
        if let nul = input.firstIndex(of: 0) { input.removeSubrange(nul...) }
        input += facts.toBeSigned
        let pin = crypto.digest(algorithm, input)
        return pin.isEmpty ? nil : pin
    }

    /// The certificate in PK's first EFI_SIGNATURE_DATA (edk2 compares only that one, and
    /// does not check its type).
    static func firstSignatureData(_ data: [UInt8]) -> ArraySlice<UInt8>? {
        guard let lists = SignatureList.parse(data[...]), let entry = lists.first?.entries.first else { return nil }
        return entry.dropFirst(16)
    }

    /// Every X.509 certificate in a signature database (other types cannot anchor a chain).
    static func x509Certificates(_ data: [UInt8]) -> [[UInt8]] {
        guard let lists = SignatureList.parse(data[...]) else { return [] }
        var certificates: [[UInt8]] = []
        for list in lists where list.signatureType == SignatureType.x509 {
            for entry in list.entries where entry.count > 16 { certificates.append(Array(entry.dropFirst(16))) }
        }
        return certificates
    }

    // MARK: Signature list format (CheckSignatureListFormat)

    /// The shape and per-type rules for the value of PK, KEK, db, dbx, dbt and dbr.
    /// EFI_INVALID_PARAMETER if they fail; other variables are not checked.
    func checkSignatureListFormat(_ key: VariableKey, _ payload: ArraySlice<UInt8>) throws(EFIStatus) {
        guard !payload.isEmpty,
              key == SecureBootVariable.pk || key == SecureBootVariable.kek
                || SecureBootVariable.databases.contains(key) else { return }
        guard let lists = SignatureList.parse(payload) else { throw .invalidParameter }
        var signatures = 0
        for list in lists {
            guard let required = SignatureType.requiredSize(list.signatureType), list.signatureHeader.isEmpty else {
                throw .invalidParameter
            }
            if let size = required {
                guard list.signatureSize == size else { throw .invalidParameter }
            } else if let first = list.entries.first {
                // X.509: the certificate must carry an RSA key (edk2 RsaGetPublicKeyFromX509
                // on the first entry), unless it is empty, which dbx lists legitimately use.
                let certificate = first.dropFirst(16)
                if !certificate.isEmpty {
                    guard let facts = crypto.certificateFacts(certificate), facts.hasRSAPublicKey else {
                        throw .invalidParameter
                    }
                }
            }
            signatures += list.entries.count
        }
        if key == SecureBootVariable.pk && signatures > 1 { throw .invalidParameter }
    }

    /// edk2 FilterSignatureList: the lists of an append without the EFI_SIGNATURE_DATA the
    /// current value already holds (same type, same size, same bytes, owner included). Lists
    /// left empty disappear. nil if either value is not a well-formed list sequence.
    static func appendableSignatures(existing: [UInt8], appended: ArraySlice<UInt8>) -> [UInt8]? {
        guard let old = SignatureList.parse(existing[...]), var new = SignatureList.parse(appended) else { return nil }
        let oldCount = old.reduce(0) { $0 + $1.entries.count }
        let newCount = new.reduce(0) { $0 + $1.entries.count }
        if oldCount * newCount <= 16_384 {
            // The usual update adds a handful of entries: compare them directly (slices of
            // the parsed values, no copies) rather than hash every stored entry.
            for index in new.indices {
                let list = new[index]
                new[index].entries.removeAll { entry in
                    old.contains { $0.signatureType == list.signatureType && $0.signatureSize == list.signatureSize
                        && $0.entries.contains(entry) }
                }
            }
        } else {
            // Large against large (a whole dbx re-applied): one hash per stored entry.
            var known: Set<SignatureEntryKey> = []
            for list in old {
                for entry in list.entries { known.insert(SignatureEntryKey(type: list.signatureType, bytes: entry)) }
            }
            for index in new.indices {
                let type = new[index].signatureType
                new[index].entries.removeAll { known.contains(SignatureEntryKey(type: type, bytes: $0)) }
            }
        }
        return SignatureList.encode(new.filter { !$0.entries.isEmpty })
    }

    // MARK: Vendor keys

    /// edk2 VendorKeyIsModified: keys changed outside setup mode without a signature mean
    /// the platform no longer holds only its vendor's keys — permanently.
    private mutating func markVendorKeysModified() {
        guard vendorKeysValid else { return }
        vendorKeysValid = false
        storeInternally(SecureBootVariable.vendorKeysNv, attributes: [.nonVolatile, .bootServiceAccess,
                        .timeBasedAuthenticatedWriteAccess], data: [0])
        storeInternally(SecureBootVariable.vendorKeys, attributes: [.bootServiceAccess, .runtimeAccess], data: [0])
    }
}
