@testable import MenshenEnforcementPoint
import MenshenTestSupport
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// Message framing decided from heads, against llhttp (NIO's response decoder, told the request method as
/// the proxy's upstream connection tells it): for any response the framing reads a body, llhttp reads the
/// same body; the classic desync shapes are refused.
@Suite("HTTP/1 framing")
struct HTTP1FramingTests {
    static let limits = HTTP1Head.Limits(maxHeadBytes: 16 * 1024, maxFields: 100)

    enum Outcome: Equatable { case body([UInt8]), refused, incomplete }

    /// Our reading: head, framing, then the body from the bytes that follow (the connection closes after them).
    static func ours(_ bytes: [UInt8], method: String) -> Outcome {
        let parsed = bytes.withUnsafeBytes { HTTP1Head.parseResponse($0, limits: limits) }
        guard case .complete(let head, let length) = parsed else { return parsed == .incomplete ? .incomplete : .refused }
        let rest = Array(bytes[length...])
        switch HTTP1Framing.response(head, requestMethod: method) {
        case .failure: return .refused
        case .success(.none): return .body([])
        case .success(.untilClose): return .body(rest)
        case .success(.length(let n)): return rest.count >= n ? .body(Array(rest[..<Int(n)])) : .incomplete
        case .success(.chunked):
            var decoder = HTTP1Chunked()
            var out: Outcome = .incomplete
            rest.withUnsafeBytes { p in
                do throws(HTTP1Head.Failure) {
                    let (events, _) = try decoder.consume(p)
                    var data: [UInt8] = []
                    for e in events {
                        switch e {
                        case .data(let r): data += rest[r]
                        case .end: out = .body(data)
                        }
                    }
                } catch { out = .refused }
            }
            return out
        }
    }

