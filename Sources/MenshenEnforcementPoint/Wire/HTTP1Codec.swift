import NIOCore
import NIOHTTP1

/// The enforcement point's own HTTP/1.1 codec: four channel handlers in place of NIOHTTP1's decoders
/// and encoders (llhttp behind a callback bridge), built on ``HTTP1Head``, ``HTTP1Framing`` and
/// ``HTTP1Chunked``. They speak NIOHTTP1's message types (`HTTPServerRequestPart`, …), so
/// ``ClientHandler`` serves HTTP/1.1 connections and HTTP/2 streams (NIO's HTTP/2-to-HTTP/1 codec)
/// alike.
///
/// Written by hand because no listed package parses HTTP/1 without llhttp's bridge, which with the
/// encoders cost about as much per request as the whole of a hand-parsed proxy
/// (`scripts/bench-proxy-floor`, docs/benchmarks.md).
///
/// - Client side: ``HTTP1RequestDecoder`` (heads by ``HTTP1Head/parseRequest(_:limits:)``, bodies by
///   ``HTTP1Framing/request(_:minor:)``: a length, or chunked read by ``HTTP1Chunked`` and handed on
///   as plain data; trailers dropped) and ``HTTP1ResponseEncoder`` (frames each response as NIO's
///   encoder does: no body for 1xx/204/304 or in answer to HEAD, chunked for an HTTP/1.1 response
///   without a length, until close for HTTP/1.0).
/// - Upstream side: ``HTTP1RequestEncoder`` (the head as given; the body chunked when the head says
///   `Transfer-Encoding: chunked`) and ``HTTP1ResponseDecoder`` (RFC 9112 §6.3 by
///   ``HTTP1Framing/response(_:requestMethod:)``; interim 1xx responses dropped; a 101 ends decoding
///   and the bytes after it are passed on when the decoder is removed; a body without framing ends at
///   the upstream's close).
///
/// A request carrying `Upgrade`, or one after which the connection does not persist (HTTP/1.0 without
/// keep-alive, `Connection: close`), ends decoding on the client side after that request (the connection
/// is spliced or closed after its response). Bytes the head parser refuses, bad framing, bytes after
/// a message that cannot start a head, or an end of input inside a message are an ``HTTP1WireError``.
enum HTTP1Codec {
    /// A head that is not complete is parsed again only when what is buffered has doubled since the
    /// last attempt or its end (CRLF CRLF) has arrived: a head dripped byte by byte costs O(n log n),
    /// not O(n²), while garbage is still refused on its first read.
    struct HeadScan {
        var searchedTo = 0
        var parsedAt = 0

        mutating func reset() { searchedTo = 0; parsedAt = 0 }

        /// Whether the readable bytes are worth parsing now (always once they reach `limit`: then they are refused).
        mutating func shouldParse(_ bytes: UnsafeRawBufferPointer, limit: Int) -> Bool {
            let n = bytes.count
            var found = false
            var i = max(3, searchedTo)
            while i < n {
                if bytes[i] == HTTP1Head.lf, bytes[i - 1] == HTTP1Head.cr, bytes[i - 2] == HTTP1Head.lf,
                   bytes[i - 3] == HTTP1Head.cr {
                    found = true
                    break
                }
                i += 1
            }
            searchedTo = found ? i + 1 : max(searchedTo, n)
            guard found || parsedAt == 0 || n >= 2 * parsedAt || n >= limit else { return false }
            parsedAt = max(1, n)
            return true
        }
    }

