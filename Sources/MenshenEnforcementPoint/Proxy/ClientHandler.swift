import Logging
import NIOCore
import NIOHTTP1

/// One request/response exchange on a client connection. Event-loop bound.
final class Exchange {
    enum Phase { case deciding, connecting, forwarding, done }

    let id: String
    let head: HTTPRequestHead
    /// The request's headers, lower-cased and classified once.
    let headers: HeaderRules.Classified
    let framing: RequestValidator.Framing
    let gateRequest: GateRequest
    var phase: Phase = .deciding
    var pendingBody: [ByteBuffer] = []
    var requestEnded = false
    var requestEndSent = false
    var requestBodyBytes: Int64 = 0
    var upstream: Upstream?
    var upstreamChannel: (any Channel)?
    var upstreamHandler: UpstreamHandler?
    var responseHeadSent = false
    var upstreamKeepAlive = true
    var skippingInformational = false
    /// Decided when the response head is written: the client connection closes after this response.
    var closeClientAfterResponse = false
    /// The allowed protocol the client asked to upgrade to, if any.
    var upgrade: String?
    /// The upstream's 101 head, held until its end arrives and the connection is spliced.
    var switching: HTTPResponseHead?
    var gateTask: Task<Void, Never>?
    /// While the gate is asked off the event loop: when it counts as unavailable.
    var gateDeadline: NIODeadline?
    /// Once the request went upstream: when the response head must have arrived.
    var headerDeadline: NIODeadline?
    var lastActivity = NIODeadline.now()

    init(id: String, head: HTTPRequestHead, headers: HeaderRules.Classified, framing: RequestValidator.Framing, gateRequest: GateRequest) {
        self.id = id
        self.head = head
        self.headers = headers
        self.framing = framing
        self.gateRequest = gateRequest
        clientKeepAlive = HTTP1Framing.keepAlive(head)
        askedUpgrade = headers.fields.contains { $0.lower == "upgrade" }
    }

    /// The client's connection may carry another request after this one (read once from its head).
    let clientKeepAlive: Bool
    /// The request has an `Upgrade` field (allowed or not: the connection is not reused after the response).
    let askedUpgrade: Bool

    /// Stops what the exchange still waits for (its deadlines are the connection's watchdog's business).
    func cancelTimers() {
        gateDeadline = nil
        headerDeadline = nil
        gateTask?.cancel()
    }
}

/// The client side of the proxy: validates, asks the gate, streams to and from
/// an upstream. Auto-read is off on the client channel: the client is read only
/// while waiting for a request head, or while streaming a body to an upstream
/// that is writable.
final class ClientHandler: ChannelInboundHandler, UpstreamDelegate {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let shared: ProxyShared
    private var context: ChannelHandlerContext?
    private var exchange: Exchange?
    private var closing = false
    /// After a protocol upgrade the connection belongs to a ``SpliceHandler``.
    private var spliced = false
    /// One timer per connection for every deadline (keep-alive, gate, response head, idle): it is moved
    /// only to an earlier time, and when it fires it acts on the deadlines that passed and sets itself for
    /// the next one. Requests that finish in time therefore schedule and cancel nothing.
    private var watchdog: Scheduled<Void>?
    private var watchdogAt: NIODeadline?
    /// Since when the connection has been waiting for its next request (the keep-alive timeout's start).
    private var idleSince = NIODeadline.now()
    private var upstreamNeedsFlush = false
    /// Pipelined input that arrived while an earlier request's response was still pending, in order
    /// (delivered when that response ends). Bounded: the client is not read while it is non-empty, so it holds
    /// at most what the reads before held (NIO's pipelining handler buffered the same way).
    private var queued: [Queued] = []
    private var deliveringQueued = false
    private enum Queued {
        case part(HTTPServerRequestPart)
        /// The decoder refused what followed: answered with 400 once the responses before it are written.
        case malformed(HTTP1WireError)
    }
    /// This connection's entry in the server's table of live connections.
    private let connection: LiveConnection
    /// This handler serves one HTTP/2 stream (through the HTTP/1 codec): no connection-level headers.
    private let http2: Bool
    private var started = false

    init(shared: ProxyShared, connection: LiveConnection, http2: Bool = false) {
        self.shared = shared
        self.connection = connection
        self.http2 = http2
    }

    /// The peer's address as text, formatted once per connection (not per request).
    private var peerAddress: String??

    private func clientAddress(_ context: ChannelHandlerContext) -> String? {
        if let known = peerAddress { return known }
        // A dual-stack listener reports an IPv4 client as `::ffff:a.b.c.d`: the gate, the zones, Cedar's `ip` and the
        // audit see the IPv4 address (Cedar's ip() does not read the mapped form: every such request was refused).
        let text = context.channel.remoteAddress?.ipAddress.map(Self.unmappedIPv4)
        peerAddress = .some(text)
        return text
    }

