import Foundation
import Logging
import MenshenAssessment
import MenshenStorage

/// The assessment's stored inputs and history, converted between the store's
/// records and MenshenAssessment's model: the attestations an assessment
/// counts, the previous assessment it compares with, and saving the new one.
public enum AssessmentRecords {
    /// Every stored attestation (revoked and expired ones too: the report shows
    /// them as such), as the assessment model's ``Attestation``.
    public static func storedAttestations(_ store: any AttestationStore) async throws -> [Attestation] {
        try await store.attestations(principleID: nil, limit: AttestationLimits.maxList).map(attestation)
    }

    /// The model's view of a stored attestation.
    public static func attestation(_ r: AttestationRecord) -> Attestation {
        Attestation(id: r.id, principleID: r.principleID, statement: r.statement, attestedBy: r.attestedBy, attestedAt: r.attestedAt,
                    expiresAt: r.expiresAt, revokedAt: r.revokedAt,
                    files: r.files.map { Attestation.EvidenceFile(name: $0.name, sha256: $0.sha256, size: $0.size) })
    }

    /// The newest stored assessment that still reads back: a row whose text no longer matches its
    /// SHA-256 or no longer decodes (edited, or written by an incompatible version) is skipped with a
    /// warning and the next older one is tried (among the newest ten); nil when there is none.
    public static func latestAssessment(_ store: any AssessmentHistoryStore, logger: Logger = Logger(label: "menshen.assessment")) async throws
        -> Assessment?
    {
        // A few rows only: each holds a whole document (up to 16 MiB), and more than a few unreadable rows in a row
        // means something is wrong that an operator should look at (the warnings say which).
        for record in try await store.assessments(limit: 10) {
            guard record.isIntact else {
                logger.warning("stored assessment skipped: its text does not match its SHA-256", metadata: ["assessment": "\(record.id)"])
                continue
            }
            do {
                return try decoder.decode(Assessment.self, from: Data(record.json.utf8))
            } catch {
                logger.warning("stored assessment skipped: it no longer decodes",
                               metadata: ["assessment": "\(record.id)", "error": "\(String(describing: error).prefix(300))"])
            }
        }
        return nil
    }

    /// Stores `assessment` in the history (its JSON text and SHA-256) and returns the record.
    @discardableResult
    public static func saveAssessment(_ store: any AssessmentHistoryStore, _ assessment: Assessment) async throws -> AssessmentHistoryRecord {
        let json = String(decoding: try encoder.encode(assessment), as: UTF8.self)
        let record = AssessmentHistoryRecord(id: assessment.id, generatedAt: assessment.generatedAt, windowStart: assessment.windowStart,
                                             windowEnd: assessment.windowEnd, overallLevel: assessment.overallLevel, json: json)
        try await store.saveAssessment(record)
        return record
    }

    /// The stored form: sorted keys, times as RFC 3339 UTC with milliseconds (the store's precision), so a
    /// stored assessment decodes to the same times it was generated with (to the millisecond).
    public static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(rfc3339(date))
        }
        return e
    }

    /// Reads the stored form (RFC 3339 with or without fractional seconds).
    public static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let text = try c.decode(String.self)
            guard text.utf8.count <= 64, let date = parseRFC3339(text) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an RFC 3339 time")
            }
            return date
        }
        return d
    }

    /// `2026-11-26T09:30:12.345Z`: whole milliseconds, as the store keeps times.
    static func rfc3339(_ date: Date) -> String {
        let millis = StoreCoding.millis(date)
        let seconds = millis >= 0 ? millis / 1000 : -((-millis + 999) / 1000)
        let fraction = millis - seconds * 1000
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        f.timeZone = TimeZone(identifier: "UTC")
        let text = f.string(from: Date(timeIntervalSince1970: Double(seconds)))
        let ms = String(fraction)
        return String(text.dropLast()) + "." + String(repeating: "0", count: 3 - ms.count) + ms + "Z"
    }

    /// RFC 3339 with or without a fraction (kept to the millisecond, exactly as ``StoreCoding`` would).
    static func parseRFC3339(_ text: String) -> Date? {
        var whole = text
        var millis: Int64 = 0
        if let dot = text.firstIndex(of: ".") {
            let rest = text[text.index(after: dot)...]
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 9, let ms = Int64(String((digits + "000").prefix(3))) else { return nil }
            millis = ms
            whole = String(text[..<dot]) + String(rest.dropFirst(digits.count))
        }
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        guard let base = f.date(from: whole) else { return nil }
        return StoreCoding.date(millis: Int64(base.timeIntervalSince1970.rounded()) * 1000 + millis)
    }
}
