import NIOHTTP1

/// How an HTTP/1.1 message's body is delimited (RFC 9112 §6), decided from its head, for the
/// enforcement point's own HTTP/1 data path (see ``HTTP1Head``).
///
/// Strict where readers disagree: a message with both `Transfer-Encoding` and `Content-Length` is
/// refused (RFC 9112 §6.1 allows treating it as an error, and it is the classic desync), as is a
/// `Content-Length` that is not one run of digits (repeated or comma-separated values included) or
/// a request `Transfer-Encoding` other than exactly `chunked` (501 territory; the caller decides).
enum HTTP1Framing {
    enum Body: Equatable, Sendable {
        case none
        case length(Int64)
        case chunked
        /// A response read until the upstream closes (no length, not chunked).
        case untilClose
    }

    enum Refusal: Error, Equatable, Sendable {
        case bothLengthAndEncoding
        case badContentLength
        /// A request transfer coding other than `chunked` alone (a response's in HTTP/1.0).
        case unsupportedTransferCoding
        /// A request with Transfer-Encoding in HTTP/1.0 (faulty framing, RFC 9112 §6.1).
        case transferEncodingInHTTP10
    }

    /// The body of a request with these fields (HTTP/1.`minor`).
    static func request(_ fields: [HTTP1Head.Field], minor: Int) -> Result<Body, Refusal> {
        let (lengths, encodings) = framingFields(fields)
        return request(lengths: lengths, encodings: encodings, http10: minor == 0)
    }

    /// The body of a request with these `Content-Length` and `Transfer-Encoding` values, in field order.
    /// `http10`: the request is HTTP/1.0 (not an HTTP/2 stream seen through NIO's HTTP/1 codec, which
    /// marks a body of unknown length `chunked`).
    static func request(lengths: [String], encodings: [String], http10: Bool) -> Result<Body, Refusal> {
        if !lengths.isEmpty && !encodings.isEmpty { return .failure(.bothLengthAndEncoding) }
        if !encodings.isEmpty {
            guard codings(encodings) == ["chunked"] else { return .failure(.unsupportedTransferCoding) }
            return http10 ? .failure(.transferEncodingInHTTP10) : .success(.chunked)
        }
        return length(lengths).map { $0.map { $0 == 0 ? .none : .length($0) } ?? .none }
    }

    /// The body of a response with this head to a request with `requestMethod` (RFC 9112 §6.3).
    static func response(_ head: HTTP1Head.Response, requestMethod: String) -> Result<Body, Refusal> {
        // Framing fields are judged first, also on responses that have no body (HEAD, 1xx, 204, 304): a
        // conflicting or malformed one is refused whatever the status, as llhttp refuses it.
        let (lengths, encodings) = framingFields(head.fields)
        if !lengths.isEmpty && !encodings.isEmpty { return .failure(.bothLengthAndEncoding) }
        let length: Int64?
        switch Self.length(lengths) {
        case .success(let n): length = n
        case .failure(let refusal): return .failure(refusal)
        }
        // Transfer-Encoding in HTTP/1.0 is faulty framing (RFC 9112 §6.1).
        if !encodings.isEmpty && head.minor < 1 { return .failure(.unsupportedTransferCoding) }
        if requestMethod == "HEAD" || head.status < 200 || head.status == 204 || head.status == 304 { return .success(.none) }
        if !encodings.isEmpty {
            // Chunked last: chunked (what comes before it is content coding for the recipient). Otherwise the
            // response runs until the connection closes (§6.3 rule 4).
            return .success(codings(encodings).last == "chunked" ? .chunked : .untilClose)
        }
        return .success(length.map { .length($0) } ?? .untilClose)
    }

    /// What a response's framing fields announce, whatever its status and the request's method say about its
    /// having a body.
    enum Announced: Equatable, Sendable {
        case nothing
        /// A Content-Length above 0.
        case length
        /// A Transfer-Encoding.
        case transferCoding
    }

    static func announced(_ head: HTTP1Head.Response) -> Announced {
        let (lengths, encodings) = framingFields(head.fields)
        if !encodings.isEmpty { return .transferCoding }
        if case .success(let n?) = length(lengths), n > 0 { return .length }
        return .nothing
    }

