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
    /// What the connection's codec knows of it (``HTTP1PendingMethods/spoiled``).
    let wire: HTTP1PendingMethods

    init(wire: HTTP1PendingMethods = HTTP1PendingMethods()) { self.wire = wire }

    /// Whether the connection may go back to the pool after a clean exchange: no stray bytes, no failure.
    var isReusable: Bool { !wire.spoiled }

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
        // (Seen by the response decoder at the close that follows: a body read until close is then not whole.)
        wire.spoiled = true
        context.close(promise: nil)
    }
}

/// Keep-alive connections to upstreams, per host:port (and TLS) and per event
/// loop (a connection is always used from the loop of the client it serves, so
/// no byte crosses threads). Bounded: at most `maxConnections` per key, of which
/// at most `maxIdle` idle; when all are leased, up to `maxWaiters` requests wait
/// (in order) for one to be released, and further ones are refused (503).
final class UpstreamPool: Sendable {
    struct Key: Hashable, Sendable {
        var host: String
        var port: Int
        var tls: Bool
        var loop: ObjectIdentifier
    }

    private struct Waiter {
        var upstream: Upstream
        var promise: EventLoopPromise<any Channel>
        var id: UInt64 = 0
    }

    private struct Entry {
        var idle: [any Channel] = []
        var total = 0
        var waiters: [Waiter] = []
    }

    enum LeaseError: Error { case busy, shutDown, noTLSConfigured }

    /// `detached`: connections handed over for good (spliced after an upgrade), no longer counted in their key's total.
    private let state = Mutex<(entries: [Key: Entry], shutDown: Bool, nextWaiter: UInt64, detached: Set<ObjectIdentifier>)>(([:], false, 0, []))
    private let maxConnections: Int
    private let maxIdle: Int
    private let maxWaiters: Int
    private let connectTimeout: TimeAmount
    private let tlsHandler: (@Sendable (Upstream) throws -> any ChannelHandler)?
    private let headLimits: HTTP1Head.Limits

    init(maxConnections: Int, maxIdle: Int, maxWaiters: Int, connectTimeout: TimeAmount,
         tlsHandler: (@Sendable (Upstream) throws -> any ChannelHandler)?, headLimits: HTTP1Head.Limits) {
        self.tlsHandler = tlsHandler
        self.headLimits = headLimits
        self.maxConnections = max(1, maxConnections)
        self.maxIdle = max(0, maxIdle)
        self.maxWaiters = max(0, maxWaiters)
        self.connectTimeout = connectTimeout
    }

    static func key(_ upstream: Upstream, on loop: any EventLoop) -> Key {
        Key(host: upstream.host, port: upstream.port, tls: upstream.tls, loop: ObjectIdentifier(loop))
    }

    /// Number of connections (leased and idle) currently counted for a key.
    func connectionCount(_ key: Key) -> Int { state.withLock { $0.entries[key]?.total ?? 0 } }

    /// An idle connection on `loop`, if there is one (the common case under load, without a future).
    func takeIdle(_ upstream: Upstream, on loop: any EventLoop) -> (any Channel)? {
        if upstream.tls && tlsHandler == nil { return nil }
        let key = Self.key(upstream, on: loop)
        return state.withLock { s in
            guard !s.shutDown, s.entries[key]?.idle.isEmpty == false else { return nil }
            // In place (`default:`): copying the entry out and back would copy its arrays on every lease.
            while let channel = s.entries[key, default: Entry()].idle.popLast() {
                if channel.isActive { return channel }
            }
            return nil
        }
    }

    /// An idle connection, a new one, or the next one released, on `loop`.
    func lease(_ upstream: Upstream, on loop: any EventLoop) -> EventLoopFuture<any Channel> {
        let key = Self.key(upstream, on: loop)
        if upstream.tls && tlsHandler == nil { return loop.makeFailedFuture(LeaseError.noTLSConfigured) }
        enum Decision { case reuse(any Channel), connect, wait(EventLoopPromise<any Channel>, UInt64), busy, shutDown }
        let decision: Decision = state.withLock { s in
            if s.shutDown { return .shutDown }
            while let channel = s.entries[key, default: Entry()].idle.popLast() {
                if channel.isActive { return .reuse(channel) }
            }
            if s.entries[key, default: Entry()].total < maxConnections {
                s.entries[key, default: Entry()].total += 1
                return .connect
            }
            guard s.entries[key, default: Entry()].waiters.count < maxWaiters else { return .busy }
            let promise = loop.makePromise(of: (any Channel).self)
            s.nextWaiter += 1
            s.entries[key, default: Entry()].waiters.append(Waiter(upstream: upstream, promise: promise, id: s.nextWaiter))
            return .wait(promise, s.nextWaiter)
        }
        switch decision {
        case .reuse(let channel): return loop.makeSucceededFuture(channel)
        case .busy: return loop.makeFailedFuture(LeaseError.busy)
        case .shutDown: return loop.makeFailedFuture(LeaseError.shutDown)
        case .wait(let promise, let id):
            // A waiter is bounded too: after the connect timeout it gets 503 instead of waiting on.
            loop.scheduleTask(in: connectTimeout) {
                let expired: Bool = self.state.withLock { s in
                    guard var entry = s.entries[key], let i = entry.waiters.firstIndex(where: { $0.id == id }) else { return false }
                    entry.waiters.remove(at: i)
                    s.entries[key] = entry
                    return true
                }
                if expired { promise.fail(LeaseError.busy) }
            }
            return promise.futureResult
        case .connect: return connect(upstream, key: key, on: loop)
        }
    }

