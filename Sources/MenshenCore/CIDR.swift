#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`,
/// or a bare address meaning a single host). Used for trusted forward-auth
/// callers and network zones. Written here because none of the listed
/// packages parses CIDR blocks (NIO's `SocketAddress` parses addresses only).
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) match IPv4 networks.
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    /// 4 or 16 bytes, host bits cleared.
    public let network: [UInt8]
    public let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = Self.parseAddress(String(parts[0])) else { return nil }
        let maxLength = address.count * 8
        var length = maxLength
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].count <= 3, parts[1].allSatisfy(\.isASCII), let n = Int(parts[1]), (0...maxLength).contains(n)
            else { return nil }
            length = n
        }
        prefixLength = length
        network = Self.masked(address, length)
    }

    public var description: String {
        let text: String
        if network.count == 4 {
            text = network.map(String.init).joined(separator: ".")
        } else {
            text = stride(from: 0, to: 16, by: 2).map { String(UInt16(network[$0]) << 8 | UInt16(network[$0 + 1]), radix: 16) }
                .joined(separator: ":")
        }
        return "\(text)/\(prefixLength)"
    }

    /// Whether `address` (text form, IPv4 or IPv6) lies in this network.
    public func contains(_ address: String) -> Bool {
        guard var bytes = Self.parseAddress(address) else { return false }
        if bytes.count == 16, network.count == 4, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            bytes = Array(bytes[12...])
        }
        guard bytes.count == network.count else { return false }
        return Self.masked(bytes, prefixLength) == network
    }

    /// Whether `text` is a single IPv4 or IPv6 address (no prefix length, no zone).
    public static func isAddress(_ text: String) -> Bool { parseAddress(text) != nil }

    static func masked(_ bytes: [UInt8], _ length: Int) -> [UInt8] {
        var out = bytes
        for i in 0..<out.count {
            let keep = max(0, min(8, length - i * 8))
            out[i] &= keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - keep))
        }
        return out
    }

    static func parseAddress(_ text: String) -> [UInt8]? {
        // Bytes searched, not `String.contains` (Foundation's substring search, several microseconds: forward-auth
        // checks an address on every call). A text that is not ASCII fails `inet_pton` either way.
        guard !text.isEmpty, text.utf8.count <= 64, !text.utf8.contains(UInt8(ascii: "%")) else { return nil }
        if text.utf8.contains(UInt8(ascii: ":")) {
            var a = in6_addr()
            guard inet_pton(AF_INET6, text, &a) == 1 else { return nil }
            return withUnsafeBytes(of: &a) { Array($0) }
        }
        var a = in_addr()
        guard inet_pton(AF_INET, text, &a) == 1 else { return nil }
        return withUnsafeBytes(of: &a) { Array($0) }
    }

    /// Loopback networks: the default trusted forward-auth callers.
    public static let loopback: [CIDR] = [CIDR("127.0.0.0/8")!, CIDR("::1/128")!]
}
