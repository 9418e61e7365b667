import Foundation
import ServiceHTTP

struct SignupRequest: APIRequestBody {
    static let fields: Set<String> = ["username", "email", "password"]
    let username: String
    let email: String
    let password: String
}

struct SigninRequest: APIRequestBody {
    static let fields: Set<String> = ["login", "password"]
    let login: String
    let password: String
}

struct DeleteAccountRequest: APIRequestBody {
    static let fields: Set<String> = ["password"]
    let password: String
}

/// The validation rules of the public contract, as one function per field.
enum Validation {
    static func username(_ raw: String) -> String? {
        let length = raw.count
        guard (3...32).contains(length) else { return "3 to 32 characters." }
        guard raw.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 || $0 == 46 }) else {
            return "Only a-z, 0-9, _ and . are allowed."
        }
        return nil
    }

    static func email(_ raw: String) -> String? {
        let parts = raw.split(separator: "@", omittingEmptySubsequences: false)
        guard raw.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[1].contains("."),
            !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
            !raw.contains(where: { $0.isWhitespace || $0.isNewline })
        else {
            return "Not a valid email address."
        }
        return nil
    }

    static func password(_ raw: String) -> String? {
        (8...128).contains(raw.count) ? nil : "8 to 128 characters."
    }
}
