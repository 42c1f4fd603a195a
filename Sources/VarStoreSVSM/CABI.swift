import CVarStore
import VarStoreCore
import VarStoreCrypto

// The C ABI of include/varstore.h. No Swift type crosses it: the store is an opaque pointer,
// everything else is C integers, pointers and the two structs the header declares. Every
// callback failure becomes an error for the request at hand; nothing here traps on what a
// caller or a guest passes.

/// Guest memory through the platform's callbacks.
struct CallbackGuestMemory: GuestMemory {
    let platform: varstore_platform_t

    mutating func read(_ address: UInt64, into buffer: inout [UInt8], at offset: Int, count: Int) throws(GuestMemoryError) {
        guard let read = platform.guest_read, offset >= 0, count >= 0, count <= buffer.count - offset else {
            throw .outOfRange(address: address)
        }
        if count == 0 { return }
        let status = buffer.withUnsafeMutableBytes { read(platform.context, address, $0.baseAddress! + offset, count) }
        guard status == 0 else { throw .outOfRange(address: address) }
    }

    mutating func write(_ address: UInt64, from buffer: [UInt8], range: Range<Int>) throws(GuestMemoryError) {
        guard let write = platform.guest_write, range.lowerBound >= 0, range.upperBound <= buffer.count else {
            throw .outOfRange(address: address)
        }
        if range.isEmpty { return }
        let status = buffer.withUnsafeBytes { write(platform.context, address, $0.baseAddress! + range.lowerBound, range.count) }
        guard status == 0 else { throw .outOfRange(address: address) }
    }
}

/// The image's flash through the platform's callbacks.
struct CallbackFlash: Flash {
    let platform: varstore_platform_t
    var size: UInt64 { platform.flash_size }
    var sectorSize: Int { platform.flash_sector_size == 0 ? 512 : Int(platform.flash_sector_size) }

    mutating func read(at offset: UInt64, count: Int) throws(FlashError) -> [UInt8] {
        guard contains(offset: offset, count: count) else { throw .outOfRange }
        guard let read = platform.flash_read else { throw .ioError }
        var out = [UInt8](repeating: 0, count: count)
        if count == 0 { return out }
        let status = out.withUnsafeMutableBytes { read(platform.context, offset, $0.baseAddress, count) }
        guard status == 0 else { throw .ioError }
        return out
    }

    mutating func write(_ bytes: [UInt8], at offset: UInt64) throws(FlashError) {
        guard contains(offset: offset, count: bytes.count) else { throw .outOfRange }
        guard let write = platform.flash_write else { throw .ioError }
        if bytes.isEmpty { return }
        let status = bytes.withUnsafeBytes { write(platform.context, offset, $0.baseAddress, bytes.count) }
        guard status == 0 else { throw .ioError }
    }

    mutating func flush() throws(FlashError) {
        guard let flush = platform.flash_flush, flush(platform.context) == 0 else { throw .ioError }
    }
}

/// libcrypto for the primitives; the platform's randomness for nonces.
struct PlatformCrypto: AuthenticationCrypto, StorageCrypto {
    let libcrypto = Libcrypto()
    let platform: varstore_platform_t

    typealias SignedData = Libcrypto.SignedData
    func parseSignedData(_ der: ArraySlice<UInt8>) -> SignedData? { libcrypto.parseSignedData(der) }
    func digestAlgorithm(of signedData: SignedData) -> DigestAlgorithm? { libcrypto.digestAlgorithm(of: signedData) }
    func signerCertificates(of signedData: SignedData) -> [[UInt8]] { libcrypto.signerCertificates(of: signedData) }
    func verify(_ signedData: SignedData, detachedContent content: [UInt8], trustedCertificates: [[UInt8]]) -> Bool {
        libcrypto.verify(signedData, detachedContent: content, trustedCertificates: trustedCertificates)
    }
    func certificateFacts(_ der: ArraySlice<UInt8>) -> CertificateFacts? { libcrypto.certificateFacts(der) }
    func digest(_ algorithm: DigestAlgorithm, _ data: [UInt8]) -> [UInt8] { libcrypto.digest(algorithm, data) }

