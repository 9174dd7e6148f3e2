/// The floor under Menshen's enforcement point: what a reverse proxy on SwiftNIO costs per request
/// before any policy, audit or hardening, in three builds of the same minimal proxy (one upstream
/// connection per client connection, no pool, no timers, no checks):
///
/// - `nio`: NIOHTTP1 as the enforcement point uses it (`configureHTTPServerPipeline` with pipelining
///   assistance, error handling and outbound header validation; `addHTTPClientHandlers` upstream),
///   request and response heads rebuilt as `HTTPHeaders` without hop-by-hop fields;
/// - `nio-lean`: the same without the pipelining, error and validation handlers;
/// - `raw`: heads parsed and rewritten as bytes on `ByteBuffer`, bodies sliced through. It handles only
///   what the benchmark sends (bodiless requests, `Content-Length` responses) — a floor, not a proxy.
///
/// Usage: `proxy-floor MODE LISTEN_PORT UPSTREAM_PORT [EVENT_LOOPS]`. Run by scripts/bench-proxy-floor.
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
if arguments.count < 4 || !["nio", "nio-lean", "raw"].contains(arguments[1]) || Int(arguments[2]) == nil || Int(arguments[3]) == nil {
    print("usage: proxy-floor nio|nio-lean|raw LISTEN_PORT UPSTREAM_PORT [EVENT_LOOPS]")
    exit(2)
}
let listenPort = Int(arguments[2])!
let upstreamPort = Int(arguments[3])!
let mode = CommandLine.arguments[1]
let threads = CommandLine.arguments.count > 4 ? Int(CommandLine.arguments[4]) ?? 2 : 2
let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)

// MARK: NIOHTTP1 floor

final class NIOUp: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart
    weak var client: NIOClient?
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { client?.upstream(unwrapInboundIn(data)) }
    func channelReadComplete(context: ChannelHandlerContext) { client?.upstreamReadComplete() }
}

final class NIOClient: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    var context: ChannelHandlerContext?
    var up: (any Channel)?
    var pending: [HTTPClientRequestPart] = []
    var head: HTTPRequestHead?
    static let hop: Set<String> = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        let me = NIOLoopBound(self, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop).channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: mode != "nio-lean")
                    let h = NIOUp(); h.client = me.value
                    try ch.pipeline.syncOperations.addHandler(h)
                }
            }.connect(host: "127.0.0.1", port: upstreamPort).whenSuccess { ch in
                me.value.up = ch
                for p in me.value.pending { ch.write(p, promise: nil) }
                me.value.pending = []
                ch.flush()
            }
        context.fireChannelActive()
    }
    func send(_ p: HTTPClientRequestPart, flush: Bool) {
        guard let up else { pending.append(p); return }
        up.write(p, promise: nil)
        if flush { up.flush() }
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            var headers = HTTPHeaders()
            for (n, v) in h.headers where !Self.hop.contains(n.lowercased()) { headers.add(name: n, value: v) }
            headers.add(name: "X-Forwarded-For", value: "127.0.0.1")
            headers.add(name: "X-Forwarded-Proto", value: "http")
            headers.add(name: "Via", value: "1.1 menshen")
            send(.head(HTTPRequestHead(version: .http1_1, method: h.method, uri: h.uri, headers: headers)), flush: false)
        case .body(let b): send(.body(.byteBuffer(b)), flush: false)
        case .end: send(.end(nil), flush: true)
        }
    }
    func upstream(_ part: HTTPClientResponsePart) {
        guard let context else { return }
        switch part {
        case .head(let h):
            var headers = HTTPHeaders()
            for (n, v) in h.headers where !Self.hop.contains(n.lowercased()) { headers.add(name: n, value: v) }
            headers.add(name: "Via", value: "1.1 menshen")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head?.version ?? .http1_1, status: h.status, headers: headers))), promise: nil)
        case .body(let b): context.write(wrapOutboundOut(.body(.byteBuffer(b))), promise: nil)
        case .end: context.write(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
    func upstreamReadComplete() { context?.flush() }
    func channelInactive(context: ChannelHandlerContext) { up?.close(promise: nil) }
}

// MARK: Raw floor

final class RawUp: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    weak var client: RawClient?
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { client?.upstream(unwrapInboundIn(data)) }
    func channelReadComplete(context: ChannelHandlerContext) { client?.context?.flush() }
}

/// Finds "\r\n\r\n" in the readable bytes; returns the head's length including it.
@inline(__always)
func headEnd(_ buf: ByteBuffer) -> Int? {
    buf.withUnsafeReadableBytes { p -> Int? in
        let n = p.count
        if n < 4 { return nil }
        var i = 3
        while i < n {
            if p[i] == 10 && p[i - 1] == 13 && p[i - 2] == 10 && p[i - 3] == 13 { return i + 1 }
            i += 1
        }
        return nil
    }
}

@inline(__always)
func lower(_ b: UInt8) -> UInt8 { b >= 65 && b <= 90 ? b | 0x20 : b }

