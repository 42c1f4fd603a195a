/// An EFI_STATUS as the 64-bit MM protocol carries it: errors have the high bit set
/// (edk2 `ENCODE_ERROR`, MdePkg/Include/Base.h).
public struct EFIStatus: RawRepresentable, Hashable, Sendable, Error {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    static let errorBit: UInt64 = 0x8000_0000_0000_0000
    private init(error code: UInt64) { rawValue = EFIStatus.errorBit | code }

    public var isError: Bool { rawValue & EFIStatus.errorBit != 0 }

    public static let success = EFIStatus(rawValue: 0)
    public static let invalidParameter = EFIStatus(error: 2)
    public static let unsupported = EFIStatus(error: 3)
    public static let badBufferSize = EFIStatus(error: 4)
    public static let bufferTooSmall = EFIStatus(error: 5)
    public static let notReady = EFIStatus(error: 6)
    public static let deviceError = EFIStatus(error: 7)
    public static let writeProtected = EFIStatus(error: 8)
    public static let outOfResources = EFIStatus(error: 9)
    public static let notFound = EFIStatus(error: 14)
    public static let accessDenied = EFIStatus(error: 15)
    public static let timeout = EFIStatus(error: 18)
    public static let alreadyStarted = EFIStatus(error: 20)
    public static let aborted = EFIStatus(error: 21)
    public static let securityViolation = EFIStatus(error: 26)

    /// The spec's name for the status, e.g. "EFI_NOT_FOUND".
    public var name: String {
        switch self {
        case .success: return "EFI_SUCCESS"
        case .invalidParameter: return "EFI_INVALID_PARAMETER"
        case .unsupported: return "EFI_UNSUPPORTED"
        case .badBufferSize: return "EFI_BAD_BUFFER_SIZE"
        case .bufferTooSmall: return "EFI_BUFFER_TOO_SMALL"
        case .notReady: return "EFI_NOT_READY"
        case .deviceError: return "EFI_DEVICE_ERROR"
        case .writeProtected: return "EFI_WRITE_PROTECTED"
        case .outOfResources: return "EFI_OUT_OF_RESOURCES"
        case .notFound: return "EFI_NOT_FOUND"
        case .accessDenied: return "EFI_ACCESS_DENIED"
        case .timeout: return "EFI_TIMEOUT"
        case .alreadyStarted: return "EFI_ALREADY_STARTED"
        case .aborted: return "EFI_ABORTED"
        case .securityViolation: return "EFI_SECURITY_VIOLATION"
        default: return "EFI_STATUS(0x" + Hex.string(rawValue, digits: 16) + ")"
        }
    }
}
