import CLibcryptsetup
import Foundation
import VarStoreCore
import VarStoreCrypto

/// The secrets that open an image's keyslots, and the rule that refuses weak ones.
extension LUKS2Image {
    /// How a keyslot secret was given: a key file (random bytes; a PBKDF2 keyslot with
    /// cryptsetup's minimum 1,000 iterations suffices) or a passphrase (PBKDF2 with
    /// `passphraseIterations`).
    public enum Secret: Sendable {
        case keyFile([UInt8])
        case passphrase([UInt8])

        public var bytes: [UInt8] {
            switch self {
            case .keyFile(let bytes), .passphrase(let bytes): return bytes
            }
        }

        /// A key file holds at least this many bytes: 256 bits, as much as the volume key's
        /// own strength per XTS half.
        public static let minimumKeyFileBytes = 32
        /// A passphrase has at least this many characters (cryptsetup's pwquality default).
        public static let minimumPassphraseCharacters = 8

        /// Why this secret is too weak to guard an image, if it is: an empty or short key file
        /// (a failed `… > vars.key` in a script leaves one) or passphrase would let anyone
        /// who guesses it read and rewrite every variable.
        public var weakness: String? {
            switch self {
            case .keyFile(let bytes) where bytes.count < Self.minimumKeyFileBytes:
                return bytes.isEmpty ? "the key file is empty" : "the key file holds \(bytes.count) bytes; a key file must hold at least \(Self.minimumKeyFileBytes)"
            case .passphrase(let bytes):
                let characters = String(decoding: bytes, as: UTF8.self).count
                guard characters < Self.minimumPassphraseCharacters else { return nil }
                return characters == 0 ? "the passphrase is empty" : "the passphrase has \(characters) characters; a passphrase must have at least \(Self.minimumPassphraseCharacters)"
            default:
                return nil
            }
        }

        /// Refuses a weak secret (see `weakness`), naming where it came from.
        public func requireStrong(_ origin: String) throws {
            if let weakness { throw Failure("\(origin): \(weakness); nothing was written") }
        }

        /// The derivation an image's own keyslot for this secret gets.
        var derivation: KeyDerivation {
            switch self {
            case .keyFile: return .keyFile
            case .passphrase: return .passphrase
            }
        }
    }
}
