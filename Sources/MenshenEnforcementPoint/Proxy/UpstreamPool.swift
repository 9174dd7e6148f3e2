import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Receives what happens on a leased upstream connection. Called on the
/// connection's event loop, which is always the client connection's loop.
protocol UpstreamDelegate: AnyObject {
    func upstreamReceived(_ part: HTTPClientResponsePart)
    func upstreamReadComplete()
    func upstreamWritabilityChanged()
    func upstreamClosed()
}

/// The last handler of an upstream connection's pipeline. Auto-read is off:
/// it reads only when its delegate (the client side) can take more, and while
/// idle in the pool it keeps one read pending so a close is noticed.
final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    weak var delegate: (any UpstreamDelegate)?
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func send(_ part: HTTPClientRequestPart, flush: Bool) {
        guard let context else { return }
        context.write(wrapOutboundOut(part), promise: nil)
        if flush { context.flush() }
    }

    func flush() { context?.flush() }
    func read() { context?.read() }
    func close() { context?.close(promise: nil) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let delegate {
            delegate.upstreamReceived(unwrapInboundIn(data))
        } else {
            context.close(promise: nil)   // an idle connection must not talk
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let delegate { delegate.upstreamReadComplete() } else { context.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let d = delegate
        delegate = nil
        d?.upstreamClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Keep-alive connections to upstreams, per host:port and per event loop
/// (a connection is always used from the loop of the client it serves, so no
/// byte crosses threads). Bounded: at most `maxConnections` per key, of which
/// at most `maxIdle` idle.
final class UpstreamPool: Sendable {
    struct Key: Hashable, Sendable {
        var host: String
        var port: Int
        var tls: Bool
        var loop: ObjectIdentifier
    }

    private struct Entry {
        var idle: [any Channel] = []
        var total = 0
    }

    enum LeaseError: Error { case busy, shutDown, noTLSConfigured }

    private let state = Mutex<(entries: [Key: Entry], shutDown: Bool)>(([:], false))
    private let maxConnections: Int
    private let maxIdle: Int
    private let connectTimeout: TimeAmount
    private let tlsHandler: (@Sendable (Upstream) throws -> any ChannelHandler)?

    init(maxConnections: Int, maxIdle: Int, connectTimeout: TimeAmount,
         tlsHandler: (@Sendable (Upstream) throws -> any ChannelHandler)?) {
        self.tlsHandler = tlsHandler
        self.maxConnections = max(1, maxConnections)
        self.maxIdle = max(0, maxIdle)
        self.connectTimeout = connectTimeout
    }

    static func key(_ upstream: Upstream, on loop: any EventLoop) -> Key {
        Key(host: upstream.host, port: upstream.port, tls: upstream.tls, loop: ObjectIdentifier(loop))
    }

    /// Number of connections (leased and idle) currently counted for a key.
    func connectionCount(_ key: Key) -> Int { state.withLock { $0.entries[key]?.total ?? 0 } }

    /// An idle connection, or a new one, on `loop`.
    func lease(_ upstream: Upstream, on loop: any EventLoop) -> EventLoopFuture<any Channel> {
        let key = Self.key(upstream, on: loop)
        if upstream.tls && tlsHandler == nil { return loop.makeFailedFuture(LeaseError.noTLSConfigured) }
        let tlsHandler = upstream.tls ? self.tlsHandler : nil
        enum Decision { case reuse(any Channel), connect, busy, shutDown }
        let decision: Decision = state.withLock { s in
            if s.shutDown { return .shutDown }
            var entry = s.entries[key] ?? Entry()
            defer { s.entries[key] = entry }
            while let channel = entry.idle.popLast() {
                if channel.isActive { return .reuse(channel) }
            }
            guard entry.total < maxConnections else { return .busy }
            entry.total += 1
            return .connect
        }
        switch decision {
        case .reuse(let channel): return loop.makeSucceededFuture(channel)
        case .busy: return loop.makeFailedFuture(LeaseError.busy)
        case .shutDown: return loop.makeFailedFuture(LeaseError.shutDown)
        case .connect: break
        }
        let connect = ClientBootstrap(group: loop)
            .connectTimeout(connectTimeout)
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsHandler { try channel.pipeline.syncOperations.addHandler(tlsHandler(upstream)) }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(leftOverBytesStrategy: .forwardBytes)
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler())
                }
            }
            .connect(host: upstream.host, port: upstream.port)
        connect.whenComplete { result in
            switch result {
            case .success(let channel):
                channel.closeFuture.whenComplete { _ in self.forget(channel, key: key) }
            case .failure:
                self.state.withLock { s in s.entries[key]?.total -= 1 }
            }
        }
        return connect
    }

    /// Returns a connection whose exchange completed cleanly; closes it when
    /// the pool is full or shut down.
    func release(_ channel: any Channel, upstream: Upstream) {
        let key = Self.key(upstream, on: channel.eventLoop)
        let keep: Bool = state.withLock { s in
            guard !s.shutDown, channel.isActive, var entry = s.entries[key], entry.idle.count < maxIdle else { return false }
            entry.idle.append(channel)
            s.entries[key] = entry
            return true
        }
        if keep {
            // Keep one read pending so that a close by the upstream is seen.
            channel.read()
        } else {
            channel.close(promise: nil)
        }
    }

    private func forget(_ channel: any Channel, key: Key) {
        state.withLock { s in
            guard var entry = s.entries[key] else { return }
            entry.total -= 1
            entry.idle.removeAll { $0 === channel }
            s.entries[key] = entry.total == 0 && entry.idle.isEmpty ? nil : entry
        }
    }

    /// Closes idle connections and refuses new leases.
    func shutdown() {
        let idle: [any Channel] = state.withLock { s in
            s.shutDown = true
            return s.entries.values.flatMap(\.idle)
        }
        for channel in idle { channel.close(promise: nil) }
    }
}