func nameIs(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ name: StaticString) -> Bool {
    guard end - start == name.utf8CodeUnitCount else { return false }
    let q = name.utf8Start
    for i in 0..<(end - start) where lower(p[start + i]) != q[i] { return false }
    return true
}

final class RawClient: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var context: ChannelHandlerContext?
    var up: (any Channel)?
    var inBuf: ByteBuffer?
    var upBuf: ByteBuffer?
    var pending: [ByteBuffer] = []
    var responseRemaining = -1   // -1: waiting for head

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        let me = NIOLoopBound(self, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop).channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    let h = RawUp(); h.client = me.value
                    try ch.pipeline.syncOperations.addHandler(h)
                }
            }.connect(host: "127.0.0.1", port: upstreamPort).whenSuccess { ch in
                me.value.up = ch
                for p in me.value.pending { ch.write(p, promise: nil) }
                me.value.pending = []
                ch.flush()
            }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        if inBuf == nil { inBuf = b } else { inBuf!.writeBuffer(&b) }
        while let buf = inBuf, let end = headEnd(buf) {
            var out = context.channel.allocator.buffer(capacity: end + 96)
            buf.withUnsafeReadableBytes { p in
                // request line
                var i = 0
                while p[i] != 10 { i += 1 }
                out.writeBytes(UnsafeRawBufferPointer(rebasing: p[0...i]))
                i += 1
                while i < end - 2 {
                    var j = i
                    while p[j] != 10 { j += 1 }
                    var colon = i
                    while colon < j && p[colon] != 58 { colon += 1 }
                    let hop = nameIs(p, i, colon, "connection") || nameIs(p, i, colon, "keep-alive") || nameIs(p, i, colon, "te")
                        || nameIs(p, i, colon, "transfer-encoding") || nameIs(p, i, colon, "upgrade") || nameIs(p, i, colon, "x-forwarded-for")
                    if !hop { out.writeBytes(UnsafeRawBufferPointer(rebasing: p[i...j])) }
                    i = j + 1
                }
            }
            out.writeStaticString("X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nVia: 1.1 menshen\r\n\r\n")
            inBuf!.moveReaderIndex(forwardBy: end)
            if inBuf!.readableBytes == 0 { inBuf = nil }
            if let up { up.write(out, promise: nil) } else { pending.append(out) }
        }
    }
    func channelReadComplete(context: ChannelHandlerContext) { up?.flush() }

    func upstream(_ data: ByteBuffer) {
        guard let context else { return }
        var b = data
        if upBuf == nil { upBuf = b } else { upBuf!.writeBuffer(&b) }
        while var buf = upBuf {
            if responseRemaining < 0 {
                guard let end = headEnd(buf) else { return }
                var out = context.channel.allocator.buffer(capacity: end + 32)
                var length = 0
                buf.withUnsafeReadableBytes { p in
                    var i = 0
                    while p[i] != 10 { i += 1 }
                    out.writeBytes(UnsafeRawBufferPointer(rebasing: p[0...i]))
                    i += 1
                    while i < end - 2 {
                        var j = i
                        while p[j] != 10 { j += 1 }
                        var colon = i
                        while colon < j && p[colon] != 58 { colon += 1 }
                        if nameIs(p, i, colon, "content-length") {
                            var k = colon + 1
                            while p[k] == 32 { k += 1 }
                            while p[k] >= 48 && p[k] <= 57 { length = length * 10 + Int(p[k] - 48); k += 1 }
                        }
                        let hop = nameIs(p, i, colon, "connection") || nameIs(p, i, colon, "keep-alive")
                        if !hop { out.writeBytes(UnsafeRawBufferPointer(rebasing: p[i...j])) }
                        i = j + 1
                    }
                }
                out.writeStaticString("Via: 1.1 menshen\r\n\r\n")
                context.write(wrapOutboundOut(out), promise: nil)
                buf.moveReaderIndex(forwardBy: end)
                responseRemaining = length
            }
            let take = min(responseRemaining, buf.readableBytes)
            if take > 0 { context.write(wrapOutboundOut(buf.readSlice(length: take)!), promise: nil) }
            responseRemaining -= take
            if responseRemaining == 0 { responseRemaining = -1 }
            upBuf = buf.readableBytes > 0 ? buf : nil
            if responseRemaining > 0 { return }
        }
    }
    func channelInactive(context: ChannelHandlerContext) { up?.close(promise: nil) }
}

let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { ch in
        ch.eventLoop.makeCompletedFuture {
            if mode == "nio" {
                try ch.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                try ch.pipeline.syncOperations.addHandler(NIOClient())
            } else if mode == "nio-lean" {
                try ch.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false,
                                                                           withOutboundHeaderValidation: false)
                try ch.pipeline.syncOperations.addHandler(NIOClient())
            } else {
                try ch.pipeline.syncOperations.addHandler(RawClient())
            }
        }
    }
let server = try bootstrap.bind(host: "127.0.0.1", port: listenPort).wait()
print("listening \(mode) on \(listenPort) → \(upstreamPort)")
try server.closeFuture.wait()
