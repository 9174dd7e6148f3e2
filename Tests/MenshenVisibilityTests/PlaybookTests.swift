import Foundation
import MenshenVisibility
import Testing

/// Playbook files: the format, matching findings to actions, and every kind
/// of malformed file refused with a message naming the file, the playbook and
/// the field.
@Suite("Playbooks")
struct PlaybookTests {
    static let example = """
        playbooks:
          - name: contain-password-spraying
            description: End the sessions of every account a spraying source tried, and open a ticket.
            match:
              rules: [menshen_password_spraying]
              techniques: [T1110.003]
              min_severity: high
            actions:
              - type: revoke_sessions
                users: evidence
              - type: webhook
                url: https://soc.bank.example/hooks/menshen
                timeout_seconds: 3
                retries: 2
              - log
          - name: brute-force-family
            match:
              techniques: [t1110]
            actions:
              - disable_user
        """

    static func finding(rule: String = "7557e31f-73fd-45ef-bcf2-90d0b3d083bb", title: String = "Password spraying from one source",
                        level: SigmaLevel = .high, tags: [String] = ["attack.credential-access", "attack.t1110.003"]) -> DetectionFinding {
        DetectionFinding(metadata: RuleMetadata(file: "t.yml", id: rule, name: nil, title: title, status: .experimental, level: level,
                                                tags: tags, description: nil),
                         user: "amy", sourceIP: "203.0.113.9", evidence: ["e1"], firstTime: Date(timeIntervalSince1970: 0),
                         lastTime: Date(timeIntervalSince1970: 60), message: "m")
    }