    /// Opens a connection already counted in `total`.
    private func connect(_ upstream: Upstream, key: Key, on loop: any EventLoop) -> EventLoopFuture<any Channel> {
        let tlsHandler = upstream.tls ? self.tlsHandler : nil, headLimits = self.headLimits
        let connect = ClientBootstrap(group: loop)
            .connectTimeout(connectTimeout)
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsHandler { try channel.pipeline.syncOperations.addHandler(tlsHandler(upstream)) }
                    // The enforcement point's own codec (`HTTP1Codec`); the request head is built by
                    // `ClientHandler.upstreamHead` from fields `HTTP1Head` parsed and values it checks.
                    let pending = HTTP1PendingMethods()
                    try channel.pipeline.syncOperations.addHandler(HTTP1RequestEncoder(pending: pending))
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(HTTP1ResponseDecoder(limits: headLimits, pending: pending)))
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler(wire: pending))
                }
            }
            .connect(host: upstream.host, port: upstream.port)
        connect.whenComplete { result in
            switch result {
            case .success(let channel):
                channel.closeFuture.whenComplete { _ in self.forget(channel, key: key) }
            case .failure(let error):
                // With no connection left that could be released, waiters would wait in vain.
                let stranded: [Waiter] = self.state.withLock { s in
                    guard var entry = s.entries[key] else { return [] }
                    entry.total -= 1
                    var out: [Waiter] = []
                    if entry.total == 0 { swap(&out, &entry.waiters) }
                    s.entries[key] = entry
                    return out
                }
                for waiter in stranded { waiter.promise.fail(error) }
            }
        }
        return connect
    }

    /// Returns a connection whose exchange completed cleanly: to the first
    /// waiter, else to the idle list; closes it when the pool is full or shut down.
    func release(_ channel: any Channel, upstream: Upstream) {
        let key = Self.key(upstream, on: channel.eventLoop)
        enum Outcome { case handOver(Waiter), keep, close }
        let outcome: Outcome = state.withLock { s in
            guard !s.shutDown, channel.isActive, s.entries[key] != nil else { return .close }
            if s.entries[key]?.waiters.isEmpty == false { return .handOver(s.entries[key, default: Entry()].waiters.removeFirst()) }
            guard (s.entries[key]?.idle.count ?? 0) < maxIdle else { return .close }
            s.entries[key, default: Entry()].idle.append(channel)   // in place (see takeIdle)
            return .keep
        }
        switch outcome {
        case .handOver(let waiter): waiter.promise.succeed(channel)
        case .keep: channel.read()   // keep one read pending so that a close by the upstream is seen
        case .close: channel.close(promise: nil)
        }
    }

    /// Stops counting a leased connection that will never come back (spliced after a protocol upgrade, it lives as long
    /// as its WebSocket): a pool's slots are for request/response exchanges, and long-lived tunnels holding them would
    /// make every other request to the upstream wait and then fail (503). The slot goes to the first waiter, if any.
    /// Such connections are bounded by the client connections they serve (``ProxyConfiguration/maxClientConnections``).
    /// Called on the connection's event loop while it is open (its close, and so ``forget(_:key:)``, comes later).
    func detach(_ channel: any Channel, upstream: Upstream) {
        channel.eventLoop.preconditionInEventLoop()
        guard channel.isActive else { return }   // closing already: forget(_:key:) frees the slot
        let key = Self.key(upstream, on: channel.eventLoop)
        let next: Waiter? = state.withLock { s in
            guard s.entries[key] != nil, s.detached.insert(ObjectIdentifier(channel)).inserted else { return nil }
            return Self.freeSlot(&s, key: key, channel: channel)
        }
        open(for: next, key: key)
    }

    private func forget(_ channel: any Channel, key: Key) {
        // A closed connection frees a slot (unless it was detached, which freed it already): open one for the first
        // waiter, if any.
        let next: Waiter? = state.withLock { s in
            if s.detached.remove(ObjectIdentifier(channel)) != nil { return nil }
            return Self.freeSlot(&s, key: key, channel: channel)
        }
        open(for: next, key: key)
    }

    /// Opens a connection, already counted, for the waiter that got a freed slot.
    private func open(for waiter: Waiter?, key: Key) {
        guard let waiter else { return }
        connect(waiter.upstream, key: key, on: waiter.promise.futureResult.eventLoop).cascade(to: waiter.promise)
    }

    /// Takes `channel` out of `key`'s count; returns the waiter that gets the slot (already counted again), if any.
    private static func freeSlot(_ s: inout (entries: [Key: Entry], shutDown: Bool, nextWaiter: UInt64, detached: Set<ObjectIdentifier>),
                                 key: Key, channel: any Channel) -> Waiter? {
        guard var entry = s.entries[key] else { return nil }
        defer { s.entries[key] = entry.total == 0 && entry.idle.isEmpty && entry.waiters.isEmpty ? nil : entry }
        entry.total -= 1
        entry.idle.removeAll { $0 === channel }
        guard !s.shutDown, !entry.waiters.isEmpty else { return nil }
        entry.total += 1
        return entry.waiters.removeFirst()
    }

    /// Closes idle connections, fails waiters and refuses new leases.
    func shutdown() {
        let (idle, waiters): ([any Channel], [Waiter]) = state.withLock { s in
            s.shutDown = true
            let idle = s.entries.values.flatMap(\.idle)
            let waiters = s.entries.values.flatMap(\.waiters)
            for key in s.entries.keys { s.entries[key]?.waiters = [] }
            return (idle, waiters)
        }
        for channel in idle { channel.close(promise: nil) }
        for waiter in waiters { waiter.promise.fail(LeaseError.shutDown) }
    }
}
