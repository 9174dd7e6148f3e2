/// Why the enforcement point refused a request itself (before or instead of
/// asking the gate or an upstream), and the status it answers with.
public enum ProxyRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    case badRequest(String)
    case uriTooLong
    case headersTooLarge
    case payloadTooLarge
    case methodNotAllowed
    case notImplemented(String)
    case gateUnavailable
    case upstreamUnavailable
    case upstreamTimeout
    case upstreamBusy
    case clientTimeout

    public var status: Int {
        switch self {
        case .badRequest: 400
        case .uriTooLong: 414
        case .headersTooLarge: 431
        case .payloadTooLarge: 413
        case .methodNotAllowed: 405
        case .notImplemented: 501
        case .gateUnavailable: 503
        case .upstreamUnavailable: 502
        case .upstreamTimeout: 504
        case .upstreamBusy: 503
        case .clientTimeout: 408
        }
    }

    /// A short, non-sensitive explanation put in the response body.
    public var description: String {
        switch self {
        case .badRequest(let why): "bad request: \(why)"
        case .uriTooLong: "request target too long"
        case .headersTooLarge: "request headers too large"
        case .payloadTooLarge: "request body too large"
        case .methodNotAllowed: "method not allowed"
        case .notImplemented(let what): "not implemented: \(what)"
        case .gateUnavailable: "access decision unavailable"
        case .upstreamUnavailable: "upstream unavailable"
        case .upstreamTimeout: "upstream timed out"
        case .upstreamBusy: "upstream connection limit reached"
        case .clientTimeout: "request timed out"
        }
    }
}

/// A ``ProxyConfiguration`` the enforcement point cannot start with (``EnforcementPointServer/start()``).
public struct ProxyConfigurationError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
