import NIOCore
import NIOHTTP1

extension GateRequest {
    /// The one place where a wire request becomes a transport-neutral ``GateRequest``.
    ///
    /// `head` must already have passed ``RequestValidator`` (one `Host`), and
    /// `target` is its normalised target.
    init(head: HTTPRequestHead, target: PathNormalizer.Normalized, clientAddress: SocketAddress?,
         scheme: String, requestID: String, upgrade: String?,
         connectionAttributes: [String: String]) {
        let headers = HeaderRules.removingHopByHop(head.headers.map { ($0.name, $0.value) })
        self.init(
            method: head.method.rawValue,
            path: target.path,
            rawTarget: head.uri,
            query: target.query,
            host: head.headers["host"].first ?? "",
            scheme: scheme,
            clientAddress: clientAddress?.ipAddress,
            headers: headers,
            requestID: requestID,
            upgrade: upgrade,
            connectionAttributes: connectionAttributes
        )
    }
}
