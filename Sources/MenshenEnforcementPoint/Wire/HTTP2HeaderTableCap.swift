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
/// (at most 9 + 16,384 octets) until its last byte arrives. A SETTINGS frame longer than 16,384 octets or not a
/// multiple of 6 (which `NIOHTTP2Handler` refuses too) closes the connection here, so nothing uncapped gets through.
final class HTTP2HeaderTableCap: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

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
                guard type == 0x4 else {
                    index += 9
                    skipping = length
                    continue
                }
                guard length <= Self.largestSettings, length % 6 == 0 else {
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
}
