import ArgumentParser
import Foundation
import VarStoreHost

/// A key file's bytes, or a passphrase file's without its trailing newline, refused when too
/// weak to guard an image (LUKS2Image.Secret.weakness) wherever it is read: for a new keyslot
/// and to open one. A file others can read gets a warning, not a refusal: the operator may
/// be mid-way through provisioning.
func readSecret(_ path: String, passphrase: Bool = false) throws -> LUKS2Image.Secret {
    var bytes = try HostFile.read(path)
    if passphrase, bytes.last == 0x0A { bytes.removeLast() }
    let secret: LUKS2Image.Secret = passphrase ? .passphrase(bytes) : .keyFile(bytes)
    if let weakness = secret.weakness {
        throw ValidationError("\(path): \(weakness); refusing it as a secret")
    }
    var status = stat()
    if stat(path, &status) == 0, status.st_mode & 0o077 != 0 {
        warn("\(path) can be read by others (mode \(String(status.st_mode & 0o777, radix: 8))); chmod 600 it")
    }
    return secret
}
