/// The gVarCheckPolicyLibMmiHandlerGuid handler (edk2 VarCheckPolicyMmi.h).
///
/// VAR_CHECK_POLICY_COMM_HEADER is 20 packed bytes at offset 24: Signature, Revision,
/// Command (u32 each), Result (u64). The policy engine itself is not built yet, so every
/// command is answered EFI_UNSUPPORTED — firmware treats that as "no policy protocol",
/// which is what it would see without the engine — rather than pretending to register
/// policies that nothing enforces.
enum VariablePolicyHandler {
    static let headerSize = 20
    static let result = 36

    static func handle(_ message: inout MMMessage, service: VariableService) -> MMDispatchResult {
        guard message.length >= headerSize else { return .badBufferSize }
        message.setU64(EFIStatus.unsupported.rawValue, at: result)
        return .handled
    }
}