    func sha256(_ data: [UInt8]) -> [UInt8] { libcrypto.sha256(data) }
    func sha256(concatenating parts: [ArraySlice<UInt8>]) -> [UInt8] { libcrypto.sha256(concatenating: parts) }
    func sha512(_ data: [UInt8]) -> [UInt8] { libcrypto.sha512(data) }
    func hkdfSHA256(key: [UInt8], salt: [UInt8], info: [UInt8], count: Int) -> [UInt8] {
        libcrypto.hkdfSHA256(key: key, salt: salt, info: info, count: count)
    }
    func pbkdf2(_ hash: DigestAlgorithm, password: [UInt8], salt: [UInt8], iterations: UInt32, count: Int) -> [UInt8]? {
        libcrypto.pbkdf2(hash, password: password, salt: salt, iterations: iterations, count: count)
    }
    func sealAES256GCM(key: [UInt8], nonce: [UInt8], additionalData: [UInt8], plaintext: [UInt8]) -> [UInt8]? {
        libcrypto.sealAES256GCM(key: key, nonce: nonce, additionalData: additionalData, plaintext: plaintext)
    }
    func openAES256GCM(key: [UInt8], nonce: [UInt8], additionalData: [UInt8], sealed: [UInt8]) -> [UInt8]? {
        libcrypto.openAES256GCM(key: key, nonce: nonce, additionalData: additionalData, sealed: sealed)
    }
    typealias PreparedAES256GCMKey = Libcrypto.PreparedAES256GCMKey
    func prepareAES256GCM(key: [UInt8]) -> PreparedAES256GCMKey? { libcrypto.prepareAES256GCM(key: key) }
    func sealAES256GCM(prepared key: PreparedAES256GCMKey, nonce: ArraySlice<UInt8>, additionalData: ArraySlice<UInt8>,
                       plaintext: ArraySlice<UInt8>) -> [UInt8]? {
        libcrypto.sealAES256GCM(prepared: key, nonce: nonce, additionalData: additionalData, plaintext: plaintext)
    }
    func openAES256GCM(prepared key: PreparedAES256GCMKey, nonce: ArraySlice<UInt8>, additionalData: ArraySlice<UInt8>,
                       sealed: ArraySlice<UInt8>) -> [UInt8]? {
        libcrypto.openAES256GCM(prepared: key, nonce: nonce, additionalData: additionalData, sealed: sealed)
    }
    func aesXTS(encrypt: Bool, key: [UInt8], sector: UInt64, data: [UInt8]) -> [UInt8]? {
        libcrypto.aesXTS(encrypt: encrypt, key: key, sector: sector, data: data)
    }
    typealias PreparedAESXTSKey = Libcrypto.PreparedAESXTSKey
    func prepareAESXTS(key: [UInt8]) -> PreparedAESXTSKey? { libcrypto.prepareAESXTS(key: key) }
    func aesXTS(encrypt: Bool, prepared key: PreparedAESXTSKey, firstSector: UInt64, sectorBytes: Int,
                data: [UInt8]) -> [UInt8]? {
        libcrypto.aesXTS(encrypt: encrypt, prepared: key, firstSector: firstSector, sectorBytes: sectorBytes, data: data)
    }
    func aesXTS(encrypt: Bool, key: [UInt8], firstSector: UInt64, sectorBytes: Int, data: [UInt8]) -> [UInt8]? {
        libcrypto.aesXTS(encrypt: encrypt, key: key, firstSector: firstSector, sectorBytes: sectorBytes, data: data)
    }
    func randomBytes(_ count: Int) -> [UInt8]? {
        guard let random = platform.random, count >= 0 else { return nil }
        var out = [UInt8](repeating: 0, count: count)
        if count == 0 { return out }
        let status = out.withUnsafeMutableBytes { random(platform.context, $0.baseAddress, count) }
        return status == 0 ? out : nil
    }
}

