/// The boot-phase events the variable service has seen since the last platform reset.
///
/// They only move forward; a platform (hard) reset clears them. ReadyToBoot implies EndOfDxe
/// for the SMM variable driver (edk2 VariableSmm.c treats either as the end of DXE).
public struct BootPhase: Sendable, Equatable {
    public private(set) var endOfDxe = false
    public private(set) var readyToBoot = false
    public private(set) var exitBootServices = false

    public init() {}

    public mutating func signalEndOfDxe() { endOfDxe = true }

    public mutating func signalReadyToBoot() {
        readyToBoot = true
        endOfDxe = true
    }

    public mutating func signalExitBootServices() { exitBootServices = true }

    /// edk2 `AtRuntime()`: after ExitBootServices only runtime-access variables are visible.
    public var atRuntime: Bool { exitBootServices }
}
