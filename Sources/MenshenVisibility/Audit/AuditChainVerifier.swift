import Foundation
import MenshenStorage

/// The outcome of checking the event log against its signed checkpoints: a
/// value, never a thrown error (faults such as an unreachable store throw).
public struct AuditVerification: Sendable, Equatable {
    /// What kind of tampering a break shows.
    public enum Kind: String, Sendable, CaseIterable {
        /// A record's content (or a run of records, re-chained) was changed.
        case edited
        /// Records (or a checkpoint) are gone from the middle of the log.
        case missing
        /// Two records are in each other's place.
        case reordered
        /// A record that was never written by Menshen sits in the chain.
        case inserted
        /// The log ends before a checkpoint that was signed.
        case truncated
        /// A checkpoint whose signature is invalid or made by a key that is not trusted.
        case badSignature = "bad_signature"
    }

    /// The first place the log is not what was written.
    public struct Break: Sendable, Equatable {
        public var kind: Kind
        /// The sequence where the break is proven.
        public var sequence: Int64
        /// The earliest sequence that may be affected: `sequence` itself for a broken
        /// link; for a rewrite that re-computed the chain (caught only at a checkpoint),
        /// the record after the last checkpoint the chain still passes through.
        public var earliestAffected: Int64
        public var detail: String
    }

    public var firstBreak: Break?
    /// Records read and checked (up to the break, if any).
    public var eventsChecked: Int64 = 0
    /// The highest sequence checked.
    public var lastSequence: Int64 = 0
    /// Distinct checkpoints with a valid signature (database and anchor together).
    public var checkpointsChecked = 0
    /// Checkpoint lines read from the anchor file.
    public var anchorCheckpoints = 0
    /// The newest validly signed checkpoint's sequence.
    public var newestCheckpoint: Int64?
    /// Chained records after the newest checkpoint, which no signature covers yet.
    public var eventsAfterNewestCheckpoint: Int64 = 0

    public var intact: Bool { firstBreak == nil }
}

/// Checks the whole event log in sequence order, in batches (memory bounded by
/// the batch size and the number of checkpoints, not by the log): every link of
/// the hash chain, every checkpoint's Ed25519 signature against the trusted keys,
/// that the chain passes through every checkpoint, and that the log reaches the
/// newest one. Stops at the first break and names its kind and sequence.
///
/// How kinds are told apart at a broken link of record `s` (written here, as no
/// package does it): a gap in the sequence is `missing`; a record whose link holds
/// but whose hash does not is `edited`; a record linking to `s-2` means `s-1` was
/// `inserted`; a record linking to the next one's hash, which links back, is
/// `reordered`. A rewrite that also re-computed the chain keeps every link intact
/// and is caught at the next checkpoint: the checkpoint's event found later in the
/// log is `inserted`, found earlier is `missing`, otherwise `edited`.
public struct AuditChainVerifier: Sendable {
    public var trustedKeys: [String: AuditVerifyKey]
    /// Records fetched per read.
    public var batchSize: Int
    /// How far past a checkpoint that the chain misses its event is searched for.
    public var lookahead: Int64 = 100_000
    /// At most this many checkpoints are held (a larger set is refused as a fault).
    public var maxCheckpoints = 2_000_000

    public init(trustedKeys: [AuditVerifyKey], batchSize: Int = 1000) {
        self.trustedKeys = Dictionary(trustedKeys.map { ($0.keyID, $0) }, uniquingKeysWith: { a, _ in a })
        self.batchSize = max(2, batchSize)
    }

    private struct CheckpointKey: Hashable { var sequence: Int64; var keyID: String }

