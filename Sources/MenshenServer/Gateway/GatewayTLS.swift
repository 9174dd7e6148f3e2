import Crypto
import Foundation
import MenshenConfig
import MenshenEnforcementPoint
import NIOCore
import NIOSSL
import X509

/// TLS for the gateway listener from `gateway.tls.*`: the certificate and key
/// files, ALPN `h2` and `http/1.1`, TLS 1.2 at least, and, with a client CA
/// file, an optional client (device) certificate that must chain to it when
/// presented. The validated certificate's subject (RFC 4514) and SHA-256 fingerprint are
/// given to the gate as connection attributes (`tls.client.subject`,
/// `tls.client.sha256`) for the device pillar; they are never a reason to skip
/// a decision.
public enum GatewayTLS {
    static func configure(_ proxy: inout ProxyConfiguration, from gateway: MenshenConfiguration.Gateway) throws {
        guard !gateway.tlsCertificateFile.isEmpty else { return }
        let context = try serverContext(certificateFile: gateway.tlsCertificateFile, privateKeyFile: gateway.tlsPrivateKeyFile,
                                        clientCAFile: gateway.tlsClientCAFile.isEmpty ? nil : gateway.tlsClientCAFile, http2: proxy.http2)
        if !gateway.tlsClientCAFile.isEmpty { proxy.connectionAttributes = { channel in clientCertificateAttributes(channel) } }
        proxy.tlsHandler = { NIOSSLServerHandler(context: context) }
        proxy.scheme = "https"
    }

    /// The listener's TLS context; every problem names the file.
    public static func serverContext(certificateFile: String, privateKeyFile: String, clientCAFile: String?, http2: Bool) throws -> NIOSSLContext {
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
        tls.applicationProtocols = http2 ? ["h2", "http/1.1"] : ["http/1.1"]
        if let clientCAFile {
            do { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCAFile)) } catch {
                throw GatewayLoadError(message: "gateway.tls.client_ca_file \(clientCAFile): \(error)")
            }
            tls.certificateVerification = .optionalVerification
        }
        do { return try NIOSSLContext(configuration: tls) } catch {
            throw GatewayLoadError(message: "gateway.tls: \(error)")
        }
    }

    /// Subject and SHA-256 fingerprint of a validated client certificate, if one was presented.
    public static func clientCertificateAttributes(_ channel: any Channel) -> [String: String] {
        // The enforcement point passes the TLS connection (for an HTTP/2 stream, its parent).
        guard let handler = try? channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self), let certificate = handler.peerCertificate, let der = try? certificate.toDERBytes() else { return [:] }
        let fingerprint = SHA256.hash(data: der).map { String(format: "%02x", $0) }.joined()
        var attributes = ["tls.client.sha256": fingerprint]
        // The subject as an RFC 4514 distinguished name (swift-certificates), so a crafted common
        // name cannot pose as another attribute; policies should prefer the fingerprint.
        if let parsed = try? Certificate(derEncoded: der) { attributes["tls.client.subject"] = parsed.subject.description }
        return attributes
    }
}
