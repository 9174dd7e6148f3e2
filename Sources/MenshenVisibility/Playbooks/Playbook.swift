import Foundation
import MenshenCore

/// Limits on playbook files. A file beyond them is refused whole (the running
/// set stays active).
public enum PlaybookLimits {
    /// Largest playbook file accepted, in bytes.
    public static let maxFileBytes = 64 * 1024
    /// Most playbooks in one file.
    public static let maxPlaybooks = 100
    /// Most actions in one playbook.
    public static let maxActions = 10
    /// Most entries in one `match` list (`rules`, `techniques`).
    public static let maxMatchValues = 64
    /// Longest playbook name, rule reference or description.
    public static let maxNameLength = 64
    public static let maxDescriptionLength = 512
    /// Longest webhook URL, in bytes.
    public static let maxURLLength = 2048
    /// Longest webhook timeout, in seconds, and most retries.
    public static let maxTimeoutSeconds = 30
    public static let maxRetries = 5
    /// Most users one `revoke_sessions` or `disable_user` action acts on (from a finding's evidence).
    public static let maxTargetUsers = 100
}

/// One playbook: which findings it answers and what it does about them.
///
/// A finding matches when every criterion given holds: its rule is one of
/// ``Match/rules`` (by the rule's id, name or title), one of its ATT&CK
/// techniques is one of ``Match/techniques`` or a sub-technique of one
/// (`T1110` covers `T1110.003`), and its level is at least
/// ``Match/minimumSeverity``. A playbook names at least one criterion.
public struct Playbook: Sendable, Equatable {
    public struct Match: Sendable, Equatable {
        public var rules: [String]
        /// Technique ids, upper case (`T1110.003`).
        public var techniques: [String]
        public var minimumSeverity: SigmaLevel?
        public init(rules: [String] = [], techniques: [String] = [], minimumSeverity: SigmaLevel? = nil) {
            self.rules = rules; self.techniques = techniques.map { $0.uppercased() }; self.minimumSeverity = minimumSeverity
        }
    }

    public var name: String
    public var description: String?
    public var match: Match
    public var actions: [PlaybookAction]
    /// `dry_run: true`: every step is recorded (with what it would act on) and nothing is done.
    public var dryRun: Bool
    /// Indices in ``actions`` of the steps marked `approval: required`: they wait for an operator.
    public var approvals: Set<Int>

    public init(name: String, description: String? = nil, match: Match, actions: [PlaybookAction], dryRun: Bool = false,
                approvals: Set<Int> = []) {
        self.name = name; self.description = description; self.match = match; self.actions = actions; self.dryRun = dryRun
        self.approvals = approvals
    }

    /// Whether this playbook answers `finding`. `ruleNames` are the other names
    /// of the finding's rule (its Sigma `name` and title) besides ``DetectionFinding/ruleID``.
    public func matches(_ finding: DetectionFinding, ruleNames: [String] = []) -> Bool {
        if !match.rules.isEmpty {
            let names = Set([finding.ruleID, finding.title] + ruleNames)
            guard match.rules.contains(where: names.contains) else { return false }
        }
        if !match.techniques.isEmpty {
            let ids = finding.techniques.map { $0.uid.uppercased() }
            guard ids.contains(where: { id in match.techniques.contains { id == $0 || id.hasPrefix($0 + ".") } }) else { return false }
        }
        if let minimum = match.minimumSeverity, finding.level < minimum { return false }
        return true
    }
}

/// What a playbook does about a finding. The caller performs it (this module
/// does no I/O) and records each action as an audit event.
public enum PlaybookAction: Sendable, Equatable {
    /// Whose account an action acts on.
    public enum Users: String, Sendable, Equatable, CaseIterable {
        /// The finding's user (for a correlation grouped by source, the last user seen in the group).
        case finding
        /// Every user named in the finding's evidence events (the accounts a spray or stuffing run targeted),
        /// at most ``PlaybookLimits/maxTargetUsers``.
        case evidence
    }

