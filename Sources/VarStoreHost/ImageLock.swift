import Foundation

/// One writer per image: a process that opens an image (a running `varstore qtest --image`, or
/// any command) holds an exclusive `flock` on it until it exits, and every other process is
/// refused at once with a line saying so — two writers appending to the same log would fork
/// its chain, which the next open reports as tampering.
///
/// Locks are kept per file (device and inode) for the life of the process, so the same
/// process may open an image more than once. libcryptsetup's own metadata locking is switched
/// off in this process (it would wait on our lock); cryptsetup run elsewhere still takes its
/// lock on the same file and so waits for ours.
public enum ImageLock {
    /// Descriptors holding locks, by the file's device and inode (a rekey renames a locked
    /// new file over the image; the lock goes with the file).
    nonisolated(unsafe) private static var held: [FileID: Int32] = [:]
    private static let guardLock = NSLock()

    struct FileID: Hashable {
        let device: UInt64
        let inode: UInt64
    }

    /// Takes (or confirms) this process's lock on a QEMU JSON store. Each save renames a new
    /// file over the store, so the lock cannot live on the store's own inode: it is taken on
    /// `.NAME.lock` beside it (created 0600, left in place), which every writer takes first.
    public static func holdJSONStore(_ path: String) throws {
        let url = URL(fileURLWithPath: path)
        let lock = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).lock").path
        let made = open(lock, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard made >= 0 else { throw LUKS2Image.Failure("cannot create the lock file \(lock) (\(String(cString: strerror(errno))))") }
        close(made)
        try hold(lock, inUse: "\(path) is in use by another process (a running `varstore qtest --json`)")
    }

    /// Takes (or confirms) this process's lock on `path`; `inUse` is the refusal when another
    /// process holds it.
    public static func hold(_ path: String, inUse: String? = nil) throws {
        guardLock.lock()
        defer { guardLock.unlock() }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: path]) }
            throw LUKS2Image.Failure("cannot open \(path) (\(String(cString: strerror(errno))))")
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            close(descriptor)
            throw LUKS2Image.Failure("cannot stat \(path)")
        }
        let file = FileID(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
        if held[file] != nil {
            close(descriptor)
            return
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            close(descriptor)
            if reason == EWOULDBLOCK {
                throw LUKS2Image.Failure(inUse ?? "\(path) is in use by another process (a running `varstore qtest --image`, or cryptsetup)")
            }
            throw LUKS2Image.Failure("cannot lock \(path) (\(String(cString: strerror(reason))))")
        }
        held[file] = descriptor
    }
}
