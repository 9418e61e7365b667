import Foundation
import ServiceConfig

/// Which direct peers are proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`, CIDRs:
/// loopback locally, the Ingress controller's pods on Kubernetes). From anyone else the header is
/// ignored, so a client cannot pick the address it is counted under.
public struct TrustedProxies: Sendable {
    private let networks: [Network]

    /// Loopback: the local gateway.
    public static let loopback = ["127.0.0.0/8", "::1/128"]

    public init(_ cidrs: [String]) throws(ConfigurationError) {
        networks = try cidrs.map { cidr throws(ConfigurationError) in
            guard let network = Network(cidr) else {
                throw ConfigurationError(key: "TRUSTED_PROXIES", value: cidr, expected: "CIDRs such as 10.0.0.0/8 or ::1/128, comma-separated")
            }
            return network
        }
    }

    /// `TRUSTED_PROXIES`, loopback by default.
    public init(environment: EnvironmentReader) throws {
        try self.init(environment.list("TRUSTED_PROXIES", default: Self.loopback))
    }

    public func trusts(_ address: String) -> Bool {
        guard let bytes = Network.bytes(of: address) else { return false }
        return networks.contains { $0.contains(bytes) }
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the right-most
    /// address in `X-Forwarded-For` that is not itself a trusted proxy (what the first trusted hop
    /// saw), ignoring anything a client put further left.
    public func clientAddress(peer: String?, forwardedFor: String?) -> String {
        guard let peer else { return "unknown" }
        guard trusts(peer), let forwardedFor else { return peer }
        var client = peer
        for hop in forwardedFor.split(separator: ",").reversed() {
            let address = hop.trimmingCharacters(in: .whitespaces)
            guard Network.bytes(of: address) != nil else { break }
            client = address
            if !trusts(address) { break }
        }
        return client
    }

    /// An IPv4 or IPv6 network.
    private struct Network: Sendable {
        let prefix: [UInt8]
        let bits: Int

        init?(_ cidr: String) {
            let parts = cidr.split(separator: "/", maxSplits: 1)
            guard let bytes = Self.bytes(of: String(parts[0])) else { return nil }
            let bits = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
            guard let bits, (0...(bytes.count * 8)).contains(bits) else { return nil }
            self.prefix = bytes
            self.bits = bits
        }

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == prefix.count else { return false }
            var remaining = bits
            for (a, b) in zip(address, prefix) where remaining > 0 {
                let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
                if a & mask != b & mask { return false }
                remaining -= 8
            }
            return true
        }

        /// 4 bytes for IPv4, 16 for IPv6; nil for anything else.
        static func bytes(of address: String) -> [UInt8]? {
            var v4 = in_addr()
            if inet_pton(AF_INET, address, &v4) == 1 {
                return withUnsafeBytes(of: &v4) { Array($0) }
            }
            var v6 = in6_addr()
            if inet_pton(AF_INET6, address, &v6) == 1 {
                return withUnsafeBytes(of: &v6) { Array($0) }
            }
            return nil
        }
    }
}
