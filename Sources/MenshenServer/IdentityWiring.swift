import Foundation
import MenshenConfig
import MenshenCore
import MenshenFederation
import MenshenIdentity
import MenshenPolicyAdministrator
import MenshenStorage

/// Builds the identity services from the configuration.
public enum IdentityWiring {
    /// `scheme://host[:port]` of `server.public_url`, and its host as the WebAuthn RP ID.
    public static func origin(of publicURL: String) throws -> (origin: String, host: String) {
        guard let url = URLComponents(string: publicURL), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http",
              let host = url.host?.lowercased(), !host.isEmpty
        else { throw IdentityWiringError(message: "server.public_url \(publicURL) is not an http(s) URL") }
        return ("\(scheme)://\(host)\(url.port.map { ":\($0)" } ?? "")", host)
    }

    /// The key that seals TOTP seeds: `identity.secrets_key_file`, or `secrets.key`
    /// next to the SQLite file. With PostgreSQL the file must be named (every node needs the same key).
    public static func secretBox(config: MenshenConfiguration, random: any RandomSource) throws -> SecretBox {
        let path = try keyPath(config.identity.secretsKeyFile, default: "secrets.key", key: "identity.secrets_key_file", config: config)
        return try SecretBox.loadOrCreate(path: path, random: random)
    }

    /// A key file's path: as configured, or `name` next to the SQLite file. With PostgreSQL it
    /// must be configured (every node needs the same key).
    public static func keyPath(_ configured: String, default name: String, key: String, config: MenshenConfiguration) throws -> String {
        guard configured.isEmpty else { return configured }
        guard config.store.driver == .sqlite else {
            throw IdentityWiringError(message: "\(key) is required with store.driver postgres (the same key file on every node)")
        }
        return ((config.store.sqlitePath as NSString).deletingLastPathComponent as NSString).appendingPathComponent(name)
    }

    public static func portal(config: MenshenConfiguration, store: any MenshenStore, clock: any WallClock,
                              random: any RandomSource = SystemRandomSource()) throws -> IdentityPortal {
        let (origin, host) = try origin(of: config.server.publicURL)
        let sessions = SessionManager(store: store, clock: clock, random: random,
                                      settings: SessionSettings(idleTimeout: TimeInterval(config.identity.sessionIdleTimeoutSeconds),
                                                                absoluteLifetime: TimeInterval(config.identity.sessionAbsoluteLifetimeSeconds),
                                                                privilegedLifetime: TimeInterval(config.identity.sessionPrivilegedLifetimeSeconds)))
        let rp = RelyingPartyConfiguration(rpID: host, allowedOrigins: [origin])
        let identity = IdentityService(store: store, clock: clock, random: random,
                                       settings: IdentitySettings(issuer: config.organisation.name, relyingParty: rp,
                                                                  secretBox: try secretBox(config: config, random: random)),
                                       sessions: sessions)
        var federation: OIDCRelyingParty?
        if !config.identity.oidcProvidersFile.isEmpty {
            let providers = try OIDCProvidersFile.load(path: config.identity.oidcProvidersFile, publicOrigin: origin,
                                                       environment: ProcessInfo.processInfo.environment)
            if !providers.isEmpty { federation = try OIDCRelyingParty(providers: providers, random: random) }
        }
        let gatewayOrigin = try Self.origin(of: config.gateway.publicURL).origin
        return IdentityPortal(store: store, identity: identity, sessions: sessions, clock: clock, random: random, publicOrigin: origin,
                              federation: federation, trustedReturnOrigins: [gatewayOrigin])
    }
}

public struct IdentityWiringError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
