import Foundation

/// A loaded, checked set of playbooks. Built only by ``load(yaml:file:)`` (or
/// ``builtIn``), which returns a complete set or throws: a caller that keeps
/// its current set until a new one loads never runs half a set.
///
/// The file format (documented in docs/operations.md):
///
/// ```yaml
/// playbooks:
///   - name: contain-password-spraying
///     description: End the sessions of every account a spraying source tried, and open a ticket.
///     dry_run: false                           # true: record every step, do nothing
///     match:
///       rules: [menshen_password_spraying]     # Sigma id, name or title; any of
///       techniques: [T1110.003]                # any of; T1110 also covers its sub-techniques
///       min_severity: high                     # informational, low, medium, high, critical
///     actions:
///       - type: revoke_sessions
///         users: evidence                      # finding (default) or evidence
///         approval: required                   # wait for `menshen playbook approve` (any action but log)
///       - type: require_step_up              # for a while, requests need a fresh authentication
///         for: 1h                              # 60s – 24h (s, m, h, d), default 1h
///       - type: raise_risk                   # add points to the users' risk score (context.risk.score)
///         points: 30                           # 1–100
///         users: evidence
///       - type: quarantine_device            # the finding's device, as `menshen device quarantine`
///       - type: webhook
///         url: https://soc.bank.example/hooks/menshen
///         timeout_seconds: 5                   # 1–30, default 5
///         retries: 3                           # 0–5, default 3
///       - log                                  # a bare action name takes the defaults
/// ```
///
/// Unknown keys are errors; every error names the file, the playbook and the
/// field (`playbooks.yaml: playbook "x": actions[1].url: …`).
public struct PlaybookSet: Sendable, Equatable {
    public let playbooks: [Playbook]
    /// Where the set came from (a file name, or `built-in`).
    public let source: String

    public init(playbooks: [Playbook], source: String) { self.playbooks = playbooks; self.source = source }

    /// The steps to take for `finding`, playbook by playbook in file order.
    /// `ruleNames` are the other names of the finding's rule (Sigma `name`, title).
    public func plan(for finding: DetectionFinding, ruleNames: [String] = []) -> [PlaybookStep] {
        playbooks.filter { $0.matches(finding, ruleNames: ruleNames) }
            .flatMap { p in
                p.actions.enumerated().map { PlaybookStep(playbook: p.name, action: $0.element, dryRun: p.dryRun, needsApproval: p.approvals.contains($0.offset)) }
            }
    }

    /// The set used when `response.playbooks_file` is empty: conservative, so
    /// that nobody can lock users out by failing sign-ins on purpose. Every
    /// finding of level low or above is logged; sessions are ended only where
    /// the session itself is the evidence of compromise (a session cookie
    /// replayed from elsewhere), where a sign-in came after an impossible
    /// journey, or where a second factor was removed after a risky sign-in.
    /// No webhook (there is no URL to send to) and no account is disabled.
    public static let builtInYAML = """
        playbooks:
          - name: log-findings
            description: Every finding of level low or above goes to the server log.
            match:
              min_severity: low
            actions:
              - log
          - name: end-hijacked-sessions
            description: A session cookie used from a second place, or a second factor removed after a risky sign-in - end the user's sessions.
            match:
              techniques: [T1550.004, T1539, T1556.006]
              min_severity: high
            actions:
              - type: revoke_sessions
                users: finding
          - name: end-sessions-after-impossible-travel
            description: A user active from places no one could travel between in the time - end the user's sessions so they sign in again.
            match:
              rules: [Impossible travel or new country for a user]
              min_severity: high
            actions:
              - type: revoke_sessions
                users: finding

        """

    /// The built-in set (``builtInYAML``, checked by the tests to load).
    public static var builtIn: PlaybookSet {
        (try? load(yaml: builtInYAML, file: "built-in")) ?? PlaybookSet(playbooks: [], source: "built-in")
    }

    /// Parses and checks a playbook file; throws the first problem with file, playbook and field.
    public static func load(yaml: String, file: String) throws(VisibilityError) -> PlaybookSet {
        guard yaml.utf8.count <= PlaybookLimits.maxFileBytes else {
            throw VisibilityError(.invalidPlaybook, "\(file): \(yaml.utf8.count) bytes; the limit for a playbook file is \(PlaybookLimits.maxFileBytes)")
        }
        let documents: [RuleNode]
        do { documents = try RuleNode.documents(in: yaml, file: file) } catch { throw VisibilityError(.invalidPlaybook, error.message) }
        guard documents.count == 1, let root = documents.first else {
            throw VisibilityError(.invalidPlaybook, "\(file): expected one YAML document, found \(documents.count)")
        }
        guard case .map(let top) = root else { throw VisibilityError(.invalidPlaybook, "\(file): the file must be a map with a 'playbooks' list, not \(root.kind)") }
        for (key, _) in top where key != "playbooks" {
            throw VisibilityError(.invalidPlaybook, "\(file): unknown key '\(key)' (expected 'playbooks')")
        }
        guard case .list(let items)? = root["playbooks"] else {
            throw VisibilityError(.invalidPlaybook, "\(file): 'playbooks' must be a list of playbooks")
        }
        guard items.count <= PlaybookLimits.maxPlaybooks else {
            throw VisibilityError(.invalidPlaybook, "\(file): \(items.count) playbooks; at most \(PlaybookLimits.maxPlaybooks)")
        }
        var out: [Playbook] = []
        for (i, item) in items.enumerated() {
            var parser = PlaybookParser(file: file, index: i)
            let p = try parser.playbook(item)
            if out.contains(where: { $0.name == p.name }) {
                throw VisibilityError(.invalidPlaybook, "\(file): playbook \"\(p.name)\": name: used by an earlier playbook")
            }
            out.append(p)
        }
        return PlaybookSet(playbooks: out, source: file)
    }
}

