@testable import MenshenEnforcementPoint
import MenshenTestSupport
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// The chunked-body reader against llhttp (NIO's request decoder) as the oracle: well-formed bodies give
/// the same bytes whatever way they are split, and mutated ones are never read where llhttp refuses them
/// nor read differently.
@Suite("HTTP/1 chunked bodies")
struct HTTP1ChunkedTests {
    enum Read: Equatable {
        case body([UInt8], rest: Int)   // the data, and how many bytes were left after the body's end
        case incomplete([UInt8])
        case refused(HTTP1Head.Failure)
    }

    /// Reads `bytes` fed in pieces cut at `cuts`.
    static func read(_ bytes: [UInt8], cuts: [Int] = [], limits: HTTP1Chunked.Limits = .init()) -> Read {
        var decoder = HTTP1Chunked(limits: limits)
        var data: [UInt8] = []
        var start = 0
        for end in (cuts.filter { $0 > 0 && $0 < bytes.count }.sorted() + [bytes.count]) where end >= start {
            let piece = Array(bytes[start..<end])
            var outcome: Result<(events: [HTTP1Chunked.Event], consumed: Int), HTTP1Head.Failure> = .success(([], 0))
            piece.withUnsafeBytes { p in
                do throws(HTTP1Head.Failure) { outcome = .success(try decoder.consume(p)) } catch { outcome = .failure(error) }
            }
            switch outcome {
            case .failure(let failure): return .refused(failure)
            case .success(let (events, consumed)):
                for event in events {
                    switch event {
                    case .data(let r): data += piece[r]
                    case .end: return .body(data, rest: bytes.count - (start + consumed))
                    }
                }
                #expect(consumed == piece.count, "all bytes of a piece are taken until the end")
            }
            start = end
        }
        return .incomplete(data)
    }

    enum Oracle: Equatable { case body([UInt8]), incomplete, refused }

