/// MenshenEnforcementPoint — the policy enforcement point (NIST SP 800-207 PEP).
///
/// This module is **the data path**. Transports end here: each wire request is
/// converted to a transport-neutral ``GateRequest`` in one function
/// (`GateRequest.init(head:target:clientAddress:scheme:requestID:upgrade:)` in
/// `Proxy/GateRequestConversion.swift`); nothing below the gate knows NIO.
/// Every request — including each request on a keep-alive connection — is put
/// to an ``AccessGate`` before anything reaches an upstream; a verdict is never
/// cached per connection.
///
/// Layout:
/// - `Gate/`: the seam (``GateRequest``, ``GateVerdict``, ``AccessGate``,
///   ``Upstream``), path normalisation (``PathNormalizer``: the gate authorises
///   exactly the path the upstream receives) and the header vocabulary
///   (``HeaderRules``: hop-by-hop, identity and forwarding headers). Pure code; no NIO.
/// - `Proxy/`: the HTTP/1.1 reverse proxy on SwiftNIO (``EnforcementPointServer``).
///   It is hand-written because no package available to the project is a
///   streaming reverse proxy. Per request: validation (framing/smuggling,
///   `Host`, limits) and normalisation → the gate (off the event loop, with a
///   timeout) → a pooled keep-alive upstream connection on the client's own
///   event loop, streaming both bodies with back-pressure (auto-read is off on
///   both channels and a side is only read while the other is writable), so
///   memory per exchange is bounded by one read plus one channel's write buffer.
///   Allowed upgrades (WebSocket) are spliced byte-for-byte after the
///   upstream's 101 (`Splice.swift`). TLS on either side is injected as a
///   handler factory so this module does not pin a TLS stack.
/// - `Errors.swift`: ``ProxyRefusal``, why the proxy answered a request itself.
///
/// Fail closed: a gate that does not answer in time, or answers with an
/// unusable status, yields 503; nothing is forwarded without a `.forward`
/// verdict for that very request; client-supplied identity and forwarding
/// headers never reach an upstream. Logs carry request ids, statuses and
/// reasons, never header values (cookies, `Authorization`).
public enum MenshenEnforcementPoint {}
