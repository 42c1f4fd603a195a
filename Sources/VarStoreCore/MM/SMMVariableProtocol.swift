/// SMM_VARIABLE_COMMUNICATE_HEADER functions (edk2 MdeModulePkg/Include/Guid/SmmVariableCommon.h).
public enum SMMVariableFunction: UInt64, Sendable {
    case getVariable = 1
    case getNextVariableName = 2
    case setVariable = 3
    case queryVariableInfo = 4
    case readyToBoot = 5
    case exitBootService = 6
    case getStatistics = 7
    case lockVariable = 8
    case varCheckVariablePropertySet = 9
    case varCheckVariablePropertyGet = 10
    case getPayloadSize = 11
    case initRuntimeVariableCacheContext = 12
    case syncRuntimeCache = 13
    case getRuntimeCacheInfo = 14
}

/// Byte offsets of the SMM variable messages, absolute from the start of the MM header
/// (spec/semantics.md, the function table).
enum SMMVariableLayout {
    /// SMM_VARIABLE_COMMUNICATE_HEADER: Function (u64), ReturnStatus (u64).
    static let function = 24
    static let returnStatus = 32
    static let headerSize: UInt64 = 16

    /// SMM_VARIABLE_COMMUNICATE_ACCESS_VARIABLE (GET_VARIABLE, SET_VARIABLE): 36-byte header.
    enum Access {
        static let guid = 40
        static let dataSize = 56
        static let nameSize = 64
        static let attributes = 72
        static let name = 76
        /// SMM header + access header: the smallest GET/SET message.
        static let minimumLength: UInt64 = 16 + 36
    }

    /// SMM_VARIABLE_COMMUNICATE_GET_NEXT_VARIABLE_NAME (and LOCK_VARIABLE): 24-byte header.
    enum NextName {
        static let guid = 40
        static let nameSize = 56
        static let name = 64
        static let minimumLength: UInt64 = 16 + 24
    }

    /// SMM_VARIABLE_COMMUNICATE_QUERY_VARIABLE_INFO: three u64 figures and the attributes.
    enum QueryInfo {
        static let maximumVariableStorageSize = 40
        static let remainingVariableStorageSize = 48
        static let maximumVariableSize = 56
        static let attributes = 64
        static let length: UInt64 = 16 + 28
    }

    /// SMM_VARIABLE_COMMUNICATE_VAR_CHECK_VARIABLE_PROPERTY: Guid, NameSize, the 24-byte
    /// VAR_CHECK_VARIABLE_PROPERTY, Name.
    enum Property {
        static let guid = 40
        static let nameSize = 56
        static let property = 64
        static let name = 88
        static let minimumLength: UInt64 = 16 + 48
    }

    /// SMM_VARIABLE_COMMUNICATE_GET_PAYLOAD_SIZE.
    enum PayloadSize {
        static let variablePayloadSize = 40
        static let length: UInt64 = 16 + 8
    }
}

/// The gEfiSmmVariableProtocolGuid handler: parses each function's payload from the message
/// copy, calls the service, and answers in place.
///
/// Length rules are QEMU's (the wire contract edk2's VirtMmCommunicationDxe was written
/// against): every handler reports the length its answer needs, counted from the SMM header;
/// when MessageLength is shorter, ReturnStatus becomes EFI_BUFFER_TOO_SMALL. Error answers
/// need only the 16-byte SMM header.
enum SMMVariableHandler {
    typealias Answer = (status: EFIStatus, needed: UInt64)
    typealias L = SMMVariableLayout

