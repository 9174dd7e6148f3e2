import Foundation
import MenshenStorage

/// A parsed `postgres://user:password@host:port/database?sslmode=…` URL.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public enum TLSMode: String, Sendable { case disable, prefer, require }
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String?
    public var tls: TLSMode

    /// Parses the URL; returns a clear message for anything malformed.
    public init(_ text: String) throws {
        guard let c = URLComponents(string: text), let scheme = c.scheme, ["postgres", "postgresql"].contains(scheme) else {
            throw StoreError(.invalidInput, "PostgreSQL URL must look like postgres://user@host:5432/database")
        }
        guard let host = c.host, !host.isEmpty else { throw StoreError(.invalidInput, "PostgreSQL URL has no host") }
        self.host = host
        self.port = c.port ?? 5432
        guard (1...65535).contains(port) else { throw StoreError(.invalidInput, "PostgreSQL URL port \(port) is out of range") }
        self.username = c.user ?? "postgres"
        self.password = c.password
        let path = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
        self.database = path.isEmpty ? nil : path
        let mode = c.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "prefer"
        switch mode {
        case "disable": tls = .disable
        case "prefer", "allow": tls = .prefer
        case "require", "verify-ca", "verify-full": tls = .require
        default: throw StoreError(.invalidInput, "PostgreSQL URL sslmode '\(mode)' is not one of disable, prefer, require, verify-full")
        }
    }

    /// The URL without its password, for logs and error messages.
    public var description: String {
        "postgres://\(username)@\(host):\(port)/\(database ?? "")"
    }
}