    static func headers(_ fields: [HTTP1Head.Field]) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count)
        for field in fields { headers.add(name: field.name, value: field.value) }
        return headers
    }

    /// `HTTP/x.y`
    static func writeVersion(_ version: HTTPVersion, into buffer: inout ByteBuffer) {
        if version.major == 1 && version.minor == 1 {
            buffer.writeStaticString("HTTP/1.1")
        } else {
            buffer.writeStaticString("HTTP/")
            buffer.writeString(String(version.major))
            buffer.writeInteger(UInt8(ascii: "."))
            buffer.writeString(String(version.minor))
        }
    }

    /// Field lines and the empty line ending the head; `skip` leaves a field out.
    static func writeFields(_ headers: HTTPHeaders, into buffer: inout ByteBuffer, skip: (String) -> Bool = { _ in false }) {
        for (name, value) in headers where !skip(name) {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
    }

    /// A body part, as a chunk when `chunked` (an empty part is no chunk: it would end the body).
    static func writeBody(_ body: IOData, chunked: Bool, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard chunked else { return context.write(NIOAny(body), promise: promise) }
        guard body.readableBytes > 0 else { promise?.succeed(()); return }
        var size = context.channel.allocator.buffer(capacity: 18)
        size.writeString(String(body.readableBytes, radix: 16))
        size.writeStaticString("\r\n")
        context.write(NIOAny(IOData.byteBuffer(size)), promise: nil)
        context.write(NIOAny(body), promise: nil)
        context.write(NIOAny(IOData.byteBuffer(ByteBuffer(staticString: "\r\n"))), promise: promise)
    }

    /// The end of a body: the last chunk when `chunked` (no trailers: they are hop-by-hop for this proxy).
    static func writeEnd(chunked: Bool, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        if chunked {
            context.write(NIOAny(IOData.byteBuffer(ByteBuffer(staticString: "0\r\n\r\n"))), promise: promise)
        } else if let promise {
            // Nothing to write, but the promise completes in order with the writes before it.
            context.write(NIOAny(IOData.byteBuffer(context.channel.allocator.buffer(capacity: 0))), promise: promise)
        }
    }

    static func isFraming(_ name: String) -> Bool {
        HeaderRules.name(name, equalsLowercased: "content-length") || HeaderRules.name(name, equalsLowercased: "transfer-encoding")
    }
}

/// A message body being read as ``HTTP1Framing`` decided: a length counted down, the chunked coding by
/// ``HTTP1Chunked``, or everything until the peer closes. Shared by both decoders.
struct HTTP1BodyReader {
    private enum Kind {
        case length(remaining: Int64)
        case chunked(HTTP1Chunked)
        case untilClose
    }

    private var kind: Kind

    /// nil: the message has no body to read.
    init?(_ framing: HTTP1Framing.Body) {
        switch framing {
        case .none, .length(0): return nil
        case .length(let n): kind = .length(remaining: n)
        case .chunked: kind = .chunked(HTTP1Chunked())
        case .untilClose: kind = .untilClose
        }
    }

    /// The body runs until the peer closes the connection (its end is the close).
    var endsAtClose: Bool { if case .untilClose = kind { true } else { false } }

    /// The body's bytes in `buffer` (slices, not copies) and whether the body ended; consumes what it read.
    mutating func read(_ buffer: inout ByteBuffer) throws(HTTP1WireError) -> (parts: [ByteBuffer], ended: Bool) {
        switch kind {
        case .length(let remaining):
            let take = Int(min(Int64(buffer.readableBytes), remaining))
            kind = .length(remaining: remaining - Int64(take))
            return (take > 0 ? [buffer.readSlice(length: take)!] : [], remaining == Int64(take))
        case .untilClose:
            return (buffer.readableBytes > 0 ? [buffer.readSlice(length: buffer.readableBytes)!] : [], false)
        case .chunked(var chunked):
            let read: Result<(events: [HTTP1Chunked.Event], consumed: Int), HTTP1Head.Failure> = buffer.withUnsafeReadableBytes { bytes in
                do throws(HTTP1Head.Failure) { return .success(try chunked.consume(bytes)) } catch { return .failure(error) }
            }
            kind = .chunked(chunked)
            let (events, consumed): ([HTTP1Chunked.Event], Int)
            switch read {
            case .success(let r): (events, consumed) = r
            case .failure(let failure): throw .chunked(failure)
            }
            let base = buffer.readerIndex
            var ended = false
            var parts: [ByteBuffer] = []
            for event in events {
                switch event {
                case .data(let range): parts.append(buffer.getSlice(at: base + range.lowerBound, length: range.count)!)
                case .end: ended = true
                }
            }
            buffer.moveReaderIndex(forwardBy: consumed)
            return (parts, ended)
        }
    }
}

