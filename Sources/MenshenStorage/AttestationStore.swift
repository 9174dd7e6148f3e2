import Foundation
import MenshenCore

/// A named person's statement about a guideline principle that the system
/// cannot observe itself (penetration tests, CI/CD separation of duties,
/// off-site backups of other systems …), as stored. The maturity assessment
/// counts it while it is valid; it is never deleted, only revoked, so the
/// history of what was attested, by whom and on what evidence stays.
public struct AttestationRecord: Sendable, Equatable {
    /// A lowercase UUID (1–64 characters of a-z 0-9 -).
    public var id: String
    /// The principle it is about (`4.4`); the caller checks it against the catalog.
    public var principleID: String
    public var statement: String
    /// Who attests, as they sign (e.g. `CISO 王小明`).
    public var attestedBy: String
    public var attestedAt: Date
    public var expiresAt: Date
    public var revokedAt: Date?
    public var revokedBy: String?
    public var revocationReason: String?
    /// When and by whom (the operator's account) it was recorded.
    public var createdAt: Date
    public var createdBy: String
    /// The evidence files' metadata, in the order they were attached. The store fills
    /// this from the files it was given; what a caller puts here on create is ignored.
    public var files: [AttestationFileInfo]

    public init(id: String, principleID: String, statement: String, attestedBy: String, attestedAt: Date, expiresAt: Date,
                revokedAt: Date? = nil, revokedBy: String? = nil, revocationReason: String? = nil,
                createdAt: Date, createdBy: String, files: [AttestationFileInfo] = []) {
        self.id = id; self.principleID = principleID; self.statement = statement; self.attestedBy = attestedBy
        self.attestedAt = attestedAt; self.expiresAt = expiresAt; self.revokedAt = revokedAt; self.revokedBy = revokedBy
        self.revocationReason = revocationReason; self.createdAt = createdAt; self.createdBy = createdBy; self.files = files
    }
}

/// An evidence file's metadata: its name, the SHA-256 of its bytes (computed by the store) and its size.
public struct AttestationFileInfo: Sendable, Equatable {
    public var name: String
    /// Lower-case hex SHA-256 of the stored bytes.
    public var sha256: String
    public var size: Int
    public init(name: String, sha256: String, size: Int) { self.name = name; self.sha256 = sha256; self.size = size }
}

/// An evidence file with its bytes: what is handed to the store on create and read back.
public struct AttestationFileContent: Sendable, Equatable {
    public var name: String
    public var bytes: Data
    public init(name: String, bytes: Data) { self.name = name; self.bytes = bytes }

    /// The metadata the store records for these bytes.
    public var info: AttestationFileInfo {
        AttestationFileInfo(name: name, sha256: SecretHash.sha256Hex(bytes: Array(bytes)), size: bytes.count)
    }
}

/// Limits on attestations and their files, the same on every backend. Every
/// refusal is `invalidInput` with a message naming what is wrong, and nothing
/// is stored.
public enum AttestationLimits {
    public static let maxFiles = 16
    public static let maxFileBytes = 25 * 1024 * 1024
    public static let maxTotalBytes = 100 * 1024 * 1024
    public static let maxFileNameBytes = 200
    /// In Unicode scalars.
    public static let maxStatementLength = 4000
    /// Attested by, created by, revoked by (Unicode scalars).
    public static let maxNameLength = 200
    public static let maxReasonLength = 1000
    /// Most rows one list call returns.
    public static let maxList = 10_000

