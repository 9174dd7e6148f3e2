import Foundation
@testable import MenshenEnforcementPoint
import MenshenServer
import MenshenTestSupport
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL
import Testing

/// The HTTP/2 front against what a client's frames can ask: a SETTINGS_HEADER_TABLE_SIZE bounds our HPACK encoder only up
/// to 4096 octets (``HTTP2HeaderTableCap``); `:authority` and `host` must name the same host byte for byte (``AuthorityCheck``).
@Suite("HTTP/2 front: what a client's frames can ask")
struct HTTP2FrontTests {
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    static func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, _ payload: [UInt8]) -> [UInt8] {
        let n = payload.count
        return [UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF), type, flags,
                UInt8(stream >> 24), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF)] + payload
    }

    static func settingsFrame(_ values: [(UInt16, UInt32)]) -> [UInt8] {
        frame(type: 0x4, values.flatMap { id, v in
            [UInt8(id >> 8), UInt8(id & 0xFF), UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
        })
    }

    /// Feeds `bytes` in pieces of `piece` octets through the handler; returns what came out and whether the channel is open.
    static func pass(_ bytes: [UInt8], piece: Int) throws -> (out: [UInt8], open: Bool) {
        let channel = EmbeddedChannel(handler: HTTP2HeaderTableCap())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        var start = 0
        while start < bytes.count, channel.isActive {
            let end = min(bytes.count, start + piece)
            try channel.writeInbound(ByteBuffer(bytes: bytes[start..<end]))
            start = end
        }
        var out: [UInt8] = []
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { out += Array(buffer.readableBytesView) }
        return (out, channel.isActive)
    }

    @Test("setting 0x1 above 4096 becomes 4096 in every SETTINGS frame, however the bytes are split; all else passes unchanged")
    func rewrites() throws {
        // A DATA frame whose payload looks like a SETTINGS frame must not be touched: only frame starts are read.
        let lookalike = Self.settingsFrame([(0x1, 0xFFFF_FFFF)])
        let input = Self.preface
            + Self.settingsFrame([(0x3, 100), (0x1, 0xFFFF_FFFF), (0x4, 65535), (0x1, 65536)])
            + Self.frame(type: 0x0, stream: 1, lookalike)
            + Self.settingsFrame([(0x1, 1024)])                      // smaller than the cap: kept
            + Self.frame(type: 0x4, flags: 0x1, [])             // an ACK
            + Self.frame(type: 0x6, [1, 2, 3, 4, 5, 6, 7, 8])    // PING
            + Self.settingsFrame([(0x1, 4097)])
        let expected = Self.preface
            + Self.settingsFrame([(0x3, 100), (0x1, 4096), (0x4, 65535), (0x1, 4096)])
            + Self.frame(type: 0x0, stream: 1, lookalike)
            + Self.settingsFrame([(0x1, 1024)])
            + Self.frame(type: 0x4, flags: 0x1, [])
            + Self.frame(type: 0x6, [1, 2, 3, 4, 5, 6, 7, 8])
            + Self.settingsFrame([(0x1, 4096)])
        for piece in [1, 2, 5, 9, 13, 24, 33, 1000] {
            let result = try Self.pass(input, piece: piece)
            #expect(result.out == expected, "split every \(piece) octets")
            #expect(result.open)
        }
    }

    @Test("a frame over 16,384 octets, or a SETTINGS frame not a multiple of 6, closes the connection; nothing of it is passed on")
    func malformedSettingsClose() throws {
        let long = Self.frame(type: 0x4, Array(repeating: 0, count: 16_386))
        let odd = Self.frame(type: 0x4, [0, 1, 0, 0, 0x10])
        // Any type: an unknown frame whose payload hides a SETTINGS frame NIO could read after refusing the big one.
        let hiding = Self.frame(type: 0xFA, Self.settingsFrame([(0x1, 0xFFFF_FFFF)]) + Array(repeating: 0, count: 16_385 - 15))
        for bad in [long, odd, hiding] {
            let result = try Self.pass(Self.preface + bad, piece: 7)
            #expect(!result.open)
            #expect(result.out == Self.preface)
        }
    }

    @Test("a GOAWAY we send with an error code closes the connection (RFC 9113 §5.4.1); NO_ERROR and look-alikes in payloads do not")
    func errorGoAwayCloses() throws {
        func goAway(_ code: UInt32) -> [UInt8] {
            Self.frame(type: 0x7, [0, 0, 0, 5, UInt8(code >> 24), UInt8(code >> 16 & 0xFF), UInt8(code >> 8 & 0xFF), UInt8(code & 0xFF)])
        }
        func sending(_ bytes: [UInt8], piece: Int) throws -> Bool {
            let channel = EmbeddedChannel(handler: HTTP2HeaderTableCap())
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + piece)
                try channel.writeOutbound(ByteBuffer(bytes: bytes[start..<end]))
                start = end
            }
            channel.embeddedEventLoop.run()
            while try channel.readOutbound(as: ByteBuffer.self) != nil {}
            return channel.isActive
        }
        let before = Self.settingsFrame([(0x3, 100)]) + Self.frame(type: 0x0, stream: 1, goAway(1))   // a DATA payload that looks like one
        for piece in [1, 3, 9, 17, 100] {
            #expect(try sending(before + goAway(0) + Self.frame(type: 0x6, Array(repeating: 0, count: 8)), piece: piece), "NO_ERROR, split every \(piece)")
            #expect(try !sending(before + goAway(1), piece: piece), "PROTOCOL_ERROR, split every \(piece)")
        }
    }

    @Test("a frame NIO cannot parse (padding longer than the frame) gets GOAWAY and the connection closed at once, not left open")
    func parseErrorCloses() async throws {
        let certs = try await TLSAndHTTP2Tests.Certificates.make()
        defer { try? FileManager.default.removeItem(at: certs.dir) }
        let context = try certs.serverContext()
        try await withProxy(configure: {
            $0.tlsHandler = { NIOSSLServerHandler(context: context) }
            $0.keepAliveTimeout = .seconds(20)
            $0.idleTimeout = .seconds(20)
        }, gate: { forwardAll($0) }) { server, upstream, _ in
            let sslContext = try certs.h2ClientContext()
            let wire = Recorder<ByteBuffer>()
            let channel = try await ClientBootstrap(group: upstream.group).channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: sslContext, serverHostname: "localhost"))
                    try channel.pipeline.syncOperations.addHandler(WireRecorder(wire))
                }
            }.connect(host: "127.0.0.1", port: server.localPort ?? 0).get()
            // A padded DATA frame of 1 octet announcing 5 octets of padding: a frame NIO cannot parse.
            let bytes = Self.preface + Self.settingsFrame([]) + Self.frame(type: 0x0, flags: 0x8, stream: 1, [5])
            try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
            let start = Date()
            for _ in 0..<100 where channel.isActive { try await Task.sleep(for: .milliseconds(50)) }
            #expect(!channel.isActive, "still open \(Date().timeIntervalSince(start)) s after the parse error")
            var received = ByteBuffer()
            for var piece in wire.all { received.writeBuffer(&piece) }
            var types: [UInt8] = []
            while received.readableBytes >= 9 {
                let length = Int(received.getInteger(at: received.readerIndex, as: UInt8.self)!) << 16
                    | Int(received.getInteger(at: received.readerIndex + 1, as: UInt16.self)!)
                types.append(received.getInteger(at: received.readerIndex + 3, as: UInt8.self)!)
                guard received.readableBytes >= 9 + length else { break }
                received.moveReaderIndex(forwardBy: 9 + length)
            }
            #expect(types.contains(0x7), "a GOAWAY was sent first: \(types)")
            try? await channel.close()
        }
    }

    /// The answers' header blocks, by stream, as the server wrote them on the wire.
    struct Answers {
        var blocks: [Int: HPACKHeaders] = [:]
        /// Why a block could not be decoded with a 4 KiB table (a client allowing only the default would fail there).
        var failure: String?
        var ended = 0
    }

    /// Sends `requests` on one HTTP/2 connection over TLS (streams 1, 3, 5…) from a client that announces `settings`
    /// and does not validate the fields it sends, and decodes the answers' header blocks from the raw bytes received.
    static func exchange(port: Int, certs: TLSAndHTTP2Tests.Certificates, group: any EventLoopGroup,
                         settings: HTTP2Settings, _ requests: [HPACKHeaders]) async throws -> Answers {
        let sslContext = try certs.h2ClientContext()
        let wire = Recorder<ByteBuffer>()
        let ended = Counter()
        let channel = try await ClientBootstrap(group: group).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                let sync = channel.pipeline.syncOperations
                try sync.addHandler(try NIOSSLClientHandler(context: sslContext, serverHostname: "localhost"))
                try sync.addHandler(WireRecorder(wire))
                try sync.addHandler(NIOHTTP2Handler(mode: .client, initialSettings: settings, headerBlockValidation: .disabled))
                try sync.addHandler(StreamEndCounter(ended))
            }
        }.connect(host: "127.0.0.1", port: port).get()
        for (i, headers) in requests.enumerated() {
            channel.write(HTTP2Frame(streamID: HTTP2StreamID(2 * i + 1), payload: .headers(.init(headers: headers, endStream: true))),
                          promise: nil)
        }
        channel.flush()
        for _ in 0..<200 where ended.current < requests.count { try await Task.sleep(for: .milliseconds(50)) }
        try? await channel.close()

        var answers = Answers(ended: ended.current)
        var bytes = ByteBuffer()
        for var piece in wire.all { bytes.writeBuffer(&piece) }
        var decoder = HPACKDecoder(allocator: ByteBufferAllocator(), maxDynamicTableSize: 4096)
        while bytes.readableBytes >= 9, answers.failure == nil {
            let length = Int(bytes.getInteger(at: bytes.readerIndex, as: UInt8.self)!) << 16
                | Int(bytes.getInteger(at: bytes.readerIndex + 1, as: UInt16.self)!)
            let type = bytes.getInteger(at: bytes.readerIndex + 3, as: UInt8.self)!
            let flags = bytes.getInteger(at: bytes.readerIndex + 4, as: UInt8.self)!
            let stream = Int(bytes.getInteger(at: bytes.readerIndex + 5, as: UInt32.self)! & 0x7FFF_FFFF)
            guard bytes.readableBytes >= 9 + length else { break }
            bytes.moveReaderIndex(forwardBy: 9)
            var payload = bytes.readSlice(length: length)!
            guard type == 0x1 else { continue }
            guard flags & 0x4 != 0, flags & 0x28 == 0 else { answers.failure = "a header block in several frames, padded or with priority"; break }
            do { answers.blocks[stream] = try decoder.decodeHeaders(from: &payload) } catch { answers.failure = "\(error)" }
        }
        return answers
    }

    @Test("an HTTP/2 client offering a header table of 2³²−1: 60 answers, each with its own field, decode with a 4 KiB HPACK table")
    func cappedOverTLS() async throws {
        let certs = try await TLSAndHTTP2Tests.Certificates.make()
        defer { try? FileManager.default.removeItem(at: certs.dir) }
        let context = try certs.serverContext()
        let gate = RecordingGate { request in
            .respond(status: 403, headers: [("X-Unique", "\(request.path)-\(UUID().uuidString)")], body: Array("no".utf8))
        }
        try await withProxy(configure: { $0.tlsHandler = { NIOSSLServerHandler(context: context) } }, gate: { _ in gate }) { server, upstream, _ in
            let port = server.localPort ?? 0
            let requests: [HPACKHeaders] = (0..<60).map { [":method": "GET", ":scheme": "https", ":authority": "localhost:\(port)", ":path": "/r\($0)"] }
            let answers = try await Self.exchange(port: port, certs: certs, group: upstream.group, settings: [
                HTTP2Setting(parameter: .maxConcurrentStreams, value: 100),
                HTTP2Setting(parameter: .headerTableSize, value: Int(UInt32.max)),
            ], requests)
            #expect(answers.ended == 60, "answers ended: \(answers.ended)")
            #expect(answers.failure == nil, "an answer's header block needs a table over 4 KiB: \(answers.failure ?? "")")
            let uniques = answers.blocks.values.filter { $0.first(name: ":status") == "403" }.compactMap { $0.first(name: "x-unique") }
            #expect(uniques.count == 60 && Set(uniques).count == 60, "\(uniques.count) answers decoded")
            #expect((0..<60).allSatisfy { answers.blocks[2 * $0 + 1]?.first(name: "x-unique")?.hasPrefix("/r\($0)-") == true })
        }
    }

    @Test(":authority and host are compared as bytes folding ASCII case only: a Kelvin sign (U+212A) is not a k")
    func authorityComparedAsBytes() async throws {
        let certs = try await TLSAndHTTP2Tests.Certificates.make()
        defer { try? FileManager.default.removeItem(at: certs.dir) }
        let context = try certs.serverContext()
        try await withProxy(configure: { $0.tlsHandler = { NIOSSLServerHandler(context: context) } }, gate: { forwardAll($0) }) { server, upstream, gate in
            func request(_ path: String, authority: String, host: String) -> HPACKHeaders {
                [":method": "GET", ":scheme": "https", ":authority": authority, ":path": path, "host": host]
            }
            let answers = try await Self.exchange(port: server.localPort ?? 0, certs: certs, group: upstream.group, settings: fewStreams, [
                request("/kelvin", authority: "\u{212A}elvin.example", host: "kelvin.example"),
                request("/shouting", authority: "KELVIN.example", host: "kelvin.EXAMPLE"),
            ])
            #expect(answers.failure == nil)
            #expect(answers.blocks[1]?.first(name: ":status") == "400", "\(String(describing: answers.blocks[1]))")
            #expect(answers.blocks[3]?.first(name: ":status") == "200", "\(String(describing: answers.blocks[3]))")
            #expect(!upstream.seen.all.contains { $0.uri == "/kelvin" } && !gate.asked.all.contains { $0.path == "/kelvin" })
            #expect(upstream.seen.all.first { $0.uri == "/shouting" }?.header("Host") == ["kelvin.EXAMPLE"])
        }
    }
}

private let fewStreams: HTTP2Settings = [HTTP2Setting(parameter: .maxConcurrentStreams, value: 100)]

/// Copies every decrypted byte the server sends, before the client's HTTP/2 handler reads it.
private final class WireRecorder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let wire: Recorder<ByteBuffer>
    init(_ wire: Recorder<ByteBuffer>) { self.wire = wire }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        wire.append(unwrapInboundIn(data))
        context.fireChannelRead(data)
    }
}

/// Counts streams the server ended.
private final class StreamEndCounter: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTP2Frame
    let ended: Counter
    init(_ ended: Counter) { self.ended = ended }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let h) where h.endStream: ended.increment()
        case .data(let d) where d.endStream: ended.increment()
        default: break
        }
    }
}