    static func handle<C: AuthenticationCrypto, J: NonVolatileJournal>(_ message: inout MMMessage, service: inout VariableServiceState<C, J>) -> MMDispatchResult {
        guard UInt64(message.length) >= L.headerSize else { return .badBufferSize }
        let answer: Answer
        guard let function = message.u64(L.function) else { return .badBufferSize }
        switch SMMVariableFunction(rawValue: function) {
        case .getVariable: answer = getVariable(&message, &service)
        case .getNextVariableName: answer = getNextVariableName(&message, &service)
        case .setVariable: answer = setVariable(&message, &service)
        case .queryVariableInfo: answer = queryVariableInfo(&message, &service)
        case .readyToBoot:
            service.signalReadyToBoot()
            answer = (.success, L.headerSize)
        case .exitBootService:
            service.signalExitBootServices()
            answer = (.success, L.headerSize)
        case .lockVariable: answer = lockVariable(&message, &service)
        case .varCheckVariablePropertySet: answer = variableProperty(&message, &service, set: true)
        case .varCheckVariablePropertyGet: answer = variableProperty(&message, &service, set: false)
        case .getPayloadSize: answer = getPayloadSize(&message)
        default: answer = (.unsupported, L.headerSize)
        }
        let status = UInt64(message.length) < answer.needed ? EFIStatus.bufferTooSmall : answer.status
        message.setU64(status.rawValue, at: L.returnStatus)
        return .handled
    }

    private static func failure(_ status: EFIStatus) -> Answer { (status, L.headerSize) }

    private static func parseName(_ message: MMMessage, at offset: Int, size: UInt64) -> VariableName? {
        switch VariableName.parse(message.buffer, at: offset, size: size) {
        case .success(let name): return name
        case .failure: return nil
        }
    }

    /// Where a request's name lies (its UCS-2LE code units, the terminator excluded), checked
    /// as `parseName` checks it, for the lookups that need no VariableName.
    private static func nameBytes(_ message: MMMessage, at offset: Int, size: UInt64) -> Range<Int>? {
        switch VariableName.validate(message.buffer, at: offset, size: size) {
        case .success(let range): return range
        case .failure: return nil
        }
    }

    // MARK: GET_VARIABLE (1)

    private static func getVariable<C: AuthenticationCrypto, J: NonVolatileJournal>(_ message: inout MMMessage, _ service: inout VariableServiceState<C, J>) -> Answer {
        let length = UInt64(message.length)
        guard length >= L.Access.minimumLength else { return failure(.badBufferSize) }
        guard let requestedDataSize = message.u64(L.Access.dataSize), let nameSize = message.u64(L.Access.nameSize),
              let guid = message.guid(L.Access.guid) else { return failure(.badBufferSize) }
        let fieldLimit = service.configuration.maximumFieldSize
        guard nameSize <= fieldLimit, requestedDataSize <= fieldLimit else { return failure(.outOfResources) }
        guard let nameEnd = CheckedSize.add(L.Access.minimumLength, nameSize), nameEnd <= length else {
            return failure(.badBufferSize)
        }
        guard let name = nameBytes(message, at: L.Access.name, size: nameSize) else {
            return failure(.invalidParameter)
        }
        let slot = service.slot(guid: guid, name: message.buffer.span.extracting(name))
        do {
            // The reply is written from the stored variable in place.
            return try service.readVariable(at: slot) { attributes, data in
                // The data area the caller advertises must fit the transport's buffer.
                guard let advertisedEnd = CheckedSize.add(nameEnd, requestedDataSize),
                      advertisedEnd <= UInt64(message.capacity) else { return failure(.badBufferSize) }

                let storedSize = UInt64(data.count)
                // edk2 returns Attributes and the needed DataSize on success and on BUFFER_TOO_SMALL.
                message.setU32(attributes.rawValue, at: L.Access.attributes)
                message.setU64(storedSize, at: L.Access.dataSize)
                if storedSize > requestedDataSize { return (.bufferTooSmall, nameEnd) }
                let needed = nameEnd + storedSize
                if needed > length { return (.bufferTooSmall, needed) }
                message.setBytes(data, at: L.Access.name + Int(nameSize))
                return (.success, needed)
            }
        } catch {
            return failure(error)
        }
    }

    // MARK: GET_NEXT_VARIABLE_NAME (2)

