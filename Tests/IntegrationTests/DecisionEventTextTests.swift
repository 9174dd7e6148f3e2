import Foundation
import MenshenCore
import MenshenPolicyEngine
import MenshenServer
import MenshenStorage
import Testing

/// The decision event (6001) is written member by member for speed
/// (`DecisionLog.activityJSON`); this suite holds it to the text the dictionary
/// encoder gives for the same event, built here the straightforward way as the
/// reference, over decisions of every shape (and, in debug builds, the writer
/// itself checks that members come in sorted order).
@Suite struct DecisionEventTextTests {
    typealias JSON = EventJSON.Value

    static let policies = """
        @id("staff") permit (principal in Group::"staff", action, resource) when { context.session.loa >= 1 };
        @id("ro") @obligation("read_only") permit (principal in Group::"auditors", action, resource);
        @id("watched") @alert("high") permit (principal in Group::"staff", action == Action::"export", resource);
        @id("no-vendors") forbid (principal in Group::"vendors", action, resource) when { resource.classification == "restricted" };
        @id("mfa") @obligation("step_up:loa=3;max_age=300") forbid (principal, action, resource)
          when { resource.classification == "restricted" && context.session.loa < 3 };
        """

    @Test("the written text equals the dictionary encoding for every kind of decision")
    func sameText() throws {
        let pdp = try PolicyDecisionPoint(documents: [(name: "t.cedar", text: Self.policies)])
        var checked = 0
        for i in 0..<400 {
            let method = ["GET", "POST", "DELETE", "PUT", "PROPFIND"][i % 5]
            let path = ["/a/b?c=1", "/資料/報表\u{2028}x", "/q\"uote\\back", "/\u{202E}evil", "/x\ty\u{7F}"][i % 5]
            let groups = [["staff"], ["auditors"], ["vendors"], [], ["staff", "branch-1"]][i % 5]
            let access = AccessRequest(
                principal: .init(id: "user\(i)", kind: i % 7 == 0 ? "external" : "internal", groups: groups,
                                 roles: i % 3 == 0 ? ["dba": "privileged", "ops": "standard"] : [:]),
                session: .init(levelOfAssurance: 1 + i % 3, amr: i % 2 == 0 ? ["pwd"] : ["pwd", "otp"], factorAgeSeconds: i, ageSeconds: 2 * i),
                device: i % 4 == 0 ? nil : .init(enrolled: true, managed: i % 3 == 0, compliant: i % 5 != 0, hardwareBound: i % 2 == 0,
                                                 external: i % 6 == 0, postureAgeSeconds: i, maxVulnerabilitySeverity: i % 4,
                                                 ownedByPrincipal: i % 7 == 0),
                context: .init(time: Date(timeIntervalSince1970: 1_795_000_000 + Double(i)), sourceIP: i % 9 == 0 ? "" : "10.0.0.\(i % 250)",
                               networkZone: ["corporate", "branch", ""][i % 3], country: i % 2 == 0 ? "TW" : "",
                               method: method, path: path, riskScore: i % 100, grantActive: i % 8 == 0),
                resource: .init(applicationID: "app\(i % 3)", classification: ["internal", "confidential", "restricted"][i % 3],
                                scenario: i % 4 == 0 ? "remote-privileged" : ""),
                isExport: i % 10 == 0)
            let decision = pdp.decide(access)
            var t = DecisionTrail(requestID: "r\(i)", time: access.context.time, mode: i % 11 == 0 ? .forwardAuth("nginx") : .proxy,
                                  method: method, host: "gw.example", path: path, sourceIP: access.context.sourceIP)
            t.outcome = [.allow, .deny, .stepUp, .signIn, .noRoute, .refused, .error][i % 7]
            t.detail = i % 3 == 0 ? "" : "why \(i)"
            t.deviceID = i % 3 == 1 ? "d-\(i)-0123456789abcdef" : nil
            // Some trails stop before a session or a decision exists, as the gate's early answers do.
            if i % 13 != 0 {
                t.application = "app\(i % 3)"
                if i % 17 != 0 { t.user = "user\(i)"; t.sessionHash = i % 2 == 0 ? String(repeating: "ab", count: 32) : nil }
                t.policyGeneration = i % 5 == 0 ? nil : i
                t.access = access
                t.decision = decision
            }
            let uid = UUID()
            let activity = [2, 1, 4, 3, 99][i % 5]
            let severity = 1 + i % 4
            let alert = t.alert != nil
            let written = DecisionLog.activityJSON(t, uid: uid, activity: activity, severity: severity, alert: alert)
            let reference = try EventJSON.encode(Self.reference(t, uid: uid, activity: activity, severity: severity, alert: alert))
            #expect(written == reference, "decision \(i)")
            if written != reference { break }
            checked += 1
        }
        #expect(checked == 400)
    }

