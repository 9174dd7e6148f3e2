import NIOCore
import NIOHTTP1

extension GateRequest {
    /// The one place where a wire request becomes a transport-neutral ``GateRequest``.
    ///
    /// `head` must already have passed ``RequestValidator`` (one `Host`), `headers` are its
    /// headers classified, and `target` is its normalised target. The host is taken without the
    /// trailing dot of an absolute name (``HostName/withoutTrailingDot(_:)``).
    init(head: HTTPRequestHead, headers classified: HeaderRules.Classified, target: PathNormalizer.Normalized,
         clientAddress: String?, scheme: String, requestID: String, upgrade: String?,
         connectionAttributes: [String: String]) {
        let headers = classified.endToEnd
        self.init(
            method: head.method.rawValue,
            path: target.path,
            rawTarget: head.uri,
            query: target.query,
            host: HostName.withoutTrailingDot(classified.first("host") ?? ""),
            scheme: scheme,
            clientAddress: clientAddress,
            headers: headers,
            requestID: requestID,
            upgrade: upgrade,
            connectionAttributes: connectionAttributes
        )
    }
}
