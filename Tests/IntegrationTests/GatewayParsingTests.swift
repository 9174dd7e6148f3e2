import Foundation
import MenshenCore
import MenshenEnforcementPoint
@testable import MenshenServer
import MenshenTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The forward-auth call's own parsing (``ForwardAuth``), ``CIDR``'s address check and the gateway's cookie reading
/// (``PortalCookies/value(_:inHeaders:)``) read bytes instead of going through Foundation's substring search,
/// `CharacterSet` trimming, `Character`s or arrays of slices (together ≈ 10 % of Menshen's CPU per nginx
/// `auth_request` call). Each is held here to the reading it replaced, kept below as the oracle, over random texts
/// built from the characters that matter to it.
@Suite("Gateway request parsing")
struct GatewayParsingTests {
    /// The readings before (their code as it was).
    enum Before {
        static func isAuthority(_ a: String) -> Bool {
            guard !a.isEmpty, a.utf8.count <= 261 else { return false }
            var host = Substring(a), port: Substring?
            if a.hasPrefix("[") {
                guard let close = a.firstIndex(of: "]") else { return false }
                let inside = a[a.index(after: a.startIndex)..<close]
                guard !inside.isEmpty, inside.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return false }
                let rest = a[a.index(after: close)...]
                if !rest.isEmpty { guard rest.first == ":" else { return false }; port = rest.dropFirst() }
                host = "x"
            } else if let colon = a.firstIndex(of: ":") {
                host = a[..<colon]
                port = a[a.index(after: colon)...]
            }
            if let port { guard !port.isEmpty, port.count <= 5, port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber), Int(port)! <= 65535 else { return false } }
            return !host.isEmpty && host.utf8.count <= 253
                && host.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d || $0 == 0x2e }
        }

        static func splitAbsolute(_ url: String) -> (String, String, String)? {
            guard let sep = url.range(of: "://") else { return nil }
            let scheme = url[..<sep.lowerBound].lowercased()
            let rest = url[sep.upperBound...]
            let slash = rest.firstIndex(of: "/") ?? rest.endIndex
            let authority = String(rest[..<slash])
            guard !authority.isEmpty, !authority.contains("@") else { return nil }
            let target = slash == rest.endIndex ? "/" : String(rest[slash...])
            return (scheme, authority, target)
        }

        static func cookie(_ name: String, inHeaders headers: [String]) -> String? {
            let wanted = Array(name.utf8) + [UInt8(ascii: "=")]
            for header in headers {
                for part in header.utf8.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: true) {
                    var pair = part[...]
                    while let first = pair.first, first == 0x20 || first == 0x09 { pair = pair.dropFirst() }
                    while let last = pair.last, last == 0x20 || last == 0x09 { pair = pair.dropLast() }
                    guard pair.starts(with: wanted) else { continue }
                    let v = pair.dropFirst(wanted.count)
                    return v.count <= 256 ? String(decoding: v, as: UTF8.self) : nil
                }
            }
            return nil
        }

        static func isAddress(_ text: String) -> Bool {
            guard !text.isEmpty, text.utf8.count <= 64, !text.contains("%") else { return false }
            if text.contains(":") {
                var a = in6_addr()
                return inet_pton(AF_INET6, text, &a) == 1
            }
            var a = in_addr()
            return inet_pton(AF_INET, text, &a) == 1
        }
    }

    static func text(_ alphabet: [String], maxLength: Int, using rng: inout SeededGenerator) -> String {
        (0..<Int.random(in: 0...maxLength, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }.joined()
    }

    /// `rounds` random texts of up to `maxLength` pieces, each read the new way and the old way: an issue for every
    /// text they read differently. Returns the old readings, for the caller to check both answers came up.
    static func agree<T: Equatable>(seed: UInt64, _ pieces: [String], maxLength: Int, rounds: Int, now: (String) -> T,
                                    before: (String) -> T, sourceLocation: SourceLocation = #_sourceLocation) -> [T] {
        var rng = SeededGenerator(seed: seed)
        return (0..<rounds).map { _ in
            let t = text(pieces, maxLength: maxLength, using: &rng)
            let old = before(t)
            #expect(now(t) == old, "\(t.debugDescription)", sourceLocation: sourceLocation)
            return old
        }
    }

    @Test("authorities: accepted and refused as before, for 30,000 ASCII texts; nothing that is not ASCII is accepted")
    func authorities() {
        let pieces = ["a", "Z", "0", "9", "f", "F", "g", ".", "-", "_", ":", "[", "]", "::1", "127.0.0.1", "example.com", "65535",
                      "65536", "99999", "080", "@", " ", "/", "x", "ab:cd", "%", "[::ffff:1.2.3.4]"]
        let accepted = Self.agree(seed: 0x4155_5448, pieces, maxLength: 6, rounds: 30_000, now: ForwardAuth.isAuthority,
                                  before: Before.isAuthority).filter { $0 }.count
        #expect(accepted > 3_000, "\(accepted) accepted: the texts must exercise both answers")
        for long in [String(repeating: "a", count: 253), String(repeating: "a", count: 254), String(repeating: "a", count: 253) + ":65535",
                     String(repeating: "a", count: 262), "[" + String(repeating: "1", count: 259) + "]"] {
            #expect(ForwardAuth.isAuthority(long) == Before.isAuthority(long), "\(long.count)")
        }
        // Not ASCII: refused now. Before, a bracketed literal took fullwidth hex digits (`Character.isHexDigit`): `[１::]`.
        #expect(Before.isAuthority("[１::]") && !ForwardAuth.isAuthority("[１::]"))
        for odd in ["é.example", "exa\u{301}mple.com", "[\u{301}::1]", "a:8\u{301}0", "例え.jp", "a.b:８０", "[::1]\u{301}"] {
            #expect(!ForwardAuth.isAuthority(odd), "\(odd.debugDescription)")
        }
    }

    @Test("absolute URLs split into scheme, authority and target as before, for 30,000 ASCII texts")
    func absoluteURLs() {
        let pieces = ["http", "HTTPS", "h", ":", "/", "//", "://", "@", "?", "#", "a.b", "x", ":8080", "[::1]", "%2f", "Q", " ", "\t"]
        // (scheme, authority, target) as an array: tuples are not Equatable.
        let split = Self.agree(seed: 0x5552_4C53, pieces, maxLength: 7, rounds: 30_000,
                               now: { ForwardAuth.splitAbsolute($0).map { [$0.0, $0.1, $0.2] } },
                               before: { Before.splitAbsolute($0).map { [$0.0, $0.1, $0.2] } }).filter { $0 != nil }.count
        #expect(split > 3_000, "\(split) split: the texts must exercise both answers")
    }

    @Test("an nginx call whose X-Original-URL is not ASCII is refused (whatever its bytes split into)")
    func nonASCIIOriginalURLs() {
        for url in ["http://app.example/é", "http://exa\u{301}mple.com/", "http:/\u{301}/app.example/", "http://app.example/\u{301}x",
                    "ｈttp://app.example/", "http://app.example:８０/", "http://[１::]/"] {
            let call = GateRequest(method: "GET", path: "/.menshen/auth/nginx", rawTarget: "/.menshen/auth/nginx", query: nil, host: "gw",
                                   scheme: "http", clientAddress: "127.0.0.1",
                                   headers: [("X-Original-URL", url), ("X-Original-Method", "GET"), ("X-Forwarded-For", "203.0.113.7")],
                                   requestID: "p-1")
            guard case .failure = ForwardAuth.originalRequest(call) else {
                Issue.record("accepted \(url.debugDescription)")
                continue
            }
        }
    }

    @Test("whitespace trimmed exactly as Foundation's CharacterSet.whitespaces trims it, for 20,000 texts")
    func trimming() {
        let pieces = [" ", "\t", "\u{00A0}", "\u{2003}", "\u{3000}", "\n", "\r", "1", "2.3", "::", "a", "é", "\u{301}", "x y", ","]
        _ = Self.agree(seed: 0x5452_494D, pieces, maxLength: 6, rounds: 20_000, now: { ForwardAuth.trimmingWhitespace($0[...]) },
                       before: { $0.trimmingCharacters(in: .whitespaces) })
    }

    @Test("addresses: CIDR.isAddress answers as before for 30,000 texts (IPv4, IPv6, zones, ports, not ASCII)")
    func addresses() {
        let pieces = ["1", "255", "256", "0", ".", ":", "::", "ffff", "%", "eth0", "/", " ", "a", "1.2.3.4", "::1", "é", "\u{301}", "１"]
        let valid = Self.agree(seed: 0x4144_4452, pieces, maxLength: 8, rounds: 30_000, now: CIDR.isAddress,
                               before: Before.isAddress).filter { $0 }.count
        #expect(valid > 500, "\(valid) addresses: the texts must exercise both answers")
    }

    @Test("cookies: the same value found as before in 30,000 Cookie header lists (order, spaces, tabs, empty pairs, prefixes, 256 bytes)")
    func cookies() {
        var rng = SeededGenerator(seed: 0x434F_4F4B)
        let name = PortalCookies.session
        let pieces = [name + "=", name, name + "x=", "x" + name + "=", "=", ";", "; ", ";;", " ", "\t", "abc", "v1", "a=b",
                      "é", String(repeating: "t", count: 120), "__Host-menshen-csrf=", "\"q\""]
        var found = 0
        for _ in 0..<30_000 {
            let headers = (0..<Int.random(in: 0...3, using: &rng)).map { _ in Self.text(pieces, maxLength: 6, using: &rng) }
            let now = PortalCookies.value(name, inHeaders: headers), before = Before.cookie(name, inHeaders: headers)
            #expect(now == before, "\(headers.map(\.debugDescription))")
            if before != nil { found += 1 }
        }
        #expect(found > 3_000, "\(found) found: the lists must exercise both answers")
        #expect(PortalCookies.value("", inHeaders: ["=v; a=b"]) == Before.cookie("", inHeaders: ["=v; a=b"]))
        // The 256-byte bound, at and over it; a value over it ends the search (a later pair is not read).
        let at = String(repeating: "v", count: 256), over = String(repeating: "v", count: 257)
        #expect(PortalCookies.value(name, inHeaders: ["a=b; \(name)=\(at)"]) == at)
        #expect(PortalCookies.value(name, inHeaders: ["\(name)=\(over)", "\(name)=short"]) == nil)
        #expect(Before.cookie(name, inHeaders: ["\(name)=\(over)", "\(name)=short"]) == nil)
    }

    @Test("route hosts: the Host value cut and lower-cased as before (hostOnlyCharacters) for 30,000 texts")
    func hostOnly() {
        let pieces = ["a", "Z", "APP", ".", "-", ":", "8080", "[", "]", "::1", "[::1]", "é", "É", "\u{212A}", "\u{301}", ":\u{301}",
                      "\r\n", " ", "Ⅻ", "İ"]
        _ = Self.agree(seed: 0x484F_5354, pieces, maxLength: 6, rounds: 30_000, now: RouteTable.hostOnly, before: RouteTable.hostOnlyCharacters)
        #expect(RouteTable.hostOnly("App.Example:8443") == "app.example" && RouteTable.hostOnly("[::1]:8080") == "[::1]")
    }
}