/// What the codec could not read; the connection is not read further.
enum HTTP1WireError: Error, Equatable {
    case head(HTTP1Head.Failure)
    case framing(HTTP1Framing.Refusal)
    case chunked(HTTP1Head.Failure)
    /// The peer closed the connection inside a message.
    case endOfInputInMessage
    /// An upstream sent bytes while no request was waiting for a response.
    case unsolicitedResponse
}

/// The requests sent or received on one connection whose responses have not been framed yet, in order —
/// shared by the decoder and encoder of that connection (HEAD responses have no body; only a request that
/// asked to upgrade may be answered 101) — and, upstream, whether the connection may be used again.
final class HTTP1PendingMethods {
    struct Request {
        var isHEAD: Bool
        var upgrade = false
    }

    private var requests = CircularBuffer<Request>(initialCapacity: 2)
    /// Upstream: bytes followed a response that nothing asked for, or the connection failed (e.g. a TLS close
    /// without close_notify): its last response may not be trusted as whole and it is not pooled again.
    var spoiled = false

    func append(isHEAD: Bool, upgrade: Bool = false) { requests.append(Request(isHEAD: isHEAD, upgrade: upgrade)) }
    /// The oldest request, forgotten (nil: none pending).
    func popFirst() -> Request? { requests.popFirst() }
    var first: Request? { requests.first }
    var isEmpty: Bool { requests.isEmpty }
}

// MARK: - Client side

/// Bytes from a client → `HTTPServerRequestPart`s (see ``HTTP1Codec``).
final class HTTP1RequestDecoder: ByteToMessageDecoder {
    typealias InboundOut = HTTPServerRequestPart

    private enum State {
        case head
        case body(HTTP1BodyReader)
        /// After a request that ends the connection, or a refusal: nothing more is read.
        case stopped
    }

    private let limits: HTTP1Head.Limits
    private let pending: HTTP1PendingMethods
    private var state = State.head
    private var scan = HTTP1Codec.HeadScan()
    private var stopAfterMessage = false

    init(limits: HTTP1Head.Limits, pending: HTTP1PendingMethods) {
        self.limits = limits
        self.pending = pending
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        switch state {
        case .stopped:
            return .needMoreData
        case .head:
            guard buffer.readableBytes > 0 else { return .needMoreData }
            let outcome: HTTP1Head.Outcome<HTTP1Head.Request>? = buffer.withUnsafeReadableBytes { bytes in
                scan.shouldParse(bytes, limit: limits.maxHeadBytes) ? HTTP1Head.parseRequest(bytes, limits: limits) : nil
            }
            switch outcome {
            case nil, .incomplete?:
                return .needMoreData
            case .failed(let failure)?:
                state = .stopped
                throw HTTP1WireError.head(failure)
            case .complete(let request, let length)?:
                let framing: HTTP1Framing.Body
                switch HTTP1Framing.request(request.fields, minor: request.minor) {
                case .success(let body): framing = body
                case .failure(let refusal):
                    state = .stopped
                    throw HTTP1WireError.framing(refusal)
                }
                buffer.moveReaderIndex(forwardBy: length)
                scan.reset()
                let method = HTTPMethod(rawValue: request.method)
                pending.append(isHEAD: method == .HEAD)
                let head = HTTPRequestHead(version: HTTPVersion(major: request.major, minor: request.minor), method: method,
                                           uri: request.target, headers: HTTP1Codec.headers(request.fields))
                // The connection ends with this request's response (as llhttp reads it): no more requests are read.
                stopAfterMessage = !HTTP1Framing.keepAlive(head) || request.fields.contains { HeaderRules.name($0.name, equalsLowercased: "upgrade") }
                context.fireChannelRead(wrapInboundOut(.head(head)))
                // (A request is never read until close: HTTP1Framing.request gives a length, chunked or none.)
                if framing != .untilClose, let body = HTTP1BodyReader(framing) { state = .body(body) } else { endMessage(context) }
                return .continue
            }
        case .body(var body):
            guard buffer.readableBytes > 0 else { return .needMoreData }
            state = .stopped   // until this read is handed on
            let (parts, ended) = try body.read(&buffer)
            if !ended { state = .body(body) }
            for part in parts { context.fireChannelRead(wrapInboundOut(.body(part))) }
            if ended { endMessage(context) }
            return ended ? .continue : .needMoreData
        }
    }

