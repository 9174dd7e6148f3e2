import NIOHTTP1

/// Checks a request head before anything else happens: framing (request
/// smuggling), `Host`, limits and header syntax. A refusal is answered by the
/// proxy and the connection is closed; neither the gate nor an upstream sees it.
enum RequestValidator {
    /// How the request body is framed once the head is accepted.
    enum Framing: Equatable {
        case none
        case contentLength(Int64)
        case chunked
    }

    /// `http2`: the head came from an HTTP/2 stream through NIO's HTTP/2-to-HTTP/1 codec, which
    /// turns `:authority` into `Host` and marks a body of unknown length as chunked.
    static func validate(_ head: HTTPRequestHead, config: ProxyConfiguration, http2: Bool = false) -> Result<Framing, ProxyRefusal> {
        guard http2 ? head.version.major == 2 : (head.version.major == 1 && head.version.minor <= 1) else {
            return .failure(.notImplemented("HTTP version"))
        }
        if head.uri.utf8.count > config.maxURILength { return .failure(.uriTooLong) }
        // CONNECT would tunnel; TRACE reflects the request and NIO's encoder drops its framing headers
        // while still writing a body, which would let a body pass as a second, undecided request.
        if head.method == .CONNECT || head.method == .TRACE { return .failure(.methodNotAllowed) }
        guard !head.method.rawValue.isEmpty, head.method.rawValue.utf8.allSatisfy(isTokenChar) else {
            return .failure(.badRequest("method"))
        }

        var count = 0
        var bytes = 0
        var hosts: [String] = []
        var contentLengths: [String] = []
        var transferEncodings: [String] = []
        for (name, value) in head.headers {
            count += 1
            bytes += name.utf8.count + value.utf8.count
            guard !name.isEmpty, name.utf8.allSatisfy(isTokenChar) else { return .failure(.badRequest("header name")) }
            guard value.utf8.allSatisfy(isFieldValueByte) else { return .failure(.badRequest("header value")) }
            // (Compared folding ASCII case in place: no lower-cased copy of every name.)
            if HeaderRules.name(name, equalsLowercased: "host") { hosts.append(value) }
            else if HeaderRules.name(name, equalsLowercased: "content-length") { contentLengths.append(value) }
            else if HeaderRules.name(name, equalsLowercased: "transfer-encoding") { transferEncodings.append(value) }
        }
        if count > config.maxHeaderCount || bytes > config.maxHeaderBytes { return .failure(.headersTooLarge) }

        guard hosts.count == 1, let host = hosts.first, isValidHost(host) else {
            return .failure(.badRequest(hosts.count > 1 ? "more than one Host" : "missing or invalid Host"))
        }
        // (The HTTP/2 codec's head says version 2.0: only a real HTTP/1.0 request is refused Transfer-Encoding.)
        switch HTTP1Framing.request(lengths: contentLengths, encodings: transferEncodings,
                                    http10: head.version.major == 1 && head.version.minor == 0) {
        case .success(.none), .success(.untilClose): return .success(.none)
        case .success(.chunked): return .success(.chunked)
        case .success(.length(let length)):
            return length > config.maxRequestBodyBytes ? .failure(.payloadTooLarge) : .success(.contentLength(length))
        case .failure(.bothLengthAndEncoding): return .failure(.badRequest("both Content-Length and Transfer-Encoding"))
        case .failure(.badContentLength): return .failure(.badRequest("invalid or repeated Content-Length"))
        case .failure(.unsupportedTransferCoding): return .failure(.notImplemented("transfer coding"))
        case .failure(.transferEncodingInHTTP10): return .failure(.badRequest("Transfer-Encoding in HTTP/1.0"))
        }
    }

    /// tchar (RFC 9110 §5.6.2).
    static func isTokenChar(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(b)
        }
    }

    /// field-value bytes: visible ASCII, space, tab, obs-text; no CR, LF, NUL or other controls.
    static func isFieldValueByte(_ b: UInt8) -> Bool {
        b == 0x09 || (b >= 0x20 && b != 0x7F)
    }

    /// A `Host` value: reg-name, IPv4 or bracketed IPv6, optional port; no userinfo.
    static func isValidHost(_ host: String) -> Bool {
        let bytes = Array(host.utf8)
        guard !bytes.isEmpty, bytes.count <= 255 else { return false }
        return bytes.allSatisfy { b in
            PathNormalizer.isUnreserved(b) || b == UInt8(ascii: ":") || b == UInt8(ascii: "[") || b == UInt8(ascii: "]")
        }
    }
}
