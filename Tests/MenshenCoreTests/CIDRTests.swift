import MenshenCore
import Testing

@Suite("CIDR blocks")
struct CIDRTests {
    @Test("IPv4 and IPv6 networks match their addresses and nothing else; host bits are cleared")
    func matching() throws {
        let ten = try #require(CIDR("10.1.2.3/8"))
        #expect(ten.description == "10.0.0.0/8")
        #expect(ten.contains("10.255.0.1") && !ten.contains("11.0.0.1") && !ten.contains("::1"))
        #expect(ten.contains("::ffff:10.9.9.9"), "IPv4-mapped IPv6 addresses match IPv4 networks")
        let odd = try #require(CIDR("192.168.1.128/25"))
        #expect(odd.contains("192.168.1.200") && !odd.contains("192.168.1.127"))
        let v6 = try #require(CIDR("2001:db8::/32"))
        #expect(v6.contains("2001:db8:ffff::1") && !v6.contains("2001:db9::1") && !v6.contains("10.0.0.1"))
        let host = try #require(CIDR("::1"))
        #expect(host.prefixLength == 128 && host.contains("::1") && !host.contains("::2"))
        #expect(try #require(CIDR("0.0.0.0/0")).contains("203.0.113.7"))
        #expect(CIDR.loopback.contains { $0.contains("127.0.0.1") } && CIDR.loopback.contains { $0.contains("::1") })
    }

    @Test("malformed blocks and addresses are refused, never matched")
    func refusals() {
        for bad in ["", "10.0.0.0/33", "10.0.0.0/", "10.0.0/8", "10.0.0.0/8/8", "::1/129", "fe80::1%eth0", "10.0.0.0/-1",
                    "10.0.0.0/ 8", "example.com", "10.0.0.256", String(repeating: "1", count: 100)] {
            #expect(CIDR(bad) == nil, "\(bad)")
        }
        let net = CIDR("10.0.0.0/8")!
        for bad in ["", "10", "10.0.0.1 ", "not an address", "10.0.0.1/8"] { #expect(!net.contains(bad), "\(bad)") }
    }
}
