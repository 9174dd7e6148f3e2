import Foundation
import Logging
import MenshenConfig
import MenshenCore
import MenshenStorage
import MenshenVisibility
import ServiceLifecycle

/// Signs checkpoints of the event chain's head: every `everyEvents` new events,
/// or every `interval` while new events arrive, and once at graceful shutdown.
/// Each checkpoint goes to the database and then (fsync'd) to the anchor file
/// outside it. Before signing, the new records since the last checkpoint are
/// checked link by link, so a chain that was tampered with is never signed over
/// (it is logged as an error instead).
public actor AuditCheckpointer: Service {
    let store: any MenshenStore
    let key: AuditSigningKey
    let anchorPath: String?
    let everyEvents: Int64
    let interval: TimeInterval
    let clock: any WallClock
    let logger: Logger
    /// The newest record whose chain was checked, and when the last checkpoint was signed.
    /// The public half of the signing key: the key a prune trusts (``AuditRetention``).
    public nonisolated var verifyKey: AuditVerifyKey { key.verifyKey }
    private var verified: (sequence: Int64, hash: String)?
    private var lastSigned: (sequence: Int64, at: Date)?
    private var reportedBreak: Int64?

    public init(store: any MenshenStore, key: AuditSigningKey, anchorPath: String?, everyEvents: Int, interval: TimeInterval,
                clock: any WallClock, logger: Logger = Logger(label: "menshen.audit")) {
        self.store = store; self.key = key; self.anchorPath = anchorPath
        self.everyEvents = Int64(max(1, everyEvents)); self.interval = max(0.05, interval)
        self.clock = clock; self.logger = logger
    }

    /// The checkpointer of a configuration, or nil (with the reason logged) when
    /// checkpoints are off: PostgreSQL without `audit.signing_key_file` or `audit.checkpoint.anchor_file`.
    public static func configured(_ config: MenshenConfiguration, store: any MenshenStore, clock: any WallClock,
                                  logger: Logger) throws -> AuditCheckpointer? {
        guard let keyPath = AuditFiles.keyPath(config), let anchor = AuditFiles.anchorPath(config) else {
            logger.warning("audit checkpoints are off: with PostgreSQL set audit.signing_key_file and audit.checkpoint.anchor_file")
            return nil
        }
        let key = try AuditFiles.loadOrCreateKey(path: keyPath, mayCreate: config.store.driver == .sqlite)
        return AuditCheckpointer(store: store, key: key, anchorPath: anchor, everyEvents: config.audit.checkpointEveryEvents,
                                 interval: TimeInterval(config.audit.checkpointIntervalSeconds), clock: clock, logger: logger)
    }

    public func run() async throws {
        let poll = Duration.milliseconds(Int64(min(1.0, interval / 2) * 1000))
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: poll)
                if Task.isCancelled { break }
                await self.tick(force: false)
            }
        }
        await tick(force: true)
    }

    private func tick(force: Bool) async {
        do { _ = try await checkpoint(force: force) } catch {
            logger.error("could not sign an audit checkpoint", metadata: ["error": "\(error)"])
        }
    }

    /// Signs the current head if it is due (or whenever it advanced, with `force`).
    /// Returns the checkpoint written, or nil when nothing was due.
    @discardableResult
    public func checkpoint(force: Bool) async throws -> AuditCheckpointRecord? {
        guard let head = try await store.lastEvent() else { return nil }
        if lastSigned == nil, let last = try await store.lastCheckpoint() { lastSigned = (last.sequence, last.time) }
        let signedSequence = lastSigned?.sequence ?? 0
        guard head.sequence > signedSequence else { return nil }
        let due = force || head.sequence - signedSequence >= everyEvents
            || clock.now().timeIntervalSince(lastSigned?.at ?? .distantPast) >= interval
        guard due else { return nil }
        guard try await chainHolds(through: head) else { return nil }
        let checkpoint = try key.checkpoint(sequence: head.sequence, eventID: head.event.id, hash: head.hash, time: clock.now())
        // The database first: a crash before the anchor line leaves a checkpoint only the
        // database has, which verification accepts; the other order would look like tampering.
        try await store.appendCheckpoint(checkpoint)
        if let anchorPath { try AuditFiles.append(checkpoint, toAnchor: anchorPath) }
        lastSigned = (checkpoint.sequence, checkpoint.time)
        return checkpoint
    }

    /// Checks the links from the last checked record to `head`, in batches.
    private func chainHolds(through head: StoredEvent) async throws -> Bool {
        if verified == nil, let last = try await store.lastCheckpoint(),
           let atCheckpoint = try await store.events(after: last.sequence - 1, limit: 1).first,
           atCheckpoint.sequence == last.sequence, atCheckpoint.hash == last.hash {
            verified = (last.sequence, last.hash)
        }
        // After a retention prune the log starts past its boundary (`menshen audit prune` checked the cut).
        if let p = try await store.lastPrune(), (verified?.sequence ?? 0) < p.throughSequence {
            verified = (p.throughSequence, p.throughHash)
        }
        var (after, previous) = verified ?? (0, genesisEventHash)
        while after < head.sequence {
            let page = try await store.events(after: after, limit: 1000)
            guard let last = page.last else { break }
            if page.first?.sequence != after + 1 || EventChain.firstBrokenLink(page, expectedPrevious: previous) != nil {
                let at = EventChain.firstBrokenLink(page, expectedPrevious: previous) ?? after + 1
                if reportedBreak != at {
                    reportedBreak = at
                    logger.error("the event chain is broken; no checkpoint is signed over it (run `menshen audit verify`)",
                                 metadata: ["sequence": "\(at)"])
                }
                return false
            }
            after = last.sequence; previous = last.hash
            verified = (after, previous)
        }
        return verified?.sequence ?? 0 >= head.sequence
    }
}
