import Foundation
import Logging
import MenshenConfig
import MenshenCore
import MenshenStorage
import MenshenVisibility
import ServiceLifecycle

/// The consumers of the event log whose saved cursors a prune must not pass: records they have not read
/// yet would be lost to them (the SIEM export, the JSON Lines export, the detections). Shared by the
/// scheduled prune (``AuditRetention``) and `menshen audit prune`.
public enum AuditPruneConsumers {
    /// A consumer that holds the cut back: its name (the cursor's) and the newest record it has finished with.
    public struct HoldBack: Sendable, Equatable {
        public var consumer: String
        public var sequence: Int64
        public init(consumer: String, sequence: Int64) { self.consumer = consumer; self.sequence = sequence }
    }

    /// The consumer cursors that count under `config`: each enabled exporter's (a missing cursor counts as 0:
    /// a new exporter starts at the log's first record) and the detections' (shared by the nodes, counted whether or not
    /// this node runs them (`response.detections_enabled`): a cursor no node moves any more holds pruning back; a missing
    /// cursor does not count: the detections start at the head on their first start).
    public static func cursors(_ config: MenshenConfiguration) -> [(name: String, missingMeansStart: Bool)] {
        var names: [(String, Bool)] = [(DetectionService.cursorName, false)]
        if config.syslogExport.enabled { names.append(("export.syslog", true)) }
        if config.jsonLinesExport.enabled { names.append(("export.jsonl", true)) }
        return names
    }

    /// The lowest position among `config`'s consumers, or nil when none holds anything back.
    public static func lowest(_ config: MenshenConfiguration, store: any MenshenStore) async throws -> HoldBack? {
        var lowest: HoldBack?
        for (name, missingMeansStart) in cursors(config) {
            let saved = try await store.cursor(named: name)
            guard let sequence = saved ?? (missingMeansStart ? 0 : nil) else { continue }
            if lowest == nil || sequence < lowest!.sequence { lowest = HoldBack(consumer: name, sequence: sequence) }
        }
        return lowest
    }
}

/// Audit retention on a schedule (`audit.retention_days`, `audit.retention_export_dir`): once at start and
/// then every day, `menshen serve` prunes the records older than the retention, export first, exactly as
/// `menshen audit prune` does (``AuditPruner``): the cut is at the newest trusted checkpoint before that age,
/// the export (`audit-export-<date>-<from>-<through>.jsonl`, mode 0600, synced, read back and verified) is
/// written before anything is deleted, the prune is recorded as an OCSF 1008 event, and a checkpoint is then
/// signed over the new head. The cut never passes the lowest cursor of the log's consumers
/// (``AuditPruneConsumers``); a hold-back is logged with the consumer's name.
///
/// Several nodes on one PostgreSQL database may each run it: the store checks and records a prune under the
/// event chain's advisory lock and refuses one that does not extend the last (`conflict`), so records are deleted
/// once; the pruner also re-reads the last prune just before recording its event, so a node that lost the
/// race normally stops before writing anything but its export file (which it then removes).
public struct AuditRetention: Service {
    public let store: any MenshenStore
    public let config: MenshenConfiguration
    public let keys: [AuditVerifyKey]
    public let checkpointer: AuditCheckpointer?
    public let clock: any WallClock
    public let logger: Logger
    /// Time between runs (a day in `menshen serve`).
    public let interval: Duration

    public init(store: any MenshenStore, config: MenshenConfiguration, keys: [AuditVerifyKey], checkpointer: AuditCheckpointer?,
                clock: any WallClock, logger: Logger, interval: Duration = .seconds(86_400)) {
        self.store = store; self.config = config; self.keys = keys; self.checkpointer = checkpointer
        self.clock = clock; self.logger = logger; self.interval = interval
    }

    /// The service for `config`, or nil when retention is off (`audit.retention_days` 0). Without a signing key
    /// (PostgreSQL without `audit.signing_key_file`) there are no checkpoints to cut at: it logs that and is nil.
    public static func configured(_ config: MenshenConfiguration, store: any MenshenStore, checkpointer: AuditCheckpointer?,
                                  clock: any WallClock, logger: Logger) -> AuditRetention? {
        guard config.audit.retentionDays > 0 else { return nil }
        guard let checkpointer else {
            logger.warning("audit retention is off: no audit.signing_key_file, so no signed checkpoint can anchor a prune")
            return nil
        }
        return AuditRetention(store: store, config: config, keys: [checkpointer.verifyKey], checkpointer: checkpointer,
                              clock: clock, logger: logger)
    }