    private func endMessage(_ context: ChannelHandlerContext) {
        state = stopAfterMessage ? .stopped : .head
        context.fireChannelRead(wrapInboundOut(.end(nil)))
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while buffer.readableBytes > 0, case .continue = try decode(context: context, buffer: &buffer) {}
        // A client gone inside a message: the connection is closed (it is anyway), nothing is answered.
        if seenEOF {
            switch state {
            case .head where buffer.readableBytes > 0, .body: throw HTTP1WireError.endOfInputInMessage
            case .head, .stopped: break
            }
        }
        // Bytes after an upgrade request (removed for a splice) are dropped: a client sends none before the 101.
        if !seenEOF { buffer.moveReaderIndex(forwardBy: buffer.readableBytes) }
        return .needMoreData
    }
}

/// `HTTPServerResponsePart`s → bytes to the client (see ``HTTP1Codec``).
final class HTTP1ResponseEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = IOData

    private let pending: HTTP1PendingMethods
    private var chunked = false
    private var suppressBody = false

    init(pending: HTTP1PendingMethods) { self.pending = pending }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            let code = head.status.code
            let interim = code >= 100 && code < 200 && code != 101
            if !interim { suppressBody = pending.popFirst()?.isHEAD ?? false }
            let mayHaveBody = !(code < 200 || code == 204 || code == 304)
            var hasLength = false
            if mayHaveBody {
                for (name, _) in head.headers where HeaderRules.name(name, equalsLowercased: "content-length") { hasLength = true; break }
            }
            // As NIO's encoder: no framing fields where no body may follow; a length wins over a coding; an
            // HTTP/1.1 response without a length is chunked; an HTTP/1.0 one runs until the close (and, unlike
            // NIO's encoder, never says Transfer-Encoding, which HTTP/1.0 does not know).
            let addChunked = mayHaveBody && !hasLength && (head.version.major > 1 || head.version.minor >= 1)
            chunked = addChunked && !suppressBody
            var buffer = context.channel.allocator.buffer(capacity: 256)
            HTTP1Codec.writeVersion(head.version, into: &buffer)
            buffer.writeInteger(UInt8(ascii: " "))
            buffer.writeString(String(code))
            buffer.writeInteger(UInt8(ascii: " "))
            buffer.writeString(head.status.reasonPhrase)
            buffer.writeStaticString("\r\n")
            if mayHaveBody && hasLength {
                HTTP1Codec.writeFields(head.headers, into: &buffer) { HeaderRules.name($0, equalsLowercased: "transfer-encoding") }
            } else {
                HTTP1Codec.writeFields(head.headers, into: &buffer, skip: HTTP1Codec.isFraming)
                if addChunked { buffer.writeStaticString("transfer-encoding: chunked\r\n") }
            }
            buffer.writeStaticString("\r\n")
            context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: promise)
        case .body(let body):
            if suppressBody {
                // A response to HEAD has no body (RFC 9112 §6.3): nothing is written.
                promise?.fail(HTTP1WireError.framing(.unsupportedTransferCoding))
            } else {
                HTTP1Codec.writeBody(body, chunked: chunked, context: context, promise: promise)
            }
        case .end:
            // Trailers are hop-by-hop for this proxy and are not written.
            HTTP1Codec.writeEnd(chunked: chunked, context: context, promise: promise)
            chunked = false
            suppressBody = false
        }
    }
}

