import ArgumentParser
import Dispatch
import Foundation
import MenshenServer
import MenshenStorage
import MenshenVisibility

/// The filters `menshen audit search` and `menshen audit tail` share. Every value is checked here, before
/// the store is opened; a bad one is one line on standard error and exit status 2.
struct AuditFilterOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Events at or after this time: RFC 3339 (2026-11-26T09:30:00+08:00) or an age (90s, 15m, 2h, 7d, 4w).", valueName: "time"))
    var since: String?

    @Option(name: .long, help: ArgumentHelp("Events before this time (same forms as --since).", valueName: "time"))
    var until: String?

    @Option(name: .customLong("class"), help: ArgumentHelp("OCSF class uid or name (authentication, account_change, web_resources_activity, detection_finding, …); repeatable.", valueName: "class"))
    var classes: [String] = []

    @Option(name: .long, help: ArgumentHelp("The user the event is about or by (user id, or the OCSF user or actor name/uid).", valueName: "user"))
    var user: String?

    @Option(name: .long, help: ArgumentHelp("A device id or name (device.uid, device.name).", valueName: "device"))
    var device: String?

    @Option(name: .long, help: ArgumentHelp("A protected application id, or a URL path prefix starting with /.", valueName: "route"))
    var route: String?

    @Option(name: .long, help: ArgumentHelp("A gateway decision: allow, deny, step_up, sign_in, no_route, refused, error.", valueName: "decision"))
    var decision: String?

    @Option(name: .long, help: ArgumentHelp("Text that must occur in the event's JSON (exact, case-sensitive).", valueName: "text"))
    var text: String?

    static let decisions = ["allow", "deny", "step_up", "sign_in", "no_route", "refused", "error"]

    func filter(now: Date) throws(VisibilityError) -> AuditSearchFilter {
        var f = AuditSearchFilter()
        f.since = try since.map { text throws(VisibilityError) in try AuditTime.parse(text, now: now, option: "--since") }
        f.until = try until.map { text throws(VisibilityError) in try AuditTime.parse(text, now: now, option: "--until") }
        for c in classes { f.classUIDs.append(try OCSFClassName.uid(c)) }
        f.user = user; f.device = device; f.route = route; f.text = text
        if let decision {
            guard Self.decisions.contains(decision), DecisionTrail.Outcome(rawValue: decision) != nil else {
                throw VisibilityError(.invalidAuditSearch, "--decision must be one of \(Self.decisions.joined(separator: ", ")); got \(String(decision.prefix(64)).debugDescription)")
            }
            f.decision = decision
        }
        try f.validate()
        return f
    }
}

/// Writes text to standard output at once (unbuffered, so a follower sees each event as it comes).
func writeOut(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }

/// A refused option: one line on standard error, exit status 2 (nothing was read or changed).
func refuse(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("menshen: error: \(message)\n".utf8))
    return ExitCode(2)
}

