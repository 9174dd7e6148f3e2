@testable import MenshenEnforcementPoint
import MenshenTestSupport
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// The hand-written head parser against NIO's decoder (llhttp) as the oracle: well-formed heads read the
/// same by both, byte by byte arriving; on mutated heads the parser never accepts what llhttp refuses nor
/// reads a head differently, and every head it refuses where llhttp accepts falls in a named class of
/// leniency it does not have.
@Suite("HTTP/1 heads")
struct HTTP1HeadTests {
    static let limits = HTTP1Head.Limits(maxHeadBytes: 16 * 1024, maxFields: 100)

    static func request(_ text: String, limits: HTTP1Head.Limits = limits) -> HTTP1Head.Outcome<HTTP1Head.Request> {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { HTTP1Head.parseRequest($0, limits: limits) }
    }

    static func response(_ bytes: [UInt8], limits: HTTP1Head.Limits = limits) -> HTTP1Head.Outcome<HTTP1Head.Response> {
        bytes.withUnsafeBytes { HTTP1Head.parseResponse($0, limits: limits) }
    }

    // MARK: Oracles

    enum Oracle<Head> { case head(Head), incomplete, refused }

    static func llhttpRequest(_ bytes: [UInt8]) -> Oracle<HTTPRequestHead> {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)))
        defer { _ = try? channel.finish() }
        do { try channel.writeInbound(ByteBuffer(bytes: bytes)) } catch { return .refused }
        guard let part = try? channel.readInbound(as: HTTPServerRequestPart.self) else { return .incomplete }
        if case .head(let head) = part { return .head(head) }
        return .refused
    }

    static func llhttpResponse(_ bytes: [UInt8]) -> Oracle<HTTPResponseHead> {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        // The response decoder needs to have seen a request go out (it judges HEAD/CONNECT bodies by it).
        try? channel.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
        try? channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")))
        try? channel.writeOutbound(HTTPClientRequestPart.end(nil))
        while (try? channel.readOutbound(as: ByteBuffer.self)) != nil {}
        do { try channel.writeInbound(ByteBuffer(bytes: bytes)) } catch { return .refused }
        guard let part = try? channel.readInbound(as: HTTPClientResponsePart.self) else { return .incomplete }
        if case .head(let head) = part { return .head(head) }
        return .refused
    }

    static func trimmed(_ s: String) -> String {
        var v = Substring(s)
        while let c = v.first, c == " " || c == "\t" { v.removeFirst() }
        while let c = v.last, c == " " || c == "\t" { v.removeLast() }
        return String(v)
    }

    static func sameFields(_ ours: [HTTP1Head.Field], _ theirs: HTTPHeaders) -> Bool {
        let t = theirs.map { HTTP1Head.Field(name: $0.name, value: trimmed($0.value)) }
        return ours == t
    }

    // MARK: Generators

    static let methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
    static let names = ["Host", "Cookie", "Accept", "User-Agent", "X-Request-Id", "Content-Type", "Accept-Language",
                        "x-custom", "If-None-Match", "Authorization", "A", "x.y_z~1"]
    static let valueChars = Array("abcXYZ019 -_.,;=/\"()[]{}?!@#$%^&*+'`|~:<>".utf8)

    static func value(_ rng: inout SeededGenerator) -> String {
        let n = Int.random(in: 0...24, using: &rng)
        var bytes = (0..<n).map { _ in valueChars.randomElement(using: &rng)! }
        if Bool.random(using: &rng), !bytes.isEmpty { bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8(ascii: "\t") }
        if Int.random(in: 0..<6, using: &rng) == 0 { bytes += Array("淡水".utf8) }   // obs-text: UTF-8 bytes
        return String(decoding: bytes, as: UTF8.self)
    }

    static func target(_ rng: inout SeededGenerator) -> String {
        ["/", "/app-37/api/accounts?page=1", "/a/%2e%2e/b", "*", "http://example.test/x?y=z", "/%E6%B7%A1?q=a+b",
         "/a//b/./c", "/x;p=1?y#frag"].randomElement(using: &rng)!
    }

    /// A well-formed request head as lines (without CRLFs).
    static func requestLines(_ rng: inout SeededGenerator) -> [String] {
        var lines = ["\(methods.randomElement(using: &rng)!) \(target(&rng)) HTTP/1.\(Int.random(in: 0...1, using: &rng))"]
        for _ in 0..<Int.random(in: 0...8, using: &rng) {
            let ows1 = ["", " ", "  ", "\t"].randomElement(using: &rng)!
            let ows2 = ["", "", " ", "\t "].randomElement(using: &rng)!
            lines.append("\(names.randomElement(using: &rng)!):\(ows1)\(value(&rng))\(ows2)")
        }
        return lines
    }

    static func joined(_ lines: [String]) -> [UInt8] { Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8) }

    /// A leniency of llhttp's that the parser does not share, found in `bytes` (a mutated head).
    static func strictnessClass(_ bytes: [UInt8]) -> String? {
        for (i, b) in bytes.enumerated() {
            if b == HTTP1Head.lf, i == 0 || bytes[i - 1] != HTTP1Head.cr { return "bare LF" }
            if b == HTTP1Head.cr, i + 1 < bytes.count, bytes[i + 1] != HTTP1Head.lf { return "bare CR" }
        }
        var text = String(decoding: bytes, as: UTF8.self)
        var empty = 0
        while text.hasPrefix("\r\n") { text.removeFirst(); empty += 1 }   // "\r\n" is one Character
        if empty > limits.maxEmptyLinesBefore { return "more empty lines before the request line than the limit" }
        let head = text.components(separatedBy: "\r\n\r\n").first ?? text
        let lines = head.components(separatedBy: "\r\n")
        if lines.dropFirst().contains(where: { $0.hasPrefix(" ") || $0.hasPrefix("\t") }) { return "obs-fold" }
        if lines.dropFirst().contains(where: { line in
            guard let colon = line.firstIndex(of: ":") else { return false }
            return line[..<colon].contains(where: { $0 == " " || $0 == "\t" })
        }) { return "space before colon" }
        if let first = lines.first {
            if first.utf8.contains(where: { $0 >= 0x80 || $0 < 0x20 || $0 == 0x7F }) { return "byte outside visible ASCII in the request line" }
            if first.split(separator: " ", omittingEmptySubsequences: false).count != 3 { return "request line not three parts" }
        }
        if lines.dropFirst().contains(where: { $0.utf8.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) }) {
            return "control byte in a field"
        }
        return nil
    }

    /// The bytes after the first request line (leading empty lines skipped).
    static func afterRequestLine(_ bytes: [UInt8]) -> [UInt8] {
        var i = 0
        while i + 1 < bytes.count, bytes[i] == HTTP1Head.cr, bytes[i + 1] == HTTP1Head.lf { i += 2 }
        while i + 1 < bytes.count, !(bytes[i] == HTTP1Head.cr && bytes[i + 1] == HTTP1Head.lf) { i += 1 }
        return Array(bytes[min(i + 2, bytes.count)...])
    }

    static let interesting: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x0D, 0x0A, 0x20, 0x09, 0x3A, 0x61, 0x22, 0x28, 0x2F, 0x0B, 0x0C]

    static func mutate(_ bytes: [UInt8], _ rng: inout SeededGenerator) -> [UInt8] {
        var b = bytes
        for _ in 0..<Int.random(in: 1...2, using: &rng) {
            guard !b.isEmpty else { break }
            let at = Int.random(in: 0..<b.count, using: &rng)
            switch Int.random(in: 0..<8, using: &rng) {
            case 0: b.insert(interesting.randomElement(using: &rng)!, at: at)
            case 1: b[at] = interesting.randomElement(using: &rng)!
            case 2: b.remove(at: at)
            case 3:   // a CRLF becomes a bare LF or a bare CR
                if let i = b.indices.filter({ b[$0] == HTTP1Head.cr }).randomElement(using: &rng) {
                    if Bool.random(using: &rng) { b.remove(at: i) } else if i + 1 < b.count { b.remove(at: i + 1) }
                }
            case 4:   // a space or tab before a colon
                if let i = b.indices.filter({ b[$0] == HTTP1Head.colon }).randomElement(using: &rng) {
                    b.insert(Bool.random(using: &rng) ? HTTP1Head.sp : HTTP1Head.tab, at: i)
                }
            case 5:   // a folded continuation line after a field or request line
                if let i = b.indices.filter({ b[$0] == HTTP1Head.lf }).dropLast().randomElement(using: &rng) {
                    b.insert(contentsOf: Array(" folded\r\n".utf8), at: i + 1)
                }
            case 6:   // the version
                let versions = ["HTTP/2.0", "HTTP/1.10", "http/1.1", "HTTP/1", "HTTP/9.9", "HTTP/1.1 ", "HTTP /1.1"]
                let text = String(decoding: b, as: UTF8.self)
                if let r = text.range(of: "HTTP/1.1") ?? text.range(of: "HTTP/1.0") {
                    b = Array(text.replacingCharacters(in: r, with: versions.randomElement(using: &rng)!).utf8)
                }
            default:   // empty lines first
                b.insert(contentsOf: Array(repeating: [HTTP1Head.cr, HTTP1Head.lf], count: Int.random(in: 1...6, using: &rng)).flatMap { $0 },
                         at: 0)
            }
        }
        return b
    }

    // MARK: Tests

    @Test("well-formed request heads are read as llhttp reads them, whole and byte by byte as they arrive")
    func wellFormedRequests() {
        var rng = SeededGenerator(seed: 0x4854_5450_3131)
        for _ in 0..<1_500 {
            let bytes = Self.joined(Self.requestLines(&rng))
            guard case .head(let theirs) = Self.llhttpRequest(bytes) else {
                Issue.record("llhttp refused a generated head: \(String(decoding: bytes, as: UTF8.self))"); return
            }
            let ours = bytes.withUnsafeBytes { HTTP1Head.parseRequest($0, limits: Self.limits) }
            guard case .complete(let head, let length) = ours else {
                Issue.record("refused \(ours): \(String(decoding: bytes, as: UTF8.self))"); return
            }
            #expect(length == bytes.count)
            #expect(head.method == theirs.method.rawValue && head.target == theirs.uri)
            #expect(head.major == theirs.version.major && head.minor == theirs.version.minor)
            #expect(Self.sameFields(head.fields, theirs.headers), "\(head.fields) vs \(theirs.headers)")
            // Every proper prefix is just incomplete.
            let cut = Int.random(in: 0..<bytes.count, using: &rng)
            #expect(bytes[..<cut].withUnsafeBytes { HTTP1Head.parseRequest($0, limits: Self.limits) } == .incomplete)
            // Bytes after the head (a body, a pipelined request) are not part of it.
            let more = bytes + Array("xyz".utf8)
            #expect(more.withUnsafeBytes { HTTP1Head.parseRequest($0, limits: Self.limits) } == ours)
        }
    }

    @Test("mutated request heads: never accepted where llhttp refuses, never read differently; refusals llhttp does not make are named leniencies")
    func mutatedRequests() {
        var rng = SeededGenerator(seed: 0x5355_4747_4C45)
        var refusedOnlyByUs: [String: Int] = [:]
        var acceptedOnlyByUs: [String: Int] = [:]
        var agreed = 0
        for _ in 0..<6_000 {
            let bytes = Self.mutate(Self.joined(Self.requestLines(&rng)), &rng)
            let ours = bytes.withUnsafeBytes { HTTP1Head.parseRequest($0, limits: Self.limits) }
            let theirs = Self.llhttpRequest(bytes)
            let shown = String(decoding: bytes, as: UTF8.self).debugDescription
            switch (ours, theirs) {
            case (.complete(let head, _), .head(let h)):
                agreed += 1
                #expect(head.method == h.method.rawValue && head.target == h.uri && head.major == h.version.major
                        && head.minor == h.version.minor && Self.sameFields(head.fields, h.headers), "read differently: \(shown)")
            case (.complete(let head, _), _):
                // llhttp refuses versions other than 1.x (the validator serves 1.0 and 1.1 alone), methods outside
                // its table (RFC 9110 allows any token) and targets its URL parser dislikes. With the request line
                // replaced by a plain one, llhttp must read the rest exactly as we did, and the target must then be
                // refused by the path normaliser unless llhttp takes it too.
                let rest = Self.afterRequestLine(bytes)
                let plain = Array("GET \(head.target) HTTP/1.1\r\n".utf8) + rest
                switch Self.llhttpRequest(plain) {
                case .head(let h):
                    #expect(Self.sameFields(head.fields, h.headers) && h.uri == head.target, "read differently: \(shown)")
                    acceptedOnlyByUs[(head.major == 1 && head.minor <= 1) ? "method llhttp does not know" : "version", default: 0] += 1
                default:
                    let pathRefused: Bool = if case .failure = PathNormalizer.normalize(head.target) { true } else { false }
                    let plainRoot = Self.llhttpRequest(Array("GET / HTTP/1.1\r\n".utf8) + rest)
                    let restFine: Bool = if case .head(let h) = plainRoot { Self.sameFields(head.fields, h.headers) } else { false }
                    #expect(pathRefused && restFine, "accepted what llhttp does not: \(shown) (\(theirs))")
                    acceptedOnlyByUs["target the normaliser refuses", default: 0] += 1
                }
            case (.failed, .head):
                let why = Self.strictnessClass(bytes)
                #expect(why != nil, "refused what llhttp accepts, for no named reason: \(shown) — \(ours)")
                refusedOnlyByUs[why ?? "?", default: 0] += 1
            case (.incomplete, .head):
                Issue.record("incomplete where llhttp has a head: \(shown)")
            default:
                agreed += 1
            }
        }
        #expect(agreed > 3_000, "the mutations should leave many heads both parsers judge alike")
        // (llhttp as NIO sets it up refuses folded lines, a space before the colon and control bytes too.)
        for named in ["bare LF", "bare CR", "more empty lines before the request line than the limit"] {
            #expect(refusedOnlyByUs[named, default: 0] > 0, "never exercised: \(named) (\(refusedOnlyByUs))")
        }
        for named in ["method llhttp does not know", "target the normaliser refuses"] {
            #expect(acceptedOnlyByUs[named, default: 0] > 0, "never exercised: \(named) (\(acceptedOnlyByUs))")
        }
    }

    @Test("limits: a head without its end within maxHeadBytes and more fields than maxFields are refused")
    func limits() {
        let small = HTTP1Head.Limits(maxHeadBytes: 64, maxFields: 2)
        #expect(Self.request("GET / HTTP/1.1\r\nHost: a\r\n", limits: small) == .incomplete)
        #expect(Self.request("GET /" + String(repeating: "a", count: 80) + " HTTP/1.1\r\n", limits: small) == .failed(.headTooLarge))
        #expect(Self.request("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: small) == .failed(.tooManyFields))
        if case .complete(let head, let length) = Self.request("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", limits: small) {
            #expect(head.fields.count == 2 && length == 30)
        } else { Issue.record("two fields are within the limit") }
        // A head of exactly maxHeadBytes is fine; one byte more is not.
        let fits = "GET /" + String(repeating: "a", count: 64 - "GET / HTTP/1.1\r\n\r\n".utf8.count) + " HTTP/1.1\r\n\r\n"
        #expect(fits.utf8.count == 64)
        if case .complete = Self.request(fits, limits: small) {} else { Issue.record("a head of exactly the limit is accepted") }
        #expect(Self.request("G" + fits, limits: small) == .failed(.headTooLarge))
        // Too many empty lines first.
        #expect(Self.request(String(repeating: "\r\n", count: 5) + "GET / HTTP/1.1\r\n\r\n") == .failed(.malformed("empty lines before the request line")))
    }

    @Test("smuggling-shaped heads are refused with the reason")
    func smugglingShapes() {
        let cases: [(String, String)] = [
            ("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", "field name"),
            ("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "folded field line"),
            ("GET / HTTP/1.1\nHost: a\r\n\r\n", "request line not ended by CRLF"),
            ("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", "bare LF in a field line"),
            ("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", "bare CR in a field line"),
            ("GET / HTTP/1.1\r\nHost: a\u{0}b\r\n\r\n", "control byte in a field value"),
            ("GET  / HTTP/1.1\r\n\r\n", "request target"),
            ("GET / HTTP/1.1 \r\n\r\n", "request line not ended by CRLF"),
            ("G(T / HTTP/1.1\r\n\r\n", "method"),
            ("GET /a b HTTP/1.1\r\n\r\n", "HTTP version"),
            ("GET / HTTP/1.1\r\n: empty\r\n\r\n", "field name"),
            ("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", "bare CR ending the head"),
        ]
        for (text, why) in cases {
            #expect(Self.request(text) == .failed(.malformed(why)), "\(text.debugDescription)")
        }
    }

    @Test("response heads are read as llhttp reads them; reason phrases may be empty or absent")
    func responses() {
        var rng = SeededGenerator(seed: 0x5245_5350)
        for _ in 0..<800 {
            let status = [200, 204, 301, 404, 500, 503, 299, 418].randomElement(using: &rng)!
            let reason = ["OK", "", "Not Found", "Whatever It Is", "淡水"].randomElement(using: &rng)!
            var lines = ["HTTP/1.\(Int.random(in: 0...1, using: &rng)) \(status)" + (reason.isEmpty && Bool.random(using: &rng) ? "" : " \(reason)")]
            for _ in 0..<Int.random(in: 0...6, using: &rng) {
                lines.append("\(Self.names.randomElement(using: &rng)!): \(Self.value(&rng))")
            }
            lines.append("Content-Length: 0")
            let bytes = Self.joined(lines)
            guard case .head(let theirs) = Self.llhttpResponse(bytes) else { Issue.record("llhttp refused \(lines)"); return }
            guard case .complete(let head, let length) = Self.response(bytes) else { Issue.record("refused \(lines)"); return }
            #expect(length == bytes.count)
            #expect(head.status == Int(theirs.status.code) && head.major == theirs.version.major && head.minor == theirs.version.minor)
            #expect(Self.sameFields(head.fields, theirs.headers))
            let cut = Int.random(in: 0..<bytes.count, using: &rng)
            #expect(Self.response(Array(bytes[..<cut])) == .incomplete)
        }
        #expect(Self.response(Array("HTTP/1.1 20\r\n\r\n".utf8)) == .failed(.malformed("status code")))
        #expect(Self.response(Array("HTTP/1.1 2000 OK\r\n\r\n".utf8)) == .failed(.malformed("status code")))
        #expect(Self.response(Array("HTTP/1.1 200 O\u{1}K\r\n\r\n".utf8)) == .failed(.malformed("reason phrase")))
        #expect(Self.response(Array("HTTP/1.1 200 OK\nX: y\r\n\r\n".utf8)) == .failed(.malformed("reason phrase")))
    }
}
