import Dispatch
import Foundation
@testable import MenshenEnforcementPoint
import MenshenTestSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A request as the test upstream saw it.
struct SeenRequest: Sendable {
    var method: String
    var uri: String
    var headers: [(String, String)]
    var bodyBytes: Int
    var connection: Int

    func header(_ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }
}

final class Counter: Sendable {
    private let value = Mutex<Int>(0)
    @discardableResult func increment() -> Int { value.withLock { v in v += 1; return v } }
    var current: Int { value.withLock { $0 } }
}

final class Recorder<T: Sendable>: Sendable {
    private let items = Mutex<[T]>([])
    func append(_ item: T) { items.withLock { $0.append(item) } }
    var all: [T] { items.withLock { $0 } }
    var count: Int { items.withLock { $0.count } }
}

/// A small NIO HTTP/1.1 origin server for the tests.
/// - `/big?bytes=N`: streams N bytes, honouring back-pressure;
/// - `/slow`: never answers;
/// - anything else: echoes "METHOD URI", the headers and the body.
final class TestUpstream: Sendable {
    let seen = Recorder<SeenRequest>()
    let connections = Counter()
    /// Bytes the WebSocket echo received (one entry per read), and how many echo tunnels have closed.
    let tunnelled = Recorder<String>()
    let tunnelsClosed = Counter()
    private let channel: any Channel
    let group: any EventLoopGroup

    /// Listens on 127.0.0.1:`port` (0: any free port).
    convenience init(group: any EventLoopGroup, port: Int = 0) async throws {
        try await self.init(group: group) { $0.bind(host: "127.0.0.1", port: port) }
    }

    /// Listens on a socket that is already bound (a ``DeadPort`` coming back to life): the port never passes
    /// through a moment of being free, in which a parallel test's connection or listener could take it.
    convenience init(group: any EventLoopGroup, reviving dead: DeadPort) async throws {
        let fd = dead.takeDescriptor()
        try await self.init(group: group) { $0.withBoundSocket(fd) }
    }

    /// Listens on 127.0.0.1 (any free port) behind TLS with this server context.
    convenience init(group: any EventLoopGroup, tls: NIOSSLContext) async throws {
        try await self.init(group: group, tls: tls) { $0.bind(host: "127.0.0.1", port: 0) }
    }

    private init(group: any EventLoopGroup, tls: NIOSSLContext? = nil, listen: (ServerBootstrap) -> EventLoopFuture<any Channel>) async throws {
        self.group = group
        let seen = self.seen
        let counter = Counter()
        let connections = self.connections
        let tunnelled = self.tunnelled, tunnelsClosed = self.tunnelsClosed
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let id = counter.increment()
                connections.increment()
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    let upgrade: NIOHTTPServerUpgradeConfiguration = (upgraders: [EchoUpgrader(seen: seen, tunnelled: tunnelled, closed: tunnelsClosed)], completionHandler: { _ in })
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withServerUpgrade: upgrade)
                    try channel.pipeline.syncOperations.addHandler(OriginHandler(seen: seen, connection: id))
                }
            }
        channel = try await listen(bootstrap).get()
    }

    var port: Int { channel.localAddress?.port ?? 0 }
    var upstream: Upstream { Upstream(host: "127.0.0.1", port: port) }
    func close() async { try? await channel.close() }
}

/// Upgrades `Upgrade: websocket` requests to a raw byte echo (no WebSocket framing needed for the test).
private struct EchoUpgrader: HTTPServerProtocolUpgrader {
    let seen: Recorder<SeenRequest>
    let tunnelled: Recorder<String>
    let closed: Counter
    var supportedProtocol: String { "websocket" }
    var requiredUpgradeHeaders: [String] { [] }

    func buildUpgradeResponse(channel: any Channel, upgradeRequest: HTTPRequestHead,
                              initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        seen.append(SeenRequest(method: upgradeRequest.method.rawValue, uri: upgradeRequest.uri,
                                headers: upgradeRequest.headers.map { ($0.name, $0.value) }, bodyBytes: 0, connection: 0))
        var headers = initialResponseHeaders
        headers.add(name: "Sec-WebSocket-Accept", value: "test")
        return channel.eventLoop.makeSucceededFuture(headers)
    }