/// The platform's optional `witness` callback (spec/rollback.md): 0 means recorded.
struct CallbackWitness: Witness {
    let platform: varstore_platform_t

    mutating func witness(_ report: [UInt8]) -> Bool {
        guard let witness = platform.witness else { return false }
        return report.withUnsafeBufferPointer { witness(platform.context, $0.baseAddress, $0.count) } == 0
    }
}

/// Memory only, or the encrypted image on the platform's flash, witnessed when the platform
/// gives a witness callback.
enum PlatformJournal: NonVolatileJournal {
    typealias ImageLog = VariableLog<EncryptedSegment<CallbackFlash, PlatformCrypto>, PlatformCrypto>
    typealias WitnessedImageLog = WitnessedLog<EncryptedSegment<CallbackFlash, PlatformCrypto>, PlatformCrypto, CallbackWitness>
    case memory
    case image(ImageLog)
    case witnessedImage(WitnessedImageLog)

    func commit(_ changes: [JournalChange]) throws(StorageError) {
        switch self {
        case .memory: return
        case .image(let log): try log.commit(changes)
        case .witnessedImage(let witnessed): try witnessed.commit(changes)
        }
    }
    var isPersistent: Bool {
        if case .memory = self { return false }
        return true
    }
    var generation: UInt64 {
        switch self {
        case .memory: return 0
        case .image(let log): return log.generation
        case .witnessedImage(let witnessed): return witnessed.generation
        }
    }
    var stateDigest: [UInt8] {
        switch self {
        case .memory: return []
        case .image(let log): return log.digest
        case .witnessedImage(let witnessed): return witnessed.stateDigest
        }
    }
}

/// What a varstore_t points at.
final class Instance {
    let device: UEFIVarsDevice<CallbackGuestMemory, PlatformCrypto, PlatformJournal>
    let svsm: SVSMUEFIMM<CallbackGuestMemory, PlatformCrypto, PlatformJournal>
    /// Set while a call runs: a callback that calls back into the same store is refused
    /// rather than allowed to corrupt it.
    var busy = false

    init(service: VariableService<PlatformCrypto, PlatformJournal>, memory: CallbackGuestMemory) {
        device = UEFIVarsDevice(service: service, memory: memory)
        svsm = SVSMUEFIMM(service: service, memory: memory)
    }

    static func from(_ pointer: UnsafeMutableRawPointer?) -> Instance? {
        guard let pointer else { return nil }
        return Unmanaged<Instance>.fromOpaque(pointer).takeUnretainedValue()
    }
}

func code(_ error: StorageError) -> Int32 {
    switch error {
    case .notLUKS2: return Int32(VARSTORE_ERR_NOT_LUKS2)
    case .unsupportedHeader, .malformedMetadata, .invalidGeometry: return Int32(VARSTORE_ERR_UNSUPPORTED_IMAGE)
    case .wrongKey: return Int32(VARSTORE_ERR_WRONG_KEY)
    case .notFormatted, .storeKeysUnavailable: return Int32(VARSTORE_ERR_NOT_FORMATTED)
    case .tampered: return Int32(VARSTORE_ERR_TAMPERED)
    case .rolledBack: return Int32(VARSTORE_ERR_ROLLED_BACK)
    case .full, .flash, .noRandomness, .unstorable: return Int32(VARSTORE_ERR_IO)
    }
}

/// The shortest keyslot secret `varstore_create` accepts (include/varstore.h).
let minimumKeyslotSecretBytes = 8

func openImage(_ config: varstore_config_t, _ platform: varstore_platform_t) throws(StorageError) -> PlatformJournal.ImageLog {
    guard let keyPointer = config.key else { throw .wrongKey }
    // Our copy of the caller's key: wiped when opening ends (a keyslot secret) or with the
    // store's segment at varstore_destroy (a volume key). The caller's own buffer is theirs.
    let secret = SecretBytes(Array(UnsafeBufferPointer(start: keyPointer, count: config.key_length)))
    let key: EncryptedImage.Key = config.key_kind == UInt32(VARSTORE_KEY_KEYSLOT) ? .keyslotSecret(secret) : .volumeKey(secret)
    return try EncryptedImage.open(CallbackFlash(platform: platform), key: key, crypto: PlatformCrypto(platform: platform),
                                   minimumGeneration: config.minimum_generation)
}

