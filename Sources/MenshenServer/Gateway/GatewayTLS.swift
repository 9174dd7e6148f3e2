import Crypto
import Foundation
import MenshenConfig
import MenshenEnforcementPoint
import NIOCore
import NIOSSL
import Synchronization
import X509

/// TLS for the gateway listener from `gateway.tls.*`: the certificate and key
/// files, ALPN `h2` and `http/1.1`, TLS 1.2 at least, and, with a client CA
/// file, an optional client (device) certificate.
///
/// In `menshen serve` (``configure(_:from:)``) the handshake accepts any
/// presented certificate whose key the client proves it holds, and trust is
/// decided by the gate (``DeviceBinding``: device CA, expiry, revocation,
/// inventory), so that a certificate from another CA, an expired or a
/// revoked one is refused *with an event saying why* instead of a bare
/// handshake failure; a refused certificate counts as no device.
/// ``serverContext(certificateFile:privateKeyFile:clientCAFile:http2:)`` used
/// on its own still lets OpenSSL refuse certificates that do not chain to the CA.
///
/// The certificate's subject (RFC 4514), SHA-256 fingerprint and DER (base64)
/// are given to the gate as connection attributes (`tls.client.subject`,
/// `tls.client.sha256`, `tls.client.der`), computed once per connection
/// (``ConnectionCertificates``); they are never a reason to skip a decision.
public enum GatewayTLS {
    static func configure(_ proxy: inout ProxyConfiguration, from gateway: MenshenConfiguration.Gateway) throws {
        guard !gateway.tlsCertificateFile.isEmpty else { return }
        let tls = try serverConfiguration(certificateFile: gateway.tlsCertificateFile, privateKeyFile: gateway.tlsPrivateKeyFile,
                                          clientCAFile: gateway.tlsClientCAFile.isEmpty ? nil : gateway.tlsClientCAFile, http2: proxy.http2)
        if !gateway.tlsClientCAFile.isEmpty {
            useDeviceCertificates(&proxy, configuration: tls)
        } else {
            let context = try makeContext(tls)
            proxy.tlsHandler = { NIOSSLServerHandler(context: context) }
        }
        proxy.scheme = "https"
    }

    /// TLS to `https://` upstreams from `gateway.upstream_tls.*` (set always: with nothing configured the
    /// system's trust store is used). See ``upstreamHandlerFactory(caFile:certificateFile:privateKeyFile:)``.
    static func configureUpstreams(_ proxy: inout ProxyConfiguration, from gateway: MenshenConfiguration.Gateway) throws {
        proxy.upstreamTLSHandler = try upstreamHandlerFactory(
            caFile: gateway.upstreamTLSCAFile.isEmpty ? nil : gateway.upstreamTLSCAFile,
            certificateFile: gateway.upstreamTLSCertificateFile.isEmpty ? nil : gateway.upstreamTLSCertificateFile,
            privateKeyFile: gateway.upstreamTLSPrivateKeyFile.isEmpty ? nil : gateway.upstreamTLSPrivateKeyFile)
    }

