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

    /// Takes (or confirms) this process's lock on `path`.
    public static func hold(_ path: String) throws {
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
                throw LUKS2Image.Failure("\(path) is in use by another process (a running `varstore qtest --image`, or cryptsetup)")
            }
            throw LUKS2Image.Failure("cannot lock \(path) (\(String(cString: strerror(reason))))")
        }
        held[file] = descriptor
    }
}