/// The opened log behind a witness (spec/rollback.md, "Open"): the anchor is the witness's
/// state as the key broker passed it, or the opened state when it passed no digest. nil when
/// the image stands at the anchor's generation in another state (a fork). A state newer than
/// the anchor is reported at once; if the witness does not take it, it stays pending.
func witnessedLog(_ log: PlatformJournal.ImageLog, _ config: varstore_config_t,
                  _ platform: varstore_platform_t) -> PlatformJournal.WitnessedImageLog? {
    var anchor: (generation: UInt64, digest: [UInt8])?
    if let pointer = config.minimum_digest {
        let digest = Array(UnsafeBufferPointer(start: pointer, count: 32))
        if log.generation == config.minimum_generation && log.digest != digest { return nil }
        anchor = (config.minimum_generation, digest)
    } else if config.minimum_generation != 0 {
        anchor = (log.generation, log.digest)
    }
    let witnessed = WitnessedLog(log: log, witnessKey: EncryptedImage.witnessKey(of: log), anchor: anchor,
                                 policy: WitnessPolicy(everyChange: config.flags & UInt32(VARSTORE_FLAG_WITNESS_EVERY_CHANGE) != 0),
                                 witness: CallbackWitness(platform: platform))
    witnessed.reportPending()
    return witnessed
}

/// One diagnostic line through the optional log callback.
func report(_ platform: varstore_platform_t, _ message: StaticString) {
    guard let log = platform.log else { return }
    UnsafeRawPointer(message.utf8Start).withMemoryRebound(to: CChar.self, capacity: message.utf8CodeUnitCount + 1) {
        log(platform.context, $0)
    }
}

@_cdecl("varstore_create")
public func varstore_create(_ config: UnsafePointer<varstore_config_t>?, _ platform: UnsafePointer<varstore_platform_t>?,
                            _ error: UnsafeMutablePointer<Int32>?) -> UnsafeMutableRawPointer? {
    func fail(_ value: Int32) -> UnsafeMutableRawPointer? {
        error?.pointee = value
        return nil
    }
    guard let config = config?.pointee, let platform = platform?.pointee,
          platform.guest_read != nil, platform.guest_write != nil else {
        return fail(Int32(VARSTORE_ERR_INVALID_ARGUMENT))
    }
    var configuration = ServiceConfiguration()
    if config.volatile_bytes != 0 { configuration.volatileStorageSize = config.volatile_bytes }
    if config.flags & UInt32(VARSTORE_FLAG_NO_CUSTOM_MODE) != 0 { configuration.allowCustomMode = false }
    if config.flags & UInt32(VARSTORE_FLAG_NO_PHYSICAL_PRESENCE) != 0 { configuration.physicalPresenceBeforeEndOfDxe = false }
    var journal = PlatformJournal.memory
    var variables: [Variable] = []
    let validKind = config.key_kind == UInt32(VARSTORE_KEY_VOLUME) || config.key_kind == UInt32(VARSTORE_KEY_KEYSLOT)
    if platform.flash_read != nil {
        guard platform.flash_write != nil, platform.flash_flush != nil, platform.random != nil, validKind,
              config.key != nil, config.key_length > 0, config.key_length <= 4096 else {
            report(platform, "varstore: a flash needs write, flush and random callbacks and a key of a known kind")
            return fail(Int32(VARSTORE_ERR_INVALID_ARGUMENT))
        }
        // The ABI cannot tell a passphrase from a key file, so 8 bytes is its floor: a shorter
        // secret is too weak to guard a keyslot, and is refused before any flash is read.
        guard config.key_kind != UInt32(VARSTORE_KEY_KEYSLOT) || config.key_length >= minimumKeyslotSecretBytes else {
            report(platform, "varstore: a keyslot secret needs at least 8 bytes")
            return fail(Int32(VARSTORE_ERR_INVALID_ARGUMENT))
        }
        do throws(StorageError) {
            let log = try openImage(config, platform)
            let capacity = VariableLog<MemoryFlash, Libcrypto>.capacity(segmentBytes: log.device.size)
            guard config.nonvolatile_bytes <= capacity else {
                report(platform, "varstore: nonvolatile_bytes exceeds the image's capacity")
                return fail(Int32(VARSTORE_ERR_INVALID_ARGUMENT))
            }
            configuration.nonVolatileStorageSize = capacity
            variables = log.live.all
            if platform.witness != nil {
                guard let witnessed = witnessedLog(log, config, platform) else {
                    report(platform, "varstore: the image is at minimum_generation but not in the witnessed state")
                    return fail(Int32(VARSTORE_ERR_FORKED))
                }
                journal = .witnessedImage(witnessed)
            } else {
                journal = .image(log)
            }
        } catch {
            report(platform, "varstore: the image does not open (see the error code)")
            return fail(code(error))
        }
    } else if config.minimum_generation != 0 {
        report(platform, "varstore: minimum_generation needs an image")
        return fail(Int32(VARSTORE_ERR_INVALID_ARGUMENT))
    }
    if config.nonvolatile_bytes != 0 { configuration.nonVolatileStorageSize = config.nonvolatile_bytes }
    let service = VariableService(configuration: configuration, crypto: PlatformCrypto(platform: platform), journal: journal,
                                  variables: variables)
    let instance = Instance(service: service, memory: CallbackGuestMemory(platform: platform))
    error?.pointee = Int32(VARSTORE_OK)
    return Unmanaged.passRetained(instance).toOpaque()
}

