import VarStoreCore
import VarStoreCrypto
import VarStoreHost

/// A variable service over an opened image: what the guest would see before EndOfDxe.
typealias ImageService = VariableService<Libcrypto, HostJournal.ImageLog>

func imageService(_ log: HostJournal.ImageLog) -> ImageService {
    VariableService(configuration: imageConfiguration(log), crypto: Libcrypto(), journal: log, variables: log.live.all)
}

/// Runs one request through a variable service over `log` whose changes — the request's and
/// any the service makes for itself when it starts (CustomMode, VendorKeysNv on a new image)
/// — reach the image as one commit, and only if the request succeeds: a refused request
/// leaves the image byte for byte as it was.
func withStagedService(_ log: HostJournal.ImageLog,
                       _ request: (VariableService<Libcrypto, StagedJournal>) throws -> Void) throws {
    let staged = StagedJournal(log)
    let service = VariableService(configuration: imageConfiguration(log), crypto: Libcrypto(), journal: staged,
                                  variables: log.live.all)
    try request(service)
    try staged.finish()
}

/// The service configuration for an image: its non-volatile quota is what the store can hold.
func imageConfiguration(_ log: HostJournal.ImageLog) -> ServiceConfiguration {
    LUKS2Image.configuration(for: log)
}