    private static func framingFields(_ fields: [HTTP1Head.Field]) -> (lengths: [String], encodings: [String]) {
        var lengths: [String] = [], encodings: [String] = []
        for field in fields {
            if HeaderRules.name(field.name, equalsLowercased: "content-length") { lengths.append(field.value) }
            else if HeaderRules.name(field.name, equalsLowercased: "transfer-encoding") { encodings.append(field.value) }
        }
        return (lengths, encodings)
    }

    private static func codings(_ values: [String]) -> [String] {
        values.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
            .map { $0.trimmingASCIISpaces().lowercased() }
    }

    /// Whether a message with these fields on HTTP/`major`.`minor` keeps its connection open, read as NIOHTTP1's
    /// `HTTPHeaders.isKeepAlive(version:)` reads it (`HTTP1FramingTests.keepAliveAsNIO` compares them): every
    /// `Connection` field's comma-separated tokens, spaces and tabs trimmed, compared as NIO compares them
    /// (bytes equal with bit 0x20 ignored); one `close` closes, one `keep-alive` keeps, more than one of the two
    /// closes; with neither, HTTP/1.x with x ≥ 1 keeps (HTTP/1.0 and HTTP/2.0 do not, as in NIO). An ASCII value is
    /// read in place, where NIO's splits every `Connection` value into new strings: the proxy asks this of every
    /// request and response head. A value with other bytes is split on the character `,` as NIO splits it (a
    /// comma joined to a combining mark, or following a prepend character, separates nothing).
    static func keepAlive(_ headers: HTTPHeaders, major: Int, minor: Int) -> Bool {
        var verdict: Bool?   // nil: no close or keep-alive token seen yet
        /// Takes one token (untrimmed); false once the tokens say close for having more than one of the two.
        func see(_ raw: UnsafeBufferPointer<UInt8>) -> Bool {
            let (a, b) = HeaderRules.trimmed(raw, 0, raw.count)   // spaces and tabs, as NIO trims tokens
            let token = UnsafeBufferPointer(rebasing: raw[a..<b])
            let keep = equalsAsNIO(token, "keep-alive")
            guard keep || equalsAsNIO(token, "close") else { return true }
            if verdict != nil { return false }
            verdict = keep
            return true
        }
        for (name, value) in headers where HeaderRules.name(name, equalsLowercased: "connection") {
            var text = value
            let open: Bool = text.withUTF8 { bytes in
                if bytes.contains(where: { $0 >= 0x80 }) {
                    for word in value.split(separator: ",") {
                        var w = word
                        if !w.withUTF8(see) { return false }
                    }
                    return true
                }
                var start = 0
                while start <= bytes.count {
                    var end = start
                    while end < bytes.count, bytes[end] != UInt8(ascii: ",") { end += 1 }
                    if !see(UnsafeBufferPointer(rebasing: bytes[start..<end])) { return false }
                    start = end + 1
                }
                return true
            }
            if !open { return false }
        }
        return verdict ?? (major == 1 && minor >= 1)
    }

    static func keepAlive(_ head: HTTPRequestHead) -> Bool { keepAlive(head.headers, major: head.version.major, minor: head.version.minor) }
    static func keepAlive(_ head: HTTPResponseHead) -> Bool { keepAlive(head.headers, major: head.version.major, minor: head.version.minor) }

    /// `bytes` equals `token` as NIOHTTP1 compares header tokens: byte by byte with bit 0x20 ignored (so not as
    /// ``HeaderRules/name(_:equalsLowercased:)``, which folds only ASCII letters).
    private static func equalsAsNIO(_ bytes: UnsafeBufferPointer<UInt8>, _ token: StaticString) -> Bool {
        guard bytes.count == token.utf8CodeUnitCount else { return false }
        let t = token.utf8Start
        for i in 0..<bytes.count where bytes[i] & 0xDF != t[i] & 0xDF { return false }
        return true
    }

    /// One Content-Length of 1–18 digits, or none.
    private static func length(_ values: [String]) -> Result<Int64?, Refusal> {
        guard let text = values.first else { return .success(nil) }
        guard values.count == 1, !text.isEmpty, text.utf8.count <= 18,
              text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let n = Int64(text)
        else { return .failure(.badContentLength) }
        return .success(n)
    }
}
