import ArgumentParser
import VarStoreCore

/// Options shared by commands that build a service.
struct ServiceOptions: ParsableArguments {
    @Option(name: .customLong("size"), help: "Non-volatile storage in bytes (QEMU's uefi-vars 'size' property).")
    var storageSize: UInt64 = 0x40000

    func configuration() -> ServiceConfiguration {
        var configuration = ServiceConfiguration()
        configuration.nonVolatileStorageSize = storageSize
        return configuration
    }
}