    /// Verifies the log of `store` against its checkpoints and those of the anchor
    /// file (read by the caller *before* this call, so a checkpoint written meanwhile
    /// is in the database too). `progress` is told the sequence reached every 100,000 records.
    ///
    /// After a retention prune (`pruned`, the store's newest), the log starts after the pruned record: the
    /// cut is accepted only when a trusted checkpoint signed that record with the prune's hash and an
    /// Event Log Activity of the remaining log names the same record (``AuditPruneEvent``); otherwise the
    /// removed records are reported `missing`.
    public func verify(store: any EventStore & AuditCheckpointStore, anchor: [AuditCheckpointRecord], pruned: EventPruneRecord? = nil,
                       progress: (@Sendable (Int64) -> Void)? = nil) async throws -> AuditVerification {
        var result = AuditVerification()
        result.anchorCheckpoints = anchor.count
        var breaks: [AuditVerification.Break] = []
        var valid: [CheckpointKey: AuditCheckpointRecord] = [:]
        var inAnchor = Set<CheckpointKey>(), inDatabase = Set<CheckpointKey>()

        func consider(_ c: AuditCheckpointRecord, source: String) throws {
            guard let key = trustedKeys[c.keyID], key.isValidSignature(of: c) else {
                let why = trustedKeys[c.keyID] == nil ? "is signed by \(c.keyID.prefix(64)), which is not a trusted key" : "has an invalid signature"
                breaks.append(.init(kind: .badSignature, sequence: c.sequence, earliestAffected: c.sequence,
                                    detail: "the checkpoint at sequence \(c.sequence) in the \(source) \(why)"))
                return
            }
            let k = CheckpointKey(sequence: c.sequence, keyID: c.keyID)
            if let seen = valid[k] {
                if seen.hash != c.hash || seen.eventID != c.eventID {
                    breaks.append(.init(kind: .edited, sequence: c.sequence, earliestAffected: c.sequence,
                                        detail: "two validly signed checkpoints at sequence \(c.sequence) disagree on the chain head"))
                }
            } else {
                guard valid.count < maxCheckpoints else {
                    throw StoreError(.invalidInput, "more than \(maxCheckpoints) checkpoints; verify refuses to hold them all")
                }
                valid[k] = c
            }
            if source == "anchor file" { inAnchor.insert(k) } else { inDatabase.insert(k) }
        }

        for c in anchor { try consider(c, source: "anchor file") }
        var after: Int64 = 0
        while true {
            let page = try await store.checkpoints(after: after, limit: batchSize)
            guard let last = page.last else { break }
            // Several nodes may sign one sequence: never split a sequence across pages.
            var keep = page
            if page.count == batchSize, page.first?.sequence != last.sequence { keep = page.filter { $0.sequence < last.sequence } }
            for c in keep { try consider(c, source: "database") }
            guard let reached = keep.last?.sequence, reached > after else { break }
            after = reached
        }
        for k in inAnchor.subtracting(inDatabase).sorted(by: { $0.sequence < $1.sequence }) {
            breaks.append(.init(kind: .missing, sequence: k.sequence, earliestAffected: k.sequence,
                                detail: "the checkpoint at sequence \(k.sequence) is in the anchor file but missing from the database"))
        }
        result.checkpointsChecked = valid.count
        result.newestCheckpoint = valid.keys.map(\.sequence).max()

        var bySequence: [Int64: [AuditCheckpointRecord]] = [:]
        var sequenceOfEvent: [UUID: Int64] = [:]
        for c in valid.values {
            bySequence[c.sequence, default: []].append(c)
            sequenceOfEvent[c.eventID] = c.sequence
        }

        // The stream, with one record of look-ahead.
        var buffer: [StoredEvent] = []
        var index = 0
        var fetchedThrough: Int64 = 0
        var exhausted = false
        func fill() async throws {
            guard !exhausted, buffer.count - index < 2 else { return }
            let page = try await store.events(after: fetchedThrough, limit: batchSize)
            buffer = Array(buffer[index...]) + page
            index = 0
            if let last = page.last { fetchedThrough = last.sequence } else { exhausted = true }
        }

        var expected: Int64 = 1
        var previous = genesisEventHash
        var lastGoodCheckpoint: Int64 = 0
        var pruneRecorded = true
        if let p = pruned {
            expected = p.throughSequence + 1
            previous = p.throughHash
            lastGoodCheckpoint = p.throughSequence
            fetchedThrough = p.throughSequence
            result.lastSequence = p.throughSequence
            pruneRecorded = false
            if !(bySequence[p.throughSequence] ?? []).contains(where: { $0.hash == p.throughHash }) {
                breaks.append(.init(kind: .missing, sequence: 1, earliestAffected: 1,
                                    detail: "records 1…\(p.throughSequence) are gone as pruned, but no trusted signed checkpoint of record \(p.throughSequence) anchors the cut"))
            }
        }
        let stopAt = breaks.map(\.sequence).min() ?? .max
        var beforePrevious: String?
        var pending: (checkpoint: AuditCheckpointRecord, from: Int64)?
        var found: AuditVerification.Break?
        var cutShort = false

        scan: while true {
            try await fill()
            guard index < buffer.count else { break }
            let r = buffer[index]
            index += 1
            let following = index < buffer.count ? buffer[index] : nil
            let s = r.sequence
            if s > stopAt { cutShort = true; break }
            if s != expected {
                found = .init(kind: .missing, sequence: expected, earliestAffected: expected,
                              detail: s > expected ? "records \(expected)…\(s - 1) are missing: the log jumps from \(expected - 1) to \(s)"
                                                   : "record \(s) appears out of order")
                break
            }
            if r.previousHash != previous {
                if let beforePrevious, r.previousHash == beforePrevious {
                    found = .init(kind: .inserted, sequence: s - 1, earliestAffected: s - 1,
                                  detail: "record \(s - 1) does not belong to the chain: record \(s) links to record \(s - 2)")
                } else if let n = following, n.sequence == s + 1, n.previousHash == previous, n.hash == r.previousHash {
                    found = .init(kind: .reordered, sequence: s, earliestAffected: s,
                                  detail: "records \(s) and \(s + 1) are in each other's place")
                } else if EventChain.hash(previous: r.previousHash, event: r.event) != r.hash {
                    found = .init(kind: .edited, sequence: s, earliestAffected: s,
                                  detail: "record \(s) was changed: neither its link nor its hash holds")
                } else {
                    found = .init(kind: .missing, sequence: s, earliestAffected: s,
                                  detail: "record \(s) does not link to record \(s - 1): the record between them is missing (or \(s - 1) was rewritten)")
                }
                break
            }
            if EventChain.hash(previous: previous, event: r.event) != r.hash {
                found = .init(kind: .edited, sequence: s, earliestAffected: s,
                              detail: "record \(s) was changed after it was written: its content no longer matches its hash")
                break
            }
            if let signedAt = sequenceOfEvent[r.event.id], signedAt != s {
                let from = lastGoodCheckpoint + 1
                found = signedAt > s
                    ? .init(kind: .missing, sequence: s, earliestAffected: from,
                            detail: "\(signedAt - s) record(s) between \(from) and \(signedAt) were removed and the chain re-computed: the event signed at \(signedAt) is now at \(s)")
                    : .init(kind: .inserted, sequence: signedAt, earliestAffected: from,
                            detail: "\(s - signedAt) record(s) were inserted between \(from) and \(signedAt) and the chain re-computed: the event signed at \(signedAt) is now at \(s)")
                break
            }
            for c in bySequence[s] ?? [] {
                if c.hash == r.hash {
                    lastGoodCheckpoint = s
                } else if c.eventID == r.event.id {
                    let from = lastGoodCheckpoint + 1
                    found = .init(kind: .edited, sequence: s, earliestAffected: from,
                                  detail: "records \(from)…\(s) were rewritten and the chain re-computed: it no longer passes through the checkpoint signed at \(s)")
                    break scan
                } else if pending == nil {
                    pending = (c, lastGoodCheckpoint + 1)
                }
            }
            if !pruneRecorded, let p = pruned, AuditPruneEvent.records(p, in: r) { pruneRecorded = true }
            if let p = pending, s - p.checkpoint.sequence >= lookahead { break }
            beforePrevious = previous
            previous = r.hash
            expected += 1
            result.eventsChecked += 1
            result.lastSequence = s
            if s % 100_000 == 0 { progress?(s) }
        }
        if found == nil, let p = pending {
            found = .init(kind: .edited, sequence: p.checkpoint.sequence, earliestAffected: p.from,
                          detail: "records \(p.from)…\(p.checkpoint.sequence) were rewritten and the chain re-computed: the event signed at \(p.checkpoint.sequence) is no longer in the log")
        }
        if found == nil, !cutShort, !pruneRecorded, let p = pruned {
            found = .init(kind: .missing, sequence: 1, earliestAffected: 1,
                          detail: "records 1…\(p.throughSequence) are gone as pruned, but no audit event in the log records that prune")
        }
        if found == nil, !cutShort, let newest = result.newestCheckpoint, newest > result.lastSequence {
            found = .init(kind: .truncated, sequence: result.lastSequence + 1, earliestAffected: result.lastSequence + 1,
                          detail: "the log ends at \(result.lastSequence) but a checkpoint was signed at \(newest): records \(result.lastSequence + 1)…\(newest) (at least) were removed")
        }
        if let found { breaks.append(found) }
        result.firstBreak = breaks.min { $0.sequence < $1.sequence }
        if let newest = result.newestCheckpoint { result.eventsAfterNewestCheckpoint = max(0, result.lastSequence - newest) }
        else { result.eventsAfterNewestCheckpoint = result.lastSequence }
        return result
    }
}
