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
    let device = UEFIVarsDevice(service: VariableService(configuration: ServiceConfiguration(), crypto: Libcrypto()), memory: NoMemory())
    device.mmioWrite(offset: offset, size: 4, value: value)
    return device.mmioRead(offset: offset, size: 4)
}
