import Foundation
import MenshenCore
import MenshenStorage

/// The file `menshen audit prune` writes before it deletes anything, and that can be verified on its own
/// (`menshen audit verify --export FILE`): JSON Lines, one object per line —
///
/// 1. a header: `{"format":"menshen-audit-export-v1","from_sequence":F,"through_sequence":T,"count":N,
///    "previous_hash":"…","start_checkpoint":{…}}` (the start checkpoint signs record F−1, the end of the
///    previous export; absent when F is 1, where the previous hash is the chain's genesis);
/// 2. every record F…T: `{"sequence","id","time_ms","class_uid","severity_id","user_id","payload","prev_hash","hash"}`,
///    the payload as the exact stored text (a JSON string), so each record's chain hash can be re-computed;
/// 3. a trailer: `{"end_checkpoint":{…}}`, the signed checkpoint of record T.
///
/// Checkpoints have the anchor file's fields (`sequence`, `event_id`, `hash`, `time_ms`, `key_id`, `signature`).
/// Verifying re-computes every link from the previous hash and checks both checkpoints' signatures, so an
/// edited, removed, reordered or inserted record, a cut file and a re-computed chain are all caught.
/// The format is ours; the encoding is Foundation's JSONEncoder/JSONDecoder.
public enum AuditExport {
    public static let format = "menshen-audit-export-v1"
    /// Longest line read: one payload at the store's limit, every byte escaped as `\uXXXX`, plus the fields.
    public static let maxLineBytes = InputLimits.maxEventPayloadBytes * 6 + 4096

    struct Checkpoint: Codable {
        var sequence: Int64
        var event_id: String
        var hash: String
        var time_ms: Int64
        var key_id: String
        var signature: String

        init(_ c: AuditCheckpointRecord) {
            sequence = c.sequence; event_id = c.eventID.uuidString; hash = c.hash; time_ms = StoreCoding.millis(c.time)
            key_id = c.keyID; signature = c.signature
        }

        var record: AuditCheckpointRecord? {
            UUID(uuidString: event_id).map {
                AuditCheckpointRecord(sequence: sequence, eventID: $0, hash: hash, time: StoreCoding.date(millis: time_ms), keyID: key_id, signature: signature)
            }
        }
    }

    struct Header: Codable {
        var format: String
        var from_sequence: Int64
        var through_sequence: Int64
        var count: Int64
        var previous_hash: String
        var start_checkpoint: Checkpoint?
    }

    struct Record: Codable {
        var sequence: Int64
        var id: String
        var time_ms: Int64
        var class_uid: Int
        var severity_id: Int
        var user_id: String?
        var payload: String
        var prev_hash: String
        var hash: String
    }

    struct Trailer: Codable {
        var end_checkpoint: Checkpoint
    }

    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    /// The header line for records `from…through`, which follow `previousHash` (signed by `start` when from > 1).
    public static func headerLine(from: Int64, through: Int64, previousHash: String, start: AuditCheckpointRecord?) throws -> String {
        let h = Header(format: format, from_sequence: from, through_sequence: through, count: through - from + 1, previous_hash: previousHash,
                       start_checkpoint: start.map(Checkpoint.init))
        return String(decoding: try encoder().encode(h), as: UTF8.self)
    }

    /// One record's line.
    public static func recordLine(_ e: StoredEvent) throws -> String {
        let r = Record(sequence: e.sequence, id: e.event.id.uuidString, time_ms: StoreCoding.millis(e.event.time), class_uid: e.event.classUID,
                       severity_id: e.event.severityID, user_id: e.event.userID?.rawValue, payload: e.event.payloadJSON,
                       prev_hash: e.previousHash, hash: e.hash)
        return String(decoding: try encoder().encode(r), as: UTF8.self)
    }

    /// The trailer line: the signed checkpoint of the last record.
    public static func trailerLine(_ end: AuditCheckpointRecord) throws -> String {
        String(decoding: try encoder().encode(Trailer(end_checkpoint: Checkpoint(end))), as: UTF8.self)
    }
}