    @Test("a full file loads: match criteria, every action kind, defaults for bare action names")
    func loadsExample() throws {
        let set = try PlaybookSet.load(yaml: Self.example, file: "playbooks.yaml")
        #expect(set.playbooks.map(\.name) == ["contain-password-spraying", "brute-force-family"])
        let first = set.playbooks[0]
        #expect(first.match == Playbook.Match(rules: ["menshen_password_spraying"], techniques: ["T1110.003"], minimumSeverity: .high))
        #expect(first.actions == [.revokeSessions(.evidence),
                                  .webhook(try WebhookTarget(url: "https://soc.bank.example/hooks/menshen", timeoutSeconds: 3, retries: 2)),
                                  .log])
        #expect(set.playbooks[1].actions == [.disableUser(.finding)])
        #expect(set.playbooks[1].match.techniques == ["T1110"])
    }

    @Test("raise_risk takes points (1–100) and users; lock_account is disable_user by the issue's name")
    func raiseRiskAndLockAccount() throws {
        let set = try PlaybookSet.load(yaml: """
            playbooks:
              - name: watch-sprayed
                match: {techniques: [T1110]}
                actions:
                  - {type: raise_risk, points: 30, users: evidence}
                  - {type: raise_risk, points: 100}
                  - lock_account
                  - {type: lock_account, users: evidence}
            """, file: "p.yaml")
        #expect(set.playbooks[0].actions == [.raiseRisk(points: 30, .evidence), .raiseRisk(points: 100, .finding),
                                             .disableUser(.finding), .disableUser(.evidence)])
        #expect(set.playbooks[0].actions.map(\.kind) == ["raise_risk", "raise_risk", "disable_user", "disable_user"])
    }

    @Test("require_step_up takes a duration (default 1h); dry_run marks every step of its playbook")
    func stepUpAndDryRun() throws {
        let set = try PlaybookSet.load(yaml: """
            playbooks:
              - name: rehearse
                dry_run: true
                match: {techniques: [T1110]}
                actions:
                  - {type: require_step_up, for: 30m, users: evidence}
                  - require_step_up
                  - {type: require_step_up, for: 90}
                  - {type: require_step_up, for: 1d}
              - name: real
                match: {techniques: [T1110]}
                actions: [log]
            """, file: "p.yaml")
        #expect(set.playbooks[0].dryRun && !set.playbooks[1].dryRun)
        #expect(set.playbooks[0].actions == [.requireStepUp(seconds: 1800, .evidence), .requireStepUp(seconds: 3600, .finding),
                                             .requireStepUp(seconds: 90, .finding), .requireStepUp(seconds: 86_400, .finding)])
        let plan = set.plan(for: Self.finding())
        #expect(plan.map(\.dryRun) == [true, true, true, true, false])
    }

    @Test("approval: required holds a step for an operator (any action but log); none is the default")
    func approval() throws {
        let set = try PlaybookSet.load(yaml: """
            playbooks:
              - name: careful
                match: {techniques: [T1110]}
                actions:
                  - {type: revoke_sessions, users: evidence, approval: required}
                  - {type: lock_account, approval: none}
                  - {type: raise_risk, points: 5, approval: required}
                  - log
            """, file: "p.yaml")
        #expect(set.playbooks[0].approvals == [0, 2])
        #expect(set.playbooks[0].actions == [.revokeSessions(.evidence), .disableUser(.finding), .raiseRisk(points: 5, .finding), .log])
        #expect(set.plan(for: Self.finding()).map(\.needsApproval) == [true, false, true, false])
    }

    @Test("quarantine_device: a bare name or a map with only type (and approval); every playbook step plans it, with its approval")
    func quarantineDevice() throws {
        let set = try PlaybookSet.load(yaml: """
            playbooks:
              - name: contain-byod
                match: {rules: [menshen_unmanaged_device_access]}
                actions:
                  - quarantine_device
                  - {type: quarantine_device}
                  - {type: quarantine_device, approval: required}
            """, file: "p.yaml")
        #expect(set.playbooks[0].actions == [.quarantineDevice, .quarantineDevice, .quarantineDevice])
        #expect(set.playbooks[0].actions.map(\.kind) == ["quarantine_device", "quarantine_device", "quarantine_device"])
        #expect(set.playbooks[0].approvals == [2])
        let unmanaged = Self.finding(rule: "2428a622-cf6c-456d-b81a-111debfcafcc", title: "Access attempt from an unmanaged device",
                                     level: .medium, tags: ["attack.t1133"])
        let plan = set.plan(for: unmanaged, ruleNames: ["menshen_unmanaged_device_access"])
        #expect(plan.map(\.action) == [.quarantineDevice, .quarantineDevice, .quarantineDevice])
        #expect(plan.map(\.needsApproval) == [false, false, true])
        #expect(set.plan(for: Self.finding()).isEmpty, "other findings do not match")
    }

    @Test("matching: by rule id, name or title; a parent technique covers its sub-techniques; the minimum severity holds")
    func matching() throws {
        let set = try PlaybookSet.load(yaml: Self.example, file: "playbooks.yaml")
        let spray = Self.finding()
        // The rule is named by its Sigma name, which the finding carries only through ruleNames.
        #expect(set.plan(for: spray, ruleNames: ["menshen_password_spraying"]).map(\.playbook)
                == ["contain-password-spraying", "contain-password-spraying", "contain-password-spraying", "brute-force-family"])
        #expect(set.plan(for: spray).map(\.playbook) == ["brute-force-family"], "without the rule's name only the technique playbook matches")
        let medium = Self.finding(level: .medium)
        #expect(set.plan(for: medium, ruleNames: ["menshen_password_spraying"]).map(\.playbook) == ["brute-force-family"])
        let other = Self.finding(rule: "x", title: "Dormant account", tags: ["attack.t1078"])
        #expect(set.plan(for: other, ruleNames: ["menshen_password_spraying"]).isEmpty)
        // By title.
        let byTitle = try PlaybookSet.load(yaml: """
            playbooks:
              - name: t
                match: {rules: ["Password spraying from one source"]}
                actions: [log]
            """, file: "p.yaml")
        #expect(byTitle.plan(for: spray).count == 1)
    }

    @Test("the built-in set loads and is conservative: nothing is disabled and no webhook is called")
    func builtIn() throws {
        let set = try PlaybookSet.load(yaml: PlaybookSet.builtInYAML, file: "built-in")
        #expect(set == PlaybookSet.builtIn)
        #expect(set.playbooks.count == 3)
        let actions = set.playbooks.flatMap(\.actions)
        #expect(!actions.contains { if case .disableUser = $0 { true } else { false } })
        #expect(!actions.contains { if case .webhook = $0 { true } else { false } })
        // A password spray is logged only (a spray must not let anyone end other people's sessions by default).
        #expect(set.plan(for: Self.finding()).map(\.action) == [.log])
        let reuse = Self.finding(rule: "r", title: "Session cookie reused", tags: ["attack.t1550.004"])
        #expect(set.plan(for: reuse).map(\.action) == [.log, .revokeSessions(.finding)])
    }

    @Test("malformed files are refused with the file, the playbook and the field", arguments: [
        ("playbooks: [", "p.yaml: not valid YAML"),
        ("- a\n- b\n", "p.yaml: the file must be a map with a 'playbooks' list, not a list"),
        ("playbook: []\n", "p.yaml: unknown key 'playbook' (expected 'playbooks')"),
        ("playbooks: {}\n", "p.yaml: 'playbooks' must be a list of playbooks"),
        ("playbooks:\n  - match: {min_severity: low}\n    actions: [log]\n", "p.yaml: playbooks[0]: name: missing"),
        ("playbooks:\n  - name: Bad Name\n    match: {min_severity: low}\n    actions: [log]\n", "p.yaml: playbooks[0]: name: must be"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [log]\n    when: now\n", "p.yaml: playbook \"a\": when: unknown key"),
        ("playbooks:\n  - name: a\n    actions: [log]\n", "p.yaml: playbook \"a\": match: missing"),
        ("playbooks:\n  - name: a\n    match: {}\n    actions: [log]\n", "p.yaml: playbook \"a\": match: names no criterion"),
        ("playbooks:\n  - name: a\n    match: {min_severity: severe}\n    actions: [log]\n", "p.yaml: playbook \"a\": match.min_severity: must be one of"),
        ("playbooks:\n  - name: a\n    match: {techniques: [T111]}\n    actions: [log]\n", "p.yaml: playbook \"a\": match.techniques: \"T111\" is not an ATT&CK technique id"),
        ("playbooks:\n  - name: a\n    match: {rule: [x]}\n    actions: [log]\n", "p.yaml: playbook \"a\": match.rule: unknown key"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: []\n", "p.yaml: playbook \"a\": actions: must be a non-empty list"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [reboot]\n", "p.yaml: playbook \"a\": actions[0]: unknown action \"reboot\""),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [log, {type: webhook}]\n", "p.yaml: playbook \"a\": actions[1].url: missing"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: webhook, url: 'http://soc.bank.example/h'}]\n",
         "p.yaml: playbook \"a\": actions[0].url: plain http is only allowed to a loopback host"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: webhook, url: 'https://u:p@soc.bank.example/h'}]\n",
         "p.yaml: playbook \"a\": actions[0].url: a URL with a user name or password is refused"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: webhook, url: 'ftp://soc.bank.example/h'}]\n",
         "p.yaml: playbook \"a\": actions[0].url: the scheme \"ftp\" is not http or https"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: webhook, url: 'https://soc.bank.example/h', timeout_seconds: 600}]\n",
         "p.yaml: playbook \"a\": actions[0].timeout_seconds: timeout_seconds must be 1 to 30"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: webhook, url: 'https://soc.bank.example/h', retries: many}]\n",
         "p.yaml: playbook \"a\": actions[0].retries: must be a whole number"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: revoke_sessions, users: everyone}]\n",
         "p.yaml: playbook \"a\": actions[0].users: must be finding or evidence"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: log, url: 'https://x.example'}]\n",
         "p.yaml: playbook \"a\": actions[0].url: unknown key for log"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [log]\n  - name: a\n    match: {min_severity: low}\n    actions: [log]\n",
         "p.yaml: playbook \"a\": name: used by an earlier playbook"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [raise_risk]\n",
         "p.yaml: playbook \"a\": actions[0].points: missing (raise_risk needs points, 1–100)"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: raise_risk, points: 0}]\n",
         "p.yaml: playbook \"a\": actions[0].points: must be 1 to 100"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: raise_risk, points: 101}]\n",
         "p.yaml: playbook \"a\": actions[0].points: must be 1 to 100"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: raise_risk, points: lots}]\n",
         "p.yaml: playbook \"a\": actions[0].points: must be a whole number"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: raise_risk, points: 10, users: all}]\n",
         "p.yaml: playbook \"a\": actions[0].users: must be finding or evidence"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: lock_account, points: 10}]\n",
         "p.yaml: playbook \"a\": actions[0].points: unknown key for lock_account"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: require_step_up, for: 10s}]\n",
         "p.yaml: playbook \"a\": actions[0].for: must be a duration from 60s to 24h"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: require_step_up, for: 2d}]\n",
         "p.yaml: playbook \"a\": actions[0].for: must be a duration from 60s to 24h"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: require_step_up, for: soon}]\n",
         "p.yaml: playbook \"a\": actions[0].for: must be a duration from 60s to 24h"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: require_step_up, for: 99999999999999999999h}]\n",
         "p.yaml: playbook \"a\": actions[0].for: must be a duration from 60s to 24h"),
        ("playbooks:\n  - name: a\n    dry_run: yes please\n    match: {min_severity: low}\n    actions: [log]\n",
         "p.yaml: playbook \"a\": dry_run: must be true or false"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: revoke_sessions, approval: maybe}]\n",
         "p.yaml: playbook \"a\": actions[0].approval: must be required or none"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: log, approval: required}]\n",
         "p.yaml: playbook \"a\": actions[0].approval: a log step needs no approval"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: quarantine_device, reason: EDR alert}]\n",
         "p.yaml: playbook \"a\": actions[0].reason: unknown key for quarantine_device"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [log, {type: quarantine_device, users: evidence}]\n",
         "p.yaml: playbook \"a\": actions[1].users: unknown key for quarantine_device"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: quarantine_device, device: laptop-7}]\n",
         "p.yaml: playbook \"a\": actions[0].device: unknown key for quarantine_device"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{type: quarantine_device, approval: later}]\n",
         "p.yaml: playbook \"a\": actions[0].approval: must be required or none"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [quarantine_devices]\n",
         "p.yaml: playbook \"a\": actions[0]: unknown action \"quarantine_devices\" (revoke_sessions, disable_user, lock_account, require_step_up, raise_risk, quarantine_device, webhook or log)"),
        ("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [{users: finding}]\n",
         "p.yaml: playbook \"a\": actions[0].type: missing (revoke_sessions, disable_user, lock_account, require_step_up, raise_risk, quarantine_device, webhook or log)"),
    ])
    func malformed(_ yaml: String, _ expected: String) {
        do {
            let set = try PlaybookSet.load(yaml: yaml, file: "p.yaml")
            Issue.record("loaded \(set.playbooks.count) playbooks from a malformed file")
        } catch {
            #expect(error.code == .invalidPlaybook)
            #expect(error.message.hasPrefix(expected), "got: \(error.message)")
        }
    }

    @Test("limits: file size, number of playbooks and actions, YAML depth and alias expansion")
    func limits() {
        func refused(_ yaml: String, _ part: String) {
            do {
                _ = try PlaybookSet.load(yaml: yaml, file: "p.yaml")
                Issue.record("accepted a file beyond the limits (\(part))")
            } catch {
                #expect(error.message.contains(part), "got: \(error.message)")
            }
        }
        refused(String(repeating: "#", count: PlaybookLimits.maxFileBytes + 1), "the limit for a playbook file is")
        let one = "  - name: p%d\n    match: {min_severity: low}\n    actions: [log]\n"
        refused("playbooks:\n" + (0...PlaybookLimits.maxPlaybooks).map { String(format: one, $0) }.joined(), "playbooks; at most \(PlaybookLimits.maxPlaybooks)")
        refused("playbooks:\n  - name: a\n    match: {min_severity: low}\n    actions: [" + Array(repeating: "log", count: PlaybookLimits.maxActions + 1).joined(separator: ", ") + "]\n",
                "actions; at most \(PlaybookLimits.maxActions)")
        refused("playbooks: " + String(repeating: "[", count: 40) + String(repeating: "]", count: 40) + "\n", "nested deeper than")
        var bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...6 { bomb += "a\(i): &a\(i) [*\(i == 1 ? "a" : "a\(i - 1)"), *\(i == 1 ? "a" : "a\(i - 1)"), *\(i == 1 ? "a" : "a\(i - 1)"), *\(i == 1 ? "a" : "a\(i - 1)"), *\(i == 1 ? "a" : "a\(i - 1)"), *\(i == 1 ? "a" : "a\(i - 1)"), *\(i == 1 ? "a" : "a\(i - 1)"), *\(i == 1 ? "a" : "a\(i - 1)"), *\(i == 1 ? "a" : "a\(i - 1)"), *\(i == 1 ? "a" : "a\(i - 1)")]\n" }
        refused(bomb, "YAML nodes")
    }

    @Test("webhook URLs: https anywhere, http only to loopback")
    func webhookURLs() throws {
        for ok in ["https://soc.bank.example/x", "http://127.0.0.1:8080/h", "http://localhost/h", "http://[::1]:9/h", "https://10.0.0.5/h"] {
            #expect(throws: Never.self, "\(ok)") { _ = try WebhookTarget(url: ok) }
        }
        for bad in ["http://10.0.0.5/h", "http://127.0.0.1.evil.example/h", "https:///nohost", "https://soc.bank.example/h#frag",
                    "javascript:alert(1)", "https://soc.bank.example/a b", ""] {
            #expect(throws: VisibilityError.self, "\(bad)") { _ = try WebhookTarget(url: bad) }
        }
    }
}
