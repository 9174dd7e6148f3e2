@testable import MenshenEnforcementPoint
import MenshenTestSupport
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// The enforcement point's HTTP/1 codec handlers against NIOHTTP1's (llhttp) as the oracle, on both
/// sides of the proxy: streams of pipelined requests with bodies, split anywhere, decode to the same
/// parts; what the encoders write is read back by llhttp as meant (and framed as NIO's encoder frames
/// it); upstream responses decode as llhttp decodes them; upgrades, unsolicited bytes and garbage.
@Suite("HTTP/1 codec")
struct HTTP1CodecTests {
    static let limits = HTTP1Head.Limits(maxHeadBytes: 16 * 1024, maxFields: 100)

    /// A message as a list of comparable parts: the head as text, each message's body bytes together.
    enum Part: Equatable { case head(String), body([UInt8]), end }

    static func describe(_ head: HTTPRequestHead) -> String {
        "\(head.method.rawValue) \(head.uri) \(head.version) " + head.headers.map { "\($0.name)=\(HTTP1HeadTests.trimmed($0.value))" }.joined(separator: "|")
    }

    static func describe(_ head: HTTPResponseHead) -> String {
        "\(head.version) \(head.status.code) " + head.headers.map { "\($0.name)=\(HTTP1HeadTests.trimmed($0.value))" }.joined(separator: "|")
    }

    /// Feeds `pieces` to `channel` one write each; the parts read (bodies of a message joined) and whether it refused.
    static func feed<Message>(_ channel: EmbeddedChannel, _ pieces: [[UInt8]], as: Message.Type,
                              describe: (Message) -> Part?) -> (parts: [Part], refused: Bool) {
        var parts: [Part] = []
        var refused = false
        func drain() {
            while let message = try? channel.readInbound(as: Message.self) {
                guard let part = describe(message) else { continue }
                if case .body(let b) = part, case .body(let a)? = parts.last { parts[parts.count - 1] = .body(a + b) } else { parts.append(part) }
            }
        }
        for piece in pieces {
            do { try channel.writeInbound(ByteBuffer(bytes: piece)) } catch { refused = true; break }
            drain()
        }
        drain()
        return (parts, refused)
    }

    static func requestPart(_ part: HTTPServerRequestPart) -> Part? {
        switch part {
        case .head(let h): .head(describe(h))
        case .body(let b): b.readableBytes == 0 ? nil : .body(Array(b.readableBytesView))
        case .end: .end
        }
    }

    static func responsePart(_ part: HTTPClientResponsePart) -> Part? {
        switch part {
        case .head(let h): .head(describe(h))
        case .body(let b): b.readableBytes == 0 ? nil : .body(Array(b.readableBytesView))
        case .end: .end
        }
    }

    /// `bytes` cut at random places (sometimes into single bytes).
    static func split(_ bytes: [UInt8], _ rng: inout SeededGenerator) -> [[UInt8]] {
        if Int.random(in: 0..<8, using: &rng) == 0 { return bytes.map { [$0] } }
        var pieces: [[UInt8]] = []
        var i = 0
        while i < bytes.count {
            let n = min(bytes.count - i, Int.random(in: 1...max(1, bytes.count / 3), using: &rng))
            pieces.append(Array(bytes[i..<(i + n)]))
            i += n
        }
        return pieces
    }