    private static func getNextVariableName<C: AuthenticationCrypto, J: NonVolatileJournal>(_ message: inout MMMessage, _ service: inout VariableServiceState<C, J>) -> Answer {
        let length = UInt64(message.length)
        guard length >= L.NextName.minimumLength else { return failure(.badBufferSize) }
        guard let nameSize = message.u64(L.NextName.nameSize), let guid = message.guid(L.NextName.guid) else {
            return failure(.badBufferSize)
        }
        guard nameSize <= service.configuration.maximumFieldSize else { return failure(.outOfResources) }
        guard let nameEnd = CheckedSize.add(L.NextName.minimumLength, nameSize), nameEnd <= length else {
            return failure(.badBufferSize)
        }
        // UEFI 2.10 §8.2: the previous name must be NUL-terminated within VariableNameSize.
        guard let name = nameBytes(message, at: L.NextName.name, size: nameSize) else {
            return failure(.invalidParameter)
        }
        let next: VariableStore.Slot
        do {
            next = try service.nextSlot(afterGUID: guid, name: message.buffer.span.extracting(name))
        } catch {
            return failure(error)
        }
        // The reply is written from the stored name in place.
        return service.withName(at: next) { nextGUID, units -> Answer in
            let nextSize = UInt64(2 * (units.count + 1))
            let needed = L.NextName.minimumLength + nextSize
            guard needed <= UInt64(message.capacity) else { return failure(.badBufferSize) }
            // QEMU writes the GUID, the size and as much of the name as the message holds even
            // when the caller's buffer is too small; edk2's driver reads only NameSize then.
            message.setGUID(nextGUID, at: L.NextName.guid)
            message.setU64(nextSize, at: L.NextName.nameSize)
            message.setNameClipped(units, at: L.NextName.name)
            // edk2 (VariableSmm.c) compares with the caller's NameSize, so a name is never
            // reported as returned into a buffer smaller than it.
            if nextSize > nameSize { return (.bufferTooSmall, L.NextName.minimumLength) }
            return (.success, needed)
        } ?? failure(.notFound)  // unreachable: the slot was just found
    }

    // MARK: SET_VARIABLE (3)

    private static func setVariable<C: AuthenticationCrypto, J: NonVolatileJournal>(_ message: inout MMMessage, _ service: inout VariableServiceState<C, J>) -> Answer {
        let length = UInt64(message.length)
        guard length >= L.Access.minimumLength else { return failure(.badBufferSize) }
        guard let dataSize = message.u64(L.Access.dataSize), let nameSize = message.u64(L.Access.nameSize),
              let guid = message.guid(L.Access.guid), let attributes = message.u32(L.Access.attributes) else {
            return failure(.badBufferSize)
        }
        let fieldLimit = service.configuration.maximumFieldSize
        guard nameSize <= fieldLimit, dataSize <= fieldLimit else { return failure(.outOfResources) }
        guard let end = CheckedSize.add(L.Access.minimumLength, nameSize, dataSize), end <= length else {
            return failure(.badBufferSize)
        }
        guard let nameRange = nameBytes(message, at: L.Access.name, size: nameSize) else {
            return failure(.invalidParameter)
        }
        // A write to a stored variable reuses its key; only a new name is built from the bytes.
        let key: VariableKey
        let slot: VariableStore.Slot?
        switch service.storedKey(guid: guid, name: message.buffer.span.extracting(nameRange)) {
        case .some(let stored):
            key = stored.key
            slot = stored.slot
        case .none:
            guard let name = parseName(message, at: L.Access.name, size: nameSize) else {
                return failure(.invalidParameter)
            }
            key = VariableKey(guid: guid, name: name)
            slot = nil
        }
        let dataStart = L.Access.name + Int(nameSize)
        let data = Array(message.buffer[dataStart ..< dataStart + Int(dataSize)])
        do {
            // The key and the data move into the service (its parameters are consuming).
            try service.setVariable(key, attributes: attributes, data: data, storedAt: slot)
        } catch {
            return failure(error)
        }
        return (.success, L.headerSize)
    }

    // MARK: QUERY_VARIABLE_INFO (4)