    func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        context.eventLoop.makeCompletedFuture { try context.pipeline.syncOperations.addHandler(ByteEcho(tunnelled: tunnelled, closed: closed), position: .first) }
    }
}

private final class ByteEcho: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let tunnelled: Recorder<String>
    let closed: Counter
    init(tunnelled: Recorder<String>, closed: Counter) {
        self.tunnelled = tunnelled
        self.closed = closed
    }
    func channelInactive(context: ChannelHandlerContext) {
        closed.increment()
        context.fireChannelInactive()
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        tunnelled.append(String(buffer: buffer))
        // `last:N`: N bytes, then "END", then the connection closed once they are written (a server's last words).
        if let text = buffer.getString(at: buffer.readerIndex, length: buffer.readableBytes), text.hasPrefix("last:"),
           let n = Int(text.dropFirst(5).prefix { $0.isNumber }) {
            var last = context.channel.allocator.buffer(repeating: UInt8(ascii: "x"), count: n)
            last.writeString("END")
            context.writeAndFlush(wrapOutboundOut(last)).whenComplete { _ in context.close(promise: nil) }
            return
        }
        var reply = context.channel.allocator.buffer(string: "echo:")
        reply.writeBuffer(&buffer)
        context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
    }
}

private final class OriginHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let seen: Recorder<SeenRequest>
    let connection: Int
    var head: HTTPRequestHead?
    var body = ByteBuffer()
    var bodyCount = 0
    var remaining = 0
    var streaming = false
    var slowReading = false
    /// `/early`: the response head went out when the request head arrived; its body follows the request's end.
    var earlyPending = false

    func channelReadComplete(context: ChannelHandlerContext) {
        guard slowReading else { return }
        context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(4)) { [weak self] in
            guard self?.slowReading == true else { return }
            context.read()
        }
    }

    init(seen: Recorder<SeenRequest>, connection: Int) {
        self.seen = seen
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            if h.uri.hasPrefix("/slowsink") {   // read the body slowly: the proxy must hold back
                slowReading = true
                _ = context.channel.setOption(ChannelOptions.autoRead, value: false)
                context.read()
            }
            if h.uri.hasPrefix("/early") {   // answer before the body has arrived (as an early 401 or 413 does)
                earlyPending = true
                var headers = HTTPHeaders()
                headers.add(name: "Content-Length", value: "5")
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            }
            body.clear()
            bodyCount = 0
        case .body(var b):
            bodyCount += b.readableBytes
            if body.readableBytes < 1 << 20 { body.writeBuffer(&b) }
        case .end:
            guard let head else { return }
            if earlyPending {
                earlyPending = false
                seen.append(SeenRequest(method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) },
                                        bodyBytes: bodyCount, connection: connection))
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: "early")))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                return
            }
            if slowReading {
                slowReading = false
                _ = context.channel.setOption(ChannelOptions.autoRead, value: true)
            }
            seen.append(SeenRequest(method: head.method.rawValue, uri: head.uri,
                                    headers: head.headers.map { ($0.name, $0.value) },
                                    bodyBytes: bodyCount, connection: connection))
            respond(context: context, head: head)
        }
    }

    func respond(context: ChannelHandlerContext, head: HTTPRequestHead) {
        if head.uri.hasPrefix("/delay") {   // answer like the echo, 300 ms later
            var delayed = head
            delayed.uri = "/after-delay"
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(300)) { [weak self] in
                self?.respond(context: context, head: delayed)
            }
            return
        }
        if head.uri.hasPrefix("/slow") && !head.uri.hasPrefix("/slowsink") { return }
        if head.uri.hasPrefix("/raw-header"),   // bytes NIO's encoder would not write: below it, straight to the socket
           let below = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self) {
            let raw = "HTTP/1.1 200 OK\r\nX-Bad: a\u{1}b\r\nContent-Length: 2\r\n\r\nok"
            below.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: raw)), promise: nil)
            return
        }
        if head.uri.hasPrefix("/server-first"),   // a protocol whose server speaks first: its first bytes in the 101's write
           let below = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self) {
            let raw = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x-first\r\n\r\nhello-first"
            below.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: raw)), promise: nil)
            return
        }
        if head.uri.hasPrefix("/extra-bytes"),   // a response followed by bytes no request asked for, in one write
           let below = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self) {
            let raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected"
            below.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: raw)), promise: nil)
            return
        }
        if head.uri.hasPrefix("/exact-read"),   // a response filling the reader's first 2 KiB buffer exactly, then stray bytes, in one write
           let below = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self) {
            // NIO's adaptive receive allocator starts at 2,048 bytes: the proxy's first read on this connection ends
            // exactly at the response's end, and the stray bytes come in a second channelRead of the same socket read.
            var length = 0
            while "HTTP/1.1 200 OK\r\nContent-Length: \(length)\r\n\r\n".utf8.count + length != 2048 { length += 1 }
            let raw = "HTTP/1.1 200 OK\r\nContent-Length: \(length)\r\n\r\n" + String(repeating: "x", count: length)
                + "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected"
            below.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: raw)), promise: nil)
            return
        }
        if head.uri.hasPrefix("/head-then-body"), head.method == .HEAD,   // a body to HEAD after all, once the head went out
           let below = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self) {
            let injected = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected"
            below.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: "HTTP/1.1 200 OK\r\nContent-Length: \(injected.utf8.count)\r\n\r\n")),
                                promise: nil)
            let loopBound = NIOLoopBound(below, eventLoop: context.eventLoop)
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(300)) {
                loopBound.value.writeAndFlush(NIOAny(loopBound.value.channel.allocator.buffer(string: injected)), promise: nil)
            }
            return
        }
        if head.uri.hasPrefix("/listed-hops"),   // a response naming its own connection-scoped fields, in mixed case
           let below = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self) {
            let raw = "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop-Secret,  x-other-HOP \r\nX-Hop-Secret: s1\r\n"
                + "X-OTHER-hop: s2\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nX-Kept: k\r\nCONTENT-length: 2\r\n\r\nok"
            below.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: raw)), promise: nil)
            return
        }
        if head.uri.hasPrefix("/own-cookies"),   // cookies and identity fields an application must not hand to the browser
           let below = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self) {
            let upgrade = head.uri.hasPrefix("/own-cookies-upgrade")
            let raw = (upgrade ? "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x-first\r\n" : "HTTP/1.1 200 OK\r\n")
                + "Set-Cookie: __Host-menshen-session=ATTACKER; Path=/; Secure; HttpOnly\r\nset-cookie:  __HOST-Menshen-CSRF =x; Path=/\r\n"
                + "Set-Cookie: app=1; Path=/\r\nSet-Cookie: __Host-menshen-session-extra=kept\r\nX-Menshen-Assertion: leaked\r\n"
                + "x-menshen-user: echoed\r\nX-Kept: k\r\n" + (upgrade ? "\r\nhello-first" : "Content-Length: 2\r\n\r\nok")
            below.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: raw)), promise: nil)
            return
        }
        if head.uri.hasPrefix("/close-mid-body") {
            var h = HTTPHeaders()
            h.add(name: "Content-Length", value: "1000")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: h))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: "partial")))))
                .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        if head.uri.hasPrefix("/big"), let n = head.uri.split(separator: "=").last.flatMap({ Int($0) }) {
            var h = HTTPHeaders()
            h.add(name: "Content-Length", value: String(n))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: h))), promise: nil)
            remaining = n
            streaming = true
            pump(context: context)
            return
        }
        var text = "\(head.method.rawValue) \(head.uri)\n"
        for (name, value) in head.headers { text += "\(name): \(value)\n" }
        text += "\n"
        var out = context.channel.allocator.buffer(string: text)
        out.writeImmutableBuffer(body)
        var h = HTTPHeaders()
        h.add(name: "Content-Length", value: String(out.readableBytes))
        h.add(name: "X-Upstream-Connection", value: String(connection))
        h.add(name: "Keep-Alive", value: "timeout=5")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: h))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(out))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func pump(context: ChannelHandlerContext) {
        let chunk = context.channel.allocator.buffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
        while streaming && remaining > 0 && context.channel.isWritable {
            var part = chunk
            if remaining < part.readableBytes { part = part.getSlice(at: 0, length: remaining) ?? part }
            remaining -= part.readableBytes
            context.write(wrapOutboundOut(.body(.byteBuffer(part))), promise: nil)
        }
        if streaming && remaining == 0 {
            streaming = false
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            context.flush()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if streaming && context.channel.isWritable { pump(context: context) }
    }
}