    /// Revoke every active session of the users: their next request is refused.
    case revokeSessions(Users)
    /// Disable the users' accounts (which also ends their sessions). `lock_account` in a file is the same action.
    case disableUser(Users)
    /// For `seconds` (60 s – 24 h), the users' requests through the gateway need an authentication made
    /// after the step ran: a request the policies allow becomes a step-up (`step_up_required`, with
    /// `max_age` = the time since the step) until the user has proved their factors again.
    case requireStepUp(seconds: Int, Users)
    /// Add points (1–100) to the users' risk score (``RiskScore``; it decays like any contribution), which the
    /// gateway's policies read as `context.risk.score`.
    case raiseRisk(points: Int, Users)
    /// Quarantine the device the finding names (``DetectionFinding/device``), as `menshen device quarantine`
    /// does: from its next request it reaches nothing but remediation, and its owner's sessions end. A finding
    /// that names no device makes the step a recorded skip.
    case quarantineDevice
    /// POST a JSON ticket describing the finding to a URL, off the detection path.
    case webhook(WebhookTarget)
    /// Write the finding to the server log (the audit event is written in every case).
    case log

    /// The action's name in playbook files.
    public var kind: String {
        switch self {
        case .revokeSessions: "revoke_sessions"
        case .disableUser: "disable_user"
        case .raiseRisk: "raise_risk"
        case .requireStepUp: "require_step_up"
        case .quarantineDevice: "quarantine_device"
        case .webhook: "webhook"
        case .log: "log"
        }
    }
}

/// Where a webhook action posts its ticket, and how patiently.
///
/// The URL must be `https`, or plain `http` to a loopback host (a local relay
/// or a test receiver); it carries no user name or password (put secrets in
/// the receiving side's allow-list, not in a file of playbooks) and no fragment.
public struct WebhookTarget: Sendable, Equatable {
    public var url: String
    public var host: String
    /// Each attempt is abandoned after this long.
    public var timeoutSeconds: Int
    /// Further attempts after a failed one, with back-off doubling from 0.5 s.
    public var retries: Int

    /// Validates `url`; the error text says what is wrong with it.
    public init(url: String, timeoutSeconds: Int = 5, retries: Int = 3) throws(VisibilityError) {
        func bad(_ why: String) -> VisibilityError { VisibilityError(.invalidPlaybook, why) }
        guard url.utf8.count <= PlaybookLimits.maxURLLength else { throw bad("longer than \(PlaybookLimits.maxURLLength) bytes") }
        guard !url.contains(where: { $0.isWhitespace || $0.isNewline }), let parts = URLComponents(string: url),
              let scheme = parts.scheme?.lowercased()
        else { throw bad("\"\(url.prefix(80))\" is not a URL") }
        guard let host = parts.host, !host.isEmpty else { throw bad("\"\(url.prefix(80))\" has no host") }
        guard parts.user == nil, parts.password == nil else { throw bad("a URL with a user name or password is refused") }
        guard parts.fragment == nil else { throw bad("a URL with a fragment (#…) is refused") }
        switch scheme {
        case "https": break
        case "http" where Self.isLoopback(host): break
        case "http": throw bad("plain http is only allowed to a loopback host (localhost, 127.0.0.0/8, ::1); use https")
        default: throw bad("the scheme \"\(scheme)\" is not http or https")
        }
        guard (1...PlaybookLimits.maxTimeoutSeconds).contains(timeoutSeconds) else {
            throw bad("timeout_seconds must be 1 to \(PlaybookLimits.maxTimeoutSeconds)")
        }
        guard (0...PlaybookLimits.maxRetries).contains(retries) else { throw bad("retries must be 0 to \(PlaybookLimits.maxRetries)") }
        self.url = url; self.host = host.lowercased(); self.timeoutSeconds = timeoutSeconds; self.retries = retries
    }

    static func isLoopback(_ host: String) -> Bool { LoopbackHost.contains(host) }
}

/// One step of a playbook run: the playbook and one of its actions, for one finding.
public struct PlaybookStep: Sendable, Equatable {
    public var playbook: String
    public var action: PlaybookAction
    /// The playbook is a dry run: record the step, do nothing.
    public var dryRun: Bool = false
    /// The step waits for an operator's approval (`approval: required`).
    public var needsApproval: Bool = false
    public init(playbook: String, action: PlaybookAction, dryRun: Bool = false, needsApproval: Bool = false) {
        self.playbook = playbook; self.action = action; self.dryRun = dryRun; self.needsApproval = needsApproval
    }
}
