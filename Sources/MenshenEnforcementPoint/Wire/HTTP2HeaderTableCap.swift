import NIOCore

/// Caps the client's `SETTINGS_HEADER_TABLE_SIZE` at 4096 octets before `NIOHTTP2Handler` sees it.
///
/// The setting tells us how large a dynamic table *our* HPACK encoder may use for the responses (RFC 9113 §6.5.2);
/// the encoder may use less (RFC 7541 §4.2). swift-nio-http2 (1.46) applies the client's value as it comes, up to
/// 2³²−1, and its encoder then indexes every response field and never evicts one: each answer with a fresh
/// `X-Menshen-Request-Id` grows the table, and each lookup scans all of it. A client without a session could make
/// every answer on its connection cost time linear in the answers before it and pin an event loop. Here each
/// value of setting 0x1 above 4096 in the client's SETTINGS frames is rewritten to 4096 (the protocol's default), so
/// the encoder's table stays at most 4 KiB whatever the client offers; a client offering less keeps its value.
///
/// Written by hand: swift-nio-http2 has no limit of its own for this setting, and this needs only the frame layout
/// (RFC 9113 §4.1: 24-bit length, type, flags, stream; the client's 24-octet preface first), not a frame decoder.
/// Every other frame passes untouched and unbuffered; only an incomplete frame header or SETTINGS frame is held
/// (at most 9 + 16,384 octets) until its last byte arrives. A frame longer than 16,384 octets (our
/// SETTINGS_MAX_FRAME_SIZE, never raised) or a SETTINGS frame not a multiple of 6 — both refused by `NIOHTTP2Handler`
/// too — closes the connection here.
///
/// This reading of the frames holds only while `NIOHTTP2Handler` reads the same boundaries. After some of its connection
/// errors it has consumed part of a frame and goes on decoding later bytes from there (it sends GOAWAY and reports the
/// error, but leaves closing to us): a frame hidden in another's payload could then reach it uncapped. So the connection
/// is also closed as soon as our side has sent a GOAWAY with an error code (RFC 9113 §5.4.1: after a GOAWAY for an error
/// the endpoint must close the connection); the outgoing frames are read for that, never held or changed. A GOAWAY
/// with NO_ERROR (a graceful shutdown) lets the open streams finish.
final class HTTP2HeaderTableCap: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// The largest header table our encoder will use.
    static let limit: UInt32 = 4096
    /// The largest SETTINGS frame payload held (the protocol's default SETTINGS_MAX_FRAME_SIZE, which we keep).
    static let largestSettings = 16_384

    private var prefaceLeft = 24
    /// Payload octets of the current non-SETTINGS frame still to pass.
    private var skipping = 0
    /// The start of a frame (header, or a whole SETTINGS frame) not complete yet.
    private var held: ByteBuffer?
    private var closed = false
    /// The outgoing frames: payload octets of the current frame still to pass, and the start of the next frame (its
    /// header, and a GOAWAY's last-stream and error code) while incomplete — copied, the writes go on at once.
    private var outboundSkipping = 0
    private var outboundStart: [UInt8] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        var buffer = unwrapInboundIn(data)
        if var carried = held {
            held = nil
            carried.writeBuffer(&buffer)
            buffer = carried
        }
        var index = buffer.readerIndex
        let end = buffer.writerIndex
        var holdFrom: Int?
        while index < end {
            if prefaceLeft > 0 {
                let n = min(prefaceLeft, end - index)
                prefaceLeft -= n
                index += n
            } else if skipping > 0 {
                let n = min(skipping, end - index)
                skipping -= n
                index += n
            } else {
                guard end - index >= 9, let high = buffer.getInteger(at: index, as: UInt8.self),
                      let low = buffer.getInteger(at: index + 1, as: UInt16.self),
                      let type = buffer.getInteger(at: index + 3, as: UInt8.self)
                else { holdFrom = index; break }
                let length = Int(high) << 16 | Int(low)
                guard length <= Self.largestSettings else {
                    closed = true
                    context.close(promise: nil)
                    return
                }
                guard type == 0x4 else {
                    index += 9
                    skipping = length
                    continue
                }
                guard length % 6 == 0 else {
                    closed = true
                    context.close(promise: nil)
                    return
                }
                guard end - index >= 9 + length else { holdFrom = index; break }
                var parameter = index + 9
                while parameter < index + 9 + length {
                    if buffer.getInteger(at: parameter, as: UInt16.self) == 0x1,
                       let value = buffer.getInteger(at: parameter + 2, as: UInt32.self), value > Self.limit {
                        buffer.setInteger(Self.limit, at: parameter + 2)
                    }
                    parameter += 6
                }
                index += 9 + length
            }
        }
        if let holdFrom {
            held = buffer.getSlice(at: holdFrom, length: end - holdFrom)
            buffer.moveWriterIndex(to: holdFrom)
        }
        if buffer.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(buffer)) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if !closed, case .byteBuffer(let buffer) = unwrapOutboundIn(data), sentErrorGoAway(buffer) {
            closed = true
            context.write(data, promise: promise)
            // After NIO's flush of the GOAWAY (it flushes right after writing it), on the loop's next turn.
            context.eventLoop.assumeIsolated().execute { context.close(promise: nil) }
            return
        }
        context.write(data, promise: promise)
    }

    /// Reads the outgoing frame boundaries in `buffer`; true when a GOAWAY with an error code other than NO_ERROR ends in it.
    private func sentErrorGoAway(_ buffer: ByteBuffer) -> Bool {
        var bytes = buffer.readableBytesView[...]
        while !bytes.isEmpty {
            if outboundSkipping > 0 {
                let n = min(outboundSkipping, bytes.count)
                outboundSkipping -= n
                bytes = bytes.dropFirst(n)
                continue
            }
            // The frame's header (9 octets); a GOAWAY's also its last stream id and error code (8 more).
            let isGoAway = outboundStart.count > 3 && outboundStart[3] == 0x7
            let wanted = isGoAway ? 17 : 9
            let n = min(wanted - outboundStart.count, bytes.count)
            outboundStart.append(contentsOf: bytes.prefix(n))
            bytes = bytes.dropFirst(n)
            guard outboundStart.count == wanted else { continue }
            let length = Int(outboundStart[0]) << 16 | Int(outboundStart[1]) << 8 | Int(outboundStart[2])
            if outboundStart[3] == 0x7, wanted == 9 { continue }   // a GOAWAY: read its error code first
            let errorCode = wanted == 17 ? outboundStart[13...16].reduce(0) { $0 << 8 | UInt32($1) } : 0
            outboundSkipping = max(0, length - (wanted - 9))
            outboundStart.removeAll(keepingCapacity: true)
            if errorCode != 0 { return true }
        }
        return false
    }
}
