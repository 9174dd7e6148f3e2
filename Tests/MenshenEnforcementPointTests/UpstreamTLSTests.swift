import Foundation
@testable import MenshenEnforcementPoint
import MenshenServer
import MenshenTestSupport
import NIOCore
import NIOPosix
import NIOSSL
import Testing

/// TLS from the gateway to `https://` upstreams as `menshen serve` sets it up (``GatewayTLS/upstreamHandlerFactory``):
/// a real TLS upstream (NIOSSL) behind the real proxy, reached with curl. The upstream's certificate must chain to
/// the configured CAs and name the host the upstream URL gives; mutual TLS with a client certificate.
@Suite("TLS to upstreams")
struct UpstreamTLSTests {
    typealias Certificates = TLSAndHTTP2Tests.Certificates

    /// A self-signed server certificate for another name (openssl), in `dir`.
    static func otherNameCertificate(in dir: URL) throws -> (cert: String, key: String) {
        try Certificates.openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                                  "-keyout", "other.key", "-out", "other.pem", "-subj", "/CN=other.example",
                                  "-addext", "subjectAltName=DNS:other.example"], in: dir)
        return (dir.appendingPathComponent("other.pem").path, dir.appendingPathComponent("other.key").path)
    }

    /// The upstream's TLS: its certificate and key; with `clientCA`, a client certificate chaining to it is required.
    static func upstreamContext(cert: String, key: String, clientCA: String? = nil) throws -> NIOSSLContext {
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) },
                                                           privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        if let clientCA {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCA))
            tls.certificateVerification = .noHostnameVerification   // a client certificate is required and must chain to the CA
        }
        return try NIOSSLContext(configuration: tls)
    }

    /// Status code and body curl got for GET /tls-check through a proxy that forwards to `host`:`upstream`'s port over TLS.
    static func fetch(via factory: @escaping @Sendable (Upstream) throws -> any ChannelHandler, host: String,
                      upstream: TestUpstream) async throws -> (status: String, seen: [String]) {
        let target = Upstream(host: host, port: upstream.port, tls: true)
        return try await withProxy(configure: { $0.upstreamTLSHandler = factory },
                                   gate: { _ in RecordingGate { _ in .forward(upstream: target, addHeaders: []) } }) { server, _, _ in
            let r = await curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(server.localPort ?? 0)/tls-check"])
            return (r.stdout, upstream.seen.all.map(\.uri))
        }
    }

    @Test("an upstream whose certificate chains to the configured CA and names the host (DNS or IP) is reached; the request arrives")
    func verifiedUpstream() async throws {
        let certs = try Certificates()
        defer { try? FileManager.default.removeItem(at: certs.dir) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let upstream = try await TestUpstream(group: group, tls: try Self.upstreamContext(cert: certs.serverCert, key: certs.serverKey))
        // The self-signed server certificate (SAN localhost, 127.0.0.1) is its own trust anchor here.
        let factory = try GatewayTLS.upstreamHandlerFactory(caFile: certs.serverCert, certificateFile: nil, privateKeyFile: nil)
        for host in ["localhost", "127.0.0.1"] {
            let r = try await Self.fetch(via: factory, host: host, upstream: upstream)
            #expect(r.status == "200", "\(host)")
        }
        #expect(upstream.seen.all.map(\.uri) == ["/tls-check", "/tls-check"])
        await upstream.close()
        try await group.shutdownGracefully()
    }

    @Test("an upstream certificate from a CA not trusted, or for another name, is refused: 502 and nothing reaches the upstream")
    func refusedUpstream() async throws {
        let certs = try Certificates()
        defer { try? FileManager.default.removeItem(at: certs.dir) }
        let other = try Self.otherNameCertificate(in: certs.dir)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // Not in the system's trust store.
        let untrusted = try await TestUpstream(group: group, tls: try Self.upstreamContext(cert: certs.serverCert, key: certs.serverKey))
        let system = try GatewayTLS.upstreamHandlerFactory(caFile: nil, certificateFile: nil, privateKeyFile: nil)
        #expect(try await Self.fetch(via: system, host: "localhost", upstream: untrusted).status == "502")
        // Trusted, but for other.example, not localhost.
        let misnamed = try await TestUpstream(group: group, tls: try Self.upstreamContext(cert: other.cert, key: other.key))
        let trustsOther = try GatewayTLS.upstreamHandlerFactory(caFile: other.cert, certificateFile: nil, privateKeyFile: nil)
        #expect(try await Self.fetch(via: trustsOther, host: "localhost", upstream: misnamed).status == "502")
        #expect(untrusted.seen.all.isEmpty && misnamed.seen.all.isEmpty)
        await untrusted.close()
        await misnamed.close()
        try await group.shutdownGracefully()
    }

    @Test("mutual TLS: an upstream that requires a client certificate gets the configured one; without it, 502")
    func clientCertificate() async throws {
        let certs = try Certificates()
        defer { try? FileManager.default.removeItem(at: certs.dir) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let upstream = try await TestUpstream(group: group, tls: try Self.upstreamContext(cert: certs.serverCert, key: certs.serverKey,
                                                                                       clientCA: certs.clientCA))
        let without = try GatewayTLS.upstreamHandlerFactory(caFile: certs.serverCert, certificateFile: nil, privateKeyFile: nil)
        #expect(try await Self.fetch(via: without, host: "localhost", upstream: upstream).status == "502")
        #expect(upstream.seen.all.isEmpty)
        let with = try GatewayTLS.upstreamHandlerFactory(caFile: certs.serverCert, certificateFile: certs.clientCert, privateKeyFile: certs.clientKey)
        #expect(try await Self.fetch(via: with, host: "localhost", upstream: upstream).status == "200")
        #expect(upstream.seen.all.map(\.uri) == ["/tls-check"])
        await upstream.close()
        try await group.shutdownGracefully()
    }

    @Test("unreadable or empty files are refused with the setting and the file named")
    func badFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("upstream-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("empty.pem").path, missing = dir.appendingPathComponent("missing.pem").path
        try Data().write(to: URL(fileURLWithPath: empty))
        for (ca, cert, key, named) in [(missing, nil, nil, "gateway.upstream_tls.ca_file \(missing)"),
                                       (empty, nil, nil, "gateway.upstream_tls.ca_file \(empty)"),
                                       (nil, missing, empty, "gateway.upstream_tls: cannot load \(missing)")] as [(String?, String?, String?, String)] {
            #expect {
                _ = try GatewayTLS.upstreamHandlerFactory(caFile: ca, certificateFile: cert, privateKeyFile: key)
            } throws: { error in "\(error)".contains(named) }
        }
    }
}
