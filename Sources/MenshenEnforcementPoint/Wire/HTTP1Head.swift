/// Strict HTTP/1.1 message heads (RFC 9112 §2–5) parsed from bytes, for the enforcement point's own
/// HTTP/1 data path.
///
/// Written by hand: NIOHTTP1's decoder is correct but builds `HTTPHeaders` and passes every message
/// through several pipeline handlers, which costs about twice what the whole of a hand-parsed proxy
/// does (`scripts/bench-proxy-floor`, docs/benchmarks.md). Stricter than the RFC's recipient
/// leniencies, on purpose — a proxy that reads a message differently from the server behind it is
/// how requests are smuggled:
///
/// - every line ends in CRLF (no bare LF, no bare CR anywhere in the head);
/// - no whitespace between a field name and its colon, no line folding (obs-fold), no empty name;
/// - a field value is visible ASCII, space, tab or obs-text (0x80–0xFF); leading and trailing
///   space/tab are not part of it; no other control byte (NUL, DEL, …);
/// - the request target is visible ASCII without spaces; the method a token; the version
///   `HTTP/` digit `.` digit (which versions are served is the caller's business);
/// - up to ``Limits/maxEmptyLinesBefore`` empty lines before a request line are skipped (RFC 9112 §2.2).
///
/// Framing (Content-Length, Transfer-Encoding) is judged by the caller from the fields
/// (``RequestValidator``). Nothing here allocates until a head is complete.
enum HTTP1Head {
    struct Limits: Sendable {
        /// The whole head, request or status line and fields, CRLFs included.
        var maxHeadBytes: Int
        var maxFields: Int
        var maxEmptyLinesBefore = 4
    }

    struct Field: Equatable, Sendable {
        var name: String
        var value: String
    }

    struct Request: Equatable, Sendable {
        var method: String
        var target: String
        var major: Int
        var minor: Int
        var fields: [Field]
    }

    struct Response: Equatable, Sendable {
        var major: Int
        var minor: Int
        var status: Int
        var reason: String
        var fields: [Field]
    }

    enum Failure: Error, Equatable, Sendable {
        /// No end of head within ``Limits/maxHeadBytes``.
        case headTooLarge
        case tooManyFields
        /// What is wrong, in a few words (for logs; the client gets a plain 400).
        case malformed(String)
    }

    enum Outcome<Head: Equatable & Sendable>: Equatable, Sendable {
        /// The bytes so far are a valid beginning; read more.
        case incomplete
        /// A head, and how many bytes it took (the body, if any, starts there).
        case complete(Head, length: Int)
        case failed(Failure)
    }

    // MARK: Parsing

    static func parseRequest(_ bytes: UnsafeRawBufferPointer, limits: Limits) -> Outcome<Request> {
        var p = Cursor(bytes: bytes, limit: limits.maxHeadBytes)
        do throws(Stop) {
            var empty = 0
            while p.peek() == cr || p.peek() == lf {
                try p.expectCRLF("empty line before the request line")
                empty += 1
                if empty > limits.maxEmptyLinesBefore { throw Stop.failure(.malformed("empty lines before the request line")) }
            }
            let method = try p.token(endingWith: sp, what: "method")
            let target = try p.run(what: "request target", endingWith: sp, allowed: isTargetByte)
            let (major, minor) = try p.version()
            try p.expectCRLF("request line")
            let fields = try p.fields(limits)
            return .complete(Request(method: p.string(method), target: p.string(target), major: major, minor: minor,
                                     fields: fields.map { Field(name: p.string($0.0), value: p.string($0.1)) }),
                             length: p.index)
        } catch {
            return outcome(error, bytes.count, limits)
        }
    }

    static func parseResponse(_ bytes: UnsafeRawBufferPointer, limits: Limits) -> Outcome<Response> {
        var p = Cursor(bytes: bytes, limit: limits.maxHeadBytes)
        do throws(Stop) {
            let (major, minor) = try p.version()
            try p.expect(sp, what: "status line")
            var status = 0
            for _ in 0..<3 {
                let b = try p.next()
                guard isDigit(b) else { throw Stop.failure(.malformed("status code")) }
                status = status * 10 + Int(b - zero)
            }
            var reason = 0..<0
            if p.peek() == sp {
                p.index += 1
                reason = try p.run(what: "reason phrase", endingWith: cr, allowed: RequestValidator.isFieldValueByte, allowEmpty: true)
            } else if p.peek() != cr && p.peek() != nil {
                throw Stop.failure(.malformed("status code"))
            }
            try p.expectCRLF("status line")
            let fields = try p.fields(limits)
            return .complete(Response(major: major, minor: minor, status: status, reason: p.string(reason),
                                      fields: fields.map { Field(name: p.string($0.0), value: p.string($0.1)) }),
                             length: p.index)
        } catch {
            return outcome(error, bytes.count, limits)
        }
    }