/// A pass-through stand-in for a TLS client handler: counts the connections it is put on.
final class FakeTLSHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    init(counter: Counter) { counter.increment() }
}

/// A gate that records what it was asked and answers with a closure.
final class RecordingGate: AccessGate {
    let asked = Recorder<GateRequest>()
    let answer: @Sendable (GateRequest) async -> GateVerdict
    /// When set, answers on the event loop (``AccessGate/decideImmediately(_:)``) as `PolicyGate` does for known sessions.
    let immediate: (@Sendable (GateRequest) -> GateVerdict?)?
    init(_ answer: @escaping @Sendable (GateRequest) async -> GateVerdict,
         immediate: (@Sendable (GateRequest) -> GateVerdict?)? = nil) {
        self.answer = answer
        self.immediate = immediate
    }
    func decide(_ request: GateRequest) async -> GateVerdict {
        asked.append(request)
        return await answer(request)
    }
    func decideImmediately(_ request: GateRequest) -> GateVerdict? {
        guard let verdict = immediate?(request) else { return nil }
        asked.append(request)
        return verdict
    }
}

/// Runs blocking work on its own thread so neither the cooperative pool nor
/// Dispatch's (CPU-count wide) worker pool is held up by a blocked test.
func offPool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: work()) }
        thread.start()
    }
}

