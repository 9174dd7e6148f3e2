import Crypto
import Foundation
import MenshenCore

/// The signed form of a posture report, as the agent sends it:
///
/// ```json
/// {"alg": "ES256", "report": "<base64url of the report JSON bytes>", "signature": "<base64url>"}
/// ```
///
/// - `report` is base64url (RFC 4648 §5, padding optional) so that the exact
///   bytes the device signed arrive unchanged, whatever JSON tooling sits in
///   between.
/// - `signature` is ECDSA P-256 with SHA-256 over those bytes, by the key of
///   the device's certificate: DER (`Ecdsa-Sig-Value`, what OpenSSL and most
///   libraries produce) or raw `r‖s` (64 bytes, what a TPM's `plain` format
///   and WebCrypto produce); both are accepted.
/// - `alg` is `ES256`, the only value today; it names the algorithm so a
///   post-quantum one can be added without guessing.
public struct PostureEnvelope: Sendable, Hashable, Codable {
    public static let es256 = "ES256"
    public var alg: String
    public var report: String
    public var signature: String

    public init(alg: String = PostureEnvelope.es256, report: String, signature: String) {
        self.alg = alg; self.report = report; self.signature = signature
    }

    /// Signs `reportBytes` with a device key held in software (the agent's
    /// fallback when there is no TPM; tests) and returns the envelope JSON.
    public static func sign(reportBytes: [UInt8], with key: P256.Signing.PrivateKey) throws -> [UInt8] {
        let signature = try key.signature(for: reportBytes)
        let envelope = PostureEnvelope(report: Base64URL.encode(reportBytes), signature: Base64URL.encode(Array(signature.derRepresentation)))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(envelope))
    }
}

/// A posture report as received: parsed and within limits, but nothing in
/// it is trusted yet. The only way on is ``PostureVerifier/verify(_:certificate:nonces:now:)``.
public struct UnverifiedPostureReport: Sendable, Hashable {
    /// The exact bytes the signature must cover.
    public let reportBytes: [UInt8]
    public let signature: [UInt8]
    /// What the report claims. Untrusted until verified.
    public let claimed: PostureReport

    /// Parses an envelope (``PostureEnvelope``) and the report inside it,
    /// enforcing `limits` and the report's field syntax. Throws for anything
    /// malformed; a well-formed but untrustworthy report parses and is
    /// refused later by the verifier.
    public static func parse(envelope bytes: [UInt8], limits: PostureLimits = PostureLimits()) throws(PostureReportError) -> UnverifiedPostureReport {
        guard bytes.count <= limits.maxEnvelopeBytes else {
            throw PostureReportError(.tooLarge, "envelope of \(bytes.count) bytes, at most \(limits.maxEnvelopeBytes)")
        }
        guard JSONShape.depth(of: bytes) <= 2 else { throw PostureReportError(.tooDeep, "the envelope is a flat object") }
        let envelope: PostureEnvelope
        do { envelope = try JSONDecoder().decode(PostureEnvelope.self, from: Data(bytes)) } catch {
            throw PostureReportError(.malformedEnvelope, JSONShape.describe(error))
        }
        guard envelope.alg == PostureEnvelope.es256 else {
            throw PostureReportError(.malformedEnvelope, "alg: only ES256 is accepted, got \"\(envelope.alg.prefix(32))\"")
        }
        guard envelope.report.utf8.count <= (limits.maxReportBytes / 3 + 1) * 4 else {
            throw PostureReportError(.tooLarge, "report larger than \(limits.maxReportBytes) bytes")
        }
        guard let reportBytes = PostureBase64URL.decode(envelope.report) else {
            throw PostureReportError(.malformedEnvelope, "report: not base64url")
        }
        guard reportBytes.count <= limits.maxReportBytes else {
            throw PostureReportError(.tooLarge, "report of \(reportBytes.count) bytes, at most \(limits.maxReportBytes)")
        }
        guard envelope.signature.utf8.count <= 200, let signature = PostureBase64URL.decode(envelope.signature), !signature.isEmpty else {
            throw PostureReportError(.malformedEnvelope, "signature: not base64url of a signature")
        }
        let report = try parseReport(reportBytes, limits: limits)
        return UnverifiedPostureReport(reportBytes: reportBytes, signature: signature, claimed: report)
    }

    static func parseReport(_ bytes: [UInt8], limits: PostureLimits) throws(PostureReportError) -> PostureReport {
        let depth = JSONShape.depth(of: bytes)
        guard depth <= limits.maxJSONDepth else {
            throw PostureReportError(.tooDeep, "nesting depth \(depth), at most \(limits.maxJSONDepth)")
        }
        let report: PostureReport
        do { report = try JSONDecoder().decode(PostureReport.self, from: Data(bytes)) } catch {
            throw PostureReportError(.malformedReport, JSONShape.describe(error))
        }
        guard report.format == PostureReport.currentFormat else {
            throw PostureReportError(.unsupportedFormatVersion, "format \(report.format); this server reads \(PostureReport.currentFormat)")
        }
        guard DeviceID.validated(report.deviceID.rawValue) != nil else {
            throw PostureReportError(.invalidField, "device_id: not a device id")
        }
        guard (16...128).contains(report.nonce.utf8.count), report.nonce.utf8.allSatisfy(PostureBase64URL.isAlphabet) else {
            throw PostureReportError(.invalidField, "nonce: 16–128 base64url characters")
        }
        guard report.packages.count <= limits.maxPackages else {
            throw PostureReportError(.tooManyPackages, "\(report.packages.count) packages, at most \(limits.maxPackages)")
        }
        guard report.pendingSecurityUpdates >= 0 else {
            throw PostureReportError(.invalidField, "pending_security_updates: must not be negative")
        }
        if let edr = report.edr {
            guard edr.signatureAgeSeconds >= 0 else {
                throw PostureReportError(.invalidField, "edr.signature_age_seconds: must not be negative")
            }
        }
        var strings: [(String, String?)] = [("os.name", report.os.name), ("os.version", report.os.version),
                                             ("os.package_ecosystem", report.os.packageEcosystem), ("kernel", report.kernel),
                                             ("edr.product", report.edr?.product)]
        for (i, package) in report.packages.enumerated() {
            strings += [("packages[\(i)].name", package.name), ("packages[\(i)].version", package.version),
                        ("packages[\(i)].source_name", package.sourceName), ("packages[\(i)].source_version", package.sourceVersion)]
        }
        for case let (field, value?) in strings {
            guard value.utf8.count <= limits.maxStringBytes else {
                throw PostureReportError(.stringTooLong, "\(field): \(value.utf8.count) bytes, at most \(limits.maxStringBytes)")
            }
            guard !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw PostureReportError(.invalidField, "\(field): control characters")
            }
        }
        for field in [("os.name", report.os.name), ("os.version", report.os.version)] where field.1.isEmpty {
            throw PostureReportError(.invalidField, "\(field.0): must not be empty")
        }
        return report
    }
}

/// base64url as posture envelopes carry it: URL-safe alphabet only, padding
/// optional, no white space.
enum PostureBase64URL {
    static func isAlphabet(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x5F
    }

    static func decode(_ text: String) -> [UInt8]? {
        var core = Substring(text)
        while core.hasSuffix("=") { core = core.dropLast() }
        guard core.utf8.allSatisfy(isAlphabet), core.utf8.count % 4 != 1 else { return nil }
        var standard = core.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.utf8.count % 4 != 0 { standard.append("=") }
        return Data(base64Encoded: standard).map { Array($0) }
    }
}
