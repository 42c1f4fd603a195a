import Foundation
import VarStoreCore
import VarStoreHost

/// Defaults more than one command applies, written once.
enum Defaults {
    /// The Secure Boot databases live under EFI_IMAGE_SECURITY_DATABASE_GUID (UEFI 2.10 §32.6);
    /// PK, KEK and the rest of the spec's variables under EFI_GLOBAL_VARIABLE.
    static let imageSecurityDatabases: Set<String> = ["db", "dbx", "dbt", "dbr"]

    /// The vendor GUID a variable named only by `name` gets.
    static func vendor(for name: String) -> EFIGUID {
        imageSecurityDatabases.contains(name) ? .imageSecurityDatabase : .globalVariable
    }

    /// Non-volatile bytes an image's store can promise to hold (its QueryVariableInfo maximum).
    static func capacity(_ log: HostJournal.ImageLog) -> UInt64 {
        LUKS2Image.configuration(for: log).nonVolatileStorageSize
    }
}

extension EFITime {
    /// The current time in UTC, to the second: what a signed update or enrollment is dated.
    static func now() -> EFITime {
        let now = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: Date())
        return EFITime(year: UInt16(now.year!), month: UInt8(now.month!), day: UInt8(now.day!),
                       hour: UInt8(now.hour!), minute: UInt8(now.minute!), second: UInt8(now.second!))
    }
}