/// Reads one playbook from its YAML node; every error names where it is.
private struct PlaybookParser {
    /// The actions a step may name, for the messages that refuse a missing or unknown one.
    static let actionNames = "revoke_sessions, disable_user, lock_account, require_step_up, raise_risk, quarantine_device, webhook or log"

    let file: String
    let index: Int
    var name: String?

    init(file: String, index: Int) { self.file = file; self.index = index }

    func fail(_ field: String, _ problem: String) -> VisibilityError {
        let which = name.map { "playbook \"\($0)\"" } ?? "playbooks[\(index)]"
        return VisibilityError(.invalidPlaybook, "\(file): \(which): \(field): \(problem)")
    }

    mutating func playbook(_ node: RuleNode) throws(VisibilityError) -> Playbook {
        guard case .map(let pairs) = node else { throw fail("playbook", "must be a map, not \(node.kind)") }
        guard let raw = node["name"] else { throw fail("name", "missing") }
        guard let text = raw.string, Self.isName(text) else {
            throw fail("name", "must be 1–\(PlaybookLimits.maxNameLength) characters of a–z, 0–9, '-', '_' or '.'")
        }
        name = text
        for (key, _) in pairs where !["name", "description", "match", "actions", "dry_run"].contains(key) {
            throw fail(key, "unknown key (expected name, description, match, actions, dry_run)")
        }
        var dryRun = false
        if let d = node["dry_run"] {
            guard case .bool(let b) = d else { throw fail("dry_run", "must be true or false") }
            dryRun = b
        }
        var description: String?
        if let d = node["description"] {
            guard let s = d.string, s.count <= PlaybookLimits.maxDescriptionLength else {
                throw fail("description", "must be text of at most \(PlaybookLimits.maxDescriptionLength) characters")
            }
            description = s
        }
        guard let m = node["match"] else { throw fail("match", "missing (name rules, techniques or min_severity)") }
        let match = try self.match(m)
        guard case .list(let list)? = node["actions"], !list.isEmpty else { throw fail("actions", "must be a non-empty list") }
        guard list.count <= PlaybookLimits.maxActions else {
            throw fail("actions", "\(list.count) actions; at most \(PlaybookLimits.maxActions)")
        }
        var actions: [PlaybookAction] = []
        var approvals: Set<Int> = []
        for (i, a) in list.enumerated() {
            var node = a
            // `approval: required` holds the step for an operator; any action but log may carry it.
            if case .map(let pairs) = a, let approval = a["approval"] {
                guard let v = approval.string, ["required", "none"].contains(v) else {
                    throw fail("actions[\(i)].approval", "must be required or none")
                }
                if v == "required" {
                    guard a["type"]?.string != "log" else { throw fail("actions[\(i)].approval", "a log step needs no approval") }
                    approvals.insert(i)
                }
                node = .map(pairs.filter { $0.key != "approval" })
            }
            actions.append(try action(node, field: "actions[\(i)]"))
        }
        return Playbook(name: text, description: description, match: match, actions: actions, dryRun: dryRun, approvals: approvals)
    }

