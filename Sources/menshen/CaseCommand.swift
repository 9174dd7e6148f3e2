import ArgumentParser
import Foundation
import MenshenConfig
import MenshenCore
import MenshenServer
import MenshenStorage

/// `menshen case list|show|assign|status|note|close`: the incidents the
/// detection service groups findings into (``CaseService``). Every change is
/// an OCSF Incident Finding (2005) event naming the actor (`--actor`, else
/// `cli:` and the OS user). A refusal (bad input, an unknown case, a change a
/// closed case does not take) exits 2 and changes nothing; a store failure
/// exits 1.
struct CaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "case",
        abstract: "Cases (incidents grouping detection findings): list, show, assign, status, note, close.",
        discussion: """
            Detections group their findings into cases: same user (or source address, for spraying-like findings) and same \
            ATT&CK tactic within response.case_window_seconds (24 h). Statuses: \(CaseStatus.names). \
            Verdicts: \(CaseVerdict.names). A closed case changes only when reopened (case status ID in_progress --reopen). \
            偵測結果依使用者（或來源位址）與 ATT&CK 戰術歸併為案件；每項變更皆記錄為 OCSF 2005 事件。
            """,
        subcommands: [List.self, Show.self, Assign.self, Status.self, Note.self, Close.self])

    /// Opens the store, runs `body`, closes it. The store's refusals (unknown case, bad input, a change a closed case
    /// does not take) exit 2; other failures exit 1.
    static func withCases<T>(_ options: StoreOptions, _ body: (any MenshenStore, CaseService) async throws -> T) async throws -> T {
        let (config, store) = try await options.openExisting()
        do {
            let result = try await body(store, CaseService(store: store, clock: SystemClock(), random: SystemRandomSource(),
                                                           window: TimeInterval(config.response.caseWindowSeconds)))
            try await store.close()
            return result
        } catch let exit as ExitCode {
            try? await store.close()
            throw exit
        } catch let e as StoreError where [.notFound, .invalidInput, .conflict].contains(e.code) {
            try? await store.close()
            throw refuse("\(e.message); nothing was changed")
        } catch {
            try? await store.close()
            throw fail(error)
        }
    }

    static func time(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    /// The case id argument, checked before the store is opened.
    static func checkID(_ id: String) throws {
        do { try CaseLimits.validateID(id) } catch let e as StoreError { throw refuse(e.message) }
    }

    static func actor(_ given: String?) throws -> String {
        let name = given ?? UserCommand.operatorName
        do { try AttestationLimits.validateName(name, "--actor") } catch let e as StoreError { throw refuse(e.message) }
        return name
    }

    static func status(_ name: String) throws -> CaseStatus {
        guard let s = CaseStatus(name: name) else {
            throw refuse("unknown status \(String(name.prefix(40)).debugDescription); one of \(CaseStatus.names)")
        }
        return s
    }

    static func verdict(_ name: String) throws -> CaseVerdict {
        guard let v = CaseVerdict(name: name) else {
            throw refuse("unknown verdict \(String(name.prefix(40)).debugDescription); one of \(CaseVerdict.names)")
        }
        return v
    }

    static func severity(_ id: Int) -> String {
        switch id {
        case 1: "informational"
        case 2: "low"
        case 3: "medium"
        case 4: "high"
        case 5: "critical"
        case 6: "fatal"
        default: "unknown"
        }
    }

    /// The JSON object `list --json` and `show --json` print.
    static func json(_ r: CaseRecord) -> [String: Any] {
        var o: [String: Any] = [
            "id": r.id, "title": r.title, "status": r.status.name, "status_id": r.status.rawValue, "severity_id": r.severityID,
            "severity": severity(r.severityID), "owner": r.owner.map { $0 as Any } ?? NSNull(), "group": r.groupKey,
            "findings": r.findingUIDs, "created_at": time(r.createdAt), "modified_at": time(r.modifiedAt),
            "last_finding_at": time(r.lastFindingAt),
            "notes": r.notes.map { ["author": $0.author, "time": time($0.time), "text": $0.text] as [String: Any] },
        ]
        if let v = r.verdict { o["verdict"] = v.name; o["verdict_id"] = v.rawValue }
        return o
    }

    static func printChange(_ r: CaseRecord, _ what: String) {
        print("case \(r.id): \(what) (status \(r.status.name), owner \(r.owner ?? "unassigned")\(r.verdict.map { ", verdict \($0.name)" } ?? ""))")
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List cases, most recently changed first: id, status, severity, owner, findings, title.")
        @Option(help: ArgumentHelp("Only cases with this status (\(CaseStatus.names)).", valueName: "status")) var status: String?
        @Option(help: ArgumentHelp("Only cases owned by this operator.", valueName: "name")) var owner: String?
        @Flag(help: "Only cases nobody owns.") var unassigned = false
        @Option(help: ArgumentHelp("At most this many (1–10000).", valueName: "n")) var limit: Int = 1000
        @Flag(help: "One JSON object per line instead of columns.") var json = false
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let wanted = try status.map(CaseCommand.status)
            guard (1...CaseLimits.maxList).contains(limit) else { throw refuse("--limit must be a number 1–\(CaseLimits.maxList)") }
            guard owner == nil || !unassigned else { throw refuse("--owner and --unassigned exclude each other") }
            if let owner { do { try AttestationLimits.validateName(owner, "--owner") } catch let e as StoreError { throw refuse(e.message) } }
            let filter: CaseOwnerFilter = unassigned ? .unassigned : owner.map { .named($0) } ?? .any
            try await CaseCommand.withCases(store) { db, _ in
                let all = try await db.cases(status: wanted, owner: filter, limit: limit)
                for r in all {
                    if json { print(try EventJSON.encode(CaseCommand.json(r))); continue }
                    print([r.id, r.status.name, CaseCommand.severity(r.severityID), r.owner ?? "unassigned",
                           "\(r.findingUIDs.count) finding\(r.findingUIDs.count == 1 ? "" : "s")", CaseCommand.time(r.modifiedAt), r.title]
                        .joined(separator: "\t"))
                }
                if !json { print("\(all.count) case\(all.count == 1 ? "" : "s")") }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one case: status, owner, verdict, its findings and its notes.")
        @Argument(help: "The case id (from `menshen case list`).") var id: String
        @Flag(help: "Print it as JSON.") var json = false
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try CaseCommand.checkID(id)
            try await CaseCommand.withCases(store) { db, _ in
                guard let r = try await db.caseRecord(id: id) else { throw StoreError(.notFound, "no case \(id)") }
                if json { print(try EventJSON.encode(CaseCommand.json(r))); return }
                let notes = r.notes.map { "\n  - \(CaseCommand.time($0.time)) \($0.author): \($0.text)" }.joined()
                let findings = r.findingUIDs.map { "\n  - \($0)" }.joined()
                print("""
                    case:          \(r.id)
                    title:         \(r.title)
                    status:        \(r.status.name)
                    verdict:       \(r.verdict?.name ?? "-")
                    severity:      \(CaseCommand.severity(r.severityID))
                    owner:         \(r.owner ?? "unassigned")
                    group:         \(r.groupKey)
                    created:       \(CaseCommand.time(r.createdAt))
                    modified:      \(CaseCommand.time(r.modifiedAt))
                    last finding:  \(CaseCommand.time(r.lastFindingAt))
                    findings:      \(r.findingUIDs.count)\(findings)
                    notes:         \(r.notes.count)\(notes)
                    """)
            }
        }
    }

    struct Assign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give a case an owner (or take it away with --unassign).")
        @Argument(help: "The case id.") var id: String
        @Option(help: ArgumentHelp("The operator who owns it from now on.", valueName: "name")) var owner: String?
        @Flag(help: "Leave the case without an owner.") var unassign = false
        @Option(help: ArgumentHelp("Who makes the change (default: cli: and the OS user).", valueName: "name")) var actor: String?
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try CaseCommand.checkID(id)
            guard (owner == nil) != !unassign else { throw refuse("give either --owner NAME or --unassign") }
            if let owner { do { try AttestationLimits.validateName(owner, "--owner") } catch let e as StoreError { throw refuse(e.message) } }
            let who = try CaseCommand.actor(actor)
            try await CaseCommand.withCases(store) { _, cases in
                let r = try await cases.assign(id: id, owner: owner, actor: who)
                CaseCommand.printChange(r, owner == nil ? "unassigned" : "assigned to \(r.owner ?? "?")")
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a case's status (\(CaseStatus.names)).",
            discussion: """
                A verdict (\(CaseVerdict.names)) may be given when resolving and must be given when closing. \
                A closed case changes only with --reopen (to new, in_progress or on_hold); its verdict is then cleared.
                """)
        @Argument(help: "The case id.") var id: String
        @Argument(help: ArgumentHelp("The new status.", valueName: "status")) var status: String
        @Option(help: ArgumentHelp("The verdict, when resolving or closing.", valueName: "verdict")) var verdict: String?
        @Flag(help: "Reopen a closed case.") var reopen = false
        @Option(help: ArgumentHelp("Who makes the change (default: cli: and the OS user).", valueName: "name")) var actor: String?
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try CaseCommand.checkID(id)
            let to = try CaseCommand.status(status), v = try verdict.map(CaseCommand.verdict), who = try CaseCommand.actor(actor)
            try await CaseCommand.withCases(store) { _, cases in
                let r = try await cases.setStatus(id: id, status: to, verdict: v, reopen: reopen, actor: who)
                CaseCommand.printChange(r, reopen ? "reopened" : "status set")
            }
        }
    }

    struct Note: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a note to a case (notes are kept as written: never edited nor deleted).")
        @Argument(help: "The case id.") var id: String
        @Option(help: ArgumentHelp("The note (at most \(CaseLimits.maxNoteLength) characters).", valueName: "text")) var text: String
        @Option(help: ArgumentHelp("Who writes it (default: cli: and the OS user).", valueName: "name")) var actor: String?
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try CaseCommand.checkID(id)
            let who = try CaseCommand.actor(actor)
            do {
                try AttestationLimits.validateText(text.replacingOccurrences(of: "\r\n", with: "\n"), "the note", max: CaseLimits.maxNoteLength)
            } catch let e as StoreError { throw refuse(e.message) }
            try await CaseCommand.withCases(store) { _, cases in
                let r = try await cases.addNote(id: id, text: text, actor: who)
                CaseCommand.printChange(r, "note \(r.notes.count) added by \(who)")
            }
        }
    }

    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Close a case with a verdict (\(CaseVerdict.names)).")
        @Argument(help: "The case id.") var id: String
        @Option(help: ArgumentHelp("The verdict.", valueName: "verdict")) var verdict: String
        @Option(help: ArgumentHelp("Who closes it (default: cli: and the OS user).", valueName: "name")) var actor: String?
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try CaseCommand.checkID(id)
            let v = try CaseCommand.verdict(verdict), who = try CaseCommand.actor(actor)
            try await CaseCommand.withCases(store) { _, cases in
                let r = try await cases.setStatus(id: id, status: .closed, verdict: v, reopen: false, actor: who)
                CaseCommand.printChange(r, "closed")
            }
        }
    }
}