    static func chunkedBody(_ body: [UInt8], _ rng: inout SeededGenerator) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < body.count {
            let n = min(body.count - i, Int.random(in: 1...12, using: &rng))
            let ext = Int.random(in: 0..<5, using: &rng) == 0 ? ";a=b" : ""
            out += Array((String(n, radix: 16) + ext + "\r\n").utf8) + body[i..<(i + n)] + Array("\r\n".utf8)
            i += n
        }
        out += Array("0\r\n".utf8)
        if Int.random(in: 0..<4, using: &rng) == 0 { out += Array("Trailer-X: 1\r\n".utf8) }
        return out + Array("\r\n".utf8)
    }

    /// A well-formed request with a body framed by length or chunked (or none), as bytes.
    static func request(_ rng: inout SeededGenerator) -> [UInt8] {
        var lines = HTTP1HeadTests.requestLines(&rng)
        let http10 = lines[0].hasSuffix("HTTP/1.0")
        let body = (0..<Int.random(in: 0...60, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        switch Int.random(in: 0..<3, using: &rng) {
        case 0:
            return HTTP1HeadTests.joined(lines)
        case 1 where !http10:
            lines.insert("Transfer-Encoding: chunked", at: Int.random(in: 1...lines.count, using: &rng))
            return HTTP1HeadTests.joined(lines) + chunkedBody(body, &rng)
        default:
            lines.insert("Content-Length: \(body.count)", at: Int.random(in: 1...lines.count, using: &rng))
            return HTTP1HeadTests.joined(lines) + body
        }
    }

    static func ourRequestDecoder() -> EmbeddedChannel {
        EmbeddedChannel(handler: ByteToMessageHandler(HTTP1RequestDecoder(limits: limits, pending: HTTP1PendingMethods())))
    }

    @Test("pipelined requests with bodies (lengths, chunked with extensions and trailers), split anywhere, decode as llhttp decodes them")
    func requestStreams() {
        var rng = SeededGenerator(seed: 0x434F_4445)
        var messages = 0
        for _ in 0..<1_500 {
            let stream = (0..<Int.random(in: 1...4, using: &rng)).flatMap { _ in Self.request(&rng) }
            let pieces = Self.split(stream, &rng)
            let ours = Self.ourRequestDecoder()
            let theirs = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder()))
            defer { _ = try? ours.finish(); _ = try? theirs.finish() }
            let a = Self.feed(ours, pieces, as: HTTPServerRequestPart.self, describe: Self.requestPart)
            let b = Self.feed(theirs, [stream], as: HTTPServerRequestPart.self, describe: Self.requestPart)
            // (llhttp refuses bytes after a request that ends the connection — HTTP/1.0 without keep-alive — and the
            // decoder reads no further either: the parts compared stop there.)
            #expect(!a.refused, "refused: \(String(decoding: stream, as: UTF8.self).debugDescription)")
            #expect(a.parts == b.parts, "\(String(decoding: stream, as: UTF8.self).debugDescription)")
            messages += a.parts.filter { $0 == .end }.count
        }
        #expect(messages > 2_000, "\(messages) messages")
    }

    @Test("garbage is refused on its first read; a head whose end has not come is waited for; the head limit holds")
    func garbageAndLimits() throws {
        let garbage: [[UInt8]] = [[0x16, 0x03, 0x01, 0x02, 0x00, 0x01], Array("GET / HTTP/1.1\r\nHost: a\r\n bad".utf8),
                                  Array("GET /\u{1}x HTTP/1.1\r\n".utf8)]
        for bytes in garbage {
            let channel = Self.ourRequestDecoder()
            defer { _ = try? channel.finish() }
            #expect(throws: HTTP1WireError.self, "\(bytes)") { try channel.writeInbound(ByteBuffer(bytes: bytes)) }
        }
        // A partial head is not an error; its end completes it.
        let channel = Self.ourRequestDecoder()
        defer { _ = try? channel.finish() }
        #expect(throws: Never.self) { try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\n")) }
        #expect(try channel.readInbound(as: HTTPServerRequestPart.self) == nil)
        #expect(throws: Never.self) { try channel.writeInbound(ByteBuffer(string: "\r\n")) }
        #expect(Self.requestPart(try #require(try channel.readInbound(as: HTTPServerRequestPart.self))) == .head("GET / HTTP/1.1 Host=a"))
        // A head with no end within the limit, dripped line by line: refused as soon as the buffered bytes reach it.
        let small = EmbeddedChannel(handler: ByteToMessageHandler(HTTP1RequestDecoder(
            limits: HTTP1Head.Limits(maxHeadBytes: 2_000, maxFields: 1_000), pending: HTTP1PendingMethods())))
        defer { _ = try? small.finish() }
        var buffered = 0, expectedAt: Int?, refusedAt: Int?
        for i in 0..<400 {
            let line = i == 0 ? "GET / HTTP/1.1\r\n" : "X-F\(i): vvvvvvvvvv\r\n"
            buffered += line.utf8.count
            if buffered >= 2_000, expectedAt == nil { expectedAt = i }
            do { try small.writeInbound(ByteBuffer(string: line)) } catch {
                #expect(error as? HTTP1WireError == .head(.headTooLarge))
                refusedAt = i
                break
            }
        }
        #expect(refusedAt != nil && refusedAt == expectedAt, "refused after line \(refusedAt ?? -1), \(expectedAt ?? -1) expected")
        // More fields than the limit, in one piece.
        let few = EmbeddedChannel(handler: ByteToMessageHandler(HTTP1RequestDecoder(
            limits: HTTP1Head.Limits(maxHeadBytes: 16_000, maxFields: 10), pending: HTTP1PendingMethods())))
        defer { _ = try? few.finish() }
        let head = "GET / HTTP/1.1\r\n" + (0..<11).map { "X-F\($0): v\r\n" }.joined() + "\r\n"
        #expect(throws: HTTP1WireError.head(.tooManyFields)) { try few.writeInbound(ByteBuffer(string: head)) }
    }

    @Test("a request carrying Upgrade ends decoding: what follows is not read as a request")
    func upgradeStops() throws {
        let channel = Self.ourRequestDecoder()
        defer { _ = try? channel.finish() }
        try channel.writeInbound(ByteBuffer(string: "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                                                + "GET /second HTTP/1.1\r\nHost: a\r\n\r\n"))
        let parts = Self.feed(channel, [], as: HTTPServerRequestPart.self, describe: Self.requestPart).parts
        #expect(parts == [.head("GET /ws HTTP/1.1 Host=a|Connection=Upgrade|Upgrade=websocket"), .end])
    }

    @Test("framing the decoder cannot follow is refused, not guessed: both lengths and codings, bad lengths, other codings")
    func badFraming() {
        for head in ["POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n",
                     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
                     "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
                     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n"] {
            let channel = Self.ourRequestDecoder()
            defer { _ = try? channel.finish() }
            #expect(throws: HTTP1WireError.self, "\(head.debugDescription)") { try channel.writeInbound(ByteBuffer(string: head)) }
            let parts = Self.feed(channel, [], as: HTTPServerRequestPart.self, describe: Self.requestPart).parts
            #expect(!parts.contains(.end), "\(head.debugDescription)")
        }
    }

    // MARK: Client side, writing

    /// What a client (llhttp) reads from `bytes` in answer to `method`, the connection closed after them.
    static func clientReads(_ bytes: [UInt8], method: HTTPMethod) -> (parts: [Part], refused: Bool) {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        try? channel.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
        try? channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: "/")))
        try? channel.writeOutbound(HTTPClientRequestPart.end(nil))
        while (try? channel.readOutbound(as: ByteBuffer.self)) != nil {}
        var out = Self.feed(channel, [bytes], as: HTTPClientResponsePart.self, describe: Self.responsePart)
        if !out.refused, out.parts.last != .end {
            channel.pipeline.fireChannelInactive()
            out.parts += Self.feed(channel, [], as: HTTPClientResponsePart.self, describe: Self.responsePart).parts
        }
        return out
    }

    /// A response as the proxy writes it: interim 100 sometimes, a head, body parts, the end.
    static func responseParts(_ rng: inout SeededGenerator) -> [HTTPServerResponsePart] {
        let status = [200, 201, 204, 206, 304, 404, 500, 599].randomElement(using: &rng)!
        let version: HTTPVersion = Int.random(in: 0..<5, using: &rng) == 0 ? .http1_0 : .http1_1
        let body = (0..<Int.random(in: 0...3, using: &rng)).map { _ in
            (0..<Int.random(in: 0...20, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }
        var headers = HTTPHeaders([("Server", "t"), ("Via", "1.1 menshen")])
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: headers.add(name: "Content-Length", value: String(body.reduce(0) { $0 + $1.count }))
        case 1 where version == .http1_1: headers.add(name: "transfer-encoding", value: "chunked")
        default: break
        }
        var parts: [HTTPServerResponsePart] = []
        // (No interim response to an HTTP/1.0 client: RFC 9110 §15.2.)
        if version == .http1_1, Int.random(in: 0..<6, using: &rng) == 0 { parts.append(.head(HTTPResponseHead(version: version, status: .continue))) }
        parts.append(.head(HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: status), headers: headers)))
        let mayHaveBody = ![204, 304].contains(status)
        if mayHaveBody { parts += body.map { .body(.byteBuffer(ByteBuffer(bytes: $0))) } }
        parts.append(.end(nil))
        return parts
    }

    static func written(_ channel: EmbeddedChannel) -> [UInt8] {
        var out: [UInt8] = []
        while let buffer = try? channel.readOutbound(as: ByteBuffer.self) { out += buffer.readableBytesView }
        return out
    }

    @Test("responses written to clients read back as meant, framed as NIO's encoder frames them (GET and HEAD, 1.0 and 1.1, 204/304, interim 100)")
    func responsesToClients() throws {
        var rng = SeededGenerator(seed: 0x5245_5350)
        for _ in 0..<1_500 {
            let method: HTTPMethod = Bool.random(using: &rng) ? .GET : .HEAD
            let parts = Self.responseParts(&rng)
            let request = ByteBuffer(string: "\(method.rawValue) / HTTP/1.1\r\nHost: a\r\n\r\n")

            let pending = HTTP1PendingMethods()
            let ours = EmbeddedChannel(handlers: [ByteToMessageHandler(HTTP1RequestDecoder(limits: Self.limits, pending: pending)),
                                                  HTTP1ResponseEncoder(pending: pending)])
            let theirs = EmbeddedChannel()
            try theirs.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false,
                                                                         withOutboundHeaderValidation: false)
            defer { _ = try? ours.finish(); _ = try? theirs.finish() }
            for channel in [ours, theirs] {
                try channel.writeInbound(request)
                while (try? channel.readInbound(as: HTTPServerRequestPart.self)) != nil {}
                for part in parts {
                    // (A body part to a HEAD response is refused by both encoders' promises; nothing is written.)
                    channel.pipeline.writeAndFlush(NIOAny(part), promise: nil)
                }
            }
            let a = Self.written(ours), b = Self.written(theirs)
            let readA = Self.clientReads(a, method: method), readB = Self.clientReads(b, method: method)
            #expect(!readA.refused && !readB.refused, "\(String(decoding: a, as: UTF8.self).debugDescription)")
            #expect(readA.parts == readB.parts, "\(method) ours \(String(decoding: a, as: UTF8.self).debugDescription) NIO \(String(decoding: b, as: UTF8.self).debugDescription)")
            // And what was meant: the final head's status, and the body unless HEAD/204/304.
            guard case .head(let final)? = parts.last(where: { if case .head(let h) = $0 { h.status.code >= 200 } else { false } }) else { continue }
            let body = parts.compactMap { if case .body(.byteBuffer(let b)) = $0 { Array(b.readableBytesView) } else { nil } }.flatMap { $0 }
            let expectBody = method == .HEAD || [204, 304].contains(final.status.code) ? [] : body
            let readBody = readA.parts.compactMap { if case .body(let b) = $0 { b } else { nil } }.flatMap { $0 }
            #expect(readBody == expectBody)
            #expect(readA.parts.contains { if case .head(let h) = $0 { h.contains(" \(final.status.code) ") } else { false } })
        }
    }

    // MARK: Upstream side

    @Test("requests written to upstreams read back as meant by llhttp (lengths, chunked bodies in parts, none)")
    func requestsToUpstreams() throws {
        var rng = SeededGenerator(seed: 0x5550_5351)
        for _ in 0..<1_000 {
            let method = [HTTPMethod.GET, .POST, .PUT, .HEAD, .DELETE].randomElement(using: &rng)!
            let body = (0..<Int.random(in: 0...3, using: &rng)).map { _ in
                (0..<Int.random(in: 0...30, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            }
            var headers = HTTPHeaders([("Host", "app.test"), ("X-Forwarded-For", "10.0.0.1"), ("X-Menshen-User", "淡水 user")])
            let total = body.reduce(0) { $0 + $1.count }
            let chunked = Bool.random(using: &rng)
            if chunked { headers.add(name: "Transfer-Encoding", value: "chunked") } else { headers.add(name: "Content-Length", value: String(total)) }
            let head = HTTPRequestHead(version: .http1_1, method: method, uri: "/a/b?c=d", headers: headers)
            let pending = HTTP1PendingMethods()
            let channel = EmbeddedChannel(handler: HTTP1RequestEncoder(pending: pending))
            defer { _ = try? channel.finish() }
            try channel.writeOutbound(HTTPClientRequestPart.head(head))
            for part in body { try channel.writeOutbound(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: part)))) }
            try channel.writeOutbound(HTTPClientRequestPart.end(nil))
            #expect(pending.first?.isHEAD == (method == .HEAD) && pending.first?.upgrade == false)
            let bytes = Self.written(channel)
            let server = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder()))
            defer { _ = try? server.finish() }
            let read = Self.feed(server, [bytes], as: HTTPServerRequestPart.self, describe: Self.requestPart)
            var expected: [Part] = [.head(Self.describe(head))]
            if total > 0 { expected.append(.body(body.flatMap { $0 })) }
            expected.append(.end)
            #expect(!read.refused)
            #expect(read.parts == expected, "\(String(decoding: bytes, as: UTF8.self).debugDescription)")
        }
    }

    static func ourResponseDecoder(isHEAD: Bool) -> EmbeddedChannel {
        let pending = HTTP1PendingMethods()
        pending.append(isHEAD: isHEAD)
        return EmbeddedChannel(handler: ByteToMessageHandler(HTTP1ResponseDecoder(limits: limits, pending: pending)))
    }

    @Test("upstream responses, split anywhere, decode as llhttp decodes them: never a body llhttp does not read, the same one when both read one")
    func responsesFromUpstreams() {
        var rng = SeededGenerator(seed: 0x5550_5352)
        var alike = 0
        for _ in 0..<3_000 {
            let (response, method) = HTTP1FramingTests.response(&rng)
            let interim = Int.random(in: 0..<6, using: &rng) == 0 ? Array("HTTP/1.1 100 Continue\r\n\r\n".utf8) : []
            let bytes = interim + response
            let shown = String(decoding: bytes, as: UTF8.self).debugDescription
            let theirs = Self.clientReads(bytes, method: HTTPMethod(rawValue: method))
            let channel = Self.ourResponseDecoder(isHEAD: method == "HEAD")
            defer { _ = try? channel.finish() }
            var ours = Self.feed(channel, Self.split(bytes, &rng), as: HTTPClientResponsePart.self, describe: Self.responsePart)
            if !ours.refused, ours.parts.last != .end {
                channel.pipeline.fireChannelInactive()
                ours.parts += Self.feed(channel, [], as: HTTPClientResponsePart.self, describe: Self.responsePart).parts
            }
            // Only the first response counts (bytes after it are the next one's, which nothing asked for).
            func first(_ parts: [Part]) -> [Part]? {
                guard let end = parts.firstIndex(of: .end) else { return nil }
                return Array(parts[...end])
            }
            // Whenever the head parser and framing read a whole response from these bytes, the decoder passes it on.
            let framed = HTTP1FramingTests.ours(response, method: method)
            if case .body(let body) = framed {
                #expect(first(ours.parts)?.contains(.end) == true && (body.isEmpty || first(ours.parts)?.contains(.body(body)) == true),
                        "framing reads \(body.count) bytes, the decoder \(ours.parts): \(method) \(shown)")
            }
            guard let mine = first(ours.parts) else { continue }   // refused or incomplete: nothing passed on
            #expect(!theirs.refused || first(theirs.parts) != nil, "read a response llhttp refuses: \(method) \(shown)")
            if let other = first(theirs.parts) {
                #expect(mine == other, "\(method) \(shown)")
                alike += 1
            }
        }
        #expect(alike > 1_500)
    }

    @Test("after a 101 the upstream decoder reads nothing more; removed for the splice, it hands on the bytes that followed the 101")
    func switchingProtocols() throws {
        let pending = HTTP1PendingMethods()
        pending.append(isHEAD: false, upgrade: true)
        let decoder = ByteToMessageHandler(HTTP1ResponseDecoder(limits: Self.limits, pending: pending))
        let channel = EmbeddedChannel(handler: decoder)
        defer { _ = try? channel.finish() }
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\u{81}\u{05}hello"))
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\n"))
        let parts = Self.feed(channel, [], as: HTTPClientResponsePart.self, describe: Self.responsePart).parts
        #expect(parts == [.head("HTTP/1.1 101 Upgrade=websocket|Connection=Upgrade"), .end])
        let removed = channel.pipeline.syncOperations.removeHandler(decoder)
        channel.embeddedEventLoop.run()
        try removed.wait()
        var raw: [UInt8] = []
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { raw += buffer.readableBytesView }
        #expect(raw == Array("\u{81}\u{05}helloHTTP/1.1 200 OK\r\n\r\n".utf8))
    }

    /// Records, for each end of a response passed on, whether the connection was already marked spoiled.
    final class EndWatcher: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        let wire: HTTP1PendingMethods
        var spoiledAtEnd: [Bool] = []
        init(_ wire: HTTP1PendingMethods) { self.wire = wire }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .end = unwrapInboundIn(data) { spoiledAtEnd.append(wire.spoiled) }
        }
    }

    @Test("bytes after a response spoil the connection before its end is passed on; a 101 nobody asked for, a status below 100 and a body cut by a failed connection are refused")
    func strayBytesAndStatuses() throws {
        for (bytes, spoiled) in [("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 302 Found\r\n\r\n", true),
                                 ("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true),
                                 ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nX", true),
                                 ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false)] {
            let wire = HTTP1PendingMethods()
            wire.append(isHEAD: false)
            let watcher = EndWatcher(wire)
            let channel = EmbeddedChannel(handlers: [ByteToMessageHandler(HTTP1ResponseDecoder(limits: Self.limits, pending: wire)), watcher])
            defer { _ = try? channel.finish() }
            let refused = (try? channel.writeInbound(ByteBuffer(string: bytes))) == nil
            #expect(watcher.spoiledAtEnd == [spoiled], "\(bytes.debugDescription)")
            #expect(refused == spoiled && wire.spoiled == spoiled, "\(bytes.debugDescription)")
        }
        for (bytes, upgrade) in [("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", false),
                                 ("HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n", false), ("HTTP/1.1 000 X\r\n\r\n", true)] {
            let wire = HTTP1PendingMethods()
            wire.append(isHEAD: false, upgrade: upgrade)
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTP1ResponseDecoder(limits: Self.limits, pending: wire)))
            defer { _ = try? channel.finish() }
            #expect(throws: HTTP1WireError.self, "\(bytes.debugDescription)") { try channel.writeInbound(ByteBuffer(string: bytes)) }
            #expect(try channel.readInbound(as: HTTPClientResponsePart.self) == nil && wire.spoiled)
        }
        // A body read until the close: whole at a clean close, refused after a failure on the connection.
        for failed in [false, true] {
            let wire = HTTP1PendingMethods()
            wire.append(isHEAD: false)
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTP1ResponseDecoder(limits: Self.limits, pending: wire)))
            defer { _ = try? channel.finish() }
            try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\npartial"))
            if failed { wire.spoiled = true }   // as UpstreamHandler.errorCaught marks it (e.g. TLS closed without close_notify)
            channel.pipeline.fireChannelInactive()
            let closing = Result { try channel.throwIfErrorCaught() }
            let parts = Self.feed(channel, [], as: HTTPClientResponsePart.self, describe: Self.responsePart).parts
            #expect(parts == [.head("HTTP/1.1 200 "), .body(Array("partial".utf8))] + (failed ? [] : [.end]), "failed: \(failed)")
            if failed { #expect(throws: HTTP1WireError.endOfInputInMessage) { try closing.get() } }
        }
    }

    @Test("a response that ends at its head but announces content (to HEAD, a 204; a 304 with a transfer coding) spoils its connection; a 304's length or no content does not")
    func announcedButAbsentContent() throws {
        for (isHEAD, bytes, spoiled) in [(true, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true),
                                         (true, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true),
                                         (true, "HTTP/1.1 404 Not Found\r\ncontent-length: 120\r\n\r\n", true),
                                         (true, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false),
                                         (true, "HTTP/1.1 200 OK\r\n\r\n", false),
                                         (false, "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n", true),
                                         (false, "HTTP/1.1 204 No Content\r\n\r\n", false),
                                         (false, "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", false),
                                         (false, "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", true),
                                         (false, "HTTP/1.1 304 Not Modified\r\n\r\n", false),
                                         (false, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false)] {
            let wire = HTTP1PendingMethods()
            wire.append(isHEAD: isHEAD)
            let watcher = EndWatcher(wire)
            let channel = EmbeddedChannel(handlers: [ByteToMessageHandler(HTTP1ResponseDecoder(limits: Self.limits, pending: wire)), watcher])
            defer { _ = try? channel.finish() }
            try channel.writeInbound(ByteBuffer(string: bytes))
            #expect(watcher.spoiledAtEnd == [spoiled], "\(bytes.debugDescription)")
        }
    }

    @Test("bytes from an upstream with no request waiting are refused; interim responses are not passed on")
    func unsolicitedAndInterim() throws {
        let idle = EmbeddedChannel(handler: ByteToMessageHandler(HTTP1ResponseDecoder(limits: Self.limits, pending: HTTP1PendingMethods())))
        defer { _ = try? idle.finish() }
        #expect(throws: HTTP1WireError.unsolicitedResponse) { try idle.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) }

        let channel = Self.ourResponseDecoder(isHEAD: false)
        defer { _ = try? channel.finish() }
        let read = Self.feed(channel, [Array("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8)],
                             as: HTTPClientResponsePart.self, describe: Self.responsePart)
        #expect(read.parts == [.head("HTTP/1.1 200 Content-Length=2"), .body(Array("ok".utf8)), .end])
        // The one request is answered: a second response is unsolicited.
        #expect(throws: HTTP1WireError.unsolicitedResponse) { try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\n")) }
    }
}
