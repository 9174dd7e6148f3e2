import ArgumentParser
import Foundation
import MenshenAssessment
import MenshenConfig
import MenshenCore
import MenshenServer
import MenshenStorage

/// `menshen attest add|list|show|file|revoke`: attestations for the maturity
/// assessment — what the system cannot observe (penetration tests, CI/CD
/// separation of duties, off-site backups of other systems), stated by a named
/// person with an expiry and evidence files (stored with their SHA-256). An
/// attestation is never deleted, only revoked; each add and revoke is an OCSF
/// Entity Management (3004) event naming the operator.
struct AttestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attest",
        abstract: "Attestations for the maturity assessment: add, list, show, file, revoke.",
        discussion: """
            Record what Menshen cannot observe itself (e.g. 4.4 penetration tests, 4.5 CI/CD separation of duties, \
            5.4 off-site backups): who attests, when, until when, and the evidence files. \
            記錄系統無法自行量測的項目（如滲透測試、CI/CD 職責分離、異地備份）：聲明人、日期、效期與佐證檔案（以 SHA-256 保存）。
            """,
        subcommands: [Add.self, List.self, Show.self, File.self, Revoke.self])

    /// Opens the deployment's store, runs `body`, closes the store; errors become one line and a non-zero exit.
    static func withStore<T>(_ options: StoreOptions, _ body: (any MenshenStore, MenshenConfiguration) async throws -> T) async throws -> T {
        let (config, store) = try await options.openExisting()
        do {
            let result = try await body(store, config)
            try await store.close()
            return result
        } catch let exit as ExitCode {
            try? await store.close()
            throw exit
        } catch {
            try? await store.close()
            throw fail(error)
        }
    }

    /// `2027-11-01` (00:00 that day in `timeZone`, the organisation's) or RFC 3339 (`2027-11-01T09:00:00+08:00`).
    static func parseTime(_ text: String, option: String, timeZone: String) throws -> Date {
        guard text.utf8.count <= 40 else { throw AssessmentError.attestation("\(option): not a date") }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        if parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
           let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), parts.allSatisfy({ $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }) {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: timeZone) ?? TimeZone(identifier: "UTC") ?? calendar.timeZone
            let components = DateComponents(year: y, month: m, day: d)
            guard (1...12).contains(m), (1...31).contains(d), let date = calendar.date(from: components),
                  calendar.component(.year, from: date) == y, calendar.component(.month, from: date) == m, calendar.component(.day, from: date) == d
            else { throw AssessmentError.attestation("\(option) \(EvidenceFiles.shown(text)): no such date") }
            return date
        }
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = f.date(from: text) { return date }
        f.formatOptions = [.withInternetDateTime]
        if let date = f.date(from: text) { return date }
        throw AssessmentError.attestation("\(option) \(EvidenceFiles.shown(text)): not a date (YYYY-MM-DD or RFC 3339, e.g. 2027-11-01T09:00:00+08:00)")
    }

    static func time(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    static func state(_ r: AttestationRecord, at now: Date) -> Attestation.State { AssessmentRecords.attestation(r).state(at: now) }

    /// The JSON object `list --json` and `show --json` print.
    static func json(_ r: AttestationRecord, now: Date) -> [String: Any] {
        var o: [String: Any] = [
            "id": r.id, "principle": r.principleID, "state": state(r, at: now).rawValue, "statement": r.statement,
            "attested_by": r.attestedBy, "attested_at": time(r.attestedAt), "expires_at": time(r.expiresAt),
            "created_at": time(r.createdAt), "created_by": r.createdBy,
            "files": r.files.map { ["name": $0.name, "sha256": $0.sha256, "size": $0.size] as [String: Any] },
        ]
        if let at = r.revokedAt { o["revoked_at"] = time(at) }
        if let by = r.revokedBy { o["revoked_by"] = by }
        if let why = r.revocationReason { o["revocation_reason"] = why }
        return o
    }

    static func requireAttestation(_ store: any MenshenStore, _ id: String) async throws -> AttestationRecord {
        try AttestationLimits.validateID(id)
        guard let r = try await store.attestation(id: id) else { throw StoreError(.notFound, "no attestation \(id)") }
        return r
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record an attestation with its evidence files (nothing is stored if any file cannot be read).",
            discussion: """
                Example: menshen attest add --principle 4.4 --statement "Annual penetration test of the gateway; no open high findings" \
                --by "CISO 王小明" --at 2026-11-01 --expires 2027-11-01 --file pentest-2026.pdf
                Limits: 16 files, 25 MiB each, 100 MiB in all; a statement of at most 4,000 characters. \
                A date alone means 00:00 that day in organisation.time_zone.
                """)
        @Option(help: ArgumentHelp("The guideline principle, e.g. 4.4 (see the assessment report).", valueName: "id")) var principle: String
        @Option(help: ArgumentHelp("What is attested (at most 4,000 characters).", valueName: "text")) var statement: String
        @Option(help: ArgumentHelp("Who attests, as they sign (e.g. \"CISO 王小明\").", valueName: "name")) var by: String
        @Option(help: ArgumentHelp("When it was attested: YYYY-MM-DD or RFC 3339 (default: now); not in the future.", valueName: "date")) var at: String?
        @Option(help: ArgumentHelp("Until when it holds: YYYY-MM-DD or RFC 3339; after --at.", valueName: "date")) var expires: String
        @Option(name: .customLong("file"), help: ArgumentHelp("An evidence file (repeat for more); stored under its base name with its SHA-256.",
                                                               valueName: "path")) var files: [String] = []
        @Flag(help: "Print the stored attestation as JSON.") var json = false
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await AttestCommand.withStore(store) { db, config in
                let zone = config.organisation.timeZone
                let request = AttestationService.Request(
                    principleID: principle, statement: statement.replacingOccurrences(of: "\r\n", with: "\n"), attestedBy: by,
                    attestedAt: try at.map { try AttestCommand.parseTime($0, option: "--at", timeZone: zone) },
                    expiresAt: try AttestCommand.parseTime(expires, option: "--expires", timeZone: zone),
                    files: files, recordedBy: UserCommand.operatorName)
                let r = try await AttestationService(store: db).add(request)
                let now = Date()
                if json {
                    print(try EventJSON.encode(AttestCommand.json(r, now: now)))
                } else {
                    print("recorded attestation \(r.id) of principle \(r.principleID) (\(AttestCommand.state(r, at: now).rawValue), expires \(AttestCommand.time(r.expiresAt)))")
                    for f in r.files { print("  \(f.name)\t\(f.size) bytes\tsha256 \(f.sha256)") }
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List attestations: id, principle, state (valid, expired, revoked), expiry, who attested, files with SHA-256.")
        @Option(help: ArgumentHelp("Only this principle.", valueName: "id")) var principle: String?
        @Flag(help: "One JSON object per line instead of columns.") var json = false
        @OptionGroup var store: StoreOptions

        func validate() throws {
            if let principle {
                do { try AttestationLimits.validatePrincipleID(principle) } catch let e as StoreError { throw ValidationError(e.message) }
            }
        }

        func run() async throws {
            try await AttestCommand.withStore(store) { db, _ in
                let now = Date()
                let all = try await db.attestations(principleID: principle, limit: AttestationLimits.maxList)
                for r in all {
                    if json {
                        print(try EventJSON.encode(AttestCommand.json(r, now: now)))
                        continue
                    }
                    let state = AttestCommand.state(r, at: now)
                    let status = state == .revoked ? "revoked \(r.revokedAt.map(AttestCommand.time) ?? "")" : state.rawValue
                    print([r.id, r.principleID, status, "attested \(AttestCommand.time(r.attestedAt))", "expires \(AttestCommand.time(r.expiresAt))",
                           r.attestedBy].joined(separator: "\t"))
                    for f in r.files { print("  \(f.name)\t\(f.size) bytes\tsha256 \(f.sha256)") }
                }
                if !json {
                    let valid = all.filter { AttestCommand.state($0, at: now) == .valid }.count
                    print("\(all.count) attestation\(all.count == 1 ? "" : "s"), \(valid) valid")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one attestation: the statement, dates, state and evidence files.")
        @Argument(help: "The attestation id (from `menshen attest list`).") var id: String
        @Flag(help: "Print it as JSON.") var json = false
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await AttestCommand.withStore(store) { db, _ in
                let r = try await AttestCommand.requireAttestation(db, id)
                let now = Date()
                if json { print(try EventJSON.encode(AttestCommand.json(r, now: now))); return }
                let revoked = r.revokedAt.map { "\n" + """
                    revoked:       \(AttestCommand.time($0)) by \(r.revokedBy ?? "?")
                    reason:        \(r.revocationReason ?? "")
                    """ } ?? ""
                let files = r.files.map { "\n  - \($0.name): \($0.size) bytes, sha256 \($0.sha256)" }.joined()
                print("""
                    attestation:   \(r.id)
                    principle:     \(r.principleID)\(PrincipleCatalog.builtIn.principle(r.principleID).map { " — \($0.text.en)" } ?? "")
                    state:         \(AttestCommand.state(r, at: now).rawValue)
                    attested by:   \(r.attestedBy)
                    attested at:   \(AttestCommand.time(r.attestedAt))
                    expires at:    \(AttestCommand.time(r.expiresAt))
                    recorded:      \(AttestCommand.time(r.createdAt)) by \(r.createdBy)\(revoked)
                    statement:     \(r.statement)
                    files:         \(r.files.count)\(files)
                    """)
            }
        }
    }

    struct File: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write an evidence file's stored bytes to a file (after checking them against the recorded SHA-256).")
        @Argument(help: "The attestation id.") var id: String
        @Argument(help: "The evidence file's name (as `menshen attest show` lists it).") var name: String
        @Option(help: ArgumentHelp("Where to write it (must not exist).", valueName: "path")) var out: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await AttestCommand.withStore(store) { db, _ in
                let r = try await AttestCommand.requireAttestation(db, id)
                guard let info = r.files.first(where: { $0.name == name }),
                      let file = try await db.attestationFile(attestationID: r.id, name: name)
                else { throw StoreError(.notFound, "attestation \(r.id) has no evidence file named \(EvidenceFiles.shown(name))") }
                let hash = SecretHash.sha256Hex(bytes: Array(file.bytes))
                guard hash == info.sha256, file.bytes.count == info.size else {
                    throw AssessmentError.attestation("evidence file \(name) of \(r.id): the stored bytes (sha256 \(hash)) do not match the recorded "
                        + "SHA-256 \(info.sha256); nothing was written")
                }
                guard !FileManager.default.fileExists(atPath: out) else {
                    throw AssessmentError.attestation("\(EvidenceFiles.shown(out)) exists; not overwritten")
                }
                do { try file.bytes.write(to: URL(fileURLWithPath: out), options: [.withoutOverwriting]) } catch {
                    throw AssessmentError.attestation("cannot write \(EvidenceFiles.shown(out)): \(error.localizedDescription)")
                }
                print("wrote \(out): \(file.bytes.count) bytes, sha256 \(hash) (matches the record)")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke an attestation (it is kept, marked revoked, and no longer counts in the assessment).")
        @Argument(help: "The attestation id.") var id: String
        @Option(help: ArgumentHelp("Why (recorded with the revocation).", valueName: "text")) var reason: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await AttestCommand.withStore(store) { db, _ in
                let r = try await AttestationService(store: db).revoke(id: id, reason: reason, by: UserCommand.operatorName)
                print("revoked attestation \(r.id) of principle \(r.principleID); it no longer counts in the assessment")
            }
        }
    }
}
