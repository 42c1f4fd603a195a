/// The three storage classes that QueryVariableInfo reports on.
public enum StorageClass: Sendable, Equatable {
    case nonVolatile
    case volatile
    case hardwareError

    /// The class a variable with these attributes is charged to.
    public init(_ attributes: VariableAttributes) {
        if attributes.contains(.hardwareErrorRecord) {
            self = .hardwareError
        } else if attributes.contains(.nonVolatile) {
            self = .nonVolatile
        } else {
            self = .volatile
        }
    }
}

/// Bytes used per storage class.
///
/// Invariant: `used(c)` is the sum of `charge(v)` over the stored variables of class `c`, plus,
/// for the volatile class, the bytes of the registered variable policies.
public struct StorageQuota: Sendable {
    public let configuration: ServiceConfiguration
    private var usedNonVolatile: UInt64 = 0
    private var usedVolatile: UInt64 = 0
    private var usedHardwareError: UInt64 = 0

    public init(configuration: ServiceConfiguration) {
        self.configuration = configuration
    }

    public func capacity(_ storageClass: StorageClass) -> UInt64 {
        switch storageClass {
        case .nonVolatile: return configuration.nonVolatileStorageSize
        case .volatile: return configuration.volatileStorageSize
        case .hardwareError: return configuration.hardwareErrorStorageSize
        }
    }

    public func used(_ storageClass: StorageClass) -> UInt64 {
        switch storageClass {
        case .nonVolatile: return usedNonVolatile
        case .volatile: return usedVolatile
        case .hardwareError: return usedHardwareError
        }
    }

    public func remaining(_ storageClass: StorageClass) -> UInt64 {
        let capacity = capacity(storageClass), used = used(storageClass)
        return capacity > used ? capacity - used : 0
    }

    /// The per-variable limit on `recordOverhead + NameSize + DataSize`.
    public func maximumVariableSize(_ storageClass: StorageClass) -> UInt64 {
        switch storageClass {
        case .nonVolatile: return configuration.maximumVariableSize
        case .volatile: return configuration.maximumVolatileVariableSize
        case .hardwareError: return configuration.maximumHardwareErrorVariableSize
        }
    }

    /// The largest NameSize + DataSize a new variable of this class may have right now: the
    /// per-variable limit, clamped to the space left (edk2 QueryVariableInfo clamps likewise).
    public func largestNewVariable(_ storageClass: StorageClass) -> UInt64 {
        let overhead = configuration.recordOverhead
        let limit = maximumVariableSize(storageClass)
        let byLimit = limit > overhead ? limit - overhead : 0
        let left = remaining(storageClass)
        let bySpace = left > overhead ? left - overhead : 0
        return min(byLimit, bySpace)
    }

    /// Bytes charged for a variable with this name and data size; nil on overflow.
    public func charge(nameSize: Int, dataSize: Int) -> UInt64? {
        CheckedSize.add(configuration.recordOverhead, UInt64(nameSize), UInt64(dataSize))
    }

    public func charge(_ variable: Variable) -> UInt64 {
        charge(nameSize: variable.name.wireSize, dataSize: variable.data.count) ?? UInt64.max
    }

    /// Whether replacing `old` (if any) by a variable charged `newCharge` of `storageClass`
    /// stays within the class's capacity.
    public func fits(replacing old: Variable?, newCharge: UInt64, in storageClass: StorageClass) -> Bool {
        var used = used(storageClass)
        if let old, StorageClass(old.attributes) == storageClass {
            let oldCharge = charge(old)
            used = used >= oldCharge ? used - oldCharge : 0
        }
        guard let total = CheckedSize.add(used, newCharge) else { return false }
        return total <= capacity(storageClass)
    }

    /// Charges bytes that are not a variable (registered policies) to a class.
    public mutating func reserve(_ amount: UInt64, in storageClass: StorageClass) {
        adjust(storageClass, by: amount, adding: true)
    }

    public mutating func release(_ amount: UInt64, from storageClass: StorageClass) {
        adjust(storageClass, by: amount, adding: false)
    }

    public mutating func add(_ variable: Variable) {
        adjust(StorageClass(variable.attributes), by: charge(variable), adding: true)
    }

    public mutating func subtract(_ variable: Variable) {
        adjust(StorageClass(variable.attributes), by: charge(variable), adding: false)
    }

    private mutating func adjust(_ storageClass: StorageClass, by amount: UInt64, adding: Bool) {
        func apply(_ value: inout UInt64) {
            if adding {
                value = CheckedSize.add(value, amount) ?? UInt64.max
            } else {
                value = value >= amount ? value - amount : 0
            }
        }
        switch storageClass {
        case .nonVolatile: apply(&usedNonVolatile)
        case .volatile: apply(&usedVolatile)
        case .hardwareError: apply(&usedHardwareError)
        }
    }
}