    /// The TLS client handler for each connection to an `https://` upstream, from one context made here: TLS 1.2
    /// at least, ALPN `http/1.1`, the certificate verified in full — it must chain to the CAs in `caFile` (nil:
    /// the system's trust store) and name the upstream's host: as SNI and DNS name, or for an IP literal as an IP
    /// address (no SNI). With `certificateFile` and `privateKeyFile` the gateway presents a client certificate.
    /// The handler depends only on the upstream's host (as the pool's key does), never on the `Host` sent to it.
    public static func upstreamHandlerFactory(caFile: String?, certificateFile: String?, privateKeyFile: String?) throws
        -> @Sendable (Upstream) throws -> any ChannelHandler {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .fullVerification
        tls.applicationProtocols = ["http/1.1"]
        if let caFile {
            do {
                let roots = try NIOSSLCertificate.fromPEMFile(caFile)
                guard !roots.isEmpty else { throw GatewayLoadError(message: "no certificate in it") }
                tls.trustRoots = .certificates(roots)
            } catch {
                throw GatewayLoadError(message: "gateway.upstream_tls.ca_file \(caFile): \(error)")
            }
        }
        if let certificateFile, let privateKeyFile {
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
                guard !chain.isEmpty else { throw GatewayLoadError(message: "no certificate in it") }
                tls.certificateChain = chain.map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: privateKeyFile, format: .pem))
            } catch {
                throw GatewayLoadError(message: "gateway.upstream_tls: cannot load \(certificateFile) / \(privateKeyFile): \(error)")
            }
        }
        let context: NIOSSLContext
        do { context = try NIOSSLContext(configuration: tls) } catch {
            throw GatewayLoadError(message: "gateway.upstream_tls: \(error)")
        }
        return { upstream in
            // An IP literal (as URLs write IPv6, in brackets) is checked against the certificate's IP addresses.
            let host = upstream.host.hasPrefix("[") && upstream.host.hasSuffix("]") ? String(upstream.host.dropFirst().dropLast()) : upstream.host
            let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
            return try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : host)
        }
    }

    /// TLS with device certificates decided by the gate: the handshake checks only that the
    /// client holds the presented certificate's key (its CertificateVerify), and the certificate's
    /// attributes reach the gate once per connection, where ``DeviceBinding`` verifies it.
    ///
    /// **Every connection is a full handshake.** A resumed TLS session (a TLS 1.3 ticket, a TLS 1.2
    /// ticket or session id) carries the first handshake's client certificate without a new
    /// CertificateVerify: whoever copied the session secrets from the device's memory — or any
    /// process of the device that can read them, without the hardware-bound key — would pass as
    /// that device until the ticket expires, and after a certificate renewal the resumed
    /// connection would show the superseded certificate. NIOSSL offers no switch for BoringSSL's
    /// tickets and session cache, and both belong to the SSL context, so each connection gets its
    /// own context from `configuration`: a ticket or session id of another connection's context
    /// is never accepted. (A context is built from the already-parsed certificates and key; it
    /// costs a small part of the full handshake it forces.)
    public static func useDeviceCertificates(_ proxy: inout ProxyConfiguration, configuration: TLSConfiguration) {
        let certificates = ConnectionCertificates()
        proxy.connectionAttributes = { channel in certificates.attributes(of: channel) }
        proxy.tlsHandler = {
            NIOSSLServerHandler(context: try makeContext(configuration),
                                customVerificationCallback: { _, promise in promise.succeed(.certificateVerified) })
        }
        proxy.scheme = "https"
    }

    /// The TLS 1.2 cipher suites the listener accepts (OpenSSL names).
    public static let tls12CipherSuites = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                                           "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"]
        .joined(separator: ":")

    /// The listener's TLS context; every problem names the file.
    public static func serverContext(certificateFile: String, privateKeyFile: String, clientCAFile: String?, http2: Bool) throws -> NIOSSLContext {
        try makeContext(serverConfiguration(certificateFile: certificateFile, privateKeyFile: privateKeyFile, clientCAFile: clientCAFile, http2: http2))
    }

    /// The listener's TLS configuration, checked by building a context from it once; every problem names the file.
    public static func serverConfiguration(certificateFile: String, privateKeyFile: String, clientCAFile: String?, http2: Bool) throws -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
            key = try NIOSSLPrivateKey(file: privateKeyFile, format: .pem)
        } catch {
            throw GatewayLoadError(message: "gateway.tls: cannot load \(certificateFile) / \(privateKeyFile): \(error)")
        }
        guard !chain.isEmpty else { throw GatewayLoadError(message: "gateway.tls.certificate_file \(certificateFile): no certificate in it") }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        // TLS 1.2: only ECDHE key exchange with AEAD ciphers (Mozilla's "intermediate" list without DHE) — no static-RSA
        // key exchange (no forward secrecy), no CBC/SHA-1, and nothing RFC 9113 §9.2.2 forbids for HTTP/2. TLS 1.3's
        // suites are all AEAD and stay as they are.
        tls.cipherSuites = Self.tls12CipherSuites
        tls.applicationProtocols = http2 ? ["h2", "http/1.1"] : ["http/1.1"]
        if let clientCAFile {
            do { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCAFile)) } catch {
                throw GatewayLoadError(message: "gateway.tls.client_ca_file \(clientCAFile): \(error)")
            }
            tls.certificateVerification = .optionalVerification
        }
        _ = try makeContext(tls)
        return tls
    }

    static func makeContext(_ tls: TLSConfiguration) throws -> NIOSSLContext {
        do { return try NIOSSLContext(configuration: tls) } catch {
            throw GatewayLoadError(message: "gateway.tls: \(error)")
        }
    }

    /// Subject, SHA-256 fingerprint and base64 DER of the client certificate, if one was presented.
    public static func clientCertificateAttributes(_ channel: any Channel) -> [String: String] {
        // The enforcement point passes the TLS connection (for an HTTP/2 stream, its parent).
        guard let handler = try? channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self), let certificate = handler.peerCertificate, let der = try? certificate.toDERBytes() else { return [:] }
        let fingerprint = SHA256.hash(data: der).map { String(format: "%02x", $0) }.joined()
        var attributes = ["tls.client.sha256": fingerprint, "tls.client.der": Data(der).base64EncodedString()]
        // The subject as an RFC 4514 distinguished name (swift-certificates), so a crafted common
        // name cannot pose as another attribute; policies should prefer the fingerprint.
        if let parsed = try? Certificate(derEncoded: der) { attributes["tls.client.subject"] = parsed.subject.description }
        return attributes
    }
}

/// The client-certificate attributes of each open connection, computed on its
/// first request and forgotten when it closes, so later requests (and every
/// HTTP/2 stream) cost one look-up instead of re-encoding and hashing the certificate.
final class ConnectionCertificates: Sendable {
    private let byConnection = Mutex<[ObjectIdentifier: [String: String]]>([:])

    func attributes(of channel: any Channel) -> [String: String] {
        let key = ObjectIdentifier(channel)
        if let known = byConnection.withLock({ $0[key] }) { return known }
        let attributes = GatewayTLS.clientCertificateAttributes(channel)
        byConnection.withLock { $0[key] = attributes }
        // Registered after the insert: on a connection already closed the removal runs at once.
        channel.closeFuture.whenComplete { [weak self] _ in self?.byConnection.withLock { _ = $0.removeValue(forKey: key) } }
        return attributes
    }

    var count: Int { byConnection.withLock { $0.count } }
}