    private static func queryVariableInfo<C: AuthenticationCrypto, J: NonVolatileJournal>(_ message: inout MMMessage, _ service: inout VariableServiceState<C, J>) -> Answer {
        guard L.QueryInfo.length <= UInt64(message.capacity) else { return failure(.badBufferSize) }
        let info: StorageInfo
        do {
            guard let attributes = message.u32(L.QueryInfo.attributes) else { return failure(.badBufferSize) }
            info = try service.queryVariableInfo(attributes: attributes)
        } catch {
            return failure(error)
        }
        message.setU64(info.maximumVariableStorageSize, at: L.QueryInfo.maximumVariableStorageSize)
        message.setU64(info.remainingVariableStorageSize, at: L.QueryInfo.remainingVariableStorageSize)
        message.setU64(info.maximumVariableSize, at: L.QueryInfo.maximumVariableSize)
        return (.success, L.QueryInfo.length)
    }

    // MARK: LOCK_VARIABLE (8)

    private static func lockVariable<C: AuthenticationCrypto, J: NonVolatileJournal>(_ message: inout MMMessage, _ service: inout VariableServiceState<C, J>) -> Answer {
        let length = UInt64(message.length)
        guard length >= L.NextName.minimumLength, let nameSize = message.u64(L.NextName.nameSize),
              let guid = message.guid(L.NextName.guid) else { return failure(.badBufferSize) }
        guard let nameEnd = CheckedSize.add(L.NextName.minimumLength, nameSize), nameEnd <= length,
              // QEMU turns the request into a policy entry whose Size field is 16-bit.
              nameSize <= 0xFFFF - 44 else { return failure(.badBufferSize) }
        guard let name = parseName(message, at: L.NextName.name, size: nameSize) else {
            return failure(.invalidParameter)
        }
        do {
            try service.lockVariable(VariableKey(guid: guid, name: name))
        } catch {
            return failure(error)
        }
        return (.success, L.headerSize)
    }

    // MARK: VAR_CHECK_VARIABLE_PROPERTY_SET (9) / _GET (10)

    private static func variableProperty<C: AuthenticationCrypto, J: NonVolatileJournal>(_ message: inout MMMessage, _ service: inout VariableServiceState<C, J>, set: Bool) -> Answer {
        let length = UInt64(message.length)
        guard length >= L.Property.minimumLength, let nameSize = message.u64(L.Property.nameSize),
              let guid = message.guid(L.Property.guid) else { return failure(.badBufferSize) }
        guard nameSize <= service.configuration.maximumFieldSize else { return failure(.outOfResources) }
        guard let nameEnd = CheckedSize.add(L.Property.minimumLength, nameSize), nameEnd <= length else {
            return failure(.badBufferSize)
        }
        guard let name = parseName(message, at: L.Property.name, size: nameSize) else { return failure(.invalidParameter) }
        let key = VariableKey(guid: guid, name: name)
        if set {
            guard let property = VariableProperty(bytes: message.buffer, at: L.Property.property) else {
                return failure(.invalidParameter)
            }
            do {
                try service.setVariableProperty(key, property)
            } catch {
                return failure(error)
            }
            return (.success, L.headerSize)
        }
        guard !name.isEmpty, let property = service.variableProperty(key) else { return failure(.notFound) }
        message.setBytes(property.bytes, at: L.Property.property)
        return (.success, L.Property.minimumLength)
    }

    // MARK: GET_PAYLOAD_SIZE (11)

    private static func getPayloadSize(_ message: inout MMMessage) -> Answer {
        guard L.PayloadSize.length <= UInt64(message.capacity) else { return failure(.badBufferSize) }
        // The largest SMM-variable payload the buffer carries after both headers: 65496 for a
        // 64 KiB buffer (QEMU's "fix size negotiation", Jan 2026).
        message.setU64(UInt64(message.capacity) - L.headerSize, at: L.PayloadSize.variablePayloadSize)
        return (.success, L.PayloadSize.length)
    }
}
