import Foundation

/// A websocket peer that completes the upgrade and then goes silent: it never answers a ping or a
/// close, like a phone that lost its network. The server must drop it on its own.
struct SilentPeer: Sendable {
    private let connection: RawConnection

    /// Upgrades `path` with a bearer token, retrying while the instance answers anything but 101
    /// (it refuses upgrades until it consumes its queues). Nil if it never upgrades.
    static func upgrade(port: Int, path: String, token: String, origin: String, within timeout: Duration = .seconds(5)) async throws -> SilentPeer? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let connection = try await RawConnection.open(port: port)
            try await connection.send(RawConnection.upgradeRequest(port: port, path: path, headers: ["Authorization: Bearer \(token)", "Origin: \(origin)"]))
            while ContinuousClock.now < deadline, connection.isOpen, !connection.received.contains("\r\n\r\n") {
                try await Task.sleep(for: .milliseconds(20))
            }
            if connection.received.hasPrefix("HTTP/1.1 101") { return SilentPeer(connection: connection) }
            await connection.close()
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    var isOpen: Bool { connection.isOpen }

    /// Everything the server sent, as Latin-1 text (enough to see the handshake and frame bytes).
    var received: String { connection.received }

    func close() async {
        await connection.close()
    }
}

/// What a server answers to one websocket upgrade request: the status and, for a refusal, the body.
struct UpgradeAnswer: Sendable {
    let status: Int
    let body: String

    var errorCode: String? {
        ((try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["error"] as? [String: Any])?["code"] as? String
    }

    /// Sends one upgrade request with these extra header lines and reads the answer's head (and
    /// body, for a refusal), then closes.
    static func attempt(port: Int, path: String, headers: [String]) async throws -> UpgradeAnswer {
        let connection = try await RawConnection.open(port: port)
        try await connection.send(RawConnection.upgradeRequest(port: port, path: path, headers: headers))
        let deadline = ContinuousClock.now + .seconds(5)
        func complete(_ text: String) -> Bool {
            guard let end = text.range(of: "\r\n\r\n") else { return false }
            if text.hasPrefix("HTTP/1.1 101") { return true }
            let length =
                text[..<end.lowerBound].split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            return text[end.upperBound...].utf8.count >= length
        }
        while ContinuousClock.now < deadline, !complete(connection.received), connection.isOpen {
            try await Task.sleep(for: .milliseconds(10))
        }
        await connection.close()
        let text = connection.received
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return UpgradeAnswer(status: status, body: body)
    }
}
