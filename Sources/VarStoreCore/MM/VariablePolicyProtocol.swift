/// The gVarCheckPolicyLibMmiHandlerGuid handler (edk2 VarCheckPolicyMmi.h,
/// VarCheckPolicyLib.c): the MM side of Edk2VariablePolicyProtocol.
///
/// VAR_CHECK_POLICY_COMM_HEADER, packed, at offset 24: Signature 'VCPC' (u32), Revision 1 (u32),
/// Command (u32), Result (u64 EFI status). Command parameters start at offset 44.
public enum VariablePolicyCommand: UInt32, Sendable {
    case disable = 1
    case isEnabled = 2
    case register = 3
    case dump = 4
    case lock = 5
    case getInfo = 6
    case getLockVariableStateInfo = 7
}

enum VariablePolicyHandler {
    static let signature: UInt32 = 0x4350_4356  // 'VCPC'
    static let revision: UInt32 = 1
    static let headerSize = 20
    static let signatureOffset = 24, revisionOffset = 28, commandOffset = 32, resultOffset = 36
    static let parameters = 44

    /// DUMP pages are what fits a 16 KiB MM buffer after both headers and the 13-byte
    /// VAR_CHECK_POLICY_COMM_DUMP_PARAMS (PageRequested u32, TotalSize u32, PageSize u32,
    /// HasMore u8); edk2's firmware side sends buffers of that size.
    static let dumpPageSize = 16327
    static let dumpParametersSize = 13
    /// DUMP and GET_INFO need a message of the full 16 KiB buffer less the MM header.
    static let largeMessageLength = headerSize + dumpParametersSize + dumpPageSize

    /// VAR_CHECK_POLICY_COMM_GET_INFO_PARAMS, from offset 44: InputVendorGuid (16),
    /// InputVariableNameSize (u32), OutputVariableNameSize (u32), OutputPolicyEntry (44-byte
    /// union), InputVariableName; the output name follows the input name.
    enum Info {
        static let guid = 44, inputNameSize = 60, outputNameSize = 64, outputEntry = 68, inputName = 112
    }

    static func handle<C: AuthenticationCrypto, J: NonVolatileJournal>(_ message: inout MMMessage, service: inout VariableServiceState<C, J>) -> MMDispatchResult {
        guard message.length >= headerSize, let signatureField = message.u32(signatureOffset),
              let revisionField = message.u32(revisionOffset), let commandField = message.u32(commandOffset) else {
            return .badBufferSize
        }
        let command = VariablePolicyCommand(rawValue: commandField)
        // A dump snapshot lives only between consecutive DUMP commands.
        if command != .dump { service.policyDumpSnapshot = nil }
        let result: EFIStatus
        if signatureField != signature || revisionField != revision {
            result = .invalidParameter
        } else {
            switch command {
            case .disable: result = status { () throws(EFIStatus) in try service.disablePolicies() }
            case .isEnabled:
                // QEMU's framing: the one-byte State must be inside the message.
                guard message.length >= headerSize + 1 else { return .badBufferSize }
                message.setU8(service.policies.isEnabled ? 1 : 0, at: parameters)
                result = .success
            case .register:
                switch VariablePolicyEntry.parse(message.buffer, at: parameters, available: message.length - headerSize) {
                // QEMU's framing for an entry the message cannot hold; edk2's status for the rest.
                case .failure(.truncated): result = .badBufferSize
                case .failure: result = .invalidParameter
                case .success(let entry): result = status { () throws(EFIStatus) in try service.registerPolicy(entry) }
                }
            case .dump: result = dump(&message, &service)
            case .lock: result = status { () throws(EFIStatus) in try service.lockPolicies() }
            case .getInfo: result = getInfo(&message, &service, lockOnVariableState: false)
            case .getLockVariableStateInfo: result = getInfo(&message, &service, lockOnVariableState: true)
            case nil: result = .unsupported
            }
        }
        message.setU64(result.rawValue, at: resultOffset)
        return .handled
    }

    private static func status(_ body: () throws(EFIStatus) -> Void) -> EFIStatus {
        do {
            try body()
            return .success
        } catch {
            return error
        }
    }

    // MARK: DUMP (4)

