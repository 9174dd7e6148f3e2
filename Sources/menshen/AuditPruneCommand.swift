import ArgumentParser
import Foundation
import Logging
import MenshenConfig
import MenshenCore
import MenshenServer
import MenshenStorage
import MenshenVisibility

extension AuditCommand {
    /// The keys `verify` and `prune` trust: those given with `--public-key` (base64, or files of `menshen
    /// audit key` lines), else the deployment's signing key.
    static func trustedKeys(_ publicKey: [String], config: MenshenConfiguration) throws -> [AuditVerifyKey] {
        if publicKey.isEmpty {
            guard let path = AuditFiles.keyPath(config) else {
                throw ValidationError("no audit.signing_key_file configured: pass --public-key")
            }
            return [try AuditFiles.loadOrCreateKey(path: path, mayCreate: false).verifyKey]
        }
        var keys: [AuditVerifyKey] = []
        for value in publicKey {
            if FileManager.default.fileExists(atPath: value) {
                guard let data = FileManager.default.contents(atPath: value), data.count <= 64 * 1024 else {
                    throw ValidationError("\(value): cannot read the key file")
                }
                for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                    guard let last = line.split(separator: " ").last else { continue }
                    keys.append(try AuditVerifyKey(base64: String(last)))
                }
            } else {
                keys.append(try AuditVerifyKey(base64: value))
            }
        }
        guard !keys.isEmpty else { throw ValidationError("no public key given") }
        return keys
    }

    /// `verify --export FILE`: an export checked on its own (no database needed).
    static func verifyExport(path: String, keys: [AuditVerifyKey], json: Bool) throws -> Int32 {
        guard FileManager.default.fileExists(atPath: path) else { throw AuditCommandError("\(path): no such export file") }
        let read = try AuditPruner.read(path: path, keys: keys)
        let v = read.verification
        if json {
            var o: [String: Any] = ["status": v.intact ? "intact" : "tampered", "records": v.records, "from_sequence": v.fromSequence,
                                    "through_sequence": v.throughSequence, "sha256": read.sha256, "keys": keys.map(\.keyID)]
            o["problem"] = v.problem ?? NSNull()
            print(AuditCommand.json(o))
        } else {
            var lines = [v.intact ? "audit export:      INTACT" : "audit export:      TAMPERED"]
            if let p = v.problem { lines.append("first problem:     \(p)") }
            lines.append("records:           \(v.records)\(v.intact ? " (sequences \(v.fromSequence)…\(v.throughSequence))" : "")")
            if let c = v.endCheckpoint { lines.append("end checkpoint:    sequence \(c.sequence), signed by \(c.keyID)") }
            lines.append("sha256:            \(read.sha256)")
            print(lines.joined(separator: "\n"))
        }
        return v.intact ? Exit.intact : Exit.tampered
    }

    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export the oldest events to a verifiable file, then delete them from the log (retention).",
            discussion: """
                Removes the records older than --before, up to the newest record a trusted checkpoint signed (the cut must
                be signed so that the rest of the log, and the export, still verify). First the records are written to the
                export file (JSON Lines with every record's sequence and chain hash, the checkpoints at both ends), synced
                and read back and verified; only then is the prune recorded as an audit event (OCSF 1008) and the records
                deleted in one transaction, and a checkpoint signed. Refused, with nothing deleted, when no checkpoint
                covers the older records: run `menshen audit checkpoint` first. Verify an export alone with
                `menshen audit verify --export FILE`. Exit status: 0 pruned (or --dry-run), 1 refused or failed, 2 bad option.
                """)

        @OptionGroup var store: StoreOptions

        @Option(name: .long, help: ArgumentHelp("Prune events older than this: RFC 3339 or an age (90d: older than 90 days).", valueName: "time"))
        var before: String?

        @Option(name: .long, help: ArgumentHelp("The export file to create (must not exist).", valueName: "file"))
        var export: String?

        @Option(name: .long, help: ArgumentHelp("Trust this public key for the checkpoints (default: the deployment's key); repeatable.", valueName: "key"))
        var publicKey: [String] = []

        @Flag(name: .long, help: "Only say what would be exported and pruned.")
        var dryRun = false

        @Flag(name: .long, help: "Cut past the log consumers' saved cursors (SIEM and JSON Lines export, detections): they lose the records they have not read.")
        var ignoreConsumerCursors = false

        func run() async throws {
            guard let before, !before.isEmpty else { throw refuse("--before is required (e.g. --before 365d or --before 2026-01-01T00:00:00+08:00)") }
            let cutoff: Date
            do { cutoff = try AuditTime.parse(before, now: Date(), option: "--before") } catch { throw refuse(error.message) }
            guard dryRun || !(export ?? "").isEmpty else { throw refuse("--export FILE is required: the records are written there before they are deleted") }
            if let export, FileManager.default.fileExists(atPath: export) {
                throw refuse("--export: \(export) exists; give a new file name")
            }
            let (config, db) = try await store.openExisting()
            do {
                let keys = try AuditCommand.trustedKeys(publicKey, config: config)
                let pruner = AuditPruner(store: db, keys: keys, clock: SystemClock())
                var plan = try await pruner.plan(before: cutoff)
                var held: [String] = []
                // The same rule as the scheduled prune: not past what an enabled consumer of the log has not read yet.
                if !ignoreConsumerCursors, let hold = try await AuditPruneConsumers.lowest(config, store: db), hold.sequence < plan.through {
                    held.append("held back:         the consumer \(hold.consumer) has read only through sequence \(hold.sequence) (--ignore-consumer-cursors cuts past it)")
                    do { plan = try await pruner.plan(before: cutoff, notPast: hold.sequence) } catch let e as AuditPruneError {
                        throw AuditPruneError("held back by the consumer \(hold.consumer), which has read only through sequence \(hold.sequence): \(e.description)")
                    }
                }
                var lines = held + ["records:           \(plan.from)…\(plan.through) (\(plan.count)), cut at the checkpoint signed by \(plan.end.keyID)"]
                if plan.olderThroughSequence > plan.through {
                    lines.append("kept for now:      \(plan.through + 1)…\(plan.olderThroughSequence) are older too but no checkpoint covers them yet")
                }
                if dryRun {
                    print((["dry run:           nothing written or deleted"] + lines).joined(separator: "\n"))
                    try await db.close()
                    return
                }
                guard let export else { throw refuse("--export FILE is required") }
                let exported = try await pruner.export(plan, to: export)
                let actor = ProcessInfo.processInfo.environment["USER"].flatMap { $0.isEmpty ? nil : $0 } ?? "menshen"
                let deleted = try await pruner.prune(plan, exported: exported, actor: "cli:\(actor)")
                lines.insert("exported:          \(export) (\(exported.bytes) bytes, sha256 \(exported.sha256)), verified", at: 0)
                lines.append("pruned:            \(deleted) record(s); the log now starts at sequence \(plan.through + 1)")
                // Sign the head now, so the prune's own event is covered by a checkpoint.
                if let checkpointer = try AuditCheckpointer.configured(config, store: db, clock: SystemClock(), logger: Logger(label: "menshen.audit")),
                   let c = try await checkpointer.checkpoint(force: true) {
                    lines.append("checkpoint:        signed at sequence \(c.sequence)")
                }
                print(lines.joined(separator: "\n"))
                try await db.close()
            } catch let e as ExitCode {
                try? await db.close(); throw e
            } catch let e as AuditPruneError {
                try? await db.close()
                FileHandle.standardError.write(Data("menshen: prune refused: \(e.description)\n".utf8))
                throw ExitCode(1)
            } catch {
                try? await db.close(); throw fail(error)
            }
        }
    }
}