// MARK: - Upstream side

/// `HTTPClientRequestPart`s → bytes to an upstream (see ``HTTP1Codec``). The head is written as given
/// (``ClientHandler`` sets its framing fields); the body is chunked when the head says so.
final class HTTP1RequestEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = IOData

    private let pending: HTTP1PendingMethods
    private var chunked = false

    init(pending: HTTP1PendingMethods) { self.pending = pending }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            pending.append(isHEAD: head.method == .HEAD, upgrade: head.headers.contains(name: "upgrade"))
            chunked = false
            var buffer = context.channel.allocator.buffer(capacity: 512)
            buffer.writeString(head.method.rawValue)
            buffer.writeInteger(UInt8(ascii: " "))
            buffer.writeString(head.uri)
            buffer.writeInteger(UInt8(ascii: " "))
            HTTP1Codec.writeVersion(head.version, into: &buffer)
            buffer.writeStaticString("\r\n")
            for (name, value) in head.headers {
                if HeaderRules.name(name, equalsLowercased: "transfer-encoding") { chunked = chunked || value.lowercased() == "chunked" }
                buffer.writeString(name)
                buffer.writeStaticString(": ")
                buffer.writeString(value)
                buffer.writeStaticString("\r\n")
            }
            buffer.writeStaticString("\r\n")
            context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: promise)
        case .body(let body):
            HTTP1Codec.writeBody(body, chunked: chunked, context: context, promise: promise)
        case .end:
            HTTP1Codec.writeEnd(chunked: chunked, context: context, promise: promise)
            chunked = false
        }
    }
}

/// Bytes from an upstream → `HTTPClientResponsePart`s (see ``HTTP1Codec``).
final class HTTP1ResponseDecoder: ByteToMessageDecoder {
    typealias InboundOut = HTTPClientResponsePart

    private enum State {
        case head
        case body(HTTP1BodyReader)
        /// After a 101 (the rest belongs to the upgraded protocol), or a refusal.
        case stopped
    }

    private let limits: HTTP1Head.Limits
    private let pending: HTTP1PendingMethods
    private var state = State.head
    private var scan = HTTP1Codec.HeadScan()
    private var upgraded = false