    private static func outcome<Head>(_ stop: Stop, _ count: Int, _ limits: Limits) -> Outcome<Head> {
        switch stop {
        case .needMore: count >= limits.maxHeadBytes ? .failed(.headTooLarge) : .incomplete
        case .failure(let failure): .failed(failure)
        }
    }

    // MARK: Bytes

    static let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n"), sp = UInt8(ascii: " "), tab = UInt8(ascii: "\t")
    static let colon = UInt8(ascii: ":"), zero = UInt8(ascii: "0")

    static func isDigit(_ b: UInt8) -> Bool { b >= zero && b <= UInt8(ascii: "9") }
    /// origin-form, absolute-form, authority-form and `*` are all visible ASCII (RFC 9112 §3.2).
    static func isTargetByte(_ b: UInt8) -> Bool { b > 0x20 && b < 0x7F }

    /// Why parsing stopped: the bytes ran out (or hit the head limit) before the head's end, or the head is bad.
    enum Stop: Error { case needMore, failure(Failure) }

    struct Cursor {
        let bytes: UnsafeRawBufferPointer
        /// Bytes beyond this index are never looked at: a head must end within it.
        let end: Int
        var index = 0

        init(bytes: UnsafeRawBufferPointer, limit: Int) {
            self.bytes = bytes
            end = min(bytes.count, max(0, limit))
        }

        func peek() -> UInt8? { index < end ? bytes[index] : nil }

        mutating func next() throws(Stop) -> UInt8 {
            guard index < end else { throw .needMore }
            defer { index += 1 }
            return bytes[index]
        }

        mutating func expect(_ byte: UInt8, what: String) throws(Stop) {
            guard try next() == byte else { throw .failure(.malformed(what)) }
        }

        mutating func expectCRLF(_ what: String) throws(Stop) {
            guard try next() == cr else { throw .failure(.malformed("\(what) not ended by CRLF")) }
            guard try next() == lf else { throw .failure(.malformed("bare CR in \(what)")) }
        }

        /// A non-empty run of tchar, then `terminator` (consumed).
        mutating func token(endingWith terminator: UInt8, what: String) throws(Stop) -> Range<Int> {
            try run(what: what, endingWith: terminator, allowed: RequestValidator.isTokenChar)
        }

        /// A run of `allowed` bytes up to `terminator`; the terminator is consumed unless it is CR.
        mutating func run(what: String, endingWith terminator: UInt8, allowed: (UInt8) -> Bool,
                          allowEmpty: Bool = false) throws(Stop) -> Range<Int> {
            let start = index
            while true {
                let b = try next()
                if b == terminator {
                    if terminator == cr { index -= 1 }
                    guard allowEmpty || index > start + (terminator == cr ? 0 : 1) else { throw .failure(.malformed(what)) }
                    return start..<(terminator == cr ? index : index - 1)
                }
                guard allowed(b) else { throw .failure(.malformed(what)) }
            }
        }

        /// `HTTP/` DIGIT `.` DIGIT
        mutating func version() throws(Stop) -> (Int, Int) {
            for c in "HTTP/".utf8 { try expect(c, what: "HTTP version") }
            let major = try next()
            try expect(UInt8(ascii: "."), what: "HTTP version")
            let minor = try next()
            guard isDigit(major), isDigit(minor) else { throw .failure(.malformed("HTTP version")) }
            return (Int(major - zero), Int(minor - zero))
        }

        /// Field lines up to and including the empty line that ends the head.
        mutating func fields(_ limits: Limits) throws(Stop) -> [(Range<Int>, Range<Int>)] {
            var out: [(Range<Int>, Range<Int>)] = []
            while true {
                let first = try next()
                if first == cr {
                    guard try next() == lf else { throw .failure(.malformed("bare CR ending the head")) }
                    return out
                }
                if first == sp || first == tab { throw .failure(.malformed("folded field line")) }
                if first == lf { throw .failure(.malformed("bare LF in the head")) }
                index -= 1
                let name = try token(endingWith: colon, what: "field name")
                while let b = peek(), b == sp || b == tab { index += 1 }
                let start = index
                var last = index   // one past the last byte that is not space or tab
                while true {
                    let b = try next()
                    if b == cr {
                        guard try next() == lf else { throw .failure(.malformed("bare CR in a field line")) }
                        break
                    }
                    guard RequestValidator.isFieldValueByte(b) else {
                        throw .failure(.malformed(b == lf ? "bare LF in a field line" : "control byte in a field value"))
                    }
                    if b != sp && b != tab { last = index }
                }
                if out.count == limits.maxFields { throw .failure(.tooManyFields) }
                out.append((name, start..<last))
            }
        }

        func string(_ range: Range<Int>) -> String {
            String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
        }
    }
}