    static func isName(_ s: String) -> Bool {
        !s.isEmpty && s.count <= PlaybookLimits.maxNameLength
            && s.unicodeScalars.allSatisfy { ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") || "-_.".unicodeScalars.contains($0) }
    }

    func match(_ node: RuleNode) throws(VisibilityError) -> Playbook.Match {
        guard case .map(let pairs) = node else { throw fail("match", "must be a map, not \(node.kind)") }
        for (key, _) in pairs where !["rules", "techniques", "min_severity"].contains(key) {
            throw fail("match.\(key)", "unknown key (expected rules, techniques, min_severity)")
        }
        let rules = try strings(node["rules"], field: "match.rules")
        for r in rules where r.isEmpty || r.count > 256 { throw fail("match.rules", "a rule reference must be 1–256 characters") }
        let techniques = try strings(node["techniques"], field: "match.techniques").map { $0.uppercased() }
        for t in techniques where !Self.isTechnique(t) {
            throw fail("match.techniques", "\"\(t.prefix(40))\" is not an ATT&CK technique id (T1110 or T1110.003)")
        }
        var minimum: SigmaLevel?
        if let s = node["min_severity"] {
            guard let text = s.string, let level = SigmaLevel(rawValue: text) else {
                throw fail("match.min_severity", "must be one of \(SigmaLevel.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            minimum = level
        }
        guard !rules.isEmpty || !techniques.isEmpty || minimum != nil else {
            throw fail("match", "names no criterion (rules, techniques or min_severity)")
        }
        return Playbook.Match(rules: rules, techniques: techniques, minimumSeverity: minimum)
    }

    func strings(_ node: RuleNode?, field: String) throws(VisibilityError) -> [String] {
        guard let node else { return [] }
        let items: [RuleNode]
        if case .list(let l) = node { items = l } else { items = [node] }
        guard items.count <= PlaybookLimits.maxMatchValues else {
            throw fail(field, "\(items.count) entries; at most \(PlaybookLimits.maxMatchValues)")
        }
        var out: [String] = []
        for item in items {
            guard let s = item.string else { throw fail(field, "entries must be text, found \(item.kind)") }
            out.append(s)
        }
        return out
    }

    /// `90s`, `30m`, `1h`, `1d` or plain seconds → seconds; nil when it is none of them.
    static func duration(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard let last = t.last, t.count <= 12 else { return nil }
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        if let unit = units[last] {
            guard let n = Int(t.dropLast()), n >= 0 else { return nil }
            return n.multipliedReportingOverflow(by: unit).overflow ? nil : n * unit
        }
        return Int(t).flatMap { $0 >= 0 ? $0 : nil }
    }

    static func isTechnique(_ t: String) -> Bool {
        let parts = t.split(separator: ".", omittingEmptySubsequences: false)
        guard let head = parts.first, head.count == 5, head.first == "T", head.dropFirst().allSatisfy(\.isASCII),
              head.dropFirst().allSatisfy(\.isNumber), parts.count <= 2 else { return false }
        if parts.count == 2 { return parts[1].count == 3 && parts[1].allSatisfy { $0.isASCII && $0.isNumber } }
        return true
    }

    func action(_ node: RuleNode, field: String) throws(VisibilityError) -> PlaybookAction {
        let kind: String
        var pairs: [(key: String, value: RuleNode)] = []
        switch node {
        case .string(let s): kind = s
        case .map(let p):
            guard let t = node["type"]?.string else { throw fail("\(field).type", "missing (\(Self.actionNames))") }
            kind = t; pairs = p
        default: throw fail(field, "must be an action name or a map with 'type', not \(node.kind)")
        }
        func allow(_ keys: [String]) throws(VisibilityError) {
            for (key, _) in pairs where key != "type" && !keys.contains(key) {
                throw fail("\(field).\(key)", "unknown key for \(kind)" + (keys.isEmpty ? "" : " (expected \(keys.joined(separator: ", ")))"))
            }
        }
        func users() throws(VisibilityError) -> PlaybookAction.Users {
            guard let u = node["users"] else { return .finding }
            guard let s = u.string, let v = PlaybookAction.Users(rawValue: s) else {
                throw fail("\(field).users", "must be finding or evidence")
            }
            return v
        }
        func integer(_ key: String, default d: Int) throws(VisibilityError) -> Int {
            guard let n = node[key] else { return d }
            guard case .int(let i) = n, let v = Int(exactly: i) else { throw fail("\(field).\(key)", "must be a whole number") }
            return v
        }
        switch kind {
        case "revoke_sessions":
            try allow(["users"]); return .revokeSessions(try users())
        case "disable_user", "lock_account":
            try allow(["users"]); return .disableUser(try users())
        case "require_step_up":
            try allow(["users", "for"])
            var seconds = 3600
            if let f = node["for"] {
                let text: String? = switch f { case .string(let t): t; case .int(let i): String(i); default: nil }
                guard let text, let v = Self.duration(text), (60...86_400).contains(v) else {
                    throw fail("\(field).for", "must be a duration from 60s to 24h (e.g. 90s, 30m, 1h)")
                }
                seconds = v
            }
            return .requireStepUp(seconds: seconds, try users())
        case "raise_risk":
            try allow(["users", "points"])
            guard node["points"] != nil else { throw fail("\(field).points", "missing (raise_risk needs points, 1–100)") }
            let points = try integer("points", default: 0)
            guard (1...100).contains(points) else { throw fail("\(field).points", "must be 1 to 100") }
            return .raiseRisk(points: points, try users())
        case "quarantine_device":
            try allow([]); return .quarantineDevice
        case "log":
            try allow([]); return .log
        case "webhook":
            try allow(["url", "timeout_seconds", "retries"])
            guard let url = node["url"]?.string else { throw fail("\(field).url", "missing (a webhook needs a URL)") }
            let timeout = try integer("timeout_seconds", default: 5)
            let retries = try integer("retries", default: 3)
            do {
                return .webhook(try WebhookTarget(url: url, timeoutSeconds: timeout, retries: retries))
            } catch {
                let key = error.message.hasPrefix("timeout") ? "timeout_seconds" : error.message.hasPrefix("retries") ? "retries" : "url"
                throw fail("\(field).\(key)", error.message)
            }
        default:
            throw fail(pairs.isEmpty ? field : "\(field).type",
                       "unknown action \"\(kind.prefix(40))\" (\(Self.actionNames))")
        }
    }
}
