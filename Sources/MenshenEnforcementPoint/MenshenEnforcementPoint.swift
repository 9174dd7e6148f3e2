/// MenshenEnforcementPoint — the policy enforcement point (NIST SP 800-207 PEP).
///
/// This module is **the data path**. Transports end here: each wire request is
/// converted to a transport-neutral ``GateRequest`` in one function
/// (`GateRequest.init(head:target:clientAddress:scheme:requestID:)` in
/// `Proxy/GateRequestConversion.swift`); nothing below the gate knows NIO.
/// Every request — including each request on a keep-alive connection — is put
/// to an ``AccessGate`` before anything reaches an upstream; a verdict is never
/// cached per connection.
///
/// Layout:
/// - `Gate/`: the seam (``GateRequest``, ``GateVerdict``, ``AccessGate``,
///   ``Upstream``), path normalisation (``PathNormalizer``) and the header
///   vocabulary (hop-by-hop, identity and forwarding headers). Pure code; no NIO.
/// - `Proxy/`: the HTTP/1.1 reverse proxy on SwiftNIO (``EnforcementPointServer``).
///   It is hand-written because no package available to the project is a
///   streaming reverse proxy: requests are validated, normalised, decided,
///   and then streamed to a pooled keep-alive upstream connection with
///   back-pressure in both directions (auto-read is off on both channels and a
///   side is only read while the other side is writable), so memory per
///   exchange is bounded by one read plus one channel's write buffer.
/// - `Errors.swift`: why a request was refused before the gate was asked.
///
/// Fail closed: a gate that does not answer in time yields 503; nothing is
/// forwarded without a `.forward` verdict for that very request.
public enum MenshenEnforcementPoint {}
