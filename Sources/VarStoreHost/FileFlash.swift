import Foundation
import VarStoreCore

/// A flash in a file (the host's image): reads and writes with pread/pwrite, flush with fsync.
public final class FileFlash: Flash {
    let handle: FileHandle
    public let size: UInt64
    public let sectorSize: Int
    public private(set) var bytesWritten: UInt64 = 0

    public init(path: String, sectorSize: Int = 512) throws {
        try ImageLock.hold(path)
        guard let handle = FileHandle(forUpdatingAtPath: path) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        self.handle = handle
        size = try handle.seekToEnd()
        self.sectorSize = sectorSize
    }

    deinit { try? handle.close() }

    public func read(at offset: UInt64, count: Int) throws(FlashError) -> [UInt8] {
        guard contains(offset: offset, count: count) else { throw .outOfRange }
        do {
            try handle.seek(toOffset: offset)
            let data = try handle.read(upToCount: count) ?? Data()
            guard data.count == count else { throw FlashError.ioError }
            return [UInt8](data)
        } catch {
            throw .ioError
        }
    }

    public func write(_ bytes: [UInt8], at offset: UInt64) throws(FlashError) {
        guard contains(offset: offset, count: bytes.count) else { throw .outOfRange }
        do {
            try handle.seek(toOffset: offset)
            try handle.write(contentsOf: Data(bytes))
            bytesWritten += UInt64(bytes.count)
        } catch {
            throw .ioError
        }
    }

    public func flush() throws(FlashError) {
        do { try handle.synchronize() } catch { throw .ioError }
    }
}
