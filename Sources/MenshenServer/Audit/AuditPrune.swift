import Crypto
import Foundation
import MenshenCore
import MenshenPolicyAdministrator
import MenshenStorage
import MenshenVisibility

/// Retention for the audit log, export first (`menshen audit prune`): the records to go are written to an
/// export file (``AuditExport``), which is synced and read back and verified (count, every link, both
/// signed checkpoints) before anything is deleted; then an OCSF Event Log Activity (1008, Delete) records
/// the prune in the log itself, and the store records the prune and deletes the records in short transactions
/// (``EventPruneStore``). The cut is always at a record that a trusted checkpoint signed, so the rest of
/// the log still verifies from there and the export verifies on its own.
public struct AuditPruner: Sendable {
    public let store: any MenshenStore
    public let keys: [AuditVerifyKey]
    public let clock: any WallClock
    public let random: any RandomSource

    public init(store: any MenshenStore, keys: [AuditVerifyKey], clock: any WallClock, random: any RandomSource = SystemRandomSource()) {
        self.store = store; self.keys = keys; self.clock = clock; self.random = random
    }

    /// What a prune will remove: records `from…through`, after the previous prune (or the start).
    public struct Plan: Sendable, Equatable {
        public var from: Int64
        public var through: Int64
        /// The hash record `from` links to (the genesis hash, or the previous prune's).
        public var previousHash: String
        /// The checkpoint of record `from − 1` (nil when `from` is 1).
        public var start: AuditCheckpointRecord?
        /// The checkpoint of record `through`: the newest trusted one at or before the last record older than the cut-off.
        public var end: AuditCheckpointRecord
        /// The newest record older than the cut-off (records `through+1…` it stay until a later checkpoint covers them).
        public var olderThroughSequence: Int64
        public var count: Int64 { through - from + 1 }
    }

    /// Finds what pruning everything older than `before` may remove. Throws ``AuditPruneError`` with the
    /// reason when nothing can be pruned (no older event, no checkpoint covering them). With `notPast`, the cut
    /// stays at or before that sequence (the lowest consumer cursor, ``AuditPruneConsumers``).
    public func plan(before: Date, notPast: Int64? = nil) async throws -> Plan {
        let prior = try await store.lastPrune()
        let from = (prior?.throughSequence ?? 0) + 1
        let previousHash = prior?.throughHash ?? genesisEventHash
        guard let head = try await store.lastEvent(), head.sequence >= from else {
            throw AuditPruneError("the audit log is empty: nothing to prune")
        }
        // Times are not strictly in sequence order (buffered writers): stop before the first event at or after the cut-off.
        let firstKept = try await store.searchEvents(EventQuery(since: before), order: .oldestFirst, after: from - 1, limit: 1).first
        let older = min(firstKept.map { $0.sequence - 1 } ?? head.sequence, notPast ?? .max)
        let when = AuditTime.format(before)
        guard older >= from else {
            throw AuditPruneError("no event before \(when) is left in the log (it starts at sequence \(from)): nothing to prune")
        }
        let trusted = Dictionary(keys.map { ($0.keyID, $0) }, uniquingKeysWith: { a, _ in a })
        func isTrusted(_ c: AuditCheckpointRecord) -> Bool { trusted[c.keyID]?.isValidSignature(of: c) ?? false }
        var start: AuditCheckpointRecord?
        var end: AuditCheckpointRecord?
        var after = max(0, from - 2)
        scan: while true {
            let page = try await store.checkpoints(after: after, limit: 1000)
            for c in page {
                if c.sequence > older { break scan }
                guard isTrusted(c) else { continue }
                if c.sequence == from - 1, c.hash == previousHash { start = c }
                if c.sequence >= from { end = c }
            }
            // (A sequence signed by more keys than fit a page could straddle it; its other keys are then
            // skipped, which can only make the cut earlier.)
            guard page.count == 1000, let last = page.last, last.sequence > after else { break }
            after = last.sequence
        }
        guard let end else {
            throw AuditPruneError("""
                no signed checkpoint covers the events before \(when): the newest of them is sequence \(older) and no checkpoint \
                by a trusted key lies between \(from) and \(older), so the cut could not be verified later. Nothing was pruned. \
                Run `menshen audit checkpoint` (it signs the log's head; `menshen serve` signs one every \
                audit.checkpoint.every_events events) and prune again once a checkpoint lies before the cut-off.
                """)
        }
        if from > 1, start == nil {
            throw AuditPruneError("the checkpoint at the previous prune (sequence \(from - 1)) is missing or not trusted: run `menshen audit verify`")
        }
        return Plan(from: from, through: end.sequence, previousHash: previousHash, start: start, end: end, olderThroughSequence: older)
    }

    /// What writing and re-reading the export found.
    public struct Exported: Sendable, Equatable {
        public var path: String
        public var sha256: String
        public var bytes: Int64
        public var verification: AuditExportVerification
    }