    private static func dump<C: AuthenticationCrypto, J: NonVolatileJournal>(_ message: inout MMMessage, _ service: inout VariableServiceState<C, J>) -> EFIStatus {
        guard message.length >= largeMessageLength else {
            service.policyDumpSnapshot = nil
            return .invalidParameter
        }
        guard let requested = message.u32(parameters) else { return .invalidParameter }
        let page = Int(requested)
        let totalOffset = parameters + 4, pageSizeOffset = parameters + 8, hasMoreOffset = parameters + 12
        let data = parameters + dumpParametersSize
        if page == 0 {
            // Page 0 takes the snapshot and reports its size; the bytes come in pages 1, 2, …
            let snapshot = service.policies.dump
            service.policyDumpSnapshot = snapshot.isEmpty ? nil : snapshot
            message.setU32(UInt32(truncatingIfNeeded: snapshot.count), at: totalOffset)
            message.setU32(0, at: pageSizeOffset)
            message.setU8(snapshot.isEmpty ? 0 : 1, at: hasMoreOffset)
            return .success
        }
        guard let snapshot = service.policyDumpSnapshot else {
            message.setU32(0, at: totalOffset)
            message.setU32(0, at: pageSizeOffset)
            message.setU8(0, at: hasMoreOffset)
            return .timeout
        }
        let start = (page - 1).multipliedReportingOverflow(by: dumpPageSize)
        guard !start.overflow, start.partialValue < snapshot.count else { return .invalidParameter }
        let count = min(dumpPageSize, snapshot.count - start.partialValue)
        let hasMore = start.partialValue + count < snapshot.count
        message.setU32(UInt32(truncatingIfNeeded: snapshot.count), at: totalOffset)
        message.setU32(UInt32(count), at: pageSizeOffset)
        message.setU8(hasMore ? 1 : 0, at: hasMoreOffset)
        message.setBytes(Array(snapshot[start.partialValue ..< start.partialValue + count]), at: data)
        if !hasMore { service.policyDumpSnapshot = nil }
        return .success
    }

    // MARK: GET_INFO (6) and GET_LOCK_VARIABLE_STATE_INFO (7)

    private static func getInfo<C: AuthenticationCrypto, J: NonVolatileJournal>(_ message: inout MMMessage, _ service: inout VariableServiceState<C, J>, lockOnVariableState: Bool) -> EFIStatus {
        guard message.length >= largeMessageLength else { return .invalidParameter }
        guard let inputField = message.u32(Info.inputNameSize), let outputField = message.u32(Info.outputNameSize),
              let guid = message.guid(Info.guid) else { return .invalidParameter }
        let inputSize = UInt64(inputField)
        let outputCapacity = UInt64(outputField)
        let end = UInt64(message.end)
        guard let inputEnd = CheckedSize.add(UInt64(Info.inputName), inputSize), inputEnd <= end,
              let outputEnd = CheckedSize.add(inputEnd, outputCapacity), outputEnd <= end,
              case .success(let name) = VariableName.parse(message.buffer, at: Info.inputName, size: inputSize) else {
            return .invalidParameter
        }
        guard let policy = service.policies.bestMatch(VariableKey(guid: guid, name: name)) else {
            return .notFound
        }
        let outputName: [UInt8]
        if lockOnVariableState {
            guard policy.lockType == .lockOnVariableState, let namespace = policy.stateNamespace else { return .notFound }
            // VARIABLE_LOCK_ON_VAR_STATE_POLICY: Namespace, Value, Padding (18 bytes).
            message.setBytes(namespace.wireBytes + [policy.stateValue, 0], at: Info.outputEntry)
            outputName = VariableName(codeUnits: policy.stateName)?.wireBytes ?? []
        } else {
            message.setBytes(Array(policy.bytes[0 ..< VariablePolicyEntry.headerSize]), at: Info.outputEntry)
            outputName = policy.name.isEmpty ? [] : (VariableName(codeUnits: policy.name)?.wireBytes ?? [])
        }
        message.setU32(UInt32(outputName.count), at: Info.outputNameSize)
        guard UInt64(outputName.count) <= outputCapacity else { return .bufferTooSmall }
        message.setBytes(outputName, at: Int(inputEnd))
        return .success
    }
}