    /// The event as a dictionary, as the decision log built it before it wrote members directly.
    static func reference(_ t: DecisionTrail, uid: UUID, activity: Int, severity: Int, alert: Bool) -> JSON {
        let allowed = t.outcome == .allow
        let source: JSON = t.sourceIP.isEmpty ? ["name": "unknown"] : ["ip": .string(t.sourceIP)]
        var resource: [String: JSON] = ["uid": .string(t.application ?? ""), "type": "Application", "name": .string(t.application ?? t.host)]
        if let res = t.access?.resource { resource["data"] = ["classification": .string(res.classification), "scenario": .string(res.scenario)] }
        var event: [String: JSON] = [
            "class_uid": 6001, "category_uid": 6, "activity_id": .number(activity), "type_uid": .number(6001 * 100 + activity),
            "severity_id": .number(severity), "time": .int(StoreCoding.millis(t.time)),
            "metadata": metadata(uid: uid, profiles: ["security_control"]),
            "action_id": allowed ? 1 : 2,
            "disposition_id": .number(disposition(t.outcome)),
            "status_id": allowed ? 1 : 2,
            "status_detail": .string(t.detail.isEmpty ? t.outcome.rawValue : "\(t.outcome.rawValue): \(t.detail)"),
            "web_resources": [.object(resource)],
            "http_request": ["http_method": .string(String(t.method.prefix(32))), "uid": .string(t.requestID),
                             "url": ["hostname": .string(String(t.host.prefix(255))), "path": .string(String(t.path.prefix(2048)))]],
            "src_endpoint": source,
            "message": .string("\(t.outcome.rawValue) \(t.method) \(t.host)\(t.path)"),
            "unmapped": ["decision": decisionObject(t)],
        ]
        if alert { event["is_alert"] = true }
        if let device = t.deviceID {
            event["device"] = ["uid": .string(device), "type_id": 0, "type": "Unknown"]
            event["metadata"] = metadata(uid: uid, profiles: ["security_control", "host"])
        }
        if let user = t.user {
            var actor: [String: JSON] = ["user": ["uid": .string(user), "name": .string(user)]]
            if let h = t.sessionHash { actor["session"] = ["uid": .string(String(h.prefix(16)))] }
            event["actor"] = .object(actor)
            event["metadata"] = metadata(uid: uid, profiles: ["security_control", "host"])
        }
        return .object(event)
    }

    static func disposition(_ o: DecisionTrail.Outcome) -> Int {
        switch o {
        case .allow: 1
        case .stepUp, .signIn: 23
        case .deny, .noRoute, .refused: 2
        case .error: 27
        }
    }

    static func metadata(uid: UUID, profiles: [String]) -> JSON {
        ["version": "1.8.0", "uid": .string(uid.uuidString.lowercased()), "profiles": .strings(profiles),
         "product": ["name": "Menshen", "vendor_name": "Menshen project", "version": "0.1.0"]]
    }

    static func decisionObject(_ t: DecisionTrail) -> JSON {
        var d: [String: JSON] = ["outcome": .string(t.outcome.rawValue), "mode": .string(t.mode.description), "request_id": .string(t.requestID)]
        if let g = t.policyGeneration { d["policy_generation"] = .number(g) }
        if let decision = t.decision {
            d["effect"] = .string(decision.effect.rawValue)
            d["reasons"] = .strings(decision.reasons.map(\.rawValue))
            d["policies"] = .strings(decision.determiningPolicies)
            d["obligations"] = .strings(decision.obligations.map(\.description))
            if !decision.errors.isEmpty { d["errors"] = .object(decision.errors.mapValues { .string($0) }) }
        }
        if let a = t.access {
            d["principal"] = ["id": .string(a.principal.id), "kind": .string(a.principal.kind), "groups": .strings(a.principal.groups),
                              "roles": .strings(a.principal.roles.keys.sorted())]
            d["session"] = ["loa": .number(a.session.levelOfAssurance), "amr": .strings(a.session.amr),
                            "factor_age_seconds": .number(a.session.factorAgeSeconds), "age_seconds": .number(a.session.ageSeconds)]
            if let dev = a.device {
                d["device"] = ["known": true, "enrolled": .bool(dev.enrolled), "managed": .bool(dev.managed), "compliant": .bool(dev.compliant),
                               "hardware_bound": .bool(dev.hardwareBound), "external": .bool(dev.external),
                               "posture_age_seconds": .number(dev.postureAgeSeconds), "max_vulnerability_severity": .number(dev.maxVulnerabilitySeverity),
                               "owned_by_principal": .bool(dev.ownedByPrincipal)]
            } else {
                d["device"] = ["known": false]
            }
            d["context"] = ["time_zone": .string(a.context.timeZone), "source_ip": .string(a.context.sourceIP),
                            "network_zone": .string(a.context.networkZone), "country": .string(a.context.country),
                            "risk_score": .number(a.context.riskScore), "grant_active": .bool(a.context.grantActive),
                            "action": .string(a.action)]
            d["resource"] = ["application": .string(a.resource.applicationID), "classification": .string(a.resource.classification),
                             "scenario": .string(a.resource.scenario)]
        }
        return .object(d)
    }
}
