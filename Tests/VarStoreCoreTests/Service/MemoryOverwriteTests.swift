import Testing
@testable import VarStoreCore

/// MOR and MORLock (TCG PRAM mitigation, Microsoft Secure MOR; spec/semantics.md, MOR).
@Suite struct MemoryOverwriteTests {
    static let morGUID: [UInt8] = [0xbe, 0x39, 0x09, 0xe2, 0xd4, 0x32, 0xbe, 0x41, 0xa1, 0x50, 0x89, 0x7f, 0x85, 0xd4, 0x98, 0x29]
    static let lockGUID: [UInt8] = [0xcf, 0x3c, 0x98, 0xbb, 0x1d, 0x15, 0xe1, 0x40, 0xa0, 0x7b, 0x4a, 0x17, 0xbe, 0x16, 0x82, 0x92]

    func mor(_ rig: Rig, _ data: [UInt8], attributes: UInt32 = Attr.nvBsRt) -> UInt64 {
        rig.set("MemoryOverwriteRequestControl", guid: Self.morGUID, attributes: attributes, data: data)
    }

    func lock(_ rig: Rig, _ data: [UInt8], attributes: UInt32 = Attr.nvBsRt) -> UInt64 {
        rig.set("MemoryOverwriteRequestControlLock", guid: Self.lockGUID, attributes: attributes, data: data)
    }

    func lockValue(_ rig: Rig) -> [UInt8] { rig.get("MemoryOverwriteRequestControlLock", guid: Self.lockGUID).data }

    @Test func morIsOneNonVolatileRuntimeByteAndCannotBeDeleted() {
        let rig = Rig()
        #expect(mor(rig, [1]) == Status.success)
        #expect(mor(rig, [1], attributes: Attr.bsRt) == Status.invalidParameter)
        #expect(mor(rig, [1, 0]) == Status.invalidParameter)
        #expect(mor(rig, []) == Status.invalidParameter)
        #expect(mor(rig, [1], attributes: 0) == Status.invalidParameter)
        #expect(rig.get("MemoryOverwriteRequestControl", guid: Self.morGUID).data == [1])
    }

    @Test func unlockedAcceptsZeroAndStaysUnlocked() {
        let rig = Rig()
        #expect(lock(rig, [0]) == Status.success)
        #expect(lockValue(rig) == [0])
        #expect(mor(rig, [1]) == Status.success)
    }

    @Test func oneLocksWithoutKeyUntilReset() {
        let rig = Rig()
        #expect(lock(rig, [1]) == Status.success)
        #expect(lockValue(rig) == [1])
        #expect(mor(rig, [0]) == Status.accessDenied)
        #expect(lock(rig, [0]) == Status.accessDenied)
        #expect(lock(rig, [1, 2, 3, 4, 5, 6, 7, 8]) == Status.accessDenied)
        rig.service.platformReset()
        #expect(mor(rig, [0]) == Status.success)
    }

    @Test func otherOneByteValuesAreInvalid() {
        let rig = Rig()
        #expect(lock(rig, [2]) == Status.invalidParameter)
        #expect(lock(rig, [1, 2]) == Status.invalidParameter)
        #expect(lock(rig, [1], attributes: Attr.bsRt) == Status.invalidParameter)
        #expect(lock(rig, [], attributes: 0) == Status.writeProtected)
        #expect(lock(rig, []) == Status.writeProtected)
    }

    @Test func eightByteKeyLocksAndTheSameKeyUnlocks() {
        let rig = Rig()
        let key: [UInt8] = [9, 8, 7, 6, 5, 4, 3, 2]
        #expect(lock(rig, key) == Status.success)
        #expect(lockValue(rig) == [2])
        #expect(mor(rig, [1]) == Status.accessDenied)
        #expect(lock(rig, [0]) == Status.accessDenied)
        #expect(lock(rig, key) == Status.success)
        #expect(lockValue(rig) == [0])
        #expect(mor(rig, [1]) == Status.success)
    }

    @Test func aWrongKeyLocksForGood() {
        let rig = Rig()
        let key: [UInt8] = [1, 1, 1, 1, 1, 1, 1, 1]
        _ = lock(rig, key)
        #expect(lock(rig, [1, 1, 1, 1, 1, 1, 1, 2]) == Status.accessDenied)
        #expect(lockValue(rig) == [1])
        #expect(lock(rig, key) == Status.accessDenied)
    }

    @Test func theKeyIsNeverStored() {
        let rig = Rig()
        let key: [UInt8] = [0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8]
        _ = lock(rig, key)
        for variable in rig.service.store.all {
            let windows = variable.data.count >= 2 ? (0...(variable.data.count - 2)).map { Array(variable.data[$0..<$0 + 2]) } : []
            // No two consecutive key bytes appear anywhere.
            for pair in 0..<7 { #expect(!windows.contains(Array(key[pair...pair + 1]))) }
        }
    }

    @Test func endOfDxeUnlocksWhenMORExists() {
        let rig = Rig()
        _ = mor(rig, [0])
        _ = rig.signal(WireGUID.endOfDxe)
        #expect(lockValue(rig) == [0])
        #expect(lock(rig, [1]) == Status.success)
    }

    @Test func endOfDxeWithoutMORLocksBothNames() {
        let rig = Rig()
        _ = rig.signal(WireGUID.endOfDxe)
        #expect(rig.get("MemoryOverwriteRequestControlLock", guid: Self.lockGUID).status == Status.notFound)
        #expect(mor(rig, [1]) == Status.writeProtected)
        #expect(lock(rig, [1]) == Status.writeProtected)
    }
}
