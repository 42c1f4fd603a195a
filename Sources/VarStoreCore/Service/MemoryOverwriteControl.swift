/// TCG Platform Reset Attack Mitigation: MemoryOverwriteRequestControl (MOR) and Microsoft's
/// Secure MOR lock, MemoryOverwriteRequestControlLock (MORLock), as edk2's TcgMorLockSmm.c
/// implements them. The lock state and key live in service memory only, so a platform reset
/// always unlocks; the MORLock *variable* reports the state (0 unlocked, 1 locked without key,
/// 2 locked with key) and never holds the key.
public struct MemoryOverwriteControl: Sendable {
    public static let morGUID = EFIGUID(0xe20939be, 0x32d4, 0x41be, 0xa1, 0x50, 0x89, 0x7f, 0x85, 0xd4, 0x98, 0x29)
    public static let morLockGUID = EFIGUID(0xbb983ccf, 0x151d, 0x40e1, 0xa0, 0x7b, 0x4a, 0x17, 0xbe, 0x16, 0x82, 0x92)
    public static let mor = VariableKey(guid: morGUID, name: VariableName("MemoryOverwriteRequestControl")!)
    public static let morLock = VariableKey(guid: morLockGUID, name: VariableName("MemoryOverwriteRequestControlLock")!)
    /// Both variables are NV|BS|RT and nothing else.
    public static let attributes: VariableAttributes = [.nonVolatile, .bootServiceAccess, .runtimeAccess]
    public static let keySize = 8

    public enum LockState: UInt8, Sendable {
        case unlocked = 0
        case lockedWithoutKey = 1
        case lockedWithKey = 2
    }

    public private(set) var state: LockState = .unlocked
    private var key: [UInt8] = []
    /// False once EndOfDxe found no MOR variable: both names are then locked by LOCK_NOW
    /// policies and this hook steps aside.
    public private(set) var isActive = true

    public init() {}

    /// What SetVariable must do after the MOR hook looked at a request.
    public enum Decision: Equatable, Sendable {
        /// Not a MOR variable, or a MOR write that may proceed through the normal checks.
        case proceed
        /// The hook handled the request: store MORLock with this one-byte value, answer SUCCESS.
        case storeLockValue(UInt8)
        /// The hook handled the request with this status; for a wrong key the state changed,
        /// so the MORLock variable must read `value` afterwards.
        case refuse(EFIStatus, newLockValue: UInt8?)
    }

    /// The MOR/MORLock hook, run before VarCheck (edk2 VariableServiceSetVariable step 12).
    /// `deletesAllowed`: the variable policy engine is disabled, which in edk2 also lets MOR and
    /// MORLock be deleted.
    public mutating func check(_ key: VariableKey, attributes: UInt32, data: [UInt8], deletesAllowed: Bool) -> Decision {
        guard isActive else { return .proceed }
        let isDelete = attributes == 0 || data.isEmpty
        if isDelete && deletesAllowed && (key == Self.mor || key == Self.morLock) { return .proceed }
        if key == Self.mor {
            if state != .unlocked { return .refuse(.accessDenied, newLockValue: nil) }
            // MOR may not be deleted, and is exactly one NV|BS|RT byte.
            if isDelete { return .refuse(.invalidParameter, newLockValue: nil) }
            if attributes != Self.attributes.rawValue || data.count != 1 { return .refuse(.invalidParameter, newLockValue: nil) }
            return .proceed
        }
        guard key == Self.morLock else { return .proceed }
        if isDelete { return .refuse(.writeProtected, newLockValue: nil) }
        if attributes != Self.attributes.rawValue || (data.count != 1 && data.count != Self.keySize) {
            return .refuse(.invalidParameter, newLockValue: nil)
        }
        switch state {
        case .unlocked:
            if data.count == Self.keySize {
                self.key = data
                state = .lockedWithKey
                return .storeLockValue(LockState.lockedWithKey.rawValue)
            }
            switch data[0] {
            case 0: return .storeLockValue(LockState.unlocked.rawValue)
            case 1:
                state = .lockedWithoutKey
                return .storeLockValue(LockState.lockedWithoutKey.rawValue)
            default: return .refuse(.invalidParameter, newLockValue: nil)
            }
        case .lockedWithoutKey:
            return .refuse(.accessDenied, newLockValue: nil)
        case .lockedWithKey:
            guard data.count == Self.keySize else { return .refuse(.accessDenied, newLockValue: nil) }
            if Self.constantTimeEqual(data, self.key) {
                self.key = []
                state = .unlocked
                return .storeLockValue(LockState.unlocked.rawValue)
            }
            // A wrong key locks for good (until reset), so keys cannot be guessed one by one.
            self.key = []
            state = .lockedWithoutKey
            return .refuse(.accessDenied, newLockValue: LockState.lockedWithoutKey.rawValue)
        }
    }

    /// MOR is absent at EndOfDxe: the platform does not use it this boot.
    public mutating func deactivate() {
        isActive = false
        state = .unlocked
        key = []
    }

    /// A platform reset forgets the lock and the key.
    public mutating func reset() {
        state = .unlocked
        key = []
        isActive = true
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<a.count { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
