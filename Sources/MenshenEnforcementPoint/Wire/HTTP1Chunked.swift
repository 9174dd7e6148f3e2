/// The chunked transfer coding (RFC 9112 §7.1) read incrementally from bytes, for the enforcement
/// point's own HTTP/1 data path (see ``HTTP1Head`` for why it is written by hand).
///
/// Strict where readers disagree (the ground request smuggling grows on): chunk sizes are 1–16
/// hex digits with no sign, prefix or space; every line ends in CRLF; a chunk's data is followed by
/// CRLF exactly; extensions are `;name` or `;name=value` with a token name and a token or
/// quoted-string value and no whitespace around them (RFC 9112 §7.1.1 without its BWS), at most
/// ``Limits/maxLineExtensionBytes`` per line — they are dropped, the body is framed anew upstream;
/// trailer fields are well-formed field lines
/// (they are read and dropped: trailers are hop-by-hop for this proxy), at most
/// ``Limits/maxTrailerBytes`` in all. The data is not copied: ``consume(_:)`` reports byte ranges
/// of the buffer it is given.
struct HTTP1Chunked {
    struct Limits: Sendable {
        var maxLineExtensionBytes = 4 * 1024
        var maxTrailerBytes = 16 * 1024
    }

    enum Event: Equatable, Sendable {
        /// Chunk data: a range of the bytes passed to ``consume(_:)``.
        case data(Range<Int>)
        /// The last chunk and the trailer section were read: the body ended (bytes after it are the next message's).
        case end
    }

    private enum State: Equatable {
        case size(value: UInt64, digits: Int)
        case ext(bytes: Int, at: Ext)
        case sizeLF
        case data(remaining: UInt64)
        case dataCR, dataLF
        /// At the start of a trailer line (or of the empty line that ends the body).
        case trailerStart
        case trailerName
        case trailerValue
        case trailerLF(empty: Bool)
        case done
    }

    /// Where in a chunk extension the reader is.
    private enum Ext: Equatable {
        case nameStart, name, valueStart, token, quoted, quotedPair, afterQuoted
    }

    private var state = State.size(value: 0, digits: 0)
    private var lastChunk = false
    private var trailerBytes = 0
    let limits: Limits

    init(limits: Limits = Limits()) { self.limits = limits }

    /// The body ended (``Event/end`` was reported).
    var isDone: Bool { state == .done }

    /// Reads as much of `bytes` as belongs to the body. Returns the events and how many bytes were
    /// consumed: all of them unless the body ended inside them. Throws on the first byte that breaks
    /// the coding; nothing after it is read.
    mutating func consume(_ bytes: UnsafeRawBufferPointer) throws(HTTP1Head.Failure) -> (events: [Event], consumed: Int) {
        var events: [Event] = []
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            switch state {
            case .size(let value, let digits):
                if let d = Self.hexValue(b) {
                    guard digits < 16 else { throw .malformed("chunk size too long") }
                    state = .size(value: value << 4 | UInt64(d), digits: digits + 1)
                } else {
                    guard digits > 0 else { throw .malformed("chunk size") }
                    lastChunk = value == 0
                    if b == UInt8(ascii: ";") {
                        state = .ext(bytes: 1, at: .nameStart)
                    } else if b == HTTP1Head.cr {
                        state = .sizeLF
                    } else {
                        throw .malformed("chunk size")
                    }
                    pendingSize = value
                }
                i += 1
            case .ext(let count, let at):
                guard b == HTTP1Head.cr || count < limits.maxLineExtensionBytes else { throw .malformed("chunk extension too long") }
                let token = RequestValidator.isTokenChar(b)
                let next: Ext
                switch at {
                case .nameStart:
                    guard token else { throw .malformed("chunk extension") }
                    next = .name
                case .name, .token, .afterQuoted:
                    if b == HTTP1Head.cr {
                        state = .sizeLF
                        i += 1
                        continue
                    }
                    if b == UInt8(ascii: ";") { next = .nameStart }
                    else if b == UInt8(ascii: "="), at == .name { next = .valueStart }
                    else if token, at != .afterQuoted { next = at }
                    else { throw .malformed("chunk extension") }
                case .valueStart:
                    if b == UInt8(ascii: "\"") { next = .quoted }
                    else if token { next = .token }
                    else { throw .malformed("chunk extension") }
                case .quoted:
                    if b == UInt8(ascii: "\"") { next = .afterQuoted }
                    else if b == UInt8(ascii: "\\") { next = .quotedPair }
                    else if RequestValidator.isFieldValueByte(b) { next = .quoted }
                    else { throw .malformed("chunk extension") }
                case .quotedPair:
                    guard RequestValidator.isFieldValueByte(b) else { throw .malformed("chunk extension") }
                    next = .quoted
                }
                state = .ext(bytes: count + 1, at: next)
                i += 1
            case .sizeLF:
                guard b == HTTP1Head.lf else { throw .malformed("bare CR after a chunk size") }
                i += 1
                state = lastChunk ? .trailerStart : .data(remaining: pendingSize)
            case .data(let remaining):
                let take = Int(min(UInt64(n - i), remaining))
                events.append(.data(i..<(i + take)))
                i += take
                state = remaining == UInt64(take) ? .dataCR : .data(remaining: remaining - UInt64(take))
            case .dataCR:
                guard b == HTTP1Head.cr else { throw .malformed("chunk data longer than its size") }
                i += 1
                state = .dataLF
            case .dataLF:
                guard b == HTTP1Head.lf else { throw .malformed("bare CR after chunk data") }
                i += 1
                state = .size(value: 0, digits: 0)
            case .trailerStart:
                i += 1
                if b == HTTP1Head.cr {
                    state = .trailerLF(empty: true)
                } else {
                    guard RequestValidator.isTokenChar(b) else { throw .malformed("trailer field name") }
                    try countTrailer()
                    state = .trailerName
                }
            case .trailerName:
                i += 1
                try countTrailer()
                if b == HTTP1Head.colon {
                    state = .trailerValue
                } else {
                    guard RequestValidator.isTokenChar(b) else { throw .malformed("trailer field name") }
                }
            case .trailerValue:
                i += 1
                if b == HTTP1Head.cr {
                    state = .trailerLF(empty: false)
                } else {
                    guard RequestValidator.isFieldValueByte(b) else { throw .malformed("trailer field value") }
                    try countTrailer()
                }
            case .trailerLF(let empty):
                guard b == HTTP1Head.lf else { throw .malformed("bare CR in the trailer section") }
                i += 1
                if empty {
                    state = .done
                    events.append(.end)
                    return (events, i)
                }
                state = .trailerStart
            case .done:
                return (events, i)
            }
        }
        return (events, i)
    }

    private var pendingSize: UInt64 = 0

    private mutating func countTrailer() throws(HTTP1Head.Failure) {
        trailerBytes += 1
        if trailerBytes > limits.maxTrailerBytes { throw .malformed("trailer section too large") }
    }

    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