    /// Writes the plan's records to a new file at `path` (refused when it exists), syncs it and its
    /// directory, then reads it back and verifies it. Throws when it cannot be written or does not verify
    /// (the file is then left for inspection; nothing was deleted).
    public func export(_ plan: Plan, to path: String, mode: mode_t = 0o640) async throws -> Exported {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else {
            throw AuditPruneError(errno == EEXIST ? "\(path): the export file exists; give a new name (nothing was pruned)"
                                                  : "\(path): cannot create the export file (\(String(cString: strerror(errno))))")
        }
        var closed = false
        defer { if !closed { close(fd) } }
        var buffer: [UInt8] = []
        func flush() throws {
            var offset = 0
            while offset < buffer.count {
                let n = buffer[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                guard n > 0 else { throw AuditPruneError("\(path): cannot write the export file (\(String(cString: strerror(errno))))") }
                offset += n
            }
            buffer.removeAll(keepingCapacity: true)
        }
        func line(_ s: String) throws {
            buffer += s.utf8
            buffer.append(0x0A)
            if buffer.count >= 1 << 20 { try flush() }
        }
        try line(AuditExport.headerLine(from: plan.from, through: plan.through, previousHash: plan.previousHash, start: plan.start))
        var after = plan.from - 1
        while after < plan.through {
            let page = try await store.events(after: after, limit: Int(min(1000, plan.through - after)))
            guard let last = page.last else { break }
            for e in page { try line(AuditExport.recordLine(e)) }
            after = last.sequence
        }
        try line(AuditExport.trailerLine(plan.end))
        try flush()
        guard fsync(fd) == 0 else { throw AuditPruneError("\(path): cannot sync the export file to disk") }
        closed = true
        guard close(fd) == 0 else { throw AuditPruneError("\(path): cannot close the export file") }
        // The directory entry too, so the file survives a crash right after the prune.
        let dir = open((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent, O_RDONLY)
        if dir >= 0 { _ = fsync(dir); close(dir) }

        let read = try Self.read(path: path, keys: keys)
        let v = read.verification
        guard v.intact else { throw AuditPruneError("\(path): the export does not verify after writing (\(v.problem ?? "")); nothing was pruned") }
        guard v.fromSequence == plan.from, v.throughSequence == plan.through, v.records == plan.count, v.lastHash == plan.end.hash else {
            throw AuditPruneError("\(path): the export read back holds \(v.records) records \(v.fromSequence)…\(v.throughSequence), not \(plan.count) records \(plan.from)…\(plan.through); nothing was pruned")
        }
        return Exported(path: path, sha256: read.sha256, bytes: read.bytes, verification: v)
    }

    /// Reads an export file in 64 KiB chunks (memory holds one line), verifying it and hashing its bytes.
    public static func read(path: String, keys: [AuditVerifyKey]) throws -> (verification: AuditExportVerification, sha256: String, bytes: Int64) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw AuditPruneError("\(path): cannot read the export file") }
        defer { try? handle.close() }
        var verifier = AuditExportVerifier(trustedKeys: keys)
        var digest = SHA256()
        var partial: [UInt8] = []
        var bytes: Int64 = 0
        while true {
            let chunk = try handle.read(upToCount: 64 * 1024) ?? Data()
            if chunk.isEmpty { break }
            digest.update(data: chunk)
            bytes += Int64(chunk.count)
            partial += chunk
            var start = partial.startIndex
            while let nl = partial[start...].firstIndex(of: 0x0A) {
                verifier.feed(partial[start..<nl])
                start = nl + 1
            }
            partial.removeSubrange(..<start)
            if partial.count > AuditExport.maxLineBytes { verifier.feed(partial); partial.removeAll() }
            if verifier.result.problem != nil { break }
        }
        if !partial.isEmpty { verifier.feed(partial) }
        let hex = digest.finalize().map { String(format: "%02x", $0) }.joined()
        return (verifier.finish(), hex, bytes)
    }

    /// Records the prune as an audit event, then has the store record it and delete the exported records
    /// (a chunk per transaction, ``EventPruneStore/pruneEvents(_:)``).
    /// Returns how many were deleted.
    public func prune(_ plan: Plan, exported: Exported, actor: String) async throws -> Int {
        let facts = AuditPruneEvent.Facts(from: plan.from, through: plan.through, throughHash: plan.end.hash, keyID: plan.end.keyID,
                                          exportSHA256: exported.sha256, exportPath: exported.path, exportBytes: exported.bytes, actor: actor)
        let event = try AuditPruneEvent.make(facts, id: random.uuid(), time: clock.now(), productVersion: IdentityEvents.productVersion)
        _ = try await store.appendEvents([event], hasher: EventChain.hasher)
        return try await store.pruneEvents(EventPruneRecord(throughSequence: plan.through, throughHash: plan.end.hash, eventCount: plan.count,
                                                            exportSHA256: exported.sha256, prunedAt: clock.now()))
    }
}

public struct AuditPruneError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}