struct CurlResult: Sendable {
    var exitCode: Int32
    var stdout: String
    var stderr: String
}

/// Runs curl. It waits up to 90 s by default, longer than the proxies' 60 s test gate timeout: the test gates
/// answer from the cooperative pool, which a loaded parallel run can starve for tens of seconds, and a client that
/// gave up first would fail a test for the machine's load (curl prints "000"). Tests of timeouts pass their own
/// `--max-time`, which overrides this one.
func curl(_ arguments: [String]) async -> CurlResult {
    await offPool {
        // posix_spawn, not Foundation's Process (see `spawnAndWait`).
        do {
            let r = try spawnAndWait("/usr/bin/curl", ["-sS", "--max-time", "90"] + arguments)
            return CurlResult(exitCode: r.status, stdout: r.stdoutText, stderr: r.stderrText)
        } catch {
            return CurlResult(exitCode: -1, stdout: "", stderr: "\(error)")
        }
    }
}

/// A blocking TCP client for raw wire tests (smuggling, slow clients).
final class RawClient: @unchecked Sendable {
    // Invariant: used from one test at a time, only through offPool calls awaited in sequence.
    private let fd: Int32

    init?(port: Int) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { Glibc.close(fd); return nil }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads until `until` appears in the text read so far, EOF, or the timeout.
    func receive(until marker: String? = nil) -> (text: String, closed: Bool) {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return (String(decoding: data, as: UTF8.self), n == 0) }
            data.append(contentsOf: buffer[0..<n])
            if let marker, String(decoding: data, as: UTF8.self).contains(marker) {
                return (String(decoding: data, as: UTF8.self), false)
            }
        }
    }

    /// Reads and counts bytes until EOF or the timeout.
    func drain() -> (bytes: Int, closed: Bool) {
        let r = drainKeepingPrefix()
        return (r.bytes, r.closed)
    }

    /// Like `drain`, also keeping the first 512 bytes (for failure messages).
    func drainKeepingPrefix() -> (bytes: Int, closed: Bool, prefix: String) {
        var total = 0
        var prefix: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return (total, n == 0, String(decoding: prefix, as: UTF8.self)) }
            if prefix.count < 512 { prefix += buffer.prefix(min(n, 512 - prefix.count)) }
            total += n
        }
    }

    func sendAsync(_ text: String) async { await offPool { self.send(text) } }
    func receiveAsync(until marker: String? = nil) async -> (text: String, closed: Bool) {
        await offPool { self.receive(until: marker) }
    }
}

