import Crypto
import Foundation
import HummingbirdBcrypt
import NIOPosix

/// Password hashes. bcrypt reads only the first 72 bytes of its input, so a password is first
/// hashed with SHA-256 (base64, 44 bytes) and that goes to bcrypt: every byte of a 128-character
/// password counts, and two passwords sharing their first 72 bytes are different passwords.
/// Such hashes are stored as `sha256:<bcrypt>`. Hashes from before (bcrypt of the password
/// itself) still verify passwords of up to 72 bytes, and are upgraded at the next sign-in.
///
/// bcrypt is deliberately slow: it runs on NIO's blocking pool, never on an event loop or the
/// cooperative pool.
struct PasswordHasher: Sendable {
    let cost: UInt8

    private static let scheme = "sha256:"

    func hash(_ password: String) async throws -> String {
        let cost = cost
        let input = Self.prehash(password)
        return try await NIOThreadPool.singleton.runIfActive { Self.scheme + Bcrypt.hash(input, cost: cost) }
    }

    func verify(_ password: String, against stored: String) async throws -> Bool {
        let (input, hash): (String, String)
        if stored.hasPrefix(Self.scheme) {
            (input, hash) = (Self.prehash(password), String(stored.dropFirst(Self.scheme.count)))
        } else {
            // A hash of the password itself: past 72 bytes bcrypt would compare a prefix only.
            guard password.utf8.count <= 72 else { return false }
            (input, hash) = (password, stored)
        }
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(input, hash: hash) }
    }

    /// Whether a stored hash is of the current scheme (otherwise rehash after a good sign-in).
    static func isCurrent(_ stored: String) -> Bool { stored.hasPrefix(scheme) }

    private static func prehash(_ password: String) -> String {
        Data(SHA256.hash(data: Data(password.utf8))).base64EncodedString()
    }
}
