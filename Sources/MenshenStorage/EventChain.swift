import Foundation
import MenshenCore

/// The hash chain over the event log: each record's hash is SHA-256 over the
/// previous hash and a canonical, length-prefixed encoding of the event's
/// stored fields, so any edit, deletion, insertion or reordering breaks the
/// chain from that record on. (The audit pipeline adds signed checkpoints.)
public enum EventChain {
    /// The hasher every writer passes to ``EventStore/appendEvents(_:hasher:)``.
    public static let hasher: EventChainHasher = { previous, event in hash(previous: previous, event: event) }

    public static func hash(previous: String, event: NewEvent) -> String {
        var bytes: [UInt8] = []
        func field(_ s: String) {
            let u = Array(s.utf8)
            bytes += "\(u.count):".utf8
            bytes += u
        }
        field("menshen-event-v1")
        field(previous)
        field(event.id.uuidString)
        field(String(StoreCoding.millis(event.time)))
        field(String(event.classUID))
        field(String(event.severityID))
        field(event.userID?.rawValue ?? "")
        field(event.payloadJSON)
        return SecretHash.sha256Hex(bytes: bytes)
    }

    /// Checks a contiguous run of records; returns the sequence of the first
    /// broken link, or nil when every link holds.
    public static func firstBrokenLink(_ records: [StoredEvent], expectedPrevious: String = genesisEventHash) -> Int64? {
        var previous = expectedPrevious
        var expectedSequence = records.first?.sequence ?? 1
        for r in records {
            if r.sequence != expectedSequence || r.previousHash != previous || hash(previous: previous, event: r.event) != r.hash {
                return r.sequence
            }
            previous = r.hash
            expectedSequence += 1
        }
        return nil
    }
}
