import ArgumentParser
import Foundation
import MenshenCore
import MenshenServer
import MenshenStorage

/// `menshen playbook pending|approve|reject`: the operator's side of playbook
/// steps marked `approval: required`. A held step waits (as `pending`) until
/// an operator approves it — the running server's detection service then
/// carries it out on the users fixed when it was held — or rejects it, or until
/// `response.approval_timeout_seconds` passes and it expires. Each decision is
/// recorded as an OCSF 7001 event naming the operator; only one decision wins
/// (the change from `pending` is conditional in the store).
struct PlaybookCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "playbook", abstract: "Playbook steps held for approval: list them, approve or reject one.",
        subcommands: [Pending.self, Approve.self, Reject.self])

    static func validateRun(_ run: String) throws {
        guard !run.isEmpty, run.utf8.count <= 64, run.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D })
        else { throw ValidationError("RUN is the run id `menshen playbook pending` shows (lowercase letters, digits and -)") }
    }

    static func validateOperator(_ name: String?) throws {
        guard let name else { return }
        guard !name.isEmpty, name.count <= 128, !name.contains(where: { $0.isNewline || $0.asciiValue.map { $0 < 0x20 } == true }) else {
            throw ValidationError("--operator must be 1–128 characters on one line")
        }
    }

    static func time(_ d: Date) -> String { ISO8601DateFormatter().string(from: d) }

    struct Pending: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the steps waiting for approval: run id, since, expires, playbook, action, what it would do.")
        @Flag(help: "One JSON object per line instead of columns.") var json = false
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await UserCommand.withServices(store) { db, _, _ in
                let now = Date()
                let pending = try await db.approvals(in: [.pending], limit: 1000).filter { $0.expiresAt > now }
                for r in pending {
                    if json {
                        let o: [String: Any] = ["run": r.id, "playbook": r.playbook, "action": r.action, "finding_uid": r.findingUID,
                                                "summary": r.summary, "created_at": PlaybookCommand.time(r.createdAt),
                                                "expires_at": PlaybookCommand.time(r.expiresAt)]
                        print(try EventJSON.encode(o))
                    } else {
                        print([r.id, PlaybookCommand.time(r.createdAt), "expires \(PlaybookCommand.time(r.expiresAt))", r.playbook, r.action, r.summary]
                            .joined(separator: "\t"))
                    }
                }
                if !json { print("\(pending.count) step\(pending.count == 1 ? "" : "s") waiting for approval") }
            }
        }
    }

    /// Approves or rejects a pending step and records the decision.
    static func decide(_ run: String, approve: Bool, operator name: String?, store: StoreOptions) async throws {
        let who = name ?? UserCommand.operatorName
        try await UserCommand.withServices(store) { db, _, _ in
            guard let record = try await db.approval(id: run) else { throw StoreError(.notFound, "no held playbook step \(run)") }
            let now = Date()
            guard record.state == .pending else {
                throw StoreError(.conflict, "step \(run) is \(record.state.rawValue)\(record.decidedBy.map { " (by \($0))" } ?? ""), not pending; nothing was changed")
            }
            guard record.expiresAt > now else {
                throw StoreError(.conflict, "step \(run) expired at \(PlaybookCommand.time(record.expiresAt)); nothing was changed")
            }
            guard try await db.transitionApproval(id: run, from: .pending, to: approve ? .approved : .rejected, by: who, at: now) else {
                throw StoreError(.conflict, "step \(run) was decided meanwhile; nothing was changed")
            }
            let event = try ResponseEvents.approvalDecision(record, approved: approve, operator: who, id: UUID(), at: now)
            _ = try await db.appendEvents([event], hasher: EventChain.hasher)
            print(approve ? "approved \(run) (\(record.playbook): \(record.action)); the server that runs the detections carries it out within a second"
                          : "rejected \(run) (\(record.playbook): \(record.action)); nothing will be done")
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve a held step: the running server carries it out.")
        @Argument(help: ArgumentHelp("The run id (from `menshen playbook pending`).", valueName: "run")) var runID: String
        @Option(help: "Who approves (recorded; default cli:$SUDO_USER or cli:$USER).") var `operator`: String?
        @OptionGroup var store: StoreOptions
        func validate() throws { try PlaybookCommand.validateRun(runID); try PlaybookCommand.validateOperator(`operator`) }
        func run() async throws { try await PlaybookCommand.decide(runID, approve: true, operator: `operator`, store: store) }
    }

    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reject a held step: nothing is done.")
        @Argument(help: ArgumentHelp("The run id (from `menshen playbook pending`).", valueName: "run")) var runID: String
        @Option(help: "Who rejects (recorded; default cli:$SUDO_USER or cli:$USER).") var `operator`: String?
        @OptionGroup var store: StoreOptions
        func validate() throws { try PlaybookCommand.validateRun(runID); try PlaybookCommand.validateOperator(`operator`) }
        func run() async throws { try await PlaybookCommand.decide(runID, approve: false, operator: `operator`, store: store) }
    }
}
