import Foundation

/// A provider's published signing keys (RFC 7517), reduced to what id_token
/// verification needs. Entries of key types we do not verify with (`oct`,
/// unknown types) and encryption keys (`use: enc`) are dropped on parse;
/// private members (`d`, `p`, `q`, …) are never read.
public struct JSONWebKeySet: Sendable, Hashable {
    /// The largest JWKS document accepted, in bytes.
    public static let maximumBytes = 128 * 1024
    /// The most keys accepted in one set.
    public static let maximumKeys = 64

    public struct Key: Sendable, Hashable {
        public let keyID: String?
        /// "RSA", "EC" or "OKP".
        public let keyType: String
        public let use: String?
        public let algorithm: String?
        public let curve: String?
        public let modulus: String?
        public let exponent: String?
        public let x: String?
        public let y: String?
        public let keyOperations: [String]?

        public init(keyID: String?, keyType: String, use: String? = nil, algorithm: String? = nil, curve: String? = nil,
                    modulus: String? = nil, exponent: String? = nil, x: String? = nil, y: String? = nil,
                    keyOperations: [String]? = nil) {
            self.keyID = keyID
            self.keyType = keyType
            self.use = use
            self.algorithm = algorithm
            self.curve = curve
            self.modulus = modulus
            self.exponent = exponent
            self.x = x
            self.y = y
            self.keyOperations = keyOperations
        }

        /// Whether this key may verify a signature made with `alg`: signing use
        /// (or unspecified), `verify` among `key_ops` when listed, the key type
        /// and curve that `alg` needs, and `alg` equal to the key's own when it
        /// names one (RFC 8725 §3.1: the key decides the algorithm).
        public func canVerify(_ alg: String) -> Bool {
            if let use, use != "sig" { return false }
            if let keyOperations, !keyOperations.contains("verify") { return false }
            if let algorithm, algorithm != alg { return false }
            switch alg {
            case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
                return keyType == "RSA" && modulus != nil && exponent != nil
            case "ES256": return keyType == "EC" && curve == "P-256" && x != nil && y != nil
            case "ES384": return keyType == "EC" && curve == "P-384" && x != nil && y != nil
            case "ES512": return keyType == "EC" && curve == "P-521" && x != nil && y != nil
            case "EdDSA": return keyType == "OKP" && curve == "Ed25519" && x != nil
            default: return false
            }
        }
    }

    public let keys: [Key]

    public init(keys: [Key]) { self.keys = keys }

    public var keyIDs: [String] { keys.compactMap(\.keyID) }

    public func contains(keyID: String) -> Bool { keys.contains { $0.keyID == keyID } }

    public static func parse(_ bytes: some Collection<UInt8>) throws -> JSONWebKeySet {
        guard bytes.count <= maximumBytes else {
            throw OIDCError(.documentTooLarge, "JWKS of \(bytes.count) bytes (limit \(maximumBytes))")
        }
        let document: [String: JSONValue]
        do {
            document = try JSONDecoder().decode([String: JSONValue].self, from: Data(bytes))
        } catch {
            throw OIDCError(.malformedJWKS, "not a JSON object")
        }
        guard case .array(let entries)? = document["keys"] else {
            throw OIDCError(.malformedJWKS, "no keys array")
        }
        guard entries.count <= maximumKeys else {
            throw OIDCError(.malformedJWKS, "\(entries.count) keys (limit \(maximumKeys))")
        }
        var keys: [Key] = []
        var seenIDs = Set<String>()
        for entry in entries {
            guard case .object(let members) = entry else { throw OIDCError(.malformedJWKS, "a key is not an object") }
            func string(_ name: String) throws -> String? {
                switch members[name] {
                case nil, .null?: return nil
                case .string(let value)?: return value
                default: throw OIDCError(.malformedJWKS, "key member \(name) is not a string")
                }
            }
            guard let keyType = try string("kty") else { throw OIDCError(.malformedJWKS, "a key has no kty") }
            guard ["RSA", "EC", "OKP"].contains(keyType) else { continue }
            let use = try string("use")
            if let use, use != "sig" { continue }
            var operations: [String]?
            if case .array(let list)? = members["key_ops"] {
                operations = list.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
            }
            let key = Key(keyID: try string("kid"), keyType: keyType, use: use, algorithm: try string("alg"),
                          curve: try string("crv"), modulus: try string("n"), exponent: try string("e"),
                          x: try string("x"), y: try string("y"), keyOperations: operations)
            if let kid = key.keyID {
                // Two signing keys under one kid would make the choice ambiguous.
                guard seenIDs.insert(kid).inserted else { throw OIDCError(.malformedJWKS, "kid \(kid.prefix(80)) used twice") }
            }
            keys.append(key)
        }
        return JSONWebKeySet(keys: keys)
    }
}

/// Any JSON value, for claims whose names come from configuration.
public enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    var numberValue: Double? { if case .number(let n) = self { return n } else { return nil } }
}
