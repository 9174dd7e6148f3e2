import Foundation
import MenshenCore
import MenshenServer
import MenshenStorage
import MenshenTestSupport
import Testing

/// The route table's look-up (candidate prefixes of the path, longest first, in a per-host index)
/// against the rule it implements, written out as a scan over every application: same host (case and
/// port ignored; an absolute name's trailing dot is not: the reverse proxy takes it off before asking, and
/// forward-auth decides on the host its caller routes on), prefix on a segment boundary compared as bytes,
/// the longest wins, and among equal prefixes the first listed.
@Suite("Route table")
struct RouteTableTests {
    // "é" precomposed and decomposed: equal as Swift strings, different bytes (and different paths upstream).
    static let segments = ["a", "ab", "b", "", "api", "\u{E9}", "e\u{301}", "%2e", "app-37", "A"]
    static let hosts = ["apps.bank.example", "Apps.Bank.Example", "other.example", "[::1]"]

    static func app(_ n: Int, host: String, prefix: String) -> ApplicationRecord {
        ApplicationRecord(id: ApplicationID("app-\(n)"), displayName: "app \(n)", host: host, pathPrefix: prefix,
                          upstreams: ["http://10.0.0.5:8080"], classification: "internal", scenario: nil,
                          updatedAt: Date(timeIntervalSince1970: 1_795_000_000))
    }

    static func path(_ rng: inout SeededGenerator, segments count: Int) -> String {
        "/" + (0..<count).map { _ in segments[Int(rng.next() % UInt64(segments.count))] }.joined(separator: "/")
    }

    /// The rule, by scanning.
    static func expected(_ apps: [ApplicationRecord], host: String, path: String) -> String? {
        guard path.utf8.first == UInt8(ascii: "/") else { return nil }
        let wantedHost = host.lowercased().hasPrefix("[") ? String(host.lowercased().prefix { $0 != "]" }) + "]"
            : String(host.lowercased().prefix { $0 != ":" })
        var best: (length: Int, id: String)?
        for app in apps where app.host.lowercased() == wantedHost {
            var prefix = Array(app.pathPrefix.utf8)
            if prefix == [UInt8(ascii: "/")] { prefix = [] } else if prefix.last == UInt8(ascii: "/") { prefix.removeLast() }
            let bytes = Array(path.utf8)
            guard bytes.starts(with: prefix), bytes.count == prefix.count || bytes[prefix.count] == UInt8(ascii: "/") else { continue }
            if best == nil || prefix.count > best!.length { best = (prefix.count, app.id.rawValue) }
        }
        return best?.id
    }

    @Test("random tables and paths: the index finds what a scan finds")
    func differential() {
        var rng = SeededGenerator(seed: 0x5EED_2026_1127)
        var matched = 0, unmatched = 0
        for _ in 0..<300 {
            var apps: [ApplicationRecord] = []
            for n in 0..<Int(1 + rng.next() % 12) {
                let host = Self.hosts[Int(rng.next() % UInt64(Self.hosts.count))]
                let depth = Int(rng.next() % 3)
                var prefix = depth == 0 ? "/" : Self.path(&rng, segments: depth)
                if rng.next() % 4 == 0 { prefix += "/" }
                apps.append(Self.app(n, host: host, prefix: prefix))
            }
            let table = RouteTable(apps)
            for _ in 0..<40 {
                var host = Self.hosts[Int(rng.next() % UInt64(Self.hosts.count))]
                if !host.hasPrefix("[") { host += ["", "", ".", ".."][Int(rng.next() % 4)] }
                host += rng.next() % 3 == 0 ? ":8443" : ""
                let path = Self.path(&rng, segments: Int(rng.next() % 5)) + (rng.next() % 5 == 0 ? "/" : "")
                let want = Self.expected(apps, host: host, path: path)
                let got = table.match(host: host, path: path)?.id.rawValue
                #expect(got == want, "host \(host) path \(path) in \(apps.map { "\($0.id): \($0.host)\($0.pathPrefix)" })")
                if want == nil { unmatched += 1 } else { matched += 1 }
            }
        }
        // The generator must exercise both outcomes for the comparison to mean something.
        #expect(matched > 2_000 && unmatched > 1_000, "matched \(matched), unmatched \(unmatched)")
    }

    @Test("segment boundaries, bytes, and the first listed of equal prefixes")
    func examples() {
        let table = RouteTable([
            Self.app(1, host: "apps.bank.example", prefix: "/"),
            Self.app(2, host: "apps.bank.example", prefix: "/reports/"),
            Self.app(3, host: "apps.bank.example", prefix: "/reports"),
            Self.app(4, host: "apps.bank.example", prefix: "/caf\u{E9}"),
            Self.app(5, host: "apps.bank.example", prefix: "/reports/q3"),
        ])
        #expect(table.match(host: "apps.bank.example", path: "/reports")?.id == "app-2")
        #expect(table.match(host: "APPS.bank.example:443", path: "/reports/q3/x")?.id == "app-5")
        #expect(table.match(host: "apps.bank.example", path: "/reportsx")?.id == "app-1", "not on a segment boundary")
        #expect(table.match(host: "apps.bank.example", path: "/caf\u{E9}/menu")?.id == "app-4")
        #expect(table.match(host: "apps.bank.example", path: "/cafe\u{301}/menu")?.id == "app-1", "other bytes, other route")
        #expect(table.match(host: "other.example", path: "/reports") == nil)
        #expect(table.match(host: "Apps.Bank.Example.", path: "/reports") == nil, "compared exactly (the proxy takes the dot off first)")
        #expect(table.match(host: "apps.bank.example.:8443", path: "/reports/q3") == nil)
        #expect(table.match(host: ".", path: "/reports") == nil)
        #expect(table.match(host: "apps.bank.example", path: "reports") == nil, "not an absolute path")
    }
}