/// Starts an upstream and a proxy in front of it; tears both down after `body`.
func withProxy<T: Sendable>(
    threads: Int = 2,
    configure: (inout ProxyConfiguration) -> Void = { _ in },
    gate makeGate: (TestUpstream) -> RecordingGate,
    _ body: (EnforcementPointServer, TestUpstream, RecordingGate) async throws -> T
) async throws -> T {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    let upstream = try await TestUpstream(group: group)
    var config = ProxyConfiguration()
    // The test gates answer from the cooperative pool, which blocking tests in a loaded parallel run can starve
    // for tens of seconds: the 5 s default would turn that into a 503. Tests of the timeout set their own.
    config.gateTimeout = .seconds(60)
    configure(&config)
    let gate = makeGate(upstream)
    let server = EnforcementPointServer(configuration: config, gate: gate, group: group)
    try await server.start()
    do {
        let result = try await body(server, upstream, gate)
        try await server.shutdown()
        await upstream.close()
        try await group.shutdownGracefully()
        return result
    } catch {
        try? await server.shutdown()
        await upstream.close()
        try? await group.shutdownGracefully()
        throw error
    }
}

/// A port bound but never listening: connections to it are refused, and no other test can take it
/// while `DeadPort` lives (a port closed after use could be bound again by a parallel test).
final class DeadPort: @unchecked Sendable {
    // Invariant: the descriptor is closed once, by `release()` or deinit (used from one task at a time).
    private var fd: Int32
    let port: Int
    init() {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = Int(UInt16(bigEndian: addr.sin_port))
    }
    deinit { release() }
    /// Frees the port now, for a test that binds a listener to it right after (the window in which
    /// a parallel test could take it is a few microseconds instead of the whole test).
    func release() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }
    /// Hands the bound descriptor over (to ``TestUpstream/init(group:reviving:)``, which listens on it); this
    /// object no longer closes it.
    func takeDescriptor() -> Int32 {
        let taken = fd
        fd = -1
        return taken
    }
    var upstream: Upstream { Upstream(host: "127.0.0.1", port: port) }
}

/// Starts only the test upstream (for tests that build their own proxy).
func withUpstream<T: Sendable>(_ body: (TestUpstream) async throws -> T) async throws -> T {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let upstream = try await TestUpstream(group: group)
    do {
        let result = try await body(upstream)
        await upstream.close()
        try await group.shutdownGracefully()
        return result
    } catch {
        await upstream.close()
        try? await group.shutdownGracefully()
        throw error
    }
}

/// A WebSocket upgrade request for `/ws` on host `a` (RFC 6455 §4.1), as the raw-socket tests send it.
let webSocketUpgrade = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

func forwardAll(_ upstream: TestUpstream, add: [(String, String)] = []) -> RecordingGate {
    let target = upstream.upstream
    return RecordingGate { _ in .forward(upstream: target, addHeaders: add) }
}

/// Forwards everything, answering on the event loop (`decideImmediately`): an exchange ends and the next
/// pipelined one leases its connection in the same turn.
func forwardAllAtOnce(_ upstream: TestUpstream) -> RecordingGate {
    let target = upstream.upstream
    return RecordingGate({ _ in .forward(upstream: target, addHeaders: []) }, immediate: { _ in .forward(upstream: target, addHeaders: []) })
}

func residentMemoryBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kb = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return kb * 1024
    }
    return 0
}