    /// llhttp's reading of a POST with this chunked body.
    static func llhttp(_ body: [UInt8]) -> Oracle {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)))
        defer { _ = try? channel.finish() }
        let head = Array("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        do { try channel.writeInbound(ByteBuffer(bytes: head + body)) } catch { return .refused }
        var data: [UInt8] = []
        while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case .head: continue
            case .body(let b): data += b.readableBytesView
            case .end: return .body(data)
            }
        }
        return .incomplete
    }

    static func chunked(_ rng: inout SeededGenerator) -> (wire: [UInt8], data: [UInt8]) {
        var wire: [UInt8] = [], data: [UInt8] = []
        for _ in 0..<Int.random(in: 0...5, using: &rng) {
            let size = [1, 2, 15, 16, 17, 255, 256, 1000, 4096].randomElement(using: &rng)!
            let chunk = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }   // any bytes, CR and LF included
            var hex = String(size, radix: 16, uppercase: Bool.random(using: &rng))
            if Int.random(in: 0..<5, using: &rng) == 0 { hex = "00" + hex }
            wire += Array(hex.utf8)
            if Int.random(in: 0..<4, using: &rng) == 0 { wire += Array(";name=\"va lue\";x".utf8) }
            wire += [HTTP1Head.cr, HTTP1Head.lf] + chunk + [HTTP1Head.cr, HTTP1Head.lf]
            data += chunk
        }
        wire += Array((Bool.random(using: &rng) ? "0" : "000").utf8)
        if Bool.random(using: &rng) { wire += Array(";last".utf8) }
        wire += [HTTP1Head.cr, HTTP1Head.lf]
        for _ in 0..<Int.random(in: 0...2, using: &rng) { wire += Array("X-Trailer-\(Int.random(in: 0...9, using: &rng)): v a l\r\n".utf8) }
        wire += [HTTP1Head.cr, HTTP1Head.lf]
        return (wire, data)
    }

    @Test("well-formed chunked bodies give llhttp's bytes, however the bytes are split; what follows the body is left")
    func wellFormed() {
        var rng = SeededGenerator(seed: 0x4348_554E_4B)
        for _ in 0..<1_000 {
            let (wire, data) = Self.chunked(&rng)
            #expect(Self.llhttp(wire) == .body(data))
            let cuts = (0..<Int.random(in: 0...6, using: &rng)).map { _ in Int.random(in: 0...wire.count, using: &rng) }
            #expect(Self.read(wire, cuts: cuts) == .body(data, rest: 0))
            #expect(Self.read(wire + Array("GET /next".utf8), cuts: cuts) == .body(data, rest: 9))
            // Byte by byte (every state boundary crossed between two calls).
            if wire.count < 300 { #expect(Self.read(wire, cuts: Array(0...wire.count)) == .body(data, rest: 0)) }
            // Any proper prefix is incomplete (never an end, never an error).
            let cut = Int.random(in: 0..<wire.count, using: &rng)
            if case .incomplete = Self.read(Array(wire[..<cut])) {} else { Issue.record("prefix of \(cut) bytes not incomplete") }
        }
    }

    @Test("mutated chunked bodies: never read where llhttp refuses, never read differently")
    func mutated() {
        var rng = SeededGenerator(seed: 0x534D_5547)
        let interesting: [UInt8] = [0x00, 0x0D, 0x0A, 0x20, 0x09, 0x3B, 0x3D, 0x22, 0x30, 0x31, 0x61, 0x67, 0x2D, 0x2B, 0x78, 0x7F, 0x80]
        var agreed = 0, refusedOnlyByUs = 0
        for _ in 0..<6_000 {
            var wire = Self.chunked(&rng).wire
            for _ in 0..<Int.random(in: 1...2, using: &rng) {
                let at = Int.random(in: 0..<wire.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: wire.insert(interesting.randomElement(using: &rng)!, at: at)
                case 1: wire[at] = interesting.randomElement(using: &rng)!
                default: wire.remove(at: at)
                }
            }
            let ours = Self.read(wire)
            let theirs = Self.llhttp(wire)
            switch (ours, theirs) {
            case (.body(let data, _), .body(let d)):
                agreed += 1
                #expect(data == d, "read differently: \(wire)")
            case (.body, _):
                Issue.record("read a body llhttp does not: \(String(decoding: wire, as: UTF8.self).debugDescription) (\(theirs))")
            case (.refused, .body):
                refusedOnlyByUs += 1
            case (.incomplete, .body):
                Issue.record("incomplete where llhttp read a body: \(String(decoding: wire, as: UTF8.self).debugDescription)")
            default:
                agreed += 1
            }
        }
        #expect(agreed > 5_000, "most mutations judged alike (\(agreed)); refused only by us: \(refusedOnlyByUs)")
    }

    @Test("smuggling-shaped chunk framing is refused with the reason")
    func smuggling() {
        let cases: [(String, String)] = [
            ("-1\r\n", "chunk size"),
            ("+5\r\nhello\r\n0\r\n\r\n", "chunk size"),
            ("0x5\r\nhello\r\n0\r\n\r\n", "chunk size"),
            ("5 \r\nhello\r\n0\r\n\r\n", "chunk size"),
            ("5\nhello\r\n0\r\n\r\n", "chunk size"),
            ("5\rhello\r\n0\r\n\r\n", "bare CR after a chunk size"),
            ("5\r\nhelloX\r\n0\r\n\r\n", "chunk data longer than its size"),
            ("5\r\nhello\n0\r\n\r\n", "chunk data longer than its size"),
            ("5\r\nhello\r0\r\n\r\n", "bare CR after chunk data"),
            ("10000000000000000\r\n", "chunk size too long"),
            ("5;a\u{0}b\r\nhello\r\n0\r\n\r\n", "chunk extension"),
            ("5;a\nb\r\nhello\r\n0\r\n\r\n", "chunk extension"),
            ("5; a\r\nhello\r\n0\r\n\r\n", "chunk extension"),
            ("5;a=\"b\r\nhello\r\n0\r\n\r\n", "chunk extension"),
            ("5;a=\"b\"c\r\nhello\r\n0\r\n\r\n", "chunk extension"),
            ("5;=b\r\nhello\r\n0\r\n\r\n", "chunk extension"),
            ("0\r\nX: 1\r\n y\r\n\r\n", "trailer field name"),
            ("0\r\nX : 1\r\n\r\n", "trailer field name"),
            ("0\r\nX: 1\u{1}\r\n\r\n", "trailer field value"),
            ("0\r\n\r\r\n", "bare CR in the trailer section"),
        ]
        for (wire, why) in cases {
            #expect(Self.read(Array(wire.utf8)) == .refused(.malformed(why)), "\(wire.debugDescription)")
        }
        // Limits.
        #expect(Self.read(Array("5;a;b=c;d=\"e \\\" f\"\r\nhello\r\n0\r\n\r\n".utf8)) == .body(Array("hello".utf8), rest: 0))
        let ext = "5;" + String(repeating: "a", count: 100) + "\r\nhello\r\n0\r\n\r\n"
        #expect(Self.read(Array(ext.utf8), limits: .init(maxLineExtensionBytes: 64)) == .refused(.malformed("chunk extension too long")))
        #expect(Self.read(Array(ext.utf8), limits: .init(maxLineExtensionBytes: 101)) == .body(Array("hello".utf8), rest: 0))
        let trailers = "0\r\n" + String(repeating: "X-T: 0123456789\r\n", count: 10) + "\r\n"
        #expect(Self.read(Array(trailers.utf8), limits: .init(maxTrailerBytes: 100)) == .refused(.malformed("trailer section too large")))
        #expect(Self.read(Array(trailers.utf8), limits: .init(maxTrailerBytes: 200)) == .body([], rest: 0))
        // The largest size that fits in 16 hex digits is read as a size (the caller's body limit refuses it).
        if case .incomplete = Self.read(Array("ffffffffffffffff\r\nabc".utf8)) {} else { Issue.record("16 hex digits are a size") }
    }
}
