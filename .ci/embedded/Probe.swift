// Embedded Swift compiles generic code only where it is specialised, so the check needs one
// concrete use of the service: this probe wires a UEFIVarsDevice to a VariableService over
// libcrypto, which makes the compiler emit the whole request path. (The SVSM C ABI module will
// take this role.)
import VarStoreCore
import VarStoreCrypto

struct NoMemory: GuestMemory {
    mutating func read(_ address: UInt64, into buffer: inout [UInt8], at offset: Int, count: Int) throws(GuestMemoryError) {
        throw .outOfRange(address: address)
    }
    mutating func write(_ address: UInt64, from buffer: [UInt8], range: Range<Int>) throws(GuestMemoryError) {
        throw .outOfRange(address: address)
    }
}

@_cdecl("varstore_embedded_probe")
public func probe(_ offset: UInt64, _ value: UInt64) -> UInt64 {
    let device = UEFIVarsDevice(service: VariableService(configuration: ServiceConfiguration(), crypto: Libcrypto(), journal: MemoryJournal()), memory: NoMemory())
    device.mmioWrite(offset: offset, size: 4, value: value)
    return device.mmioRead(offset: offset, size: 4)
}

/// Opens an encrypted image the way an SVSM would: LUKS2 header, key check, XTS segment, log.
@_cdecl("varstore_embedded_open_probe")
public func openProbe(_ size: Int, _ keyByte: UInt8) -> UInt64 {
    let crypto = Libcrypto()
    var flash = MemoryFlash(size: size)
    do throws(StorageError) {
        let header = try LUKS2Header.read(from: &flash, crypto: crypto)
        // Either the volume key is given, or a keyslot secret the core turns into it.
        let volumeKey = header.unlock(secret: [keyByte], flash: &flash, crypto: crypto)
            ?? [UInt8](repeating: keyByte, count: 64)
        let segment = try EncryptedSegment(device: flash, header: header, volumeKey: volumeKey, crypto: crypto)
        let log = try VariableLog.open(device: segment, crypto: crypto, volumeKey: volumeKey,
                                       binding: header.uuid, minimumGeneration: 1)
        // The service persists through the log, as an SVSM wires it.
        let service = VariableService(configuration: ServiceConfiguration(), crypto: crypto, journal: log)
        service.load(log.live.all)
        do throws(EFIStatus) {
            try service.setVariable(VariableKey(guid: .globalVariable, name: .empty), attributes: 7, data: [1])
        } catch {
            return 1
        }
        return log.generation
    } catch {
        return 0
    }
}
