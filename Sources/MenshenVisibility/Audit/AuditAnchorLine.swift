import Foundation
import MenshenStorage

/// One line of the checkpoint anchor: the append-only JSON-lines file outside
/// the database that repeats every checkpoint, so deleting the tail of both
/// `events` and the checkpoint table is still caught. One object per line:
/// `{"sequence":…,"event_id":"…","hash":"…","time_ms":…,"key_id":"…","signature":"…"}`.
/// Lines are at most ``maxBytes`` long; anything else is refused.
public enum AuditAnchorLine {
    public static let maxBytes = 1024

    private struct Line: Codable {
        var sequence: Int64
        var event_id: String
        var hash: String
        var time_ms: Int64
        var key_id: String
        var signature: String
    }

    public static func encode(_ c: AuditCheckpointRecord) throws -> String {
        let line = Line(sequence: c.sequence, event_id: c.eventID.uuidString, hash: c.hash, time_ms: StoreCoding.millis(c.time),
                        key_id: c.keyID, signature: c.signature)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(line), as: UTF8.self)
    }

    /// Parses one line. Throws `invalidAuditAnchor` naming what is wrong.
    public static func decode(_ text: some StringProtocol) throws -> AuditCheckpointRecord {
        guard text.utf8.count <= maxBytes else {
            throw VisibilityError(.invalidAuditAnchor, "anchor line longer than \(maxBytes) bytes")
        }
        let line: Line
        do { line = try JSONDecoder().decode(Line.self, from: Data(text.utf8)) } catch {
            throw VisibilityError(.invalidAuditAnchor, "anchor line is not a checkpoint object")
        }
        guard let id = UUID(uuidString: line.event_id), line.sequence > 0 else {
            throw VisibilityError(.invalidAuditAnchor, "anchor line has a bad sequence or event id")
        }
        return AuditCheckpointRecord(sequence: line.sequence, eventID: id, hash: line.hash, time: StoreCoding.date(millis: line.time_ms),
                                     keyID: line.key_id, signature: line.signature)
    }
}