    /// `::ffff:a.b.c.d` (an IPv4 client on a dual-stack socket) as `a.b.c.d`; anything else as it is.
    static func unmappedIPv4(_ address: String) -> String {
        guard address.utf8.count > 7, address.prefix(7).lowercased() == "::ffff:" else { return address }
        let tail = address.dropFirst(7)
        let parts = tail.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts.allSatisfy({ p in !p.isEmpty && p.count <= 3 && p.allSatisfy(\.isASCII) && p.allSatisfy(\.isNumber)
                                                     && (Int(p) ?? 256) <= 255 }) else { return address }
        return String(tail)
    }

    private var config: ProxyConfiguration { shared.configuration }
    private var logger: Logger { shared.logger }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // Added after TLS and ALPN, the connection is already active.
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        idleSince = .now()
        watchDeadlines()
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        stopWatchdog()
        if let ex = exchange {
            ex.cancelTimers()
            ex.upstreamHandler?.delegate = nil
            ex.upstreamChannel?.close(promise: nil)   // a half-done exchange is not reusable
            exchange = nil
        }
        shared.connectionClosed(connection)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if closing || spliced { return }
        let part = unwrapInboundIn(data)
        // A request that follows one whose response is pending waits for that response (HTTP/1.1 pipelining); so
        // does one that would start while the client is not reading what it was sent (its answers would pile up).
        if !http2, !queued.isEmpty || exchange?.requestEnded == true || (exchange == nil && !context.channel.isWritable) {
            queued.append(.part(part))
            return
        }
        received(part, context: context)
    }

    private func received(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head): receivedHead(head, context: context)
        case .body(let buffer): receivedBody(buffer)
        case .end: receivedEnd()
        }
    }

    /// Hands queued pipelined input on once the response before it is written: up to the end of the next
    /// request (its response then pending) or all of it. Not re-entered when a request is answered at once.
    private func deliverQueued() {
        guard !deliveringQueued, let context else { return }
        deliveringQueued = true
        defer { deliveringQueued = false }
        // A new request starts only while the client reads its answers (the rest waits for channelWritabilityChanged).
        while !queued.isEmpty, !closing, !spliced, exchange?.requestEnded != true, exchange != nil || context.channel.isWritable {
            switch queued.removeFirst() {
            case .part(let part): received(part, context: context)
            case .malformed(let error): malformedRequest(error)
            }
        }
        // As at the end of a read: body parts handed on are flushed, and the rest of a body that did not arrive
        // with the queued parts is read (the exchange may have started forwarding while they were handed on).
        if upstreamNeedsFlush {
            upstreamNeedsFlush = false
            exchange?.upstreamHandler?.flush()
        }
        readClientIfWanted()
    }

    /// The request decoder refused the bytes (``HTTP1WireError``): 400 (431 for a head over the limits, 501 for
    /// a transfer coding other than chunked, as ``RequestValidator`` answers them) if no response has started, then close.
    private func malformedRequest(_ error: HTTP1WireError) {
        let refusal: ProxyRefusal = switch error {
        case .head(.headTooLarge), .head(.tooManyFields): .headersTooLarge
        case .framing(.unsupportedTransferCoding): .notImplemented("transfer coding")
        default: .badRequest("malformed request")
        }
        guard let ex = exchange else { return refuse(refusal, requestID: shared.makeRequestID(), head: nil) }
        shared.metrics.bump(\.refusedBeforeGate)
        if ex.responseHeadSent { return closeClient() }
        respondRefusal(refusal, ex: ex)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if upstreamNeedsFlush {
            upstreamNeedsFlush = false
            exchange?.upstreamHandler?.flush()
        }
        readClientIfWanted()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let ex = exchange, ex.phase == .forwarding {
            ex.upstreamHandler?.read()
        } else if context.channel.isWritable, exchange == nil {
            deliverQueued()   // the requests held while the client did not read, then reading on
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("client connection error", metadata: ["error": "\(error)"])
        // (A client gone mid-request also shows as a parse error: the decoder's end of input came mid-message.)
        guard let wireError = error as? HTTP1WireError, !closing, !spliced, context.channel.isActive else { return closeClient() }
        // After the responses to the requests before it (pipelined ones too), like NIO's protocol error handler
        // behind its pipelining handler; a request still being read is the one refused.
        if !http2, !queued.isEmpty || exchange?.requestEnded == true {
            queued.append(.malformed(wireError))
        } else {
            malformedRequest(wireError)
        }
    }

    // MARK: Request side

    private func receivedHead(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard exchange == nil else { return closeClient() }   // pipelined heads are queued (channelRead)
        let requestID = shared.makeRequestID()
        shared.metrics.bump(\.requests)

        let framing: RequestValidator.Framing
        switch RequestValidator.validate(head, config: config, http2: http2) {
        case .success(let f): framing = f
        case .failure(let refusal): return refuse(refusal, requestID: requestID, head: head)
        }
        let target: PathNormalizer.Normalized
        switch PathNormalizer.normalize(head.uri) {
        case .success(let t): target = t
        case .failure(let why): return refuse(.badRequest("request target (\(why))"), requestID: requestID, head: head)
        }

        let headers = HeaderRules.Classified(head.headers.map { ($0.name, $0.value) }, extraIdentity: config.extraIdentityHeaders)
        let upgrade = requestedUpgrade(head, headers: headers, framing: framing)
        let gateRequest = GateRequest(head: head, headers: headers, target: target, clientAddress: clientAddress(context),
                                      scheme: config.scheme ?? (config.tlsHandler == nil ? "http" : "https"),
                                      requestID: requestID, upgrade: upgrade,
                                      connectionAttributes: config.connectionAttributes?(http2 ? (context.channel.parent ?? context.channel) : context.channel) ?? [:])
        let ex = Exchange(id: requestID, head: head, headers: headers, framing: framing, gateRequest: gateRequest)
        ex.upgrade = upgrade
        exchange = ex
        connection.noteRequest(gateRequest, sweeps: shared.sweeps)
        watchDeadlines()   // the idle deadline may come before the keep-alive one the watchdog waits for

        let gate = shared.gate
        // A gate that can answer without waiting does so here, on the event loop.
        if let verdict = gate.decideImmediately(gateRequest) {
            shared.metrics.bump(\.gateImmediate)
            return gateDecided(ex, verdict)
        }
        // Otherwise ask it off the event loop and come back with the verdict.
        let loop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        let boundExchange = NIOLoopBound(ex, eventLoop: loop)
        ex.gateTask = Task {
            let verdict = await gate.decide(gateRequest)
            loop.execute { bound.value.gateDecided(boundExchange.value, verdict) }
        }
        ex.gateDeadline = .now() + config.gateTimeout
        watchDeadlines()
    }

    /// The protocol of an allowed upgrade request (`GET`, no body, `Connection: upgrade`).
    private func requestedUpgrade(_ head: HTTPRequestHead, headers: HeaderRules.Classified, framing: RequestValidator.Framing) -> String? {
        guard head.method == .GET, framing == .none, headers.listed.contains("upgrade"),
              headers.count("upgrade") == 1, let value = headers.first("upgrade")
        else { return nil }
        let proto = value.split(separator: "/").first.map { $0.trimmingASCIISpaces().lowercased() } ?? ""
        return config.allowedUpgrades.contains(proto) ? proto : nil
    }

    private func receivedBody(_ buffer: ByteBuffer) {
        guard let ex = exchange, ex.phase != .done else { return }
        // A body on a request framed as bodiless (an HTTP/2 GET with DATA frames and no
        // content-length) has no framing towards the upstream: sent on, it would be read there as a
        // second request that no decision covered. Refuse it.
        if ex.framing == .none, buffer.readableBytes > 0 {
            logger.warning("body on a request without framing refused", metadata: ["request_id": "\(ex.id)"])
            if ex.responseHeadSent { return closeClient() }
            return respondRefusal(.badRequest("a body without Content-Length or Transfer-Encoding"), ex: ex)
        }
        ex.lastActivity = .now()
        ex.requestBodyBytes += Int64(buffer.readableBytes)
        if ex.requestBodyBytes > config.maxRequestBodyBytes {
            if ex.responseHeadSent { return closeClient() }
            return respondRefusal(.payloadTooLarge, ex: ex)
        }
        switch ex.phase {
        case .forwarding:
            ex.upstreamHandler?.send(.body(.byteBuffer(buffer)), flush: false)
            upstreamNeedsFlush = true
        case .deciding, .connecting:
            ex.pendingBody.append(buffer)
        case .done:
            break
        }
    }

    private func receivedEnd() {
        guard let ex = exchange, ex.phase != .done else { return }
        ex.requestEnded = true
        ex.lastActivity = .now()
        if ex.phase == .forwarding { sendRequestEnd(ex) }
    }

    private func sendRequestEnd(_ ex: Exchange) {
        guard !ex.requestEndSent else { return }
        ex.requestEndSent = true
        upstreamNeedsFlush = false
        ex.upstreamHandler?.send(.end(nil), flush: true)
        guard !ex.responseHeadSent, exchange === ex else { return }
        ex.headerDeadline = .now() + config.responseHeaderTimeout
        watchDeadlines()
    }

    private func readClientIfWanted() {
        guard !closing, !spliced, let context, queued.isEmpty else { return }
        // Between requests, the client is read only while it reads what it is sent: a client that pipelines requests
        // and never reads must not make answers pile up without bound.
        guard let ex = exchange else {
            if context.channel.isWritable { context.read() }
            return
        }
        if ex.phase == .forwarding, !ex.requestEnded, ex.upstreamHandler?.isWritable == true {
            context.read()
        }
    }

    // MARK: Gate

    private func gateDecided(_ ex: Exchange, _ verdict: GateVerdict) {
        guard exchange === ex, ex.phase == .deciding, !closing else { return }
        ex.gateDeadline = nil
        ex.lastActivity = .now()
        switch verdict {
        case .respond(let status, let headers, let body):
            shared.metrics.bump(\.gateResponded)
            guard (200...599).contains(status), body.isEmpty || ![204, 205, 304].contains(status) else {
                // Fail closed: a verdict that cannot be written as a final response is a deny.
                logger.error("gate answered an unusable status", metadata: ["request_id": "\(ex.id)", "status": "\(status)"])
                return respondRefusal(.gateUnavailable, ex: ex)
            }
            respondLocally(ex: ex, status: status, headers: headers, body: body)
        case .forward(let upstreams, let addHeaders):
            shared.metrics.bump(\.gateForwarded)
            guard !upstreams.isEmpty else {
                logger.error("gate forwarded to no upstream", metadata: ["request_id": "\(ex.id)"])
                return respondRefusal(.upstreamUnavailable, ex: ex)
            }
            // A Host the gate sets is written upstream as it is: it must be a valid Host value (fail closed).
            guard upstreams.allSatisfy({ $0.hostHeader.map(RequestValidator.isValidHost) ?? true }) else {
                logger.error("gate forwarded with an invalid Host for the upstream", metadata: ["request_id": "\(ex.id)"])
                return respondRefusal(.upstreamUnavailable, ex: ex)
            }
            connect(ex, to: shared.health.ordered(upstreams)[...], addHeaders: addHeaders)
        }
    }

    // MARK: Upstream

    /// Connects to the first of `candidates` that answers; a connection that cannot be made (nothing
    /// was sent yet, so any method may be retried) marks that upstream down and tries the next.
    private func connect(_ ex: Exchange, to candidates: ArraySlice<Upstream>, addHeaders: [(String, String)]) {
        guard let context, let upstream = candidates.first else { return }
        ex.phase = .connecting
        ex.upstream = upstream
        // An idle pooled connection is taken at once; otherwise one is opened or waited for.
        if let idle = shared.pool.takeIdle(upstream, on: context.eventLoop) {
            return connected(ex, channel: idle, upstream: upstream, addHeaders: addHeaders)
        }
        shared.pool.lease(upstream, on: context.eventLoop).assumeIsolated().whenComplete { [weak self] result in
            guard let self else {
                if case .success(let channel) = result { channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let channel):
                self.connected(ex, channel: channel, upstream: upstream, addHeaders: addHeaders)
            case .failure(let error):
                guard self.exchange === ex, ex.phase == .connecting else { return }
                self.logger.info("upstream connect failed", metadata: ["request_id": "\(ex.id)", "upstream": "\(upstream)", "error": "\(error)"])
                let busy: Bool = if case UpstreamPool.LeaseError.busy = error { true } else { false }
                if !busy {
                    self.shared.health.markDown(upstream)
                    if candidates.count > 1 {
                        self.shared.metrics.bump(\.upstreamFailovers)
                        return self.connect(ex, to: candidates.dropFirst(), addHeaders: addHeaders)
                    }
                }
                if case UpstreamPool.LeaseError.busy = error {
                    self.respondRefusal(.upstreamBusy, ex: ex)
                } else if case ChannelError.connectTimeout(_) = error {
                    self.respondRefusal(.upstreamTimeout, ex: ex)
                } else {
                    self.respondRefusal(.upstreamUnavailable, ex: ex)
                }
            }
        }
    }

    private func connected(_ ex: Exchange, channel: any Channel, upstream: Upstream, addHeaders: [(String, String)]) {
        guard exchange === ex, ex.phase == .connecting, !closing,
              let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
        else {
            // The exchange went away meanwhile (timeout, client gone): the connection is unused, keep it.
            shared.pool.release(channel, upstream: upstream)
            return
        }
        ex.upstreamChannel = channel
        ex.upstreamHandler = handler
        handler.delegate = self
        ex.phase = .forwarding
        ex.lastActivity = .now()
        connection.noteForwarding(since: ex.lastActivity)
        recheckIfSwept()

        // The gate approved: a client waiting for `100 Continue` may now send its body.
        // (Expect is not forwarded; upstream informational responses are dropped; an HTTP/1.0 client gets no
        // interim response, RFC 9110 §15.2.)
        if !ex.requestEnded, ex.head.version != .http1_0,
           ex.headers.fields.contains(where: { $0.kind == .expect && HeaderRules.name($0.value, equalsLowercased: "100-continue") }),
           let context {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: ex.head.version, status: .continue))),
                                  promise: nil)
        }
        handler.send(.head(upstreamHead(ex, upstream: upstream, addHeaders: addHeaders)), flush: false)
        for buffer in ex.pendingBody { handler.send(.body(.byteBuffer(buffer)), flush: false) }
        ex.pendingBody.removeAll()
        if ex.requestEnded { sendRequestEnd(ex) } else { handler.flush() }
        handler.read()
        readClientIfWanted()
    }

    /// A re-evaluation after a change started while this connection's request was being decided (or waited for an
    /// upstream): the decision may predate the change and the sweep skipped the connection (it was not long-lived
    /// yet), so it is asked again now, off the event loop; closed if no longer allowed.
    private func recheckIfSwept() {
        guard connection.sweptSinceRequest(shared.sweeps) else { return }
        let shared = self.shared, connection = self.connection
        let info = connection.info.withLock { $0 }
        guard info.lastRequest != nil else { return }
        Task { await shared.reauthorize([(connection, info)]) }
    }

    private func upstreamHead(_ ex: Exchange, upstream: Upstream, addHeaders: [(String, String)]) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(ex.headers.fields.count + 8)
        // Only end-to-end headers the client may set pass: not hop-by-hop or Connection-listed ones, not
        // forwarding or identity headers (the proxy and the gate set those), not Host, Expect or framing.
        // Cookie fields become one, without the platform's own cookies (``HeaderRules/upstreamCookieLine(_:ownCookies:)``);
        // the order of different field names carries no meaning.
        var cookies: [String] = []
        for field in ex.headers.fields where field.kind == .other && !ex.headers.isHopByHop(field) {
            if field.lower == "cookie" { cookies.append(field.value); continue }
            headers.add(name: field.name, value: field.value)
        }
        if let line = HeaderRules.upstreamCookieLine(cookies, ownCookies: config.ownCookies) { headers.add(name: "Cookie", value: line) }
        headers.add(name: "Host", value: upstream.hostHeader ?? ex.gateRequest.host)
        if let client = ex.gateRequest.clientAddress { headers.add(name: "X-Forwarded-For", value: client) }
        headers.add(name: "X-Forwarded-Proto", value: ex.gateRequest.scheme)
        headers.add(name: "X-Forwarded-Host", value: ex.gateRequest.host)
        headers.add(name: "Via", value: shared.via(ex.head.version))
        headers.add(name: "X-Menshen-Request-Id", value: ex.id)
        for (name, value) in addHeaders {
            let n = HeaderRules.lowercased(name)
            // The gate adds identity, not framing: anything that would change how the
            // message is delimited or routed is ignored.
            guard Self.isValidHeader(name, value), !HeaderRules.hopByHop.contains(n),
                  n != "content-length", n != "host"
            else {
                logger.warning("ignored a header from the gate", metadata: ["request_id": "\(ex.id)", "header": "\(name)"])
                continue
            }
            headers.add(name: name, value: value)
        }
        if ex.upgrade != nil, let value = ex.head.headers["upgrade"].first {
            headers.add(name: "Connection", value: "Upgrade")
            headers.add(name: "Upgrade", value: value)
        }
        switch ex.framing {
        case .chunked: headers.add(name: "Transfer-Encoding", value: "chunked")
        case .contentLength(let n): headers.add(name: "Content-Length", value: String(n))
        // A method whose content means something gets an explicit empty body, as user agents send it (RFC 9110 §8.6).
        case .none where ex.head.method == .POST || ex.head.method == .PUT || ex.head.method == .PATCH:
            headers.add(name: "Content-Length", value: "0")
        case .none: break
        }
        return HTTPRequestHead(version: .http1_1, method: ex.head.method, uri: PathNormalizer.Normalized(
            path: ex.gateRequest.path, query: ex.gateRequest.query).target, headers: headers)
    }

    func upstreamReceived(_ part: HTTPClientResponsePart) {
        guard let ex = exchange, ex.phase == .forwarding, let context else { return }
        ex.lastActivity = .now()
        switch part {
        case .head(let head):
            if head.status == .switchingProtocols && ex.upgrade != nil {
                ex.headerDeadline = nil
                ex.switching = head
                return
            }
            if head.status.code < 200 {   // informational: not passed on (Expect is not forwarded)
                ex.skippingInformational = true
                return
            }
            ex.headerDeadline = nil
            ex.responseHeadSent = true
            // An answer that starts before the whole request was sent (an early 401 or 413): the upstream may read
            // the rest of the body later as a request of its own, which the gate never saw, and answer it to whoever
            // uses the connection next — so the connection is not pooled.
            ex.upstreamKeepAlive = HTTP1Framing.keepAlive(head) && ex.requestEndSent
            context.write(wrapOutboundOut(.head(clientResponseHead(head, ex: ex))), promise: nil)
        case .body(let buffer):
            guard !ex.skippingInformational else { return }
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case .end:
            if let switching = ex.switching { return switchProtocols(ex, head: switching) }
            if ex.skippingInformational {
                ex.skippingInformational = false
                return
            }
            // Trailers are hop-by-hop for this proxy and are dropped.
            let reusable = ex.upstreamKeepAlive && ex.requestEndSent && ex.requestEnded
            finish(ex, upstreamReusable: reusable, closeClient: ex.closeClientAfterResponse || !ex.requestEnded)
        }
    }

    /// Writes the upstream's 101 to the client, then replaces the HTTP handlers
    /// of both connections by a pair of ``SpliceHandler``s.
    private func switchProtocols(_ ex: Exchange, head: HTTPResponseHead) {
        guard let context, let upstreamChannel = ex.upstreamChannel, let upstreamHandler = ex.upstreamHandler else {
            return closeClient()
        }
        var headers = HTTPHeaders(HeaderRules.removingHopByHop(head.headers.map { ($0.name, $0.value) }).filter {
            HeaderRules.passesToClient(lower: HeaderRules.lowercased($0.0), value: $0.1, ownCookies: config.ownCookies)
        })
        headers.add(name: "Connection", value: "Upgrade")
        headers.add(name: "Upgrade", value: head.headers["upgrade"].first ?? ex.upgrade ?? "")
        headers.add(name: "Via", value: "1.1 \(config.viaName)")
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: ex.head.version, status: .switchingProtocols,
                                                                     headers: headers))), promise: nil)
        ex.phase = .done
        ex.cancelTimers()
        upstreamHandler.delegate = nil
        exchange = nil
        spliced = true
        connection.noteForwarding(since: nil)
        connection.noteSpliced()
        recheckIfSwept()
        stopWatchdog()
        // Pipeline surgery must not run inside the decoders' callbacks: defer it.
        context.eventLoop.assumeIsolated().execute { [weak self] in
            // The client may have gone in the meantime (a reset read in the same batch): its channelInactive found no
            // exchange to end, and a splice handler added now would never see one — the upstream would stay open.
            // Nor is a client whose close was asked for meanwhile (a revocation): over TLS it stays active while its close
            // waits for the client's close_notify, and a splice built now would forward its bytes upstream until then.
            guard let self, let context = self.context, context.channel.isActive, !self.closing, !self.connection.closeRequested else {
                return upstreamChannel.close(promise: nil)
            }
            do {
                let client = context.pipeline.syncOperations
                let upstream = upstreamChannel.pipeline.syncOperations
                let activity = SpliceActivity(timeout: self.config.upgradedIdleTimeout)
                let clientSide = SpliceHandler(activity: activity), upstreamSide = SpliceHandler(activity: activity)
                clientSide.partner = upstreamSide
                upstreamSide.partner = clientSide
                // Client: no client bytes are expected before the 101 (RFC 6455 §4.1); the decoder drops any.
                try client.removeHandler(client.handler(type: HTTP1ResponseEncoder.self), promise: nil)
                try client.addHandler(clientSide, position: .before(self))
                let clientDecoderGone = try client.removeHandler(client.handler(type: ByteToMessageHandler<HTTP1RequestDecoder>.self))
                // Upstream: bytes it sent after its 101 are forwarded by its decoder into the splice.
                try upstream.removeHandler(upstream.handler(type: HTTP1RequestEncoder.self), promise: nil)
                try upstream.addHandler(upstreamSide, position: .before(upstreamHandler))
                let upstreamDecoderGone = try upstream.removeHandler(upstream.handler(type: ByteToMessageHandler<HTTP1ResponseDecoder>.self))
                // A decoder leaves the pipeline on a later tick (and the response decoder observes
                // writes until then): start moving bytes only once both are gone.
                let logger = self.logger
                clientDecoderGone.and(upstreamDecoderGone).assumeIsolated().whenComplete { result in
                    switch result {
                    case .success:
                        // The tunnel no longer holds one of the pool's slots for this upstream.
                        if let upstream = ex.upstream { self.shared.pool.detach(upstreamChannel, upstream: upstream) }
                        clientSide.start(watchIdle: true)
                        upstreamSide.start()
                        self.shared.metrics.bump(\.upgrades)
                        logger.info("connection upgraded", metadata: ["request_id": "\(ex.id)", "protocol": "\(ex.upgrade ?? "")"])
                    case .failure:
                        clientSide.close()
                        upstreamSide.close()
                    }
                }
            } catch {
                self.logger.warning("upgrade failed", metadata: ["request_id": "\(ex.id)", "error": "\(error)"])
                upstreamChannel.close(promise: nil)
                self.closeClient()
            }
        }
    }

    private func clientResponseHead(_ head: HTTPResponseHead, ex: Exchange) -> HTTPResponseHead {
        // The upstream's end-to-end fields in one pass (as ``HeaderRules/removingHopByHop(_:)`` keeps them): not
        // the hop-by-hop names, not the names its `Connection` fields list.
        var listed = Set<String>()
        for field in head.headers where HeaderRules.name(field.name, equalsLowercased: "connection") {
            HeaderRules.insertTokens(of: field.value, into: &listed)
        }
        var headers = HTTPHeaders()
        headers.reserveCapacity(head.headers.count + 2)
        var hasLength = false
        for field in head.headers {
            let lower = HeaderRules.lowercased(field.name)
            if HeaderRules.hopByHop.contains(lower) || listed.contains(lower) { continue }
            if !HeaderRules.passesToClient(lower: lower, value: field.value, ownCookies: config.ownCookies) { continue }
            if lower == "content-length" { hasLength = true }
            headers.add(name: field.name, value: field.value)
        }
        headers.add(name: "Via", value: shared.via(head.version))
        // An HTTP/1.0 client without Content-Length learns the end of the body from the close.
        let unframed10 = ex.head.version.minor == 0 && !hasLength
        // Upgrade is not spliced yet: the request went upstream without it, and the
        // connection is not reused after the response.
        ex.closeClientAfterResponse = !ex.clientKeepAlive || !ex.requestEnded || unframed10 || ex.askedUpgrade
        if ex.closeClientAfterResponse && !http2 { headers.add(name: "Connection", value: "close") }
        return HTTPResponseHead(version: ex.head.version, status: head.status, headers: headers)
    }

    func upstreamReadComplete() {
        guard let ex = exchange, ex.phase == .forwarding, let context else { return }
        context.flush()
        if context.channel.isWritable { ex.upstreamHandler?.read() }
    }

    func upstreamWritabilityChanged() {
        guard let ex = exchange, ex.phase == .forwarding else { return }
        if upstreamNeedsFlush == false, ex.upstreamHandler?.isWritable == true { readClientIfWanted() }
    }

    func upstreamClosed() {
        guard let ex = exchange, ex.phase == .forwarding else { return }
        ex.upstreamChannel = nil
        ex.upstreamHandler = nil
        if ex.responseHeadSent {
            logger.info("upstream closed mid-response", metadata: ["request_id": "\(ex.id)"])
            closeClient()
        } else {
            respondRefusal(.upstreamUnavailable, ex: ex)
        }
    }

    // MARK: Finishing

    private func finish(_ ex: Exchange, upstreamReusable: Bool, closeClient mustClose: Bool) {
        guard let context else { return }
        if ex.phase == .forwarding { connection.noteForwarding(since: nil) }
        ex.phase = .done
        ex.cancelTimers()
        if let handler = ex.upstreamHandler, let channel = ex.upstreamChannel, let upstream = ex.upstream {
            handler.delegate = nil
            if upstreamReusable && handler.isReusable {
                // Pooled on the event loop's next turn, not here: this runs inside the read that ended the response,
                // and NIO may hand on more of the same socket read in further channelReads (a full receive buffer
                // is followed by another read). Bytes there answer no request: they spoil the connection
                // (``HTTP1ResponseDecoder``) and it is closed — pooled at once, a pipelined or waiting request would
                // have been written on it first and read them as its response.
                let pool = shared.pool
                channel.eventLoop.assumeIsolated().execute {
                    if handler.isReusable { pool.release(channel, upstream: upstream) } else { channel.close(promise: nil) }
                }
            } else {
                channel.close(promise: nil)
            }
        }
        ex.upstreamHandler = nil
        ex.upstreamChannel = nil
        exchange = nil
        let close = mustClose || !ex.clientKeepAlive
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if close {
            closeAfter(written)
        } else if exchange == nil {
            idleSince = .now()
            deliverQueued()   // may start the next pipelined exchange (or answer it at once); reads on when it may
            if exchange == nil { watchDeadlines() }
        }
    }

    /// Answers the client from the proxy itself (gate verdict or refusal).
    private func respondLocally(ex: Exchange?, status: Int, headers extra: [(String, String)], body: [UInt8],
                                requestHead: HTTPRequestHead? = nil, forceClose: Bool = false) {
        guard let context else { return }
        if let ex {
            if ex.responseHeadSent { return closeClient() }
            ex.upstreamHandler?.delegate = nil
            ex.upstreamChannel?.close(promise: nil)   // an unfinished upstream exchange is not reusable
            ex.upstreamHandler = nil
            ex.upstreamChannel = nil
        }
        let head = ex?.head ?? requestHead
        var headers = HTTPHeaders()
        for (name, value) in extra where Self.isValidHeader(name, value) {
            let n = HeaderRules.lowercased(name)
            if HeaderRules.hopByHop.contains(n) || n == "content-length" { continue }
            headers.add(name: name, value: value)
        }
        headers.replaceOrAdd(name: "Content-Length", value: String(body.count))
        headers.add(name: "Via", value: "1.1 \(config.viaName)")
        // The request decoder stops after an upgrade request, so such a connection is not reused. A request
        // without a body is whole once its head is read (its end follows with no bytes): answering it early
        // (the gate decides during the head, e.g. forward-auth or a deny page) keeps the connection; one
        // whose body is not read yet is closed.
        let requestWhole = ex.map { $0.requestEnded || $0.framing == .none } ?? false
        let close = forceClose || !requestWhole || !(head.map(HTTP1Framing.keepAlive) ?? false)
            || head?.headers.contains(name: "upgrade") == true
        if close && !http2 { headers.replaceOrAdd(name: "Connection", value: "close") }
        let version = head?.version ?? .http1_1
        let responseHead = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: status), headers: headers)
        context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
        if !body.isEmpty {
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        if let ex {
            ex.responseHeadSent = true
            finish(ex, upstreamReusable: false, closeClient: close)
        } else {
            closeAfter(context.writeAndFlush(wrapOutboundOut(.end(nil))))
        }
    }

    /// Closes the connection once `written` completes — or after the idle timeout if it does not (a client that
    /// never reads the last response must not hold its connection and buffers for good).
    private func closeAfter(_ written: EventLoopFuture<Void>) {
        guard let context else { return }
        closing = true
        stopWatchdog()
        written.assumeIsolated().whenComplete { [weak self] _ in self?.context?.close(promise: nil) }
        context.eventLoop.assumeIsolated().scheduleTask(in: config.idleTimeout) { [weak self] in
            guard let self, let context = self.context, context.channel.isActive else { return }
            self.logger.info("closed: the last response was not read within the idle timeout")
            context.close(promise: nil)
        }
    }

    private func respondRefusal(_ refusal: ProxyRefusal, ex: Exchange) {
        switch refusal {
        case .upstreamTimeout: shared.metrics.bump(\.upstreamTimeouts)
        case .upstreamUnavailable, .upstreamBusy: shared.metrics.bump(\.upstreamErrors)
        default: break
        }
        let page = render(refusal, requestID: ex.id, headers: ex.head.headers.map { ($0.name, $0.value) })
        respondLocally(ex: ex, status: refusal.status, headers: page.headers + [("X-Menshen-Request-Id", ex.id)],
                       body: page.body, forceClose: refusal.status >= 500 && !ex.requestEnded)
    }

    /// Refuses a request before an exchange exists (validation, or bytes the decoder refused): always closes.
    private func refuse(_ refusal: ProxyRefusal, requestID: String, head: HTTPRequestHead?) {
        shared.metrics.bump(\.refusedBeforeGate)
        logger.info("request refused", metadata: ["request_id": "\(requestID)", "status": "\(refusal.status)", "reason": "\(refusal)"])
        let page = render(refusal, requestID: requestID, headers: nil)
        respondLocally(ex: nil, status: refusal.status, headers: page.headers + [("X-Menshen-Request-Id", requestID)],
                       body: page.body, requestHead: head, forceClose: true)
    }

    /// The configured refusal page, or plain text. (Headers of a request that failed validation are not passed on.)
    private func render(_ refusal: ProxyRefusal, requestID: String, headers: [(String, String)]?) -> (headers: [(String, String)], body: [UInt8]) {
        if let page = config.refusalPage { return page(refusal, requestID, headers) }
        return ([("Content-Type", "text/plain; charset=utf-8")], Array("\(refusal)\nrequest id: \(requestID)\n".utf8))
    }

    // MARK: Timers and closing

    /// Makes sure the watchdog fires by the earliest deadline of the connection's current state.
    private func watchDeadlines() {
        guard let context, !closing, !spliced else { return }
        var deadline: NIODeadline
        if let ex = exchange {
            deadline = ex.lastActivity + config.idleTimeout
            if ex.phase == .deciding, let gate = ex.gateDeadline { deadline = min(deadline, gate) }
            if !ex.responseHeadSent, let head = ex.headerDeadline { deadline = min(deadline, head) }
        } else {
            deadline = idleSince + config.keepAliveTimeout
        }
        if let at = watchdogAt, at <= deadline { return }   // it fires early enough, and then looks again
        watchdog?.cancel()
        watchdogAt = deadline
        watchdog = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            self?.watchdogFired()
        }
    }

    private func stopWatchdog() {
        watchdog?.cancel()
        watchdog = nil
        watchdogAt = nil
    }

    /// Acts on whatever deadline has passed, then waits for the next one.
    private func watchdogFired() {
        watchdog = nil
        watchdogAt = nil
        guard !closing, !spliced, context != nil else { return }
        let now = NIODeadline.now()
        guard let ex = exchange else {
            if idleSince + config.keepAliveTimeout <= now { return closeClient() }
            return watchDeadlines()
        }
        if ex.phase == .deciding, let gate = ex.gateDeadline, gate <= now {
            logger.warning("gate timed out", metadata: ["request_id": "\(ex.id)"])
            shared.metrics.bump(\.gateTimeouts)
            respondRefusal(.gateUnavailable, ex: ex)
        } else if ex.phase == .forwarding, !ex.responseHeadSent, let head = ex.headerDeadline, head <= now {
            logger.info("upstream response header timeout", metadata: ["request_id": "\(ex.id)"])
            respondRefusal(.upstreamTimeout, ex: ex)
        } else if ex.lastActivity + config.idleTimeout <= now {
            // Waiting for the gate, for a connection, or for the response head is bounded by the gate,
            // connect and response-header timeouts; idleness is about bytes that stop moving.
            let waitingForHead = ex.phase == .forwarding && ex.requestEndSent && !ex.responseHeadSent
            if ex.phase == .deciding || ex.phase == .connecting || waitingForHead {
                ex.lastActivity = now
            } else {
                logger.info("exchange idle timeout", metadata: ["request_id": "\(ex.id)"])
                if ex.responseHeadSent { return closeClient() }
                respondRefusal(ex.requestEnded ? .upstreamTimeout : .clientTimeout, ex: ex)
            }
        }
        watchDeadlines()
    }

    func closeClient() {
        guard let context else { return }
        closing = true
        context.close(promise: nil)
    }

    static func isValidHeader(_ name: String, _ value: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy(RequestValidator.isTokenChar) && value.utf8.allSatisfy(RequestValidator.isFieldValueByte)
    }
}
