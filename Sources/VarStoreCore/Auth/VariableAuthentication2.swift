/// EFI_VARIABLE_AUTHENTICATION_2 (UEFI 2.10 §8.2.2): the descriptor that leads the Data of
/// every SetVariable with TIME_BASED_AUTHENTICATED_WRITE_ACCESS.
///
///     offset  size           field
///     0       16             TimeStamp (EFI_TIME)
///     16      4              AuthInfo.Hdr.dwLength: 24 + PKCS#7 length
///     20      2              AuthInfo.Hdr.wRevision (0x0200; edk2 does not check it)
///     22      2              AuthInfo.Hdr.wCertificateType (WIN_CERT_TYPE_EFI_GUID, 0x0EF1)
///     24      16             AuthInfo.CertType (EFI_CERT_TYPE_PKCS7_GUID)
///     40      dwLength − 24  AuthInfo.CertData: DER PKCS#7 SignedData
///     16 + dwLength          the new value (or the bytes to append)
///
/// Invariant: `certificate` and `payload` lie inside the request's Data, so no length in a
/// parsed descriptor can reach outside what the guest sent.
public struct VariableAuthentication2 {
    public static let winCertificateTypeEFIGUID: UInt16 = 0x0EF1
    public static let winCertificateRevision: UInt16 = 0x0200
    /// TimeStamp (16) + WIN_CERTIFICATE_UEFI_GUID header (24).
    public static let headerSize = 40
    /// WIN_CERTIFICATE (8) + CertType (16): dwLength's smallest value.
    public static let certificateHeaderSize: UInt32 = 24

    public let timeStamp: EFITime
    public let certificateType: UInt16
    public let certificateTypeGUID: EFIGUID
    /// The PKCS#7 bytes (possibly empty: edk2's own setup-mode writes carry none).
    public let certificate: ArraySlice<UInt8>
    /// The variable value carried after the descriptor.
    public let payload: ArraySlice<UInt8>

    /// edk2's sanity check (Variable.c, before any size limit): DataSize ≥ 40 and
    /// 24 ≤ dwLength ≤ DataSize − 16. Anything else is EFI_SECURITY_VIOLATION.
    public static func parse(_ data: [UInt8]) throws(EFIStatus) -> VariableAuthentication2 {
        guard data.count >= headerSize,
              let time = EFITime(bytes: data, at: 0),
              let length = LittleEndian.load(UInt32.self, from: data, at: 16),
              let type = LittleEndian.load(UInt16.self, from: data, at: 22),
              let typeGUID = EFIGUID(wire: data, at: 24) else { throw .securityViolation }
        let available = UInt64(data.count) - 16
        guard length >= certificateHeaderSize, UInt64(length) <= available else { throw .securityViolation }
        let payloadStart = 16 + Int(length)
        return VariableAuthentication2(timeStamp: time, certificateType: type, certificateTypeGUID: typeGUID,
                                       certificate: data[headerSize..<payloadStart],
                                       payload: data[payloadStart...])
    }

    /// The descriptor's wire bytes for `timeStamp` and a PKCS#7 `certificate` (empty for the
    /// unsigned descriptors edk2's own setup-mode enrollment writes), in the layout `parse`
    /// reads; the new value follows it.
    public static func encode(timeStamp: EFITime, certificate: [UInt8]) -> [UInt8] {
        var out = timeStamp.bytes
        out.reserveCapacity(headerSize + certificate.count)
        LittleEndian.append(certificateHeaderSize + UInt32(truncatingIfNeeded: certificate.count), to: &out)
        LittleEndian.append(winCertificateRevision, to: &out)
        LittleEndian.append(winCertificateTypeEFIGUID, to: &out)
        out += EFIGUID.certTypePKCS7.wireBytes
        out += certificate
        return out
    }

    /// Whether `data` starts like a descriptor (WIN_CERTIFICATE_UEFI_GUID with the PKCS#7
    /// type), so a file holding one can be told from a plain signature list.
    public static func looksLikeDescriptor(_ data: [UInt8]) -> Bool {
        guard let descriptor = try? parse(data) else { return false }
        return descriptor.isPKCS7
    }

    /// Whether the descriptor names a PKCS#7 certificate (edk2 checks this only where it
    /// verifies a signature).
    public var isPKCS7: Bool {
        certificateType == Self.winCertificateTypeEFIGUID && certificateTypeGUID == .certTypePKCS7
    }

    /// The TimeStamp fields that must be zero (UEFI 2.10 §8.2.2: Pad1, Nanosecond, TimeZone,
    /// Daylight, Pad2), checked where edk2 verifies a signature.
    public var hasCleanTimeStamp: Bool {
        timeStamp.pad1 == 0 && timeStamp.nanosecond == 0 && timeStamp.timeZone == 0
            && timeStamp.daylight == 0 && timeStamp.pad2 == 0
    }

    /// The bytes the signature covers (edk2 VerifyTimeBasedPayload): the name without its
    /// NUL ‖ vendor GUID ‖ attributes as sent (APPEND included) ‖ TimeStamp ‖ payload.
    public func signedContent(for key: VariableKey, attributes: UInt32) -> [UInt8] {
        var content: [UInt8] = []
        content.reserveCapacity(2 * key.name.codeUnits.count + 16 + 4 + EFITime.size + payload.count)
        for unit in key.name.codeUnits { LittleEndian.append(unit, to: &content) }
        content += key.guid.wireBytes
        LittleEndian.append(attributes, to: &content)
        content += timeStamp.bytes
        content += payload
        return content
    }
}

extension EFITime {
    /// edk2 AuthServiceInternalCompareTimeStamp, inverted: whether `self` is strictly later
    /// than `other`, comparing Year, Month, Day, Hour, Minute and Second only.
    public func isLater(than other: EFITime) -> Bool {
        let mine = (year, month, day, hour, minute, second)
        let theirs = (other.year, other.month, other.day, other.hour, other.minute, other.second)
        return mine > theirs
    }
}
