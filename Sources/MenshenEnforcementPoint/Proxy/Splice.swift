import NIOCore

/// Moves raw bytes between a client connection and an upstream connection
/// after a protocol upgrade (WebSocket). One instance per side, linked as
/// partners, both on the same event loop. Auto-read is off: a side is read
/// only while its partner is writable. When either side closes, so does the other: when its peer closed, the other
/// side first passes on what it was given (the upstream's last bytes, e.g. a WebSocket close frame, reach a client that
/// reads slowly), for at most ``drainLimit``.
///
/// A close asked of either side (a revocation, the idle timeout, shutdown) unlinks the pair and closes the partner
/// at once, before that side's own close goes on: over TLS the client side's close waits for the peer's close_notify
/// (up to NIOSSL's shutdown timeout) and still passes decrypted bytes up meanwhile — none of them may reach the upstream
/// after the gate said no. The pair is closed after ``ProxyConfiguration/upgradedIdleTimeout`` without a byte either way.
final class SpliceHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    weak var partner: SpliceHandler?
    private var context: ChannelHandlerContext?
    /// Shared by the pair (both sides run on one event loop): the last time a byte moved, and the side that watches it.
    private let activity: SpliceActivity
    /// The last write's completion: a side whose partner's peer closed closes once it is done.
    private var lastWrite: EventLoopFuture<Void>?
    /// How long a side whose partner ended may take to pass on what it was given before it closes anyway.
    static let drainLimit: TimeAmount = .seconds(10)

    init(activity: SpliceActivity) { self.activity = activity }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        activity.stopWatching()
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// Starts reading; the side given `watchIdle` closes the pair after the idle timeout.
    func start(watchIdle: Bool = false) {
        guard let context else { return }
        if watchIdle { activity.watch(on: context.eventLoop) { [weak self] in self?.close() } }
        context.read()
    }

    func write(_ buffer: ByteBuffer) {
        guard let context else { return }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.write(wrapOutboundOut(buffer), promise: written)
        lastWrite = written.futureResult
    }
    func flush() { context?.flush() }
    /// Closes this side (the idle timer, a revocation through the partner): unlinked first, as in
    /// ``close(context:mode:promise:)`` — a close started here does not pass through this handler's own outbound side.
    func close() {
        unlink()
        context?.close(promise: nil)
    }

    /// The partner's peer closed: closes this side once what it was given is written, or after ``drainLimit``. Already
    /// unlinked, so nothing this side reads is forwarded any more.
    private func finish() {
        guard let context else { return }
        guard let last = lastWrite else { return close() }
        context.flush()
        let limit = context.eventLoop.assumeIsolated().scheduleTask(in: Self.drainLimit) { [weak self] in self?.close() }
        last.whenComplete { [weak self] _ in
            limit.cancel()
            self?.close()
        }
    }

    private func readIfPartnerWritable() {
        if partner?.isWritable == true { context?.read() }
    }

    /// Unlinks the pair and closes the partner; nothing read on this side afterwards is forwarded.
    private func unlink() {
        let p = partner
        partner = nil
        p?.partner = nil
        p?.close()
        activity.stopWatching()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let partner else { return }
        activity.touch()
        partner.write(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.flush()
        readIfPartnerWritable()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.readIfPartnerWritable() }
        context.fireChannelWritabilityChanged()
    }

    /// This side's peer closed (or this side was closed: then already unlinked): the partner passes on what it was given, then closes.
    func channelInactive(context: ChannelHandlerContext) {
        let p = partner
        partner = nil
        p?.partner = nil
        activity.stopWatching()
        p?.finish()
        context.fireChannelInactive()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all { unlink() }
        context.close(mode: mode, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        unlink()
        context.close(promise: nil)
    }
}

/// When a spliced pair last moved a byte, and the timer that closes it after `timeout` of silence. Event loop only.
final class SpliceActivity {
    let timeout: TimeAmount
    private var last = NIODeadline.now()
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func touch() { last = .now() }

    func watch(on loop: any EventLoop, close: @escaping () -> Void) {
        timer?.cancel()
        last = .now()
        schedule(on: loop, at: last + timeout, close: close)
    }

    private func schedule(on loop: any EventLoop, at deadline: NIODeadline, close: @escaping () -> Void) {
        timer = loop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            guard let self, self.timer != nil else { return }
            let due = self.last + self.timeout
            if due <= .now() {
                self.timer = nil
                close()
            } else {
                // Moved since: one timer per pair, moved on only when it fires (not on every read).
                self.schedule(on: loop, at: due, close: close)
            }
        }
    }

    func stopWatching() {
        timer?.cancel()
        timer = nil
    }
}
