import CLibcryptsetup
import Foundation
import VarStoreCore
import VarStoreCrypto

/// The libcryptsetup plumbing the image tools share: a loaded device, status checks and the
/// keyslot key derivations.
extension LUKS2Image {
    final class Device {
        var handle: OpaquePointer?
        let path: String
        init(path: String) throws {
            self.path = path
            try ImageLock.hold(path)
            // Our own lock covers the file (ImageLock); libcryptsetup's would wait on it.
            crypt_metadata_locking(nil, 0)
            var device: OpaquePointer?
            guard crypt_init(&device, path) == 0, let device else { throw Failure("cannot open \(path) with libcryptsetup") }
            // Its advice ("keyslots area is very small") is for disks; our small metadata is
            // deliberate (spec/storage.md). Errors still reach the caller as statuses.
            crypt_set_log_callback(device, { _, _, _ in }, nil)
            handle = device
        }
        func close() {
            if let handle { crypt_free(handle) }
            handle = nil
        }
        deinit { close() }
    }

    static func check(_ result: Int32, _ what: String) throws {
        guard result >= 0 else { throw Failure("libcryptsetup: \(what) failed (\(String(cString: strerror(-result))))") }
    }

    static func withPBKDF(_ derivation: KeyDerivation, _ body: (UnsafePointer<crypt_pbkdf_type>) throws -> Void) throws {
        try derivation.type.withCString { typeName in
            try derivation.hash.withCString { hash in
                var pbkdf = crypt_pbkdf_type()
                pbkdf.type = typeName
                pbkdf.hash = hash
                pbkdf.iterations = derivation.iterations
                pbkdf.max_memory_kb = derivation.memoryKiB
                pbkdf.parallel_threads = derivation.memoryKiB > 0 ? max(derivation.threads, 1) : 0
                pbkdf.flags = 1 << 1  // CRYPT_PBKDF_NO_BENCHMARK
                try withUnsafePointer(to: &pbkdf) { try body($0) }
            }
        }
    }
}
