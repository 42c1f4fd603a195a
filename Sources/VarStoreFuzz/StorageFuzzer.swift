// libFuzzer target: the two readers of host-controlled image bytes — the LUKS2 header
// reader, and the log store's replay — built by .ci/fuzz with the core and crypto sources
// and FuzzSupport.swift.
//
// The first input byte picks the reader. LUKS2: the rest is the start of an image (both
// header copies live in the first 64 KiB). Log: the rest is a list of patches (log sector
// u16, offset u16, byte) applied to a valid store written by a fixed workload; the store
// uses "transparent" crypto (sealing adds a zero tag, opening strips it) so that patched
// records still "authenticate" and the fuzzer reaches record decoding, chaining, compaction
// replay and the tamper scan, which real AES-GCM would hide behind a failed tag.

/// StorageCrypto without secrecy or authentication, for fuzzing the parsers behind it.
struct TransparentCrypto: StorageCrypto {
    let real = Libcrypto()
    func sha256(_ data: [UInt8]) -> [UInt8] { real.sha256(data) }
    func sha512(_ data: [UInt8]) -> [UInt8] { real.sha512(data) }
    func hkdfSHA256(key: [UInt8], salt: [UInt8], info: [UInt8], count: Int) -> [UInt8] { [UInt8](repeating: 1, count: count) }
    func pbkdf2(_ hash: DigestAlgorithm, password: [UInt8], salt: [UInt8], iterations: UInt32, count: Int) -> [UInt8]? {
        [UInt8](repeating: 2, count: count)
    }
    func sealAES256GCM(key: [UInt8], nonce: [UInt8], additionalData: [UInt8], plaintext: [UInt8]) -> [UInt8]? {
        plaintext + [UInt8](repeating: 0, count: 16)
    }
    func openAES256GCM(key: [UInt8], nonce: [UInt8], additionalData: [UInt8], sealed: [UInt8]) -> [UInt8]? {
        sealed.count >= 16 ? Array(sealed.dropLast(16)) : nil
    }
    func aesXTS(encrypt: Bool, key: [UInt8], sector: UInt64, data: [UInt8]) -> [UInt8]? { data }
    func randomBytes(_ count: Int) -> [UInt8]? { [UInt8](repeating: 3, count: count) }
}

let fuzzKey = [UInt8](repeating: 0x11, count: 64)
let fuzzBinding: [UInt8] = Array("fuzz-image".utf8)

/// A valid store of 192 KiB after a workload that wrapped and compacted, ending with a group.
let baseLog: [UInt8] = {
    guard let log = try? VariableLog.format(device: MemoryFlash(size: 192 << 10), crypto: TransparentCrypto(),
                                            volumeKey: fuzzKey, binding: fuzzBinding) else { return [] }
    for index in 0 ..< 400 {
        let name = VariableName("V\(index % 23)")!
        let variable = Variable(key: VariableKey(guid: .globalVariable, name: name),
                                attributes: [.nonVolatile, .bootServiceAccess], data: [UInt8](repeating: UInt8(index & 0xff), count: index % 97 + 1),
                                timestamp: index % 3 == 0 ? .zero : nil, certificateDigest: index % 5 == 0 ? [1, 2, 3] : nil)
        let change: JournalChange = index % 7 == 0 ? .delete(variable.key) : (index % 4 == 0 ? .replaceInPlace(variable) : .put(variable))
        try? log.commit([change])
    }
    // Then a commit too large for one record (a group of parts), and one more record after
    // it, so patches reach the group replay from a valid start.
    let group: [JournalChange] = (0 ..< 2).map { index in
        .put(Variable(key: VariableKey(guid: .globalVariable, name: VariableName("G\(index)")!),
                      attributes: [.nonVolatile, .bootServiceAccess], data: [UInt8](repeating: UInt8(index), count: 19_000)))
    }
    try? log.commit(group)
    precondition(log.live.variable(for: VariableKey(guid: .globalVariable, name: VariableName("G1")!)) != nil,
                 "the base store must end with a group")
    try? log.commit([.delete(VariableKey(guid: .globalVariable, name: VariableName("G1")!))])
    return log.device.bytes
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = Input(bytes: Array(UnsafeBufferPointer(start: data, count: size)))
    if input.byte() & 1 == 0 {
        // LUKS2: the image starts with the input; the rest is zero.
        var bytes = input.take(64 << 10)
        bytes += [UInt8](repeating: 0, count: (1 << 20) - bytes.count)
        var flash = MemoryFlash(bytes: bytes)
        if let header = try? LUKS2Header.read(from: &flash, crypto: Libcrypto()) {
            precondition(header.segmentOffset >= 2 * header.headerSize, "segment overlaps the headers")
            precondition(header.segmentSize <= flash.size - header.segmentOffset, "segment past the end")
            precondition(header.digest.iterations <= LUKS2Header.maximumDigestIterations, "iterations unbounded")
            precondition(header.digest.work <= KeyDerivationWork.maximumPerOpen, "digest check above the budget")
            if header.digest.iterations <= 1000 { _ = header.accepts(volumeKey: fuzzKey, crypto: Libcrypto()) }
            if header.keyslots.allSatisfy({ $0.iterations <= 1000 }) {
                _ = try? header.unlock(secret: fuzzKey, flash: &flash, crypto: Libcrypto())
            }
        }
        return 0
    }
    var image = baseLog
    guard !image.isEmpty else { return 0 }
    while !input.atEnd {
        let sector = Int(input.u16()) % (image.count / 512)
        let offset = Int(input.u16()) % 512
        image[sector * 512 + offset] = input.byte()
    }
    let flash = MemoryFlash(bytes: image)
    if let log = try? VariableLog.open(device: flash, crypto: TransparentCrypto(), volumeKey: fuzzKey, binding: fuzzBinding) {
        precondition(log.live.count == log.live.all.count, "live index and order disagree")
        // Whatever opened must keep working.
        let variable = Variable(key: VariableKey(guid: .globalVariable, name: VariableName("After")!),
                                attributes: [.nonVolatile, .bootServiceAccess], data: [1])
        try? log.commit([.put(variable)])
        try? log.compact()
    }
    return 0
}