    public func run() async throws {
        let interval = self.interval
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                _ = await self.runOnce()
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// What one run did.
    public enum Outcome: Sendable, Equatable {
        /// Retention is off (0 days).
        case off
        /// Nothing was pruned, with the reason (also logged).
        case nothing(String)
        /// Records `from…through` were exported to `file` and deleted; `heldBack` names the consumer that kept
        /// the cut earlier than the checkpoints allowed, if one did.
        case pruned(from: Int64, through: Int64, file: String, heldBack: AuditPruneConsumers.HoldBack?)
    }

    /// Prunes once now (the schedule calls it; tests call it with their clock). Never throws: a failure is
    /// logged and returned as `.nothing`, and nothing is deleted unless the export verified.
    public func runOnce() async -> Outcome {
        let days = config.audit.retentionDays
        guard days > 0 else { return .off }
        let now = clock.now()
        let before = now.addingTimeInterval(-Double(days) * 86_400)
        let pruner = AuditPruner(store: store, keys: keys, clock: clock)
        // The export file of this run until its records are pruned: removed when the run ends without pruning (another
        // node pruned them meanwhile — its export then fails to verify or its prune fails —, or any other failure).
        var unneededExport: String?, exportSHA256: String?
        do {
            var heldBack: AuditPruneConsumers.HoldBack?
            var plan: AuditPruner.Plan
            do {
                let full = try await pruner.plan(before: before)
                if let hold = try await AuditPruneConsumers.lowest(config, store: store), hold.sequence < full.through {
                    heldBack = hold
                    logger.warning("audit retention: held back by a consumer that has not read the older records yet", metadata: [
                        "consumer": "\(hold.consumer)", "consumer_sequence": "\(hold.sequence)", "checkpoint_sequence": "\(full.through)"])
                    plan = try await pruner.plan(before: before, notPast: hold.sequence)
                } else {
                    plan = full
                }
            } catch let e as AuditPruneError {
                let reason = heldBack.map { "held back by the consumer \($0.consumer) at sequence \($0.sequence): \(e.description)" } ?? e.description
                logger.notice("audit retention: nothing pruned", metadata: ["reason": "\(reason)", "retention_days": "\(days)"])
                return .nothing(reason)
            }
            let dir = config.audit.retentionExportDir
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let day = AuditRetention.fileTime(now)
            let path = (dir as NSString).appendingPathComponent("audit-export-\(day)-\(plan.from)-\(plan.through).jsonl")
            unneededExport = path
            let exported = try await pruner.export(plan, to: path, mode: 0o600)
            exportSHA256 = exported.sha256
            // Another node may have pruned meanwhile (PostgreSQL): then this export is superfluous.
            if let last = try await store.lastPrune(), last.throughSequence >= plan.from {
                try? FileManager.default.removeItem(atPath: path)
                logger.notice("audit retention: another node pruned first", metadata: ["through": "\(last.throughSequence)"])
                return .nothing("another node pruned through \(last.throughSequence) first")
            }
            let deleted: Int
            do {
                deleted = try await pruner.prune(plan, exported: exported, actor: "menshen:retention")
            } catch let e as StoreError where e.code == .conflict {
                // Another node's prune won the store's transaction (PostgreSQL): nothing was deleted here.
                try? FileManager.default.removeItem(atPath: path)
                logger.notice("audit retention: another node pruned first", metadata: ["error": "\(e)"])
                return .nothing("another node pruned first: \(e)")
            }
            unneededExport = nil
            _ = try? await checkpointer?.checkpoint(force: true)
            logger.notice("audit retention: exported and pruned", metadata: [
                "from": "\(plan.from)", "through": "\(plan.through)", "deleted": "\(deleted)", "export": "\(path)",
                "sha256": "\(exported.sha256)", "retention_days": "\(days)"])
            return .pruned(from: plan.from, through: plan.through, file: path, heldBack: heldBack)
        } catch {
            // Only a file this run wrote and verified (an export that failed may have met another node's file of the same
            // name), and kept when the store cannot say, or says this export's prune went through (its answer may have been lost).
            if let unneededExport, let exportSHA256 {
                let keep: Bool
                do {
                    let last = try await store.lastPrune()
                    keep = last?.exportSHA256 == exportSHA256
                } catch { keep = true }
                if !keep { try? FileManager.default.removeItem(atPath: unneededExport) }
            }
            logger.error("audit retention: prune failed, nothing deleted unless logged otherwise", metadata: ["error": "\(error)"])
            return .nothing("failed: \(error)")
        }
    }

    /// `20261126T221500Z`: the run's UTC time, for file names (no colons).
    static func fileTime(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", c.year ?? 0, c.month ?? 0, c.day ?? 0, c.hour ?? 0, c.minute ?? 0, c.second ?? 0)
    }
}
