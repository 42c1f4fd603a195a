import Foundation

/// Replacing a file that holds variables (a QEMU JSON store, an exported OVMF_VARS.fd): a
/// temporary file beside it is written and flushed, then renamed over the original, and the
/// directory is flushed, so a crash leaves either the old or the new content.
///
/// Variables include Secure Boot keys, MOR state and whatever the firmware keeps: a new file
/// is readable by its owner only (0600); a file that already exists keeps its mode, which its
/// owner chose.
public enum AtomicFile {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func write(_ bytes: [UInt8], to url: URL) throws {
        let directory = url.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        var existing = stat()
        let mode: mode_t = stat(url.path, &existing) == 0 ? existing.st_mode & 0o7777 : 0o600
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "\(temporary.path): cannot create: \(String(cString: strerror(errno)))") }
        var ok = bytes.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let written = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written <= 0 { return false }
                offset += written
            }
            return true
        }
        // O_CREAT's mode passes through the umask; the mode is set explicitly.
        ok = ok && fchmod(fd, mode) == 0 && fsync(fd) == 0
        close(fd)
        guard ok, rename(temporary.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary.path)
            throw Failure(description: "\(url.path): cannot write: \(reason)")
        }
        let dirfd = open(directory.path, O_RDONLY | O_CLOEXEC)
        if dirfd >= 0 {
            fsync(dirfd)
            close(dirfd)
        }
    }
}