/// What verifying an export found: a value, never a thrown error.
public struct AuditExportVerification: Sendable, Equatable {
    /// The first problem, with its line number and what it is; nil when the file is intact.
    public var problem: String?
    public var fromSequence: Int64 = 0
    public var throughSequence: Int64 = 0
    /// Records read and checked.
    public var records: Int64 = 0
    /// The chain hash of the last record (what the next export, or the log after a prune, links to).
    public var lastHash: String = ""
    public var endCheckpoint: AuditCheckpointRecord?
    public var intact: Bool { problem == nil }
}

/// Verifies an export fed line by line (the caller reads the file; memory holds one line), as a state
/// machine: header, records, trailer, nothing after. Stops at the first problem.
public struct AuditExportVerifier: Sendable {
    let trustedKeys: [String: AuditVerifyKey]
    private var line = 0
    private var header: AuditExport.Header?
    private var expected: Int64 = 0
    private var previous = ""
    private var lastID: UUID?
    private var done = false
    public private(set) var result = AuditExportVerification()

    public init(trustedKeys: [AuditVerifyKey]) {
        self.trustedKeys = Dictionary(trustedKeys.map { ($0.keyID, $0) }, uniquingKeysWith: { a, _ in a })
    }

    private mutating func fail(_ what: String) { if result.problem == nil { result.problem = "line \(line): \(what)" } }

    private func signed(_ c: AuditExport.Checkpoint) -> AuditCheckpointRecord? {
        guard let record = c.record, let key = trustedKeys[record.keyID], key.isValidSignature(of: record) else { return nil }
        return record
    }

    /// Feeds the next line (without its newline).
    public mutating func feed(_ bytes: some Collection<UInt8>) {
        guard result.problem == nil else { return }
        line += 1
        guard bytes.count <= AuditExport.maxLineBytes else { return fail("longer than \(AuditExport.maxLineBytes) bytes") }
        let data = Data(bytes)
        guard !done else { return fail("text after the end checkpoint") }
        guard let h = header else {
            guard let h = try? JSONDecoder().decode(AuditExport.Header.self, from: data), h.format == AuditExport.format else {
                return fail("not a \(AuditExport.format) header")
            }
            guard h.from_sequence >= 1, h.through_sequence >= h.from_sequence, h.count == h.through_sequence - h.from_sequence + 1 else {
                return fail("the header's sequences and count do not agree")
            }
            if h.from_sequence == 1 {
                guard h.previous_hash == genesisEventHash else { return fail("an export from sequence 1 must follow the genesis hash") }
            } else {
                guard let start = h.start_checkpoint, let c = signed(start) else {
                    return fail("the start checkpoint is missing, or not signed by a trusted key")
                }
                guard c.sequence == h.from_sequence - 1, c.hash == h.previous_hash else {
                    return fail("the start checkpoint does not sign the record before \(h.from_sequence)")
                }
            }
            header = h
            expected = h.from_sequence
            previous = h.previous_hash
            result.fromSequence = h.from_sequence
            result.throughSequence = h.through_sequence
            return
        }
        if expected > h.through_sequence {
            guard let t = try? JSONDecoder().decode(AuditExport.Trailer.self, from: data) else {
                return fail("expected the end checkpoint after record \(h.through_sequence) (a record too many, or the trailer is damaged)")
            }
            guard let c = signed(t.end_checkpoint) else { return fail("the end checkpoint is not signed by a trusted key") }
            guard c.sequence == h.through_sequence, c.hash == previous, c.eventID == lastID else {
                return fail("the end checkpoint does not sign record \(h.through_sequence): the records were rewritten")
            }
            result.endCheckpoint = c
            done = true
            return
        }
        guard let r = try? JSONDecoder().decode(AuditExport.Record.self, from: data), let id = UUID(uuidString: r.id) else {
            return fail("not a record (expected sequence \(expected))")
        }
        guard r.sequence == expected else {
            return fail(r.sequence > expected ? "records \(expected)…\(r.sequence - 1) are missing here (removed, or moved elsewhere in the file)" : "record \(r.sequence) is out of order (expected \(expected))")
        }
        let event = NewEvent(id: id, time: StoreCoding.date(millis: r.time_ms), classUID: r.class_uid, severityID: r.severity_id,
                             userID: r.user_id.map(UserID.init), payloadJSON: r.payload)
        guard r.prev_hash == previous else { return fail("record \(r.sequence) does not link to record \(r.sequence - 1)") }
        guard EventChain.hash(previous: previous, event: event) == r.hash else {
            return fail("record \(r.sequence) was changed: its content no longer matches its hash")
        }
        previous = r.hash
        lastID = id
        expected += 1
        result.records += 1
        result.lastHash = r.hash
    }