@_cdecl("varstore_svsm_call")
public func varstore_svsm_call(_ store: UnsafeMutableRawPointer?, _ rax: UInt64, _ rcx: UnsafeMutablePointer<UInt64>?,
                               _ rdx: UInt64, _ r8: UInt64) -> UInt64 {
    guard let instance = Instance.from(store) else { return SVSMStatus.invalidRequest.rawValue }
    guard !instance.busy else { return SVSMStatus.busy.rawValue }
    instance.busy = true
    defer { instance.busy = false }
    let result = instance.svsm.call(SVSMCall(rax: rax, rcx: rcx?.pointee ?? 0, rdx: rdx, r8: r8))
    rcx?.pointee = result.rcx
    return result.rax
}

@_cdecl("varstore_mmio_read")
public func varstore_mmio_read(_ store: UnsafeMutableRawPointer?, _ offset: UInt64, _ size: UInt32) -> UInt64 {
    guard let instance = Instance.from(store), !instance.busy else { return 0 }
    instance.busy = true
    defer { instance.busy = false }
    return instance.device.mmioRead(offset: offset, size: Int(size))
}

@_cdecl("varstore_mmio_write")
public func varstore_mmio_write(_ store: UnsafeMutableRawPointer?, _ offset: UInt64, _ size: UInt32, _ value: UInt64) {
    guard let instance = Instance.from(store), !instance.busy else { return }
    instance.busy = true
    defer { instance.busy = false }
    instance.device.mmioWrite(offset: offset, size: Int(size), value: value)
}

@_cdecl("varstore_manifest")
public func varstore_manifest(_ store: UnsafeMutableRawPointer?, _ version: UInt32, _ buffer: UnsafeMutablePointer<UInt8>?,
                              _ length: UInt) -> UInt {
    guard let instance = Instance.from(store), !instance.busy, let buffer,
          let manifest = UEFIMMManifest.encode(instance.svsm.service, version: version),
          UInt(manifest.count) <= length else { return 0 }
    for (index, byte) in manifest.enumerated() { buffer[index] = byte }
    return UInt(manifest.count)
}

@_cdecl("varstore_destroy")
public func varstore_destroy(_ store: UnsafeMutableRawPointer?) {
    guard let store else { return }
    Unmanaged<Instance>.fromOpaque(store).release()
}
