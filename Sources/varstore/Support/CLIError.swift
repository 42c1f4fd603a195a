import Foundation
import VarStoreCore
import VarStoreHost

/// The tool's own refusals ("SetVariable returned EFI_NOT_FOUND", "--secure-boot: …"): one
/// line, printed by `reporting` after the command's name. Library failures keep their types.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One line naming the problem, in our words, whatever layer it came from.
func describe(_ error: Error) -> String {
    if let storage = error as? StorageError { return storage.explanation }
    if let flash = error as? FlashError { return "image I/O failed (\(flash))" }
    if let failure = error as? LUKS2Image.Failure { return failure.description }
    let nsError = error as NSError
    if nsError.domain == NSCocoaErrorDomain, let path = nsError.userInfo[NSFilePathErrorKey] as? String {
        let code = (nsError.userInfo[NSUnderlyingErrorKey] as? NSError)?.code
        switch (nsError.code, code) {
        case (CocoaError.fileReadNoSuchFile.rawValue, _), (CocoaError.fileNoSuchFile.rawValue, _), (_, Int(ENOENT)):
            return "no such file: \(path)"
        case (CocoaError.fileReadNoPermission.rawValue, _), (CocoaError.fileWriteNoPermission.rawValue, _), (_, Int(EACCES)):
            return "permission denied: \(path)"
        default:
            return "cannot use \(path)"
        }
    }
    return "\(error)"
}

extension StorageError {
    var explanation: String {
        switch self {
        case .notLUKS2: return "not a LUKS2 image (no intact header)"
        case .unsupportedHeader(let what): return "unsupported LUKS2 header: \(what)"
        case .malformedMetadata(let what): return "malformed LUKS2 metadata: \(what)"
        case .wrongKey: return "wrong key: the volume key does not match the LUKS2 digest"
        case .notFormatted: return "no variable store in the image authenticates under this key (never formatted, or its superblocks were destroyed)"
        case .storeKeysUnavailable(let what): return "the variable store's keys do not open it: \(what)"
        case .tampered(let what): return "the image was tampered with: \(what)"
        case .rolledBack(let generation, let minimum): return "the image is older than allowed: generation \(generation) < minimum \(minimum)"
        case .full: return "the variable store is full"
        case .flash(let error): return "image I/O failed (\(error))"
        case .noRandomness: return "no randomness available"
        case .invalidGeometry(let what): return "invalid geometry: \(what)"
        case .unstorable(let problem): return "refused before writing: \(Provisioning.describe(problem))"
        }
    }
}
