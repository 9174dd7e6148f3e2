import ArgumentParser
import Foundation
import Logging
import MenshenConfig
import MenshenCore
import MenshenServer
import MenshenStorage
import MenshenVisibility

/// `menshen audit …`: the tamper-evident audit log. `verify` checks the whole
/// event chain against the signed checkpoints in the database and in the anchor
/// file outside it; `key` prints the public key a regulator needs to verify a
/// copy offline; `checkpoint` signs the chain head now (e.g. before a backup).
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "The tamper-evident audit log: verify, key, checkpoint, search, tail, prune.",
        subcommands: [Verify.self, Key.self, Checkpoint.self, Search.self, Tail.self, Prune.self])

    /// `verify`'s exit codes, like cmp(1): 0 intact, 1 tampered, 2 could not verify.
    enum Exit {
        static let intact: Int32 = 0, tampered: Int32 = 1, couldNotVerify: Int32 = 2
    }

    static func json(_ object: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every link of the event chain, every checkpoint's signature, and that the log reaches the newest checkpoint.",
            discussion: """
                Reads the log in batches. Reports the first break: its sequence and kind (edited, missing, reordered,
                inserted, truncated, bad_signature). Exit status: 0 intact, 1 tampered, 2 could not verify.
                Signatures are checked with the deployment's signing key, or only with the keys given by --public-key
                (what `menshen audit key` prints), e.g. for an offline copy.
                """)

        @OptionGroup var store: StoreOptions

        @Option(name: .long, help: ArgumentHelp("Trust this public key (base64, or a file of `menshen audit key` lines); repeatable. Replaces the deployment's key.", valueName: "key"))
        var publicKey: [String] = []

        @Option(name: .long, help: ArgumentHelp("The anchor file to check against (default: audit.checkpoint.anchor_file).", valueName: "file"))
        var anchor: String?

        @Flag(name: .long, help: "Print the result as one JSON object.")
        var json = false

        @Option(name: .long, help: ArgumentHelp("Records read per batch.", valueName: "n"))
        var batchSize: Int = 1000

        @Option(name: .long, help: ArgumentHelp("Verify this export file of `menshen audit prune` on its own instead of the database.", valueName: "file"))
        var export: String?

        func run() async throws {
            let code: Int32
            do {
                if let export {
                    code = try AuditCommand.verifyExport(path: export, keys: try trustedKeys(try store.load()), json: json)
                } else {
                    code = try await verify()
                }
            } catch {
                if json { print(AuditCommand.json(["status": "error", "error": "\(error)"])) }
                else { FileHandle.standardError.write(Data("menshen: could not verify the audit log: \(error)\n".utf8)) }
                code = Exit.couldNotVerify
            }
            if code != 0 { throw ExitCode(code) }
        }

        func trustedKeys(_ config: MenshenConfiguration) throws -> [AuditVerifyKey] {
            try AuditCommand.trustedKeys(publicKey, config: config)
        }

        func verify() async throws -> Int32 {
            guard (2...100_000).contains(batchSize) else { throw ValidationError("--batch-size must be 2–100000") }
            let config = try store.load()
            if config.store.driver == .sqlite, !FileManager.default.fileExists(atPath: config.store.sqlitePath) {
                throw StoreError(.notFound, "\(config.store.sqlitePath): no Menshen database here (run `menshen demo` or pass --config)")
            }
            let keys = try trustedKeys(config)
            // The anchor is read before the database, so a checkpoint written meanwhile is in both or only in the database.
            let anchorPath = anchor ?? AuditFiles.anchorPath(config)
            let anchorFile = try anchorPath.flatMap { try AuditFiles.readAnchor(path: $0) }
            let db = try await StoreFactory.open(config, logger: Logger(label: "menshen"))
            let result: AuditVerification
            var pruned: EventPruneRecord?
            do {
                if anchorFile == nil, try await db.lastCheckpoint() != nil {
                    throw AuditCommandError(anchorPath.map { "\($0): the anchor file is missing but the database holds checkpoints" }
                        ?? "no anchor file configured (audit.checkpoint.anchor_file); pass --anchor")
                }
                let json = self.json
                pruned = try await db.lastPrune()
                result = try await AuditChainVerifier(trustedKeys: keys, batchSize: batchSize)
                    .verify(store: db, anchor: anchorFile?.checkpoints ?? [], pruned: pruned) { reached in
                        if !json { FileHandle.standardError.write(Data("menshen: verified through sequence \(reached)\n".utf8)) }
                    }
                try await db.close()
            } catch {
                try? await db.close()
                throw error
            }
            report(result, keys: keys, anchorPath: anchorPath, tornAnchorLine: anchorFile?.tornLastLine ?? false, pruned: pruned)
            return result.intact ? Exit.intact : Exit.tampered
        }

        func report(_ r: AuditVerification, keys: [AuditVerifyKey], anchorPath: String?, tornAnchorLine: Bool, pruned: EventPruneRecord?) {
            if json {
                var o: [String: Any] = [
                    "status": r.intact ? "intact" : "tampered", "events_checked": r.eventsChecked, "last_sequence": r.lastSequence,
                    "checkpoints": r.checkpointsChecked, "anchor_checkpoints": r.anchorCheckpoints,
                    "unsigned_tail": r.eventsAfterNewestCheckpoint, "keys": keys.map(\.keyID), "anchor_file": anchorPath ?? NSNull(),
                    "anchor_torn_last_line": tornAnchorLine,
                ]
                o["newest_checkpoint"] = r.newestCheckpoint ?? NSNull()
                o["pruned_through"] = pruned?.throughSequence ?? NSNull()
                if let b = r.firstBreak {
                    o["break"] = ["kind": b.kind.rawValue, "sequence": b.sequence, "earliest_affected": b.earliestAffected, "detail": b.detail]
                }
                print(AuditCommand.json(o))
                return
            }
            var lines = [r.intact ? "audit log:         INTACT" : "audit log:         TAMPERED"]
            if let b = r.firstBreak {
                lines.append("first break:       sequence \(b.sequence) (\(b.kind.rawValue))")
                if b.earliestAffected != b.sequence { lines.append("earliest affected: sequence \(b.earliestAffected)") }
                lines.append("detail:            \(b.detail)")
            }
            let first = (pruned?.throughSequence ?? 0) + 1
            lines.append("events checked:    \(r.eventsChecked)\(r.eventsChecked > 0 ? " (sequences \(first)…\(r.lastSequence))" : "")")
            if let p = pruned { lines.append("pruned:            records 1…\(p.throughSequence) (exported, sha256 \(p.exportSHA256)); verified from the checkpoint there") }
            lines.append("checkpoints:       \(r.checkpointsChecked) validly signed\(r.newestCheckpoint.map { ", newest at sequence \($0)" } ?? ""); \(r.anchorCheckpoints) in the anchor file")
            lines.append("unsigned tail:     \(r.eventsAfterNewestCheckpoint) event(s) after the newest checkpoint (chained, not yet signed)")
            lines.append("trusted keys:      \(keys.map(\.keyID).joined(separator: ", "))")
            if anchorPath == nil { lines.append("warning:           no anchor file: a truncated tail of both tables cannot be caught") }
            if tornAnchorLine { lines.append("note:              the anchor's last line is incomplete (a write cut short) and was ignored") }
            print(lines.joined(separator: "\n"))
        }
    }

    struct Key: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the public key that checks the audit checkpoints (created with the signing key on SQLite when missing).")
        @OptionGroup var store: StoreOptions
        @Flag(name: .long, help: "Print as JSON.") var json = false

        func run() async throws {
            do {
                let config = try store.load()
                guard let path = AuditFiles.keyPath(config) else { throw ValidationError("no audit.signing_key_file configured") }
                let key = try AuditFiles.loadOrCreateKey(path: path, mayCreate: config.store.driver == .sqlite).verifyKey
                print(json ? AuditCommand.json(["key_id": key.keyID, "public_key": key.base64, "algorithm": "Ed25519"]) : "\(key.keyID) \(key.base64)")
            } catch let e as ValidationError { throw e } catch { throw fail(error) }
        }
    }

    struct Checkpoint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sign a checkpoint of the event chain's head now (database and anchor file).")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let (config, db) = try await store.openExisting()
            do {
                guard let checkpointer = try AuditCheckpointer.configured(config, store: db, clock: SystemClock(),
                                                                          logger: Logger(label: "menshen.audit")) else {
                    throw ValidationError("checkpoints are off: set audit.signing_key_file and audit.checkpoint.anchor_file")
                }
                if let c = try await checkpointer.checkpoint(force: true) {
                    print("signed checkpoint at sequence \(c.sequence) (\(c.keyID))")
                } else {
                    print("nothing new to sign")
                }
                try await db.close()
            } catch let e as ValidationError {
                try? await db.close(); throw e
            } catch {
                try? await db.close(); throw fail(error)
            }
        }
    }
}

struct AuditCommandError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