    /// llhttp's reading, the connection closed after the bytes.
    static func llhttp(_ bytes: [UInt8], method: String) -> Outcome {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        try? channel.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
        try? channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: "/")))
        try? channel.writeOutbound(HTTPClientRequestPart.end(nil))
        while (try? channel.readOutbound(as: ByteBuffer.self)) != nil {}
        var data: [UInt8] = []
        var sawHead = false
        func drain() -> Outcome? {
            while let part = try? channel.readInbound(as: HTTPClientResponsePart.self) {
                switch part {
                case .head: sawHead = true
                case .body(let b): data += b.readableBytesView
                case .end: return .body(data)
                }
            }
            return nil
        }
        do { try channel.writeInbound(ByteBuffer(bytes: bytes)) } catch { return drain() ?? .refused }
        if let done = drain() { return done }
        channel.pipeline.fireChannelInactive()   // the upstream closes
        if let done = drain() { return done }
        return sawHead ? .incomplete : .refused
    }

    static func response(_ rng: inout SeededGenerator) -> (bytes: [UInt8], method: String) {
        let method = Bool.random(using: &rng) ? "GET" : "HEAD"
        let status = [200, 201, 204, 206, 304, 404, 500].randomElement(using: &rng)!
        let minor = Int.random(in: 0..<5, using: &rng) == 0 ? 0 : 1
        let body = (0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var fields = ["Server: t"]
        var payload = body
        switch Int.random(in: 0..<9, using: &rng) {
        case 0: break                                                        // until close
        case 1: fields.append("Content-Length: \(body.count)")
        case 2: fields.append("Content-Length: \(body.count)"); fields.append("Content-Length: \(body.count)")
        case 3: fields.append("Content-Length: \(body.count), \(body.count)")
        case 4: fields.append("Content-Length: +\(body.count)")
        case 5, 6:
            fields.append(["Transfer-Encoding: chunked", "Transfer-Encoding: gzip, chunked", "Transfer-Encoding: gzip",
                           "Transfer-Encoding: chunked, gzip", "Transfer-Encoding: identity"].randomElement(using: &rng)!)
            payload = Array((body.isEmpty ? "" : String(body.count, radix: 16) + "\r\n").utf8) + body
                + Array(((body.isEmpty ? "" : "\r\n") + "0\r\n\r\n").utf8)
        case 7: fields.append("Transfer-Encoding: chunked"); fields.append("Content-Length: \(body.count)")
        default: fields.append("Content-Length: \(max(0, body.count - 3))")   // the rest is left over
        }
        fields.shuffle(using: &rng)
        let head = "HTTP/1.\(minor) \(status) X\r\n" + fields.map { $0 + "\r\n" }.joined() + "\r\n"
        return (Array(head.utf8) + payload, method)
    }

    @Test("responses: whenever the framing reads a body, llhttp reads the same one (HEAD, 204, 304, lengths, codings, close)")
    func responses() {
        var rng = SeededGenerator(seed: 0x4652_414D)
        var bodies = 0, refusedOnlyByUs = 0
        for _ in 0..<4_000 {
            let (bytes, method) = Self.response(&rng)
            let ours = Self.ours(bytes, method: method), theirs = Self.llhttp(bytes, method: method)
            let shown = String(decoding: bytes, as: UTF8.self).debugDescription
            switch (ours, theirs) {
            case (.body(let a), .body(let b)):
                bodies += 1
                #expect(a == b, "\(method) \(shown)")
            case (.body, _):
                Issue.record("read a body llhttp does not (\(theirs)): \(method) \(shown)")
            case (.refused, .body):
                refusedOnlyByUs += 1
            default:
                break
            }
        }
        #expect(bodies > 2_000, "\(bodies) bodies read alike, \(refusedOnlyByUs) refused only by us")
    }

    static func fields(_ pairs: [(String, String)]) -> [HTTP1Head.Field] { pairs.map { HTTP1Head.Field(name: $0.0, value: $0.1) } }

    @Test("requests: chunked alone, one plain Content-Length, nothing else; both together refused")
    func requests() {
        typealias F = HTTP1Framing
        #expect(F.request(Self.fields([("Host", "a")]), minor: 1) == .success(.none))
        #expect(F.request(Self.fields([("Content-Length", "0")]), minor: 1) == .success(.none))
        #expect(F.request(Self.fields([("content-length", "12")]), minor: 0) == .success(.length(12)))
        #expect(F.request(Self.fields([("Transfer-Encoding", "chunked")]), minor: 1) == .success(.chunked))
        #expect(F.request(Self.fields([("Transfer-Encoding", " Chunked ")]), minor: 1) == .success(.chunked))
        #expect(F.request(Self.fields([("Transfer-Encoding", "chunked")]), minor: 0) == .failure(.transferEncodingInHTTP10))
        #expect(F.request(lengths: [], encodings: ["chunked"], http10: false) == .success(.chunked))
        #expect(F.request(Self.fields([("Transfer-Encoding", "gzip, chunked")]), minor: 1) == .failure(.unsupportedTransferCoding))
        #expect(F.request(Self.fields([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")]), minor: 1)
                == .failure(.unsupportedTransferCoding))
        #expect(F.request(Self.fields([("Transfer-Encoding", "chunked"), ("Content-Length", "3")]), minor: 1)
                == .failure(.bothLengthAndEncoding))
        for bad in ["+3", "-3", "3,3", "0x3", "", "1234567890123456789", "3 "] {
            #expect(F.request(Self.fields([("Content-Length", bad)]), minor: 1) == .failure(.badContentLength), "\(bad)")
        }
        #expect(F.request(Self.fields([("Content-Length", "3"), ("Content-Length", "3")]), minor: 1) == .failure(.badContentLength))
    }

    /// Whether a connection stays open after a message, against NIOHTTP1's own reading (`isKeepAlive(version:)`,
    /// which the proxy used before): the same answer for 20,000 heads with up to three `Connection`-like fields of
    /// up to four tokens each — `close`, `keep-alive` and `upgrade` in any case, near misses, empty tokens, spaces
    /// and tabs around them, bytes NIO folds like letters, characters that join a comma to its neighbour, names
    /// that only look like `Connection` — on HTTP/1.0, 1.1, 1.2 and 2.0.
    @Test("keep-alive is read as NIOHTTP1 reads it, without splitting the values into strings")
    func keepAliveAsNIO() {
        var rng = SeededGenerator(seed: 0x4B45_4550)
        // Also bytes NIO's comparison folds with letters (`\r` is `-` with bit 0x20 ignored, `\u{0B}` is `+`…) and
        // characters that join a comma to their neighbour (a combining mark after it, a prepend character before it).
        let tokens = ["close", "keep-alive", "upgrade", "Close", "CLOSE", "Keep-Alive", "KEEP-ALIVE", "kEeP-aLiVe", "closed",
                      "clos", "keep-alive2", "keep alive", "keep_alive", "", "te", "x-close", "close;q=1", "keep\ralive", "keep\u{0D}",
                      "\u{0B}close", "@", "c\u{0C}ose", "é", "\u{301}", "\u{0600}", "close\u{301}", "\u{0600}keep-alive", "\u{00A0}close"]
        let names = ["Connection", "connection", "CONNECTION", "cOnNeCtIoN", "Connection2", "Proxy-Connection", "Connectio", "Keep-Alive"]
        let pads = ["", " ", "  ", "\t", " \t", "\u{301}", "\u{0600}", "\u{0B}"]
        let versions = [HTTPVersion(major: 1, minor: 0), .http1_1, HTTPVersion(major: 2, minor: 0), HTTPVersion(major: 1, minor: 2)]
        var outcomes = [Bool: Int]()
        for _ in 0..<20_000 {
            var headers = HTTPHeaders([("Host", "a")])
            for _ in 0..<Int.random(in: 0...3, using: &rng) {
                let words = (0..<Int.random(in: 1...4, using: &rng)).map { _ in
                    pads.randomElement(using: &rng)! + tokens.randomElement(using: &rng)! + pads.randomElement(using: &rng)!
                }
                headers.add(name: names.randomElement(using: &rng)!, value: words.joined(separator: ","))
            }
            let version = versions.randomElement(using: &rng)!
            let request = HTTPRequestHead(version: version, method: .GET, uri: "/", headers: headers)
            let response = HTTPResponseHead(version: version, status: .ok, headers: headers)
            let nio = request.isKeepAlive
            #expect(response.isKeepAlive == nio)
            #expect(HTTP1Framing.keepAlive(headers, major: version.major, minor: version.minor) == nio, "\(version) \(Array(headers))")
            #expect(HTTP1Framing.keepAlive(request) == nio)
            #expect(HTTP1Framing.keepAlive(response) == nio)
            outcomes[nio, default: 0] += 1
        }
        // Both answers are common: a reading that always kept or always closed would fail above.
        #expect(outcomes[true, default: 0] > 4_000 && outcomes[false, default: 0] > 4_000, "\(outcomes)")
    }
}