    /// The verdict once the file ended.
    public mutating func finish() -> AuditExportVerification {
        if result.problem == nil, !done {
            line += 1
            fail(header == nil ? "the file is empty" : "the file ends before its end checkpoint (cut short)")
        }
        return result
    }
}

/// The OCSF Event Log Activity (1008, activity 2 Delete) that records a retention prune in the log
/// itself. ``AuditChainVerifier`` accepts a pruned log only when one names the prune's boundary.
public enum AuditPruneEvent {
    public static let classUID = 1008

    /// What the event states.
    public struct Facts: Sendable {
        public var from: Int64, through: Int64, throughHash: String, keyID: String
        public var exportSHA256: String, exportPath: String, exportBytes: Int64, actor: String
        public init(from: Int64, through: Int64, throughHash: String, keyID: String, exportSHA256: String, exportPath: String,
                    exportBytes: Int64, actor: String) {
            self.from = from; self.through = through; self.throughHash = throughHash; self.keyID = keyID
            self.exportSHA256 = exportSHA256; self.exportPath = exportPath; self.exportBytes = exportBytes; self.actor = actor
        }
    }

    public static func make(_ f: Facts, id: UUID, time: Date, productVersion: String) throws -> NewEvent {
        let count = f.through - f.from + 1
        let event: [String: Any] = [
            "class_uid": classUID, "category_uid": 1, "activity_id": 2, "activity_name": "Delete", "type_uid": classUID * 100 + 2,
            "severity_id": 1, "time": StoreCoding.millis(time), "status_id": 1, "status": "Success",
            "metadata": ["version": MenshenVisibility.ocsfVersion, "uid": id.uuidString.lowercased(),
                         "product": ["name": "Menshen", "vendor_name": "Menshen project", "version": productVersion]],
            "log_name": "events", "log_provider": "Menshen",
            "actor": ["user": ["name": String(f.actor.prefix(256))]],
            "file": ["name": String((f.exportPath as NSString).lastPathComponent.prefix(256)), "path": String(f.exportPath.prefix(1024)),
                     "type_id": 1, "type": "Regular File", "size": f.exportBytes,
                     "hashes": [["algorithm_id": 3, "algorithm": "SHA-256", "value": f.exportSHA256]]],
            "message": "audit log records \(f.from)…\(f.through) exported and pruned (\(count) records)",
            "unmapped": ["prune": ["from_sequence": f.from, "through_sequence": f.through, "through_hash": f.throughHash,
                                   "event_count": count, "checkpoint_key_id": f.keyID, "export_sha256": f.exportSHA256]],
        ]
        return NewEvent(id: id, time: time, classUID: classUID, severityID: 1, userID: nil, payloadJSON: try EventJSON.encode(event))
    }

    /// Whether `e` is the event of prune `p` (its boundary sequence and hash).
    public static func records(_ p: EventPruneRecord, in e: StoredEvent) -> Bool {
        guard e.event.classUID == classUID, let v = try? DetectionEvent(e) else { return false }
        return v["unmapped.prune.through_sequence"]?.intValue == p.throughSequence && v["unmapped.prune.through_hash"]?.stringValue == p.throughHash
    }
}