    init(limits: HTTP1Head.Limits, pending: HTTP1PendingMethods) {
        self.limits = limits
        self.pending = pending
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        switch state {
        case .stopped:
            return .needMoreData
        case .head:
            guard buffer.readableBytes > 0 else { return .needMoreData }
            guard let request = pending.first else {
                state = .stopped
                pending.spoiled = true
                throw HTTP1WireError.unsolicitedResponse
            }
            let outcome: HTTP1Head.Outcome<HTTP1Head.Response>? = buffer.withUnsafeReadableBytes { bytes in
                scan.shouldParse(bytes, limit: limits.maxHeadBytes) ? HTTP1Head.parseResponse(bytes, limits: limits) : nil
            }
            switch outcome {
            case nil, .incomplete?:
                return .needMoreData
            case .failed(let failure)?:
                state = .stopped
                throw HTTP1WireError.head(failure)
            case .complete(let response, let length)?:
                let framing: HTTP1Framing.Body
                // A status below 100 is no status; a 101 answers only a request that asked to upgrade.
                guard response.status >= 100, response.status != 101 || request.upgrade else {
                    state = .stopped
                    pending.spoiled = true
                    throw HTTP1WireError.head(.malformed(response.status == 101 ? "101 to a request that did not upgrade" : "status code"))
                }
                switch HTTP1Framing.response(response, requestMethod: request.isHEAD ? "HEAD" : "GET") {
                case .success(let body): framing = body
                case .failure(let refusal):
                    state = .stopped
                    throw HTTP1WireError.framing(refusal)
                }
                buffer.moveReaderIndex(forwardBy: length)
                scan.reset()
                // Interim responses (100 Continue, 103 Early Hints) are not passed on: Expect is not forwarded.
                if response.status >= 100 && response.status < 200 && response.status != 101 { return .continue }
                _ = pending.popFirst()
                // A response that ends at its head although its fields announce content — to HEAD, whose
                // Content-Length is the GET's (RFC 9110 §9.3.2), or a 204, which must not have one — is not
                // followed by a reused connection: a server that sends that content anyway, after its head and
                // in a later read, would have it read as the next request's response (a response desync across
                // clients). The connection is closed after this response. A 304 may carry the Content-Length of
                // the 200 it stands for (RFC 9110 §8.6) and is frequent under revalidation: it stays pooled, unless
                // it announces a transfer coding, which no 304 needs.
                if framing == .none {
                    switch HTTP1Framing.announced(response) {
                    case .nothing: break
                    case .length: if request.isHEAD || response.status == 204 { pending.spoiled = true }
                    case .transferCoding: if request.isHEAD || response.status == 204 || response.status == 304 { pending.spoiled = true }
                    }
                }
                let head = HTTPResponseHead(version: HTTPVersion(major: response.major, minor: response.minor),
                                            status: HTTPResponseStatus(statusCode: response.status, reasonPhrase: response.reason),
                                            headers: HTTP1Codec.headers(response.fields))
                context.fireChannelRead(wrapInboundOut(.head(head)))
                if response.status == 101 {
                    upgraded = true
                    state = .stopped
                    context.fireChannelRead(wrapInboundOut(.end(nil)))
                    return .needMoreData
                }
                if let body = HTTP1BodyReader(framing) { state = .body(body) } else { endMessage(context, leftover: buffer.readableBytes) }
                return .continue
            }
        case .body(var body):
            guard buffer.readableBytes > 0 else { return .needMoreData }
            state = .stopped   // until this read is handed on
            let (parts, ended) = try body.read(&buffer)
            if !ended { state = .body(body) }
            for part in parts { context.fireChannelRead(wrapInboundOut(.body(part))) }
            if ended { endMessage(context, leftover: buffer.readableBytes) }
            return ended ? .continue : .needMoreData
        }
    }

    /// The response ended. Bytes already after it answer no request (one request is sent at a time): the
    /// connection is marked spoiled before the end is passed on, so that it is not pooled — handed to a waiting
    /// request at once, those bytes would be read as that request's response — and then they are refused.
    private func endMessage(_ context: ChannelHandlerContext, leftover: Int) {
        state = .head
        if leftover > 0 { pending.spoiled = true }
        context.fireChannelRead(wrapInboundOut(.end(nil)))
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while buffer.readableBytes > 0, case .continue = try decode(context: context, buffer: &buffer) {}
        if seenEOF {
            switch state {
            case .body(let body) where body.endsAtClose:
                // The close is this body's end — unless the connection failed (a TLS close without close_notify may
                // be a truncation, RFC 9112 §9.8): then it is an end of input inside the message.
                if pending.spoiled { state = .stopped; throw HTTP1WireError.endOfInputInMessage }
                endMessage(context, leftover: 0)
                state = .stopped
            case .head where buffer.readableBytes > 0, .body: throw HTTP1WireError.endOfInputInMessage
            case .head, .stopped: break
            }
        } else if upgraded, buffer.readableBytes > 0 {
            // Removed for a splice: what the upstream sent after its 101 belongs to the upgraded protocol (and is
            // flushed on to the client now, as at the end of any read).
            context.fireChannelRead(NIOAny(buffer.readSlice(length: buffer.readableBytes)!))
            context.fireChannelReadComplete()
        }
        return .needMoreData
    }
}