extension AuditCommand {
    struct Search: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Search the audit log by time, user, device, route, decision, OCSF class and text.",
            discussion: """
                Filters combine with AND. Newest events first (--oldest-first for the other order), at most --limit.
                The store filters time, class, user and text in its own query and the log is read page by page,
                never whole. Output: a table, or with --json one JSON object per line (sequence, id, time,
                class_uid, severity_id, user_id, prev_hash, hash and the OCSF event). Exit status: 0 (also when
                nothing matches), 1 store error, 2 a bad option.
                """)

        @OptionGroup var store: StoreOptions
        @OptionGroup var filters: AuditFilterOptions

        @Option(name: .long, help: ArgumentHelp("At most this many events (1–\(AuditSearch.maxLimit)).", valueName: "n"))
        var limit: String = "100"

        @Flag(name: .long, help: "Oldest matching events first.")
        var oldestFirst = false

        @Flag(name: .long, help: "One JSON object per line (JSON Lines).")
        var json = false

        func run() async throws {
            let filter: AuditSearchFilter
            do { filter = try filters.filter(now: Date()) } catch { throw refuse(error.message) }
            guard let n = Int(limit), (1...AuditSearch.maxLimit).contains(n) else {
                throw refuse("--limit must be a number 1–\(AuditSearch.maxLimit); got \(String(limit.prefix(32)).debugDescription)")
            }
            let (_, db) = try await store.openExisting()
            let found: [StoredEvent]
            do {
                found = try await AuditSearch(filter: filter).run(store: db, order: oldestFirst ? .oldestFirst : .newestFirst, limit: n)
                try await db.close()
            } catch {
                try? await db.close()
                throw fail(error)
            }
            if !json { writeOut(AuditEventText.tableHeader) }
            for e in found { writeOut(json ? AuditEventText.jsonLine(e) : AuditEventText.tableRow(e)) }
            let more = found.count == n ? " (the limit; narrow the search or raise --limit)" : ""
            FileHandle.standardError.write(Data("menshen: \(found.count) event(s)\(more)\n".utf8))
        }
    }

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the newest events of the audit log; --follow keeps printing new ones.",
            discussion: """
                Takes the same filters as `audit search`. With --follow it follows the log (every node's events on
                a shared PostgreSQL) until SIGINT (Ctrl-C) or SIGTERM, then exits 0.
                """)

        @OptionGroup var store: StoreOptions
        @OptionGroup var filters: AuditFilterOptions

        @Option(name: [.customShort("n"), .customLong("lines")], help: ArgumentHelp("How many of the newest events to print first (0–\(AuditSearch.maxLimit)).", valueName: "n"))
        var lines: String = "20"

        @Flag(name: .shortAndLong, help: "Keep printing new events as they are written.")
        var follow = false

        @Flag(name: .long, help: "One JSON object per line (JSON Lines).")
        var json = false

        func run() async throws {
            let filter: AuditSearchFilter
            do { filter = try filters.filter(now: Date()) } catch { throw refuse(error.message) }
            guard let n = Int(lines), (0...AuditSearch.maxLimit).contains(n) else {
                throw refuse("--lines must be a number 0–\(AuditSearch.maxLimit); got \(String(lines.prefix(32)).debugDescription)")
            }
            let (_, db) = try await store.openExisting()
            let json = self.json
            func show(_ e: StoredEvent) { writeOut(json ? AuditEventText.jsonLine(e) : AuditEventText.tableRow(e)) }
            let head: Int64
            do {
                // The head first: what is printed now ends there and following starts right after it.
                head = try await db.lastEvent()?.sequence ?? 0
                let newest = n == 0 ? [] : try await AuditSearch(filter: filter).run(store: db, order: .newestFirst, after: head + 1, limit: n)
                if !json { writeOut(AuditEventText.tableHeader) }
                for e in newest.reversed() { show(e) }
            } catch {
                try? await db.close()
                throw fail(error)
            }
            if follow { await Self.follow(db, from: head, filter: filter, json: json) }
            try? await db.close()
        }

        /// Follows the log with ``EventTail`` until SIGINT or SIGTERM cancels it.
        static func follow(_ db: any MenshenStore, from head: Int64, filter: AuditSearchFilter, json: Bool) async {
            signal(SIGINT, SIG_IGN)
            signal(SIGTERM, SIG_IGN)
            let task = Task {
                await EventTail(store: db, batchSize: 500, idleInterval: .milliseconds(200), maxBackoff: .seconds(10))
                    .follow(after: head, onError: { error in
                        FileHandle.standardError.write(Data("menshen: reading the log failed, retrying: \(error)\n".utf8))
                    }) { batch in
                        for e in batch where filter.matches(e) {
                            writeOut(json ? AuditEventText.jsonLine(e) : AuditEventText.tableRow(e))
                        }
                    }
            }
            let sources = [SIGINT, SIGTERM].map { number in
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { task.cancel() }
                source.resume()
                return source
            }
            _ = await task.value
            for s in sources { s.cancel() }
        }
    }
}
