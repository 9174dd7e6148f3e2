/// Whether a URL's host names this machine's loopback interface: `localhost`, `127.0.0.0/8` written as
/// four decimal octets, or `::1` (with or without brackets). The one rule for "plain http is allowed
/// only to loopback" (playbook webhooks, the webhook export): traffic that never leaves the machine
/// needs no TLS, anything else does.
public enum LoopbackHost {
    public static func contains(_ host: String) -> Bool {
        var h = Substring(host.lowercased())
        if h.hasPrefix("["), h.hasSuffix("]") { h = h.dropFirst().dropLast() }
        if h == "localhost" || h == "::1" { return true }
        let octets = h.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
}
