/// EFI_TIME (UEFI 2.10 §8.3), 16 bytes on the wire.
///
/// Kept with time-based authenticated variables; the store and the JSON format carry it as
/// the raw 16 bytes, so every field is preserved even where it is invalid.
public struct EFITime: Hashable, Sendable {
    public var year: UInt16
    public var month: UInt8
    public var day: UInt8
    public var hour: UInt8
    public var minute: UInt8
    public var second: UInt8
    public var pad1: UInt8
    public var nanosecond: UInt32
    public var timeZone: Int16
    public var daylight: UInt8
    public var pad2: UInt8

    public static let size = 16
    public static let zero = EFITime(bytes: [UInt8](repeating: 0, count: 16), at: 0)!

    /// A time with the fields the spec requires to be zero left zero.
    public init(year: UInt16, month: UInt8, day: UInt8, hour: UInt8 = 0, minute: UInt8 = 0, second: UInt8 = 0) {
        self.year = year; self.month = month; self.day = day
        self.hour = hour; self.minute = minute; self.second = second
        pad1 = 0; nanosecond = 0; timeZone = 0; daylight = 0; pad2 = 0
    }

    public init?(bytes: [UInt8], at offset: Int) {
        var reader = ByteReader(bytes, start: offset, end: offset &+ EFITime.size)
        guard offset >= 0, reader.remaining == EFITime.size,
              let year = reader.read(UInt16.self), let month = reader.read(UInt8.self),
              let day = reader.read(UInt8.self), let hour = reader.read(UInt8.self),
              let minute = reader.read(UInt8.self), let second = reader.read(UInt8.self),
              let pad1 = reader.read(UInt8.self), let nanosecond = reader.read(UInt32.self),
              let timeZone = reader.read(UInt16.self), let daylight = reader.read(UInt8.self),
              let pad2 = reader.read(UInt8.self) else { return nil }
        self.year = year; self.month = month; self.day = day; self.hour = hour
        self.minute = minute; self.second = second; self.pad1 = pad1
        self.nanosecond = nanosecond; self.timeZone = Int16(bitPattern: timeZone)
        self.daylight = daylight; self.pad2 = pad2
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(EFITime.size)
        LittleEndian.append(year, to: &out)
        out += [month, day, hour, minute, second, pad1]
        LittleEndian.append(nanosecond, to: &out)
        LittleEndian.append(UInt16(bitPattern: timeZone), to: &out)
        out += [daylight, pad2]
        return out
    }
}