    /// Throws `invalidInput` when `id` is not 1–64 characters of a-z 0-9 -.
    public static func validateID(_ id: String) throws {
        guard !id.isEmpty, id.utf8.count <= 64, id.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D })
        else { throw StoreError(.invalidInput, "attestation id must be 1–64 characters of a-z 0-9 -") }
    }

    /// Throws `invalidInput` unless `id` has the shape of a principle id (`4.4`: digits, a dot, digits; at most 8 bytes).
    /// Whether the principle exists is the caller's check (the catalog is not the store's).
    public static func validatePrincipleID(_ id: String) throws {
        let parts = id.split(separator: ".", omittingEmptySubsequences: false)
        guard id.utf8.count <= 8, parts.count == 2,
              parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } })
        else { throw StoreError(.invalidInput, "principle id \(Self.quoted(id)) is not of the form N.N (e.g. 4.4)") }
    }

    /// Throws `invalidInput` unless `name` is a base name: 1–200 bytes of UTF-8, no `/` or `\`, no `..`, no control characters.
    public static func validateFileName(_ name: String) throws {
        guard !name.isEmpty else { throw StoreError(.invalidInput, "an evidence file name is empty") }
        guard name.utf8.count <= maxFileNameBytes else {
            throw StoreError(.invalidInput, "evidence file name of \(name.utf8.count) bytes; at most \(maxFileNameBytes) bytes of UTF-8")
        }
        guard !name.contains("/"), !name.contains("\\") else {
            throw StoreError(.invalidInput, "evidence file name \(quoted(name)) must be a base name (no / or \\)")
        }
        guard !name.contains(".."), name != "." else { throw StoreError(.invalidInput, "evidence file name \(quoted(name)) must not contain ..") }
        guard !name.unicodeScalars.contains(where: isControl) else {
            throw StoreError(.invalidInput, "evidence file name \(quoted(name)) contains a control character")
        }
    }

    /// Throws `invalidInput` for a one-line name (who attests, who records, who revokes) that is empty, too long or has control characters.
    public static func validateName(_ name: String, _ what: String) throws {
        guard !name.trimmingCharacters(in: .whitespaces).isEmpty else { throw StoreError(.invalidInput, "\(what) is empty") }
        guard name.unicodeScalars.count <= maxNameLength else {
            throw StoreError(.invalidInput, "\(what) is \(name.unicodeScalars.count) characters long; at most \(maxNameLength)")
        }
        guard !name.unicodeScalars.contains(where: isControl) else { throw StoreError(.invalidInput, "\(what) contains a control character") }
    }

    /// Throws `invalidInput` for free text (a statement, a revocation reason) that is empty, too long or has control
    /// characters other than line feed and tab.
    public static func validateText(_ text: String, _ what: String, max: Int) throws {
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw StoreError(.invalidInput, "\(what) is empty") }
        guard text.unicodeScalars.count <= max else {
            throw StoreError(.invalidInput, "\(what) is \(text.unicodeScalars.count) characters long; at most \(max)")
        }
        guard !text.unicodeScalars.contains(where: { isControl($0) && $0 != "\n" && $0 != "\t" }) else {
            throw StoreError(.invalidInput, "\(what) contains a control character")
        }
    }

    /// Checks a new attestation and its files against every limit; throws the first problem as `invalidInput`.
    public static func validate(_ r: AttestationRecord, files: [AttestationFileContent]) throws {
        try validateID(r.id)
        try validatePrincipleID(r.principleID)
        try validateText(r.statement, "the statement", max: maxStatementLength)
        try validateName(r.attestedBy, "attested by")
        try validateName(r.createdBy, "created by")
        guard r.expiresAt > r.attestedAt else { throw StoreError(.invalidInput, "the expiry must be after the attestation date") }
        guard r.attestedAt <= r.createdAt else { throw StoreError(.invalidInput, "the attestation date is in the future") }
        guard r.revokedAt == nil, r.revokedBy == nil, r.revocationReason == nil else {
            throw StoreError(.invalidInput, "a new attestation cannot be revoked already")
        }
        guard files.count <= maxFiles else { throw StoreError(.invalidInput, "\(files.count) evidence files; at most \(maxFiles) per attestation") }
        var names = Set<String>(), total = 0
        for f in files {
            try validateFileName(f.name)
            guard names.insert(f.name).inserted else { throw StoreError(.invalidInput, "evidence file \(quoted(f.name)) is attached twice") }
            guard f.bytes.count <= maxFileBytes else {
                throw StoreError(.invalidInput, "evidence file \(quoted(f.name)) has \(f.bytes.count) bytes; at most \(maxFileBytes) (25 MiB) per file")
            }
            total += f.bytes.count
        }
        guard total <= maxTotalBytes else {
            throw StoreError(.invalidInput, "evidence files of \(total) bytes in all; at most \(maxTotalBytes) (100 MiB) per attestation")
        }
    }

    static func isControl(_ s: Unicode.Scalar) -> Bool { s.value < 0x20 || (s.value >= 0x7F && s.value < 0xA0) }

    /// A name for a message: quoted, control characters escaped, cut at 80 characters.
    static func quoted(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars.prefix(80) { out += isControl(u) ? "\\u{\(String(u.value, radix: 16))}" : String(u) }
        return "\"\(out)\(s.unicodeScalars.count > 80 ? "…" : "")\""
    }
}

/// Attestations with their evidence files (`menshen attest …`). Creation stores
/// the record and all its files in one transaction — all or nothing — and
/// revocation only stamps the record: rows are never updated otherwise nor
/// deleted (the SQL backends' triggers refuse it), so what was attested stays.
public protocol AttestationStore: Sendable {
    /// Stores an attestation and its files (the store computes each file's SHA-256 and size) and returns it as stored.
    /// Throws `conflict` for an existing id and `invalidInput` beyond ``AttestationLimits``; nothing is stored then.
    func createAttestation(_ record: AttestationRecord, files: [AttestationFileContent]) async throws -> AttestationRecord
    /// One attestation with its files' metadata.
    func attestation(id: String) async throws -> AttestationRecord?
    /// Attestations (of one principle, or all), by attestation date then id, oldest first, at most `limit`
    /// (capped at ``AttestationLimits/maxList``), with their files' metadata.
    func attestations(principleID: String?, limit: Int) async throws -> [AttestationRecord]
    /// An evidence file's bytes, or nil when the attestation or the name is unknown.
    func attestationFile(attestationID: String, name: String) async throws -> AttestationFileContent?
    /// Stamps the revocation (when, by whom, why); false when the attestation is unknown or already revoked
    /// (the first revocation stays). Throws `invalidInput` for a name or reason beyond the limits.
    func revokeAttestation(id: String, at: Date, by: String, reason: String) async throws -> Bool
}
