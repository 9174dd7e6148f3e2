import Foundation

/// The per-principle rules: what in the ``DeploymentFacts`` (and the
/// attestations) makes each of the guideline's 36 principles met, partially
/// met or not met — or "not measurable yet" when Menshen lacks the feature
/// that would produce the evidence. Written by hand (no package scores a
/// deployment against this guideline); the thresholds are constants below
/// and are listed in docs/assessment.md "How each principle is measured".
///
/// Three kinds of principle:
/// - **measured**: decided only by numbers from the deployment, each a
///   ``Measurement`` with the query behind it;
/// - **attestation-only** (3.1, 4.4, 4.5, 5.4): met only with a valid,
///   unexpired, unrevoked attestation carrying at least one evidence file —
///   and for 3.1 only if no measurement contradicts it;
/// - **not measurable yet** (2.7, 5.1): the rationale names what is
///   missing. Never a pass.
/// - **partially met at best** (1.7, 2.5, 3.3, 5.8): part of what the
///   principle asks exists and is measured; the rest does not exist yet and
///   the rationale names it.
///
/// Pure: the caller passes the clock.
public enum PrincipleRules {
    /// Share of users and sign-ins with two factors for 1.1 met (partial from ``partialShare``).
    public static let mfaShare = 0.95
    /// Share of sign-ins with a phishing-resistant (WebAuthn) factor for 1.2 met.
    public static let phishingResistantShare = 0.95
    /// Share of decisions from enrolled devices for 2.1 met.
    public static let enrolledDeviceShare = 0.90
    /// Share of active devices with a fresh posture for 2.2 met.
    public static let freshPostureShare = 0.90
    /// Below the "met" share but at least this: partially met.
    public static let partialShare = 0.50
    /// The secrets key older than this (days) is only partially met (5.6): no rotation in a year.
    public static let maximumKeyAgeDays = 365
    /// Principles only an attestation can satisfy.
    public static let attestationOnly: Set<String> = ["3.1", "4.4", "4.5", "5.4"]
    /// Principles whose feature Menshen does not have yet.
    public static let notMeasurableYet: Set<String> = ["2.7", "5.1"]
    /// Principles Menshen can show only in part: never met, partially met at best.
    public static let partialAtBest: Set<String> = ["1.7", "2.5", "3.3", "5.8"]
    /// The built-in detection whose playbook may disable a dormant account that comes back to life (1.7).
    public static let dormantAccountDetection = "Dormant account suddenly active"
    /// The longest privileged-work session (`identity.session.privileged_lifetime_seconds`) counted as time-bound for 4.2 met: 4 hours.
    public static let maximumPrivilegedLifetimeSeconds = 4 * 3600
    /// The labels a route's classification may carry (routes file, `resource.classification`).
    public static let classificationLabels: Set<String> = ["public", "internal", "confidential", "restricted"]

    // MARK: Entry points

    /// An evaluation for every principle of the built-in catalog.
    public static func evaluate(facts f: DeploymentFacts, attestations: [Attestation], now: Date) -> [String: PrincipleEvaluation] {
        let routes = routeAssessments(f)
        var out: [String: PrincipleEvaluation] = [:]
        out["1.1"] = p11(f); out["1.2"] = p12(f); out["1.3"] = p13(f); out["1.4"] = p14(f); out["1.5"] = p15(f)
        out["1.6"] = visibility(f, pillar: "identity", name: T("identity", "身分"))
        out["1.7"] = p17(f)
        out["2.1"] = p21(f); out["2.2"] = p22(f); out["2.3"] = p23(f); out["2.4"] = p24(f, routes); out["2.5"] = p25(f)
        out["2.6"] = visibility(f, pillar: "device", name: T("device", "設備"))
        out["2.7"] = missing(T("automatic retirement of stale devices (enrolment and certificate renewal are automated by the agent, but a device that stops reporting is never retired automatically)",
                               "閒置設備自動除役（代理程式已自動化註冊與憑證更新，但停止回報的設備不會自動除役）"))
        out["3.1"] = p31(f, attestations, now)
        out["3.2"] = p32(f, routes); out["3.4"] = p34(f, routes); out["3.5"] = p35(f)
        out["3.3"] = p33(f)
        out["3.6"] = visibility(f, pillar: "network", name: T("network", "網路"))
        out["3.7"] = asCode(f, what: T("routes and policies", "路由與政策"))
        out["4.1"] = p41(f); out["4.3"] = p43(f)
        out["4.2"] = p42(f)
        out["4.4"] = attestationOnly("4.4", attestations, now, what: T("application security testing (source review, vulnerability scans, penetration tests)",
                                                                      "應用程式安全檢測（原始碼檢測、弱點掃描、滲透測試）"))
        out["4.5"] = attestationOnly("4.5", attestations, now, what: T("CI/CD pipelines with least privilege per stage or separation of duties",
                                                                      "CI/CD 流程各階段最小權限或職責分離"))
        out["4.6"] = visibility(f, pillar: "application", name: T("application", "應用程式"))
        out["4.7"] = asCode(f, what: T("application onboarding and offboarding", "應用程式上線與下線"))
        out["5.1"] = missing(T("data leak prevention (DLP) inspection of responses in the gateway", "閘道對回應內容之資料外洩防護（DLP）檢查"))
        out["5.2"] = p52(f); out["5.3"] = p53(f, routes)
        out["5.4"] = attestationOnly("5.4", attestations, now, what: T("high availability and off-site, protected, restorable backups",
                                                                      "本地高可用與異地備份，且備份受保護並可還原"))
        out["5.5"] = p55(f, routes); out["5.6"] = p56(f)
        out["5.7"] = visibility(f, pillar: "data", name: T("data", "資料"))
        out["5.8"] = p58(f)
        // The last line of defence: no principle counts as satisfied without a measurement behind it.
        for (id, e) in out where e.verdict.satisfies && e.measurements.isEmpty {
            out[id] = eval(.notMet, T("No measurement supports this verdict.", "沒有量測結果支持此判定。"), [], e.remedy)
        }
        return out
    }

    /// Per-route checks: 2.4 a policy on device attributes, 3.2 a route-specific permit on identity plus a dynamic
    /// attribute, 3.4 TLS on both legs, 5.3 a classification label, 5.5 step-up for confidential and restricted data.
    public static func routeAssessments(_ f: DeploymentFacts) -> [RouteAssessment] {
        f.network.routes.value.map { r in
            let policies = f.policies.applying(to: r.id)
            let own = policies.filter { $0.isPermit && $0.applications?.contains(r.id) == true }
            var checks: [RouteCheck] = []
            let device = policies.filter(\.usesDevice).map(\.id)
            checks.append(RouteCheck(principleID: "2.4", holds: !device.isEmpty, detail: device.isEmpty
                ? T("no policy on this route reads device attributes", "此路由無任何政策使用設備屬性")
                : T("device attributes in: \(device.joined(separator: ", "))", "使用設備屬性的政策：\(device.joined(separator: "、"))")))
            let identity = own.filter(\.usesIdentity)
            let dynamic = policies.filter(\.usesSessionContext)
            let seg = !own.isEmpty && !identity.isEmpty && !dynamic.isEmpty
            checks.append(RouteCheck(principleID: "3.2", holds: seg, detail: seg
                ? T("route permit on identity (\(identity.map(\.id).joined(separator: ", "))) and dynamic attributes (\(dynamic.map(\.id).joined(separator: ", ")))",
                    "路由專屬許可依身分（\(identity.map(\.id).joined(separator: "、"))）及動態屬性（\(dynamic.map(\.id).joined(separator: "、"))）")
                : own.isEmpty ? T("no permit names this application: no per-application authorization", "無任何許可政策指定此應用程式：未做應用程式層級授權")
                : identity.isEmpty ? T("its permits do not condition on who the user is", "其許可政策未以使用者身分為條件")
                : T("no policy on this route uses identity, device or time attributes of the session", "此路由無任何政策使用工作階段之身分、設備或時間屬性")))
            let tls = tlsCheck(r, gatewayTLS: f.network.gatewayServesTLS.value)
            checks.append(RouteCheck(principleID: "3.4", holds: tls.holds, detail: tls.detail))
            let labelled = classificationLabels.contains(r.classification)
            checks.append(RouteCheck(principleID: "5.3", holds: labelled, detail: labelled
                ? T("classified \(r.classification)", "分類為 \(r.classification)")
                : T("no valid classification label (\(r.classification.isEmpty ? "empty" : r.classification))", "無有效分類標籤（\(r.classification.isEmpty ? "空白" : r.classification)）")))
            if r.isSensitive {
                let stepUp = policies.filter(\.stepsUp).map(\.id)
                checks.append(RouteCheck(principleID: "5.5", holds: !stepUp.isEmpty, detail: stepUp.isEmpty
                    ? T("\(r.classification) data without a step-up or factor-age condition", "\(r.classification) 資料未要求升級驗證或驗證因子時效")
                    : T("step-up by \(stepUp.joined(separator: ", "))", "升級驗證政策：\(stepUp.joined(separator: "、"))")))
            }
            return RouteAssessment(applicationID: r.id, displayName: r.name, host: r.host, pathPrefix: r.pathPrefix,
                                   classification: r.classification, scenarios: r.scenario.map { [$0] } ?? [], checks: checks)
        }
    }

    // MARK: Identity

    static func p11(_ f: DeploymentFacts) -> PrincipleEvaluation {
        let i = f.identity
        let users = ratio("users_with_mfa", T("Active users with a second factor", "具第二因子之啟用使用者"), i.usersWithMFA, of: i.activeUsers)
        let signIns = ratio("signins_multi_factor", T("Sign-ins in the window with two or more factors", "期間內使用兩個以上因子之登入"),
                            i.signInsMultiFactor, of: i.signIns)
        let m = [users, signIns]
        guard i.activeUsers.value > 0 else {
            return eval(.notMet, T("There are no active users to measure.", "沒有可量測的啟用使用者。"), m,
                        T("Create the users and enrol a second factor for each.", "建立使用者並為每位使用者註冊第二因子。"))
        }
        let usersOK = atLeast(i.usersWithMFA.value, i.activeUsers.value, mfaShare)
        let signInsOK = i.signIns.value > 0 && atLeast(i.signInsMultiFactor.value, i.signIns.value, mfaShare)
        let why = T("\(describe(users)) of active users hold a second factor; \(describe(signIns)) of sign-ins in the window used two or more factors (met at \(percent(mfaShare)) each).",
                    "\(describe(users)) 的啟用使用者具第二因子；期間內 \(describe(signIns)) 的登入使用兩個以上因子（各達 \(percent(mfaShare)) 為符合）。")
        let fix = T("Enrol a second factor (passkey or TOTP) for every user and require it at sign-in.", "為所有使用者註冊第二因子（通行金鑰或 TOTP）並於登入時要求。")
        if usersOK && signInsOK { return eval(.met, why, m) }
        if atLeast(i.usersWithMFA.value, i.activeUsers.value, partialShare) || (i.signIns.value > 0 && atLeast(i.signInsMultiFactor.value, i.signIns.value, partialShare)) {
            return eval(.partiallyMet, why, m, fix)
        }
        return eval(.notMet, why, m, fix)
    }

    static func p12(_ f: DeploymentFacts) -> PrincipleEvaluation {
        let i = f.identity
        let pr = ratio("signins_phishing_resistant", T("Sign-ins with a phishing-resistant authenticator (WebAuthn)", "使用抗網路釣魚驗證器（WebAuthn）之登入"),
                       i.signInsPhishingResistant, of: i.signIns)
        let webauthn = ratio("users_with_webauthn", T("Active users with a WebAuthn credential", "具 WebAuthn 憑證之啟用使用者"), i.usersWithWebAuthn, of: i.activeUsers)
        let totp = count("users_with_totp", T("Active users with a TOTP credential (phishable)", "具 TOTP 憑證之啟用使用者（可被釣魚）"), i.usersWithTOTP)
        let otp = count("signins_otp", T("Sign-ins in the window with a one-time password", "期間內使用一次性密碼之登入"), i.signInsOTP)
        let m = [pr, webauthn, totp, otp]
        let shareOK = i.signIns.value > 0 && atLeast(i.signInsPhishingResistant.value, i.signIns.value, phishingResistantShare)
        let weaker = i.usersWithTOTP.value > 0 || i.signInsOTP.value > 0
        let why = T("\(describe(pr)) of sign-ins used WebAuthn (met at \(percent(phishingResistantShare)) with no weaker second factor in use); \(i.usersWithTOTP.value) users hold TOTP and \(i.signInsOTP.value) sign-ins used a one-time password. Menshen offers no SMS, voice or e-mail OTP.",
                    "\(describe(pr)) 的登入使用 WebAuthn（達 \(percent(phishingResistantShare)) 且無較弱第二因子在用為符合）；\(i.usersWithTOTP.value) 位使用者具 TOTP，\(i.signInsOTP.value) 次登入使用一次性密碼。Menshen 不提供簡訊、語音或電子郵件 OTP。")
        let fix = T("Enrol passkeys or security keys for every user, then remove TOTP and recovery-code sign-ins.", "為所有使用者註冊通行金鑰或安全金鑰，再移除 TOTP 與復原碼登入。")
        if shareOK && !weaker { return eval(.met, why, m) }
        if (i.signIns.value > 0 && atLeast(i.signInsPhishingResistant.value, i.signIns.value, partialShare)) || i.usersWithWebAuthn.value > 0 {
            return eval(.partiallyMet, why, m, fix)
        }
        return eval(.notMet, why, m, fix)
    }

    static func p13(_ f: DeploymentFacts) -> PrincipleEvaluation {
        let i = f.identity
        let providers = f.federation.providers.value
        let external = providers.filter(\.isExternal)
        let m = [
            count("external_users", T("Active external users (vendor, partner)", "啟用之外部使用者（廠商、合作夥伴）"), i.externalUsers),
            level("internal_min_signin_loa", T("Lowest LoA of an internal user's sign-in", "內部使用者登入之最低保證等級"), i.internalMinimumSignInLoA),
            level("external_min_signin_loa", T("Lowest LoA of an external user's sign-in", "外部使用者登入之最低保證等級"), i.externalMinimumSignInLoA),
            Measurement(id: "external_idp_min_max_loa", label: T("Lowest max_loa among external identity providers", "外部身分提供者 max_loa 之最低值"),
                        value: external.map(\.maximumLoA).min().map(Double.init), unit: .level, query: f.federation.providers.query),
        ]
        if let problem = f.federation.problem {
            return eval(.notMet, T("The identity providers file does not load: \(problem)", "身分提供者設定檔無法載入：\(problem)"), m,
                        T("Fix the providers file.", "修正身分提供者設定檔。"))
        }
        if i.externalUsers.value == 0 && external.isEmpty {
            return eval(.notApplicable, T("No external users and no external identity provider: there is no one to hold to the internal level.",
                                          "無外部使用者亦無外部身分提供者：無需比較之對象。"), m)
        }
        let fix = T("Require external users to reach at least the internal users' level of assurance (passkeys, or an IdP whose max_loa matches), e.g. a policy forbidding vendor sessions below it.",
                    "要求外部使用者至少達內部使用者之保證等級（通行金鑰，或 max_loa 相當之身分提供者），例如以政策禁止低於該等級之廠商工作階段。")
        guard let ext = i.externalMinimumSignInLoA.value else {
            return eval(.partiallyMet, T("External users exist but none signed in during the window, so their level of assurance is not observed.",
                                         "有外部使用者，但期間內無人登入，無法觀察其保證等級。"), m, fix)
        }
        let internalMin = i.internalMinimumSignInLoA.value ?? 1
        let weakIdP = external.filter { $0.maximumLoA < internalMin }.map(\.id)
        let why = T("External sign-ins reached at least LoA \(ext); internal sign-ins at least LoA \(internalMin)\(weakIdP.isEmpty ? "" : "; external providers capped below it: \(weakIdP.joined(separator: ", "))").",
                    "外部使用者登入最低 LoA \(ext)；內部使用者最低 LoA \(internalMin)\(weakIdP.isEmpty ? "" : "；上限低於內部之外部提供者：\(weakIdP.joined(separator: "、"))")。")
        return ext >= internalMin && weakIdP.isEmpty ? eval(.met, why, m) : eval(.notMet, why, m, fix)
    }

    static func p14(_ f: DeploymentFacts) -> PrincipleEvaluation {
        let policies = f.policies.inForce.value
        let loa = policies.filter(\.usesLoA), amr = policies.filter(\.usesAMR)
        let providers = f.federation.providers.value
        let m = [
            Measurement.flag("local_factors_mapped", T("Local authenticators mapped to ISO/IEC 29115 LoA", "本地驗證器對應 ISO/IEC 29115 保證等級"), true,
                             query: "built in: every local factor (password, TOTP, recovery code, WebAuthn) is mapped by AssuranceEvaluator to one LoA scale"),
            Measurement.ratio("idps_mapped", T("Identity providers with a max_loa and acr mapping", "具 max_loa 及 acr 對應之身分提供者"),
                              providers.filter { $0.maximumLoA >= 1 && $0.acrMappings > 0 }.count, of: providers.count, query: f.federation.providers.query),
            policyCount("policies_using_loa", T("Policies conditioned on the level of assurance", "以保證等級為條件之政策"), loa, f),
            policyCount("policies_using_amr", T("Policies conditioned on mechanism names (amr)", "以驗證機制名稱（amr）為條件之政策"), amr, f),
        ]
        if let problem = f.federation.problem {
            return eval(.notMet, T("The identity providers file does not load: \(problem)", "身分提供者設定檔無法載入：\(problem)"), m,
                        T("Fix the providers file.", "修正身分提供者設定檔。"))
        }
        let unmapped = providers.filter { $0.maximumLoA < 1 || $0.acrMappings == 0 }.map(\.id)
        let why = T("Local factors and \(providers.count - unmapped.count) of \(providers.count) identity providers are on one LoA scale; \(loa.count) policies use the level of assurance, \(amr.count) use mechanism names.",
                    "本地因子及 \(providers.count) 個身分提供者中的 \(providers.count - unmapped.count) 個對應同一保證等級；\(loa.count) 項政策使用保證等級，\(amr.count) 項使用機制名稱。")
        let fix = T("Map every identity provider (max_loa, acr) and write policies on context.session.loa instead of amr names.",
                    "為每個身分提供者設定 max_loa 與 acr 對應，並以 context.session.loa 取代 amr 名稱撰寫政策。")
        if unmapped.isEmpty && !loa.isEmpty && amr.isEmpty { return eval(.met, why, m) }
        if unmapped.isEmpty && (!loa.isEmpty || !amr.isEmpty) { return eval(.partiallyMet, why, m, fix) }
        return eval(.notMet, why, m, fix)
    }

    static func p15(_ f: DeploymentFacts) -> PrincipleEvaluation {
        let policies = f.policies.inForce.value
        let ctx = policies.filter(\.usesSessionContext)
        let dynamic = policies.filter { $0.stepsUp || $0.narrows || $0.alert != nil }
        let d = f.decisions
        let exercised = d.steppedUp.value + d.narrowed.value + d.revokedOnReevaluation.value + d.alerted.value + d.responseActions.value
        let m = [
            policyCount("policies_session_context", T("Policies using session attributes (time, network, device, risk, factor age)", "使用工作階段屬性之政策（時間、網路、設備、風險、因子時效）"), ctx, f),
            policyCount("policies_dynamic_response", T("Policies that step up, narrow to read-only or alert", "要求升級驗證、限縮為唯讀或告警之政策"), dynamic, f),
            count("decisions_stepped_up", T("Decisions that asked for a step-up", "要求升級驗證之決策"), d.steppedUp),
            count("decisions_narrowed", T("Decisions narrowed to read-only", "限縮為唯讀之決策"), d.narrowed),
            count("decisions_revoked", T("Long-lived connections closed on re-evaluation", "重新評估後關閉之長連線"), d.revokedOnReevaluation),
            count("decisions_alerted", T("Decisions that raised an alert", "產生告警之決策"), d.alerted),
            count("response_actions", T("Playbook actions revoking sessions, disabling users or requiring step-up", "撤銷工作階段、停用帳號或要求升級驗證之劇本動作"), d.responseActions),
        ]
        let why = T("\(ctx.count) policies use session attributes and \(dynamic.count) can step up, narrow or alert; in the window \(exercised) decisions or actions revoked, narrowed, stepped up or alerted.",
                    "\(ctx.count) 項政策使用工作階段屬性，\(dynamic.count) 項可要求升級驗證、限縮或告警；期間內共 \(exercised) 次決策或動作撤銷、限縮、升級驗證或告警。")
        let fix = T("Write policies on session attributes with @obligation(\"step_up:…\"), read_only or @alert, and bind playbooks that revoke sessions.",
                    "撰寫使用工作階段屬性並帶 @obligation(\"step_up:…\")、read_only 或 @alert 之政策，並設定撤銷工作階段之劇本。")
        if !ctx.isEmpty && !dynamic.isEmpty && exercised > 0 { return eval(.met, why, m) }
        if !ctx.isEmpty { return eval(.partiallyMet, why, m, fix) }
        return eval(.notMet, why, m, fix)
    }

    // MARK: Visibility (1.6, 2.6, 3.6, 4.6, 5.7)

    static func visibility(_ f: DeploymentFacts, pillar: String, name: LocalizedText) -> PrincipleEvaluation {
        let v = f.visibility
        let detections = v.detections(for: pillar)
        let responded = detections.filter { !$0.respondingPlaybooks.isEmpty }
        let m = [
            Measurement.flag("events_exported", T("Events exported to a SIEM (syslog, JSON Lines or HTTPS webhook)", "事件匯出至 SIEM（syslog、JSON Lines 或 HTTPS webhook）"),
                             v.exported, query: [v.syslogExport.query, v.jsonLinesExport.query, v.webhookExport.query].joined(separator: "; ")),
            Measurement.count("detections_\(pillar)", T("Detections with ATT&CK mapping reading \(name.en) events", "讀取\(name.zhTW)事件且對應 ATT&CK 之偵測規則"),
                              detections.count, query: v.detections.query),
            Measurement.count("detections_\(pillar)_with_playbook", T("… of which a playbook responds beyond logging", "其中有劇本回應（不僅記錄）者"),
                              responded.count, query: v.detections.query),
            count("findings", T("Detection findings in the window", "期間內偵測告警"), v.findings),
            count("cases_opened", T("Cases (incident tickets grouping findings) opened in the window", "期間內開立之事件單（彙整偵測告警之案件）"), v.casesOpened),
            count("cases_closed", T("Cases closed in the window", "期間內結案之事件單"), v.casesClosed),
            Measurement(id: "mean_time_to_alert", label: T("Mean time from event to alert (findings in the window)", "事件至告警之平均時間（期間內偵測告警）"),
                        value: v.meanSecondsToAlert.value, unit: .seconds, query: v.meanSecondsToAlert.query),
            flag("decision_audit_fails_closed", T("Access refused while the gateway's decisions cannot be logged", "閘道決策無法記錄時拒絕存取"), v.decisionAuditFailsClosed),
            flag("audit_chain_signed", T("Event log head signed in the window (audit checkpoints)", "期間內已簽署事件日誌鏈頭（稽核檢查點）"), v.auditChainSigned),
        ]
        var problems: [String] = []
        if let p = v.playbooksProblem { problems.append(p) }
        let trail = v.decisionAuditFailsClosed.value && v.auditChainSigned.value
        let toAlert = v.meanSecondsToAlert.value.map { String(format: "%.1f", $0) }
        let trailWhy = T(" The event log: access \(v.decisionAuditFailsClosed.value ? "is refused while decisions cannot be logged" : "goes on while decisions cannot be logged (\(v.decisionAuditFailsClosed.query))"); its head \(v.auditChainSigned.value ? "was" : "was not") signed in the window; mean time from event to alert \(toAlert.map { "\($0) s" } ?? "not measured (no findings)").",
                         " 事件日誌：決策無法記錄時\(v.decisionAuditFailsClosed.value ? "拒絕存取" : "仍允許存取")；期間內鏈頭\(v.auditChainSigned.value ? "已" : "未")簽署；事件至告警平均時間\(toAlert.map { " \($0) 秒" } ?? "未量測（無偵測告警）")。")
        let why = T("Export \(v.exported ? "enabled" : "disabled"); \(detections.count) \(name.en) detections with ATT&CK mapping (\(detections.map(\.title).joined(separator: "; "))); \(responded.count) answered by a playbook\(problems.isEmpty ? "" : "; playbooks: \(problems.joined())"); \(v.findings.value) findings, \(v.casesOpened.value) cases opened and \(v.casesClosed.value) closed in the window (all pillars).",
                    "事件匯出\(v.exported ? "已啟用" : "未啟用")；\(detections.count) 項\(name.zhTW)偵測規則對應 ATT&CK；\(responded.count) 項有劇本回應\(problems.isEmpty ? "" : "；劇本：\(problems.joined())")；期間內偵測告警 \(v.findings.value) 筆，開立事件單 \(v.casesOpened.value) 件、結案 \(v.casesClosed.value) 件（全部支柱）。")
        let fix = runningDetections(v, T("Enable export.syslog, export.jsonl or export.webhook to the SOC's SIEM and bind playbooks (revoke_sessions, webhook ticket) to the \(name.en) detections; follow findings up as cases (menshen case); keep audit.when_unwritten = refuse and audit checkpoints signed (audit.signing_key_file on every node).",
                                         "啟用 export.syslog、export.jsonl 或 export.webhook 匯出至 SOC 之 SIEM，並為\(name.zhTW)偵測規則設定劇本（revoke_sessions、webhook 工單）；以事件單追蹤偵測告警（menshen case）；維持 audit.when_unwritten = refuse 並簽署稽核檢查點（各節點設定 audit.signing_key_file）。"))
        if v.exported && !detections.isEmpty && !responded.isEmpty && problems.isEmpty && trail { return eval(.met, why + trailWhy, m) }
        if v.exported || !detections.isEmpty { return eval(.partiallyMet, why + trailWhy, m, fix) }
        return eval(.notMet, why + trailWhy, m, fix)
    }

    // MARK: Device

    static func p21(_ f: DeploymentFacts) -> PrincipleEvaluation {
        let d = f.decisions, dev = f.devices
        let enrolled = ratio("decisions_enrolled_device", T("Decisions on requests from enrolled devices", "來自已註冊設備之請求決策"), d.fromEnrolledDevice, of: d.decided)
        let m = [
            enrolled,
            ratio("decisions_hardware_bound", T("Decisions on requests from hardware-bound (TPM) devices", "來自硬體綁定（TPM）設備之請求決策"), d.fromHardwareBoundDevice, of: d.decided),
            count("devices_active", T("Active devices in the inventory", "設備清冊中之啟用設備"), dev.active),
            ratio("devices_hardware_bound", T("Active devices with a hardware-bound identity", "具硬體綁定身分之啟用設備"), dev.hardwareBound, of: dev.active),
            flag("client_certificates", T("Gateway asks for device certificates", "閘道要求設備憑證"), dev.clientCertificatesConfigured),
            Measurement.count("unmanaged_device_detections", T("Detections of unmanaged-device access", "非受管設備存取之偵測規則"),
                              f.visibility.detections(for: "device").count, query: f.visibility.detections.query),
        ]
        let why = T("\(describe(enrolled)) of decisions came from enrolled devices (met at \(percent(enrolledDeviceShare)) with device certificates required); \(dev.active.value) active devices, \(dev.hardwareBound.value) hardware-bound; device certificates \(dev.clientCertificatesConfigured.value ? "asked for" : "not asked for").",
                    "\(describe(enrolled)) 的決策來自已註冊設備（達 \(percent(enrolledDeviceShare)) 且要求設備憑證為符合）；啟用設備 \(dev.active.value) 台，硬體綁定 \(dev.hardwareBound.value) 台；設備憑證\(dev.clientCertificatesConfigured.value ? "已要求" : "未要求")。")
        let fix = T("Set gateway.tls.client_ca_file, enrol every device (menshen agent enrol --tpm) and require context.device.enrolled in policies.",
                    "設定 gateway.tls.client_ca_file，註冊所有設備（menshen agent enrol --tpm），並於政策要求 context.device.enrolled。")
        guard dev.clientCertificatesConfigured.value, dev.active.value > 0 else { return eval(.notMet, why, m, fix) }
        if d.decided.value > 0 && atLeast(d.fromEnrolledDevice.value, d.decided.value, enrolledDeviceShare) { return eval(.met, why, m) }
        return eval(.partiallyMet, why, m, fix)
    }

    static func p22(_ f: DeploymentFacts) -> PrincipleEvaluation {
        let dev = f.devices
        let fresh = ratio("devices_posture_fresh", T("Active devices with a posture younger than their class's limit", "姿態未逾其類別時限之啟用設備"), dev.postureFresh, of: dev.active)
        let m = [fresh, ratio("devices_compliant", T("Active devices compliant", "合規之啟用設備"), dev.compliant, of: dev.active),
                 flag("advisories", T("Vulnerability advisories matched against device packages", "設備套件比對弱點公告"), dev.advisoriesConfigured)]
        let why = T("\(describe(fresh)) of active devices reported a fresh posture (met at \(percent(freshPostureShare))); advisories \(dev.advisoriesConfigured.value ? "configured" : "not configured"); a device turning non-compliant ends its owner's sessions.",
                    "\(describe(fresh)) 的啟用設備姿態回報未逾時（達 \(percent(freshPostureShare)) 為符合）；弱點公告\(dev.advisoriesConfigured.value ? "已設定" : "未設定")；設備轉為不合規時即終止其擁有者之工作階段。")
        let fix = T("Set device.advisories_dir and have every device report its posture (menshen agent report) within its class's max_posture_age_seconds.",
                    "設定 device.advisories_dir，並讓所有設備於類別時限內回報姿態（menshen agent report）。")
        guard dev.active.value > 0 else {
            return eval(.notMet, T("No active device is enrolled, so no compliance is checked.", "無啟用之註冊設備，未進行合規檢查。"), m, fix)
        }
        let freshOK = atLeast(dev.postureFresh.value, dev.active.value, freshPostureShare)
        if dev.advisoriesConfigured.value && freshOK && dev.baselinesProblem == nil { return eval(.met, why, m) }
        if dev.advisoriesConfigured.value || atLeast(dev.postureFresh.value, dev.active.value, partialShare) { return eval(.partiallyMet, why, m, fix) }
        return eval(.notMet, why, m, fix)
    }

    static func p23(_ f: DeploymentFacts) -> PrincipleEvaluation {
        let baselines = f.devices.baselines.value
        let policies = f.policies.inForce.value.filter { $0.text.contains("context.device.compliant") || $0.text.contains("context.device.external") }
        let managed = baselines.first { $0.deviceClass == "managed" }
        var weaker: [String] = []
        for b in baselines where b.deviceClass != "managed" {
            guard let managed else { break }
            let w = b.weaker(than: managed)
            if !w.isEmpty { weaker.append("\(b.deviceClass): \(w.joined(separator: ", "))") }
        }
        let m = [
            Measurement.count("external_baselines_weaker", T("External device classes with a baseline weaker than managed", "基準弱於受管設備之外部設備類別"),
                              weaker.count, query: f.devices.baselines.query),
            policyCount("policies_device_compliance", T("Policies requiring a compliant (or non-external) device", "要求合規（或非外部）設備之政策"), policies, f),
        ]
        let fix = T("Give byod and vendor devices a baseline at least as strict as managed (device.compliance_file), or leave their class out so they are never compliant, and require context.device.compliant on the routes they use.",
                    "為 BYOD 與廠商設備設定不低於受管設備之基準（device.compliance_file），或不列其類別使其永不合規，並於其使用之路由要求 context.device.compliant。")
        if let problem = f.devices.baselinesProblem {
            return eval(.notMet, T("The compliance baselines do not load: \(problem)", "合規基準無法載入：\(problem)"), m, fix)
        }
        guard managed != nil else {
            return eval(.notMet, T("There is no baseline for managed devices to compare external devices with.", "無受管設備基準可供比較外部設備。"), m, fix)
        }
        let why = T("\(weaker.isEmpty ? "No external device class has a weaker baseline than managed devices" : "Weaker external baselines: \(weaker.joined(separator: "; "))"); \(policies.count) policies require a compliant device.",
                    "\(weaker.isEmpty ? "外部設備類別之基準皆不弱於受管設備" : "較弱之外部基準：\(weaker.joined(separator: "；"))")；\(policies.count) 項政策要求合規設備。")
        if !weaker.isEmpty { return eval(.notMet, why, m, fix) }
        return policies.isEmpty ? eval(.partiallyMet, why, m, fix) : eval(.met, why, m)
    }

    static func p24(_ f: DeploymentFacts, _ routes: [RouteAssessment]) -> PrincipleEvaluation {
        let device = f.policies.inForce.value.filter(\.usesDevice)
        let checks = routes.flatMap { r in r.checks.filter { $0.principleID == "2.4" } }
        let m = [
            policyCount("policies_device_attributes", T("Policies using device attributes", "使用設備屬性之政策"), device, f),
            Measurement.ratio("routes_device_policy", T("Routes with a policy on device attributes", "具設備屬性政策之路由"),
                              checks.filter(\.holds).count, of: checks.count, query: routesQuery(f)),
            flag("client_certificates", T("Gateway asks for device certificates", "閘道要求設備憑證"), f.devices.clientCertificatesConfigured),
            count("compliance_changes", T("Device compliance changes in the window (each non-compliance ends the owner's sessions)", "期間內設備合規狀態變更（轉為不合規即終止擁有者工作階段）"), f.decisions.complianceChanges),
        ]
        let held = checks.filter(\.holds).count
        let why = T("\(held) of \(checks.count) routes have a policy on device attributes; device certificates \(f.devices.clientCertificatesConfigured.value ? "are" : "are not") asked for, so the attributes \(f.devices.clientCertificatesConfigured.value ? "reach" : "cannot reach") decisions.",
                    "\(checks.count) 條路由中 \(held) 條具設備屬性政策；設備憑證\(f.devices.clientCertificatesConfigured.value ? "已要求，屬性可進入決策" : "未要求，屬性無法進入決策")。")
        let fix = T("Set gateway.tls.client_ca_file and condition every route on context.device (compliant, managed, external).",
                    "設定 gateway.tls.client_ca_file，並使每條路由以 context.device（合規、受管、外部）為條件。")
        guard !checks.isEmpty else { return eval(.notMet, T("There are no routes.", "沒有任何路由。"), m, fix) }
        if held == checks.count && f.devices.clientCertificatesConfigured.value { return eval(.met, why, m) }
        if held > 0 { return eval(.partiallyMet, why, m, fix) }
        return eval(.notMet, why, m, fix)
    }

    static func p25(_ f: DeploymentFacts) -> PrincipleEvaluation {
        let baselines = f.devices.baselines.value
        let edr = baselines.filter(\.requireEDR)
        let m = [Measurement.ratio("baselines_require_edr", T("Device baselines requiring a running EDR", "要求 EDR 執行中之設備基準"),
                                   edr.count, of: baselines.count, query: f.devices.baselines.query)]
        let missing = T("Menshen ingests no EDR indicators of compromise and has no playbook action that isolates a device; only the EDR's running state is checked in the posture.",
                        "Menshen 尚未接收 EDR 入侵指標，亦無隔離設備之劇本動作；僅於設備姿態中檢查 EDR 是否執行。")
        let fix = T("Require an EDR in every baseline; isolating devices on EDR indicators needs a feature Menshen does not have yet.",
                    "於所有基準要求 EDR；依 EDR 指標隔離設備需 Menshen 尚未提供之功能。")
        if !baselines.isEmpty && edr.count == baselines.count && f.devices.baselinesProblem == nil {
            return eval(.partiallyMet, T("Every baseline requires a running EDR (a device without one is non-compliant and its owner's sessions end). ", "所有基準皆要求 EDR 執行中（未執行者不合規並終止其工作階段）。") + missing, m, fix)
        }
        return eval(.notMet, T("\(edr.count) of \(baselines.count) baselines require an EDR. ", "\(baselines.count) 項基準中 \(edr.count) 項要求 EDR。") + missing, m, fix)
    }

    // MARK: Network

    static func p31(_ f: DeploymentFacts, _ attestations: [Attestation], _ now: Date) -> PrincipleEvaluation {
        let open = f.policies.inForce.value.filter(\.isUnconditionalGlobalPermit)
        let measured = [
            Measurement.count("routes", T("Applications reachable only through the gateway's routes", "僅經閘道路由存取之應用程式"), f.network.routes.value.count, query: routesQuery(f)),
            policyCount("unconditional_global_permits", T("Permits for everyone on every application (defeat default deny)", "對所有人開放所有應用程式之許可（破壞預設拒絕）"), open, f),
        ]
        let att = attestationOnly("3.1", attestations, now, what: T("network segmentation: resources reachable only through the gateway, least connections between segments",
                                                                   "網路區隔：資源僅能經閘道存取，區段間連線最小化"))
        var e = att
        e.measurements = measured + att.measurements
        if !open.isEmpty {
            e.verdict = .notMet
            e.rationale = T("Policies \(open.map(\.id).joined(separator: ", ")) permit every user on every application, so the gateway does not restrict connections. ",
                            "政策 \(open.map(\.id).joined(separator: "、")) 允許所有使用者存取所有應用程式，閘道未限制連線。") + att.rationale
            e.remedy = T("Remove the unconditional permits; grant per application.", "移除無條件許可，改為逐應用程式授權。")
        }
        return e
    }

    static func p32(_ f: DeploymentFacts, _ routes: [RouteAssessment]) -> PrincipleEvaluation {
        routeShare(f, routes, principle: "3.2", label: T("Routes authorized per application on identity and dynamic attributes", "依身分及動態屬性逐應用程式授權之路由"),
                   fix: T("Give every route its own permit conditioned on the user (groups, kind, LoA) and on device state or time.",
                          "為每條路由撰寫專屬許可，以使用者（群組、類型、保證等級）及設備狀態或時間為條件。"))
    }

    static func p34(_ f: DeploymentFacts, _ routes: [RouteAssessment]) -> PrincipleEvaluation {
        var e = routeShare(f, routes, principle: "3.4", label: T("Routes with TLS on both legs", "兩段皆加密（TLS）之路由"),
                           fix: T("Serve the gateway over TLS (gateway.tls.*), use https:// upstreams (or the same host), and an https:// portal URL.",
                                  "閘道以 TLS 提供服務（gateway.tls.*），上游使用 https://（或同一主機），入口網站網址使用 https://。"))
        e.measurements += [flag("gateway_tls", T("Gateway serves HTTPS itself", "閘道本身提供 HTTPS"), f.network.gatewayServesTLS),
                           flag("portal_https", T("Portal URL is https://", "入口網站網址為 https://"), f.network.portalURLIsHTTPS)]
        if e.verdict == .met && !f.network.portalURLIsHTTPS.value {
            e.verdict = .partiallyMet
            e.rationale = e.rationale + T(" The portal, where passwords and factors are entered, is not on https://.", " 輸入密碼與驗證因子之入口網站未使用 https://。")
            e.remedy = T("Publish the portal at an https:// URL (server.public_url).", "以 https:// 網址發布入口網站（server.public_url）。")
        }
        return e
    }

    static func p35(_ f: DeploymentFacts) -> PrincipleEvaluation {
        let routes = f.network.routes.value
        let redundant = routes.filter { $0.upstreams.count >= 2 }
        let responding = f.visibility.detections(for: "network").filter { !$0.respondingPlaybooks.isEmpty }
        let m = [Measurement.ratio("routes_failover", T("Routes with a fail-over upstream", "具備援上游之路由"), redundant.count, of: routes.count, query: routesQuery(f)),
                 Measurement.count("network_detections_isolating", T("Network detections answered by a playbook (sessions revoked, user disabled…)", "有劇本回應之網路偵測（撤銷工作階段、停用帳號…）"),
                                   responding.count, query: f.visibility.detections.query)]
        let why = T("\(redundant.count) of \(routes.count) routes can fail over (upstreams are health-checked by TCP); \(responding.count) network detections trigger an isolating playbook.",
                    "\(routes.count) 條路由中 \(redundant.count) 條可切換備援（以 TCP 檢查上游健康）；\(responding.count) 項網路偵測會觸發隔離劇本。")
        let fix = T("List a second upstream for every route and bind playbooks that revoke sessions to the network detections.",
                    "為每條路由設定第二個上游，並為網路偵測設定撤銷工作階段之劇本。")
        if !routes.isEmpty && redundant.count == routes.count && !responding.isEmpty { return eval(.met, why, m) }
        if !redundant.isEmpty || !responding.isEmpty { return eval(.partiallyMet, why, m, fix) }
        return eval(.notMet, why, m, fix)
    }

    /// 3.7 and 4.7: managed as code — a routes file every route comes from, reloaded automatically.
    static func asCode(_ f: DeploymentFacts, what: LocalizedText) -> PrincipleEvaluation {
        let routes = f.network.routes.value
        let fromFile = routes.filter { $0.source == "file" }
        let m = [flag("routes_file", T("Routes file configured (reloaded automatically)", "已設定路由檔（自動重新載入）"), f.network.routesFileConfigured),
                 Measurement.ratio("routes_from_file", T("Routes declared in the routes file", "於路由檔宣告之路由"), fromFile.count, of: routes.count, query: routesQuery(f))]
        let why = T("\(fromFile.count) of \(routes.count) routes are declared in a routes file (\(what.en) as code, rolled out by the reload); the others were saved in the store by hand.",
                    "\(routes.count) 條路由中 \(fromFile.count) 條於路由檔宣告（\(what.zhTW)以程式碼管理並自動重新載入）；其餘為手動存入資料庫。")
        let fix = T("Declare every application and its policies in gateway.routes_file kept under version control.",
                    "將所有應用程式及其政策宣告於納入版本控制之 gateway.routes_file。")
        guard f.network.routesFileConfigured.value, !fromFile.isEmpty else { return eval(.notMet, why, m, fix) }
        return fromFile.count == routes.count ? eval(.met, why, m) : eval(.partiallyMet, why, m, fix)
    }

    // MARK: Application

    /// 4.1: privileged roles separate from ordinary ones. Holding both is not mixing when the two are never active
    /// in one session (Menshen's privileged-work sessions: ``DeploymentFacts/Roles/ordinarySessionsMayHoldPrivileged``).
    static func p41(_ f: DeploymentFacts) -> PrincipleEvaluation {
        let roles = f.roles.roles.value
        let privileged = roles.filter { $0.tier == "privileged" }
        let privilegedIDs = Set(privileged.map(\.id))
        let referencing = f.policies.inForce.value.filter { !Set($0.roleReferences).isDisjoint(with: privilegedIDs) }
        let holdingBoth = f.roles.usersMixingPrivileged.value
        let separated = !f.roles.ordinarySessionsMayHoldPrivileged.value
        let mixing = separated ? [] : holdingBoth
        let m = [
            Measurement.count("roles_with_tier", T("Roles with a risk tier", "具風險等級之角色"), roles.count, query: f.roles.roles.query),
            Measurement.count("privileged_roles", T("Privileged roles", "特權角色"), privileged.count, query: f.roles.roles.query),
            count("users_privileged", T("Users holding a privileged role", "持有特權角色之使用者"), f.roles.usersHoldingPrivileged),
            Measurement.count("users_holding_both_tiers", T("Users holding privileged and ordinary roles", "同時持有特權與一般角色之使用者"), holdingBoth.count,
                              query: f.roles.usersMixingPrivileged.query),
            flag("ordinary_sessions_hold_privileged", T("Ordinary sessions can act in a privileged role (a design fact of the code)", "一般工作階段可使用特權角色（程式設計事實）"),
                 f.roles.ordinarySessionsMayHoldPrivileged),
            Measurement.count("users_mixing_privileged", T("Users mixing privileged and ordinary work in one session", "於同一工作階段混用特權與一般作業之使用者"), mixing.count,
                              query: separated ? "0: no session acts in both tiers (\(f.roles.ordinarySessionsMayHoldPrivileged.query))"
                                               : "every user holding both tiers (\(f.roles.usersMixingPrivileged.query)), as ordinary sessions may act in privileged roles"),
            policyCount("policies_privileged_roles", T("Policies conditioned on a privileged role", "以特權角色為條件之政策"), referencing, f),
        ]
        let fix = T("Give privileged work dedicated roles used only in privileged-work sessions, and write policies requiring a higher assurance for them.",
                    "特權作業以專用角色於特權作業工作階段執行，並撰寫要求其更高保證等級之政策。")
        guard !privileged.isEmpty else {
            return eval(.notMet, T("\(roles.count) roles, none privileged: privileged operations are not separated into dedicated roles.",
                                   "共 \(roles.count) 個角色，無特權角色：特權作業未分離至專用角色。"), m, fix)
        }
        let both = holdingBoth.isEmpty ? T("none also holds an ordinary role", "無人同時持有一般角色")
            : separated ? T("\(holdingBoth.joined(separator: ", ")) also hold ordinary roles, but the privileged ones act only in separate, time-bound privileged-work sessions, never with the ordinary ones",
                            "\(holdingBoth.joined(separator: "、")) 亦持有一般角色，但特權角色僅於獨立、限時之特權作業工作階段中生效，不與一般角色混用")
            : T("mixed with ordinary roles in the same sessions by: \(holdingBoth.joined(separator: ", "))", "於同一工作階段混用一般角色者：\(holdingBoth.joined(separator: "、"))")
        let why = T("\(privileged.count) privileged roles held by \(f.roles.usersHoldingPrivileged.value) users; ", "\(privileged.count) 個特權角色由 \(f.roles.usersHoldingPrivileged.value) 位使用者持有；")
            + both + T("; \(referencing.count) policies condition on a privileged role.", "；\(referencing.count) 項政策以特權角色為條件。")
        if !mixing.isEmpty { return eval(.notMet, why, m, fix) }
        return referencing.isEmpty ? eval(.partiallyMet, why, m, fix) : eval(.met, why, m)
    }

    /// 4.2: privileged access only on demand and time-bound. In Menshen privileged roles act only in a privileged-work
    /// session (`SessionManager.startPrivileged`: a fresh LoA 3 proof, at most `identity.session.privileged_lifetime_seconds`,
    /// the privileged roles only); ordinary sessions never carry them.
    static func p42(_ f: DeploymentFacts) -> PrincipleEvaluation {
        let r = f.roles
        let privileged = r.roles.value.filter { $0.tier == "privileged" }
        let lifetime = r.privilegedSessionLifetimeSeconds.value
        let m = [
            Measurement.count("privileged_roles", T("Privileged roles", "特權角色"), privileged.count, query: r.roles.query),
            count("users_privileged", T("Users holding a privileged role", "持有特權角色之使用者"), r.usersHoldingPrivileged),
            flag("ordinary_sessions_hold_privileged", T("Ordinary sessions can act in a privileged role (a design fact of the code)", "一般工作階段可使用特權角色（程式設計事實）"),
                 r.ordinarySessionsMayHoldPrivileged),
            Measurement(id: "privileged_session_lifetime_seconds", label: T("Longest privileged-work session", "特權作業工作階段之最長時限"),
                        value: lifetime.map(Double.init), unit: .seconds, query: r.privilegedSessionLifetimeSeconds.query),
            count("privileged_sessions_started", T("Privileged-work sessions started in the window", "期間內啟動之特權作業工作階段"), r.privilegedSessionsStarted),
        ]
        guard !privileged.isEmpty else {
            return eval(.notApplicable, T("There is no privileged role, so there is no privileged access to bound in time (4.1 reports the missing separation).",
                                          "無特權角色，故無需限時之特權存取（缺少角色分離由 4.1 呈現）。"), m)
        }
        let fix = T("Keep privileged work in privileged-work sessions (account page, after a fresh LoA 3 proof) with identity.session.privileged_lifetime_seconds of at most \(maximumPrivilegedLifetimeSeconds / 3600) hours, and have administrators use them instead of standing access.",
                    "特權作業僅於特權作業工作階段進行（帳號頁面，須先以 LoA 3 重新驗證），identity.session.privileged_lifetime_seconds 不超過 \(maximumPrivilegedLifetimeSeconds / 3600) 小時，並由管理者改用此方式取代常駐權限。")
        if r.ordinarySessionsMayHoldPrivileged.value {
            return eval(.notMet, T("Ordinary sessions can act in privileged roles: privileged access is standing, not on demand.",
                                   "一般工作階段可使用特權角色：特權存取為常駐而非依需求授予。"), m, fix)
        }
        guard let lifetime else {
            return eval(.notMet, T("The privileged-work session lifetime is not known.", "特權作業工作階段時限不明。"), m, fix)
        }
        let started = r.privilegedSessionsStarted.value
        let why = T("\(privileged.count) privileged roles (held by \(r.usersHoldingPrivileged.value) users) are active only in privileged-work sessions, started on demand after a fresh LoA 3 proof and ending after at most \(lifetime / 60) minutes (time-bound up to \(maximumPrivilegedLifetimeSeconds / 3600) hours); ordinary sessions never carry them. \(started) privileged-work sessions started in the window.",
                    "\(privileged.count) 個特權角色（\(r.usersHoldingPrivileged.value) 位使用者持有）僅於特權作業工作階段中生效，須先以 LoA 3 重新驗證方可依需求啟動，最長 \(lifetime / 60) 分鐘後結束（\(maximumPrivilegedLifetimeSeconds / 3600) 小時內視為限時）；一般工作階段不具特權角色。期間內啟動 \(started) 次特權作業工作階段。")
        if lifetime > maximumPrivilegedLifetimeSeconds {
            return eval(.partiallyMet, why + T(" The lifetime is longer than \(maximumPrivilegedLifetimeSeconds / 3600) hours.", " 時限超過 \(maximumPrivilegedLifetimeSeconds / 3600) 小時。"), m, fix)
        }
        if started == 0 {
            return eval(.partiallyMet, why + T(" No privileged-work session was used in the window, so the time-bound path is not shown in use.",
                                               " 期間內未使用特權作業工作階段，無法證明限時機制實際運作。"), m, fix)
        }
        return eval(.met, why, m)
    }

    static func p43(_ f: DeploymentFacts) -> PrincipleEvaluation {
        let risk = f.policies.inForce.value.filter(\.usesRisk)
        let detections = f.visibility.detections.value
        let m = [Measurement.count("behaviour_detections", T("Detections with per-user baselines and risk scores running", "執行中之個人行為基準與風險分數偵測"), detections.count,
                                   query: f.visibility.detections.query),
                 policyCount("policies_using_risk", T("Policies conditioned on the risk score", "以風險分數為條件之政策"), risk, f)]
        let why = T("\(detections.count) detections feed per-user baselines and a 0–100 risk score; \(risk.count) policies read context.risk.score.",
                    "\(detections.count) 項偵測提供個人行為基準與 0–100 風險分數；\(risk.count) 項政策讀取 context.risk.score。")
        let fix = runningDetections(f.visibility, T("Write a policy that steps up or denies above a risk score (context.risk.score).",
                                                    "撰寫於風險分數超過門檻時要求升級驗證或拒絕之政策（context.risk.score）。"))
        if detections.isEmpty { return eval(.notMet, why, m, fix) }
        return risk.isEmpty ? eval(.partiallyMet, why, m, fix) : eval(.met, why, m)
    }

    // MARK: Data

    static func p52(_ f: DeploymentFacts) -> PrincipleEvaluation {
        let detections = f.visibility.detections(for: "data")
        let responded = detections.filter { !$0.respondingPlaybooks.isEmpty }
        let m = [Measurement.count("exfiltration_detections", T("Data-volume and exfiltration detections", "資料量與外洩偵測"), detections.count, query: f.visibility.detections.query),
                 Measurement.count("exfiltration_detections_with_playbook", T("… answered by a playbook", "其中有劇本回應者"), responded.count, query: f.visibility.detections.query)]
        let why = T("\(detections.count) data detections (\(detections.map(\.title).joined(separator: "; "))) compare use with per-user baselines; \(responded.count) answered by a playbook that acts.",
                    "\(detections.count) 項資料偵測（\(detections.map(\.title).joined(separator: "；"))）比對個人使用基準；\(responded.count) 項有採取行動之劇本回應。")
        let fix = runningDetections(f.visibility, T("Bind a playbook (revoke_sessions, require_step_up) to the abnormal download volume detection.",
                                                    "為異常下載量偵測設定劇本（revoke_sessions、require_step_up）。"))
        if detections.isEmpty { return eval(.notMet, why, m, fix) }
        return responded.isEmpty ? eval(.partiallyMet, why, m, fix) : eval(.met, why, m)
    }

    static func p53(_ f: DeploymentFacts, _ routes: [RouteAssessment]) -> PrincipleEvaluation {
        var e = routeShare(f, routes, principle: "5.3", label: T("Routes with a classification label", "具分類標籤之路由"),
                           fix: T("Label every route and write policies on resource.classification.", "為每條路由加上分類標籤，並撰寫以 resource.classification 為條件之政策。"))
        let cls = f.policies.inForce.value.filter(\.usesClassification)
        e.measurements.append(policyCount("policies_using_classification", T("Policies conditioned on classification", "以資料分類為條件之政策"), cls, f))
        if e.verdict == .met && cls.isEmpty {
            e.verdict = .partiallyMet
            e.rationale = e.rationale + T(" No policy is conditioned on the classification, so protection does not follow it.", " 無任何政策以分類為條件，防護未依分類而異。")
            e.remedy = T("Write policies on resource.classification (e.g. restricted needs LoA 3).", "撰寫以 resource.classification 為條件之政策（例如 restricted 需 LoA 3）。")
        } else if e.verdict == .met {
            e.rationale = e.rationale + T(" \(cls.count) policies are conditioned on it.", " \(cls.count) 項政策以分類為條件。")
        }
        return e
    }

    static func p55(_ f: DeploymentFacts, _ routes: [RouteAssessment]) -> PrincipleEvaluation {
        // Not applicable only when every route and policy was read: a routes file that does not load may hold sensitive routes.
        if f.policies.problem == nil && !f.network.routes.value.isEmpty && !f.network.routes.value.contains(where: \.isSensitive) {
            return eval(.notApplicable, T("No route is classified confidential or restricted.", "沒有任何路由分類為 confidential 或 restricted。"),
                        [Measurement.count("sensitive_routes", T("Routes classified confidential or restricted", "分類為機密或限閱之路由"), 0, query: routesQuery(f))])
        }
        var e = routeShare(f, routes, principle: "5.5", label: T("Sensitive routes requiring step-up or a fresh factor", "要求升級驗證或因子時效之敏感路由"),
                           fix: T("Add @obligation(\"step_up:loa=3;max_age=900\") policies to every confidential and restricted route.",
                                  "為每條 confidential 與 restricted 路由加上 @obligation(\"step_up:loa=3;max_age=900\") 政策。"))
        e.measurements += [count("decisions_stepped_up", T("Decisions that asked for a step-up", "要求升級驗證之決策"), f.decisions.steppedUp),
                           count("stepups_completed", T("Step-ups completed", "完成之升級驗證"), f.identity.stepUpsCompleted)]
        return e
    }

    static func p56(_ f: DeploymentFacts) -> PrincipleEvaluation {
        let d = f.data
        let age = d.secretsKeyAgeDays.value
        let m = [flag("secrets_key_present", T("Secrets key present", "機密加密金鑰存在"), d.secretsKeyPresent),
                 flag("secrets_key_owner_only", T("Secrets key readable by its owner only", "機密加密金鑰僅擁有者可讀"), d.secretsKeyOwnerOnly),
                 Measurement(id: "secrets_key_age_days", label: T("Days since the secrets key was written", "機密加密金鑰寫入後天數"),
                             value: age.map(Double.init), unit: .days, query: d.secretsKeyAgeDays.query),
                 ratio("totp_sealed", T("TOTP seeds sealed at rest", "靜態加密之 TOTP 種子"), d.totpCredentialsSealed, of: d.totpCredentials)]
        let fix = T("Keep identity.secrets_key_file present with mode 0600 and replace it within \(maximumKeyAgeDays) days (re-enrol TOTP after rotation).",
                    "保持 identity.secrets_key_file 存在且權限為 0600，並於 \(maximumKeyAgeDays) 天內更換（更換後重新註冊 TOTP）。")
        let sealed = d.totpCredentialsSealed.value == d.totpCredentials.value
        let why = T("Secrets key \(d.secretsKeyPresent.value ? "present" : "missing")\(d.secretsKeyPresent.value ? (d.secretsKeyOwnerOnly.value ? ", owner-only" : ", readable by others") : "")\(age.map { ", \($0) days old" } ?? ""); \(d.totpCredentialsSealed.value) of \(d.totpCredentials.value) TOTP seeds sealed (AES-GCM); passwords, session ids and tokens are stored only as hashes.",
                    "機密加密金鑰\(d.secretsKeyPresent.value ? "存在" : "不存在")\(d.secretsKeyPresent.value ? (d.secretsKeyOwnerOnly.value ? "，僅擁有者可讀" : "，他人可讀") : "")\(age.map { "，已 \($0) 天" } ?? "")；\(d.totpCredentials.value) 個 TOTP 種子中 \(d.totpCredentialsSealed.value) 個已加密（AES-GCM）；密碼、工作階段 ID 與權杖僅存雜湊。")
        guard d.secretsKeyPresent.value, sealed else { return eval(.notMet, why, m, fix) }
        if d.secretsKeyOwnerOnly.value, let age, age <= maximumKeyAgeDays { return eval(.met, why, m) }
        return eval(.partiallyMet, why, m, fix)
    }

    // MARK: Automated governance and traffic management (partially met at best)

    /// 1.7: of automated identity governance Menshen has one part — a playbook that disables an account when the
    /// dormant-account detection sees it come back to life. No SCIM, no scheduled access reviews: never met.
    static func p17(_ f: DeploymentFacts) -> PrincipleEvaluation {
        let dormant = f.visibility.detections.value.first { $0.title == dormantAccountDetection }
        let disabling = dormant.map { $0.respondingActions.contains("disable_user") } ?? false
        let m = [Measurement.flag("dormant_accounts_disabled", T("A playbook disables a dormant account that becomes active (disable_user on \"\(dormantAccountDetection)\")",
                                                                   "閒置帳號突然活動時由劇本停用（「\(dormantAccountDetection)」之 disable_user）"),
                                  disabling, query: f.visibility.detections.query)]
        let missing = T(" Menshen has no automated provisioning or deprovisioning (SCIM) and no scheduled access reviews, so this is never met.",
                        " Menshen 尚無自動化帳號供裝與撤銷（SCIM）及定期權限覆核，故無法完全符合。")
        let fix = T("Bind a playbook with disable_user to the dormant-account detection; SCIM provisioning and access reviews need features Menshen does not have yet.",
                    "為閒置帳號偵測設定含 disable_user 之劇本；SCIM 供裝與權限覆核需 Menshen 尚未提供之功能。")
        if disabling {
            return eval(.partiallyMet, T("Dormant accounts that become active are disabled automatically by playbook \(dormant?.respondingPlaybooks.joined(separator: ", ") ?? "").",
                                         "閒置帳號突然活動時由劇本 \(dormant?.respondingPlaybooks.joined(separator: "、") ?? "") 自動停用。") + missing, m, fix)
        }
        return eval(.notMet, T("No playbook disables a dormant account that becomes active (the dormant-account detection only raises a finding).",
                               "無劇本於閒置帳號突然活動時停用該帳號（閒置帳號偵測僅產生告警）。") + missing, m, fix)
    }

    /// 3.3: from a single device, the applications it reached — decisions name the device (`device.uid`) and
    /// `menshen audit search --device` lists them. No map of dependencies between systems and no traffic-volume
    /// anomaly detection on network flows: never met.
    static func p33(_ f: DeploymentFacts) -> PrincipleEvaluation {
        let d = f.decisions.withDeviceID
        let m = [count("decisions_with_device_id", T("Decisions naming the device (device.uid), searchable per device", "記錄設備識別（device.uid）並可依設備查詢之決策"), d),
                 flag("client_certificates", T("Gateway asks for device certificates", "閘道要求設備憑證"), f.devices.clientCertificatesConfigured)]
        let missing = T(" Menshen draws no map of the dependencies between systems, endpoints and networks and has no traffic-volume anomaly detection on network flows, so this is never met.",
                        " Menshen 尚無系統、端點與網路間之連線相依關係圖，亦無網路流量異常偵測，故無法完全符合。")
        let fix = T("Ask for device certificates (gateway.tls.client_ca_file) so every decision names its device (menshen audit search --device); a dependency map and flow anomaly detection need features Menshen does not have yet.",
                    "要求設備憑證（gateway.tls.client_ca_file），使每筆決策記錄其設備（menshen audit search --device）；相依關係圖與流量異常偵測需 Menshen 尚未提供之功能。")
        if d.value > 0 {
            return eval(.partiallyMet, T("\(d.value) decisions in the window name the device they came from, so for one device the applications it reached can be listed (menshen audit search --device).",
                                         "期間內 \(d.value) 筆決策記錄其來源設備，可依單一設備列出其存取之應用程式（menshen audit search --device）。") + missing, m, fix)
        }
        return eval(.notMet, T("No decision in the window names a device, so nothing can be seen per device.", "期間內無決策記錄設備，無法依設備檢視。") + missing, m, fix)
    }

    /// 5.8: data lifecycle as code — classification labels in the routes file and the audit log's retention
    /// (`audit.retention_days`) are configuration; the protected applications' own data retention is not modelled: never met.
    static func p58(_ f: DeploymentFacts) -> PrincipleEvaluation {
        let routes = f.network.routes.value
        let labelled = routes.filter { $0.source == "file" && classificationLabels.contains($0.classification) }
        let days = f.data.auditRetentionDays.value
        let m = [flag("routes_file", T("Routes file configured (classification labels as code)", "已設定路由檔（分類標籤以程式碼管理）"), f.network.routesFileConfigured),
                 Measurement.ratio("routes_labelled_in_file", T("Routes labelled in the routes file", "於路由檔標示分類之路由"), labelled.count, of: routes.count, query: routesQuery(f)),
                 Measurement(id: "audit_retention_days", label: T("Audit log retention (days; 0: kept for ever)", "稽核日誌保存期限（天；0 為永久保存）"),
                             value: Double(days), unit: .days, query: f.data.auditRetentionDays.query)]
        let missing = T(" Retention of the protected applications' own data is not modelled in Menshen, so this is never met.",
                        " Menshen 未建立受保護應用程式本身資料之保存期限模型，故無法完全符合。")
        let fix = T("Label every route in gateway.routes_file and set audit.retention_days (with audit.retention_export_dir); rules for the applications' data retention need a feature Menshen does not have yet.",
                    "於 gateway.routes_file 為每條路由標示分類，並設定 audit.retention_days（及 audit.retention_export_dir）；應用程式資料保存規則需 Menshen 尚未提供之功能。")
        let why = T("\(labelled.count) of \(routes.count) routes are labelled in the routes file; the audit log is \(days > 0 ? "kept \(days) days, then exported and pruned on schedule" : "kept for ever (audit.retention_days = 0)").",
                    "\(routes.count) 條路由中 \(labelled.count) 條於路由檔標示分類；稽核日誌\(days > 0 ? "保存 \(days) 天後依排程匯出並刪除" : "永久保存（audit.retention_days = 0）")。")
        if f.network.routesFileConfigured.value && !routes.isEmpty && labelled.count == routes.count && days > 0 {
            return eval(.partiallyMet, why + missing, m, fix)
        }
        return eval(.notMet, why + missing, m, fix)
    }

    // MARK: Attestations and missing features

    /// Met only with a valid (unexpired, unrevoked) attestation that carries at least one evidence file.
    static func attestationOnly(_ id: String, _ attestations: [Attestation], _ now: Date, what: LocalizedText) -> PrincipleEvaluation {
        let mine = attestations.filter { $0.principleID == id }.sorted { $0.attestedAt > $1.attestedAt }
        let valid = mine.filter { $0.state(at: now) == .valid }
        let backed = valid.filter { !$0.files.isEmpty }
        let m = [Measurement.count("valid_attestations", T("Valid attestations with evidence files", "具證據檔之有效聲明"), backed.count,
                                   query: "attestations for principle \(id) neither revoked nor expired at \(day(now)), with at least one evidence file (SHA-256 recorded)")]
        let fix = T("Record an attestation of \(what.en) with its evidence files (menshen attest).", "以 menshen attest 記錄\(what.zhTW)之聲明及其證據檔。")
        let basis = T("Menshen cannot observe \(what.en); only an attestation can show it.", "Menshen 無法觀察\(what.zhTW)，僅能以聲明佐證。")
        if let a = backed.first {
            return eval(.met, basis + T(" Attested by \(a.attestedBy) on \(day(a.attestedAt)), valid until \(day(a.expiresAt)), \(a.files.count) evidence file(s): \(a.files.map { "\($0.name) (sha256 \($0.sha256.prefix(12))…)" }.joined(separator: ", ")).",
                                        " 由 \(a.attestedBy) 於 \(day(a.attestedAt)) 聲明，有效至 \(day(a.expiresAt))，證據檔 \(a.files.count) 份：\(a.files.map { "\($0.name)（sha256 \($0.sha256.prefix(12))…）" }.joined(separator: "、"))。"), m)
        }
        if let a = valid.first {
            return eval(.notMet, basis + T(" The attestation by \(a.attestedBy) of \(day(a.attestedAt)) has no evidence file.", " \(a.attestedBy) 於 \(day(a.attestedAt)) 之聲明未附證據檔。"), m, fix)
        }
        if let a = mine.first {
            if a.state(at: now) == .revoked, let r = a.revokedAt {
                return eval(.notMet, basis + T(" The attestation by \(a.attestedBy) was revoked on \(day(r)).", " \(a.attestedBy) 之聲明已於 \(day(r)) 撤銷。"), m, fix)
            }
            return eval(.notMet, basis + T(" The attestation by \(a.attestedBy) expired on \(day(a.expiresAt)).", " \(a.attestedBy) 之聲明已於 \(day(a.expiresAt)) 到期。"), m, fix)
        }
        return eval(.notMet, basis + T(" There is no attestation.", " 尚無任何聲明。"), m, fix)
    }

    static func missing(_ feature: LocalizedText) -> PrincipleEvaluation {
        eval(.notMeasurable, T("Not measurable yet: Menshen does not have \(feature.en).", "尚無法量測：Menshen 尚未具備\(feature.zhTW)。"), [],
             T("Needs: \(feature.en).", "需要：\(feature.zhTW)。"))
    }

    // MARK: Helpers

    /// A principle judged by its route checks: met when every route's check holds, partially when some do, not met when none or no routes.
    static func routeShare(_ f: DeploymentFacts, _ routes: [RouteAssessment], principle: String, label: LocalizedText, fix: LocalizedText) -> PrincipleEvaluation {
        let checks = routes.flatMap { r in r.checks.filter { $0.principleID == principle }.map { (r.applicationID, $0) } }
        let held = checks.filter { $0.1.holds }
        let failing = checks.filter { !$0.1.holds }
        let m = [Measurement.ratio("routes_\(principle.replacingOccurrences(of: ".", with: "_"))", label, held.count, of: checks.count,
                                   query: routesQuery(f) + "; policies: " + f.policies.inForce.query)]
        if let problem = f.policies.problem {
            return eval(.notMet, T("The policy set does not load: \(problem)", "政策集無法載入：\(problem)"), m, fix)
        }
        guard !checks.isEmpty else { return eval(.notMet, T("There are no routes to measure.", "沒有可量測之路由。"), m, fix) }
        let why = T("\(held.count) of \(checks.count) routes hold\(failing.isEmpty ? "" : "; failing: " + failing.map { "\($0.0) (\($0.1.detail.en))" }.joined(separator: "; ")).",
                    "\(checks.count) 條路由中 \(held.count) 條符合\(failing.isEmpty ? "" : "；不符合：" + failing.map { "\($0.0)（\($0.1.detail.zhTW)）" }.joined(separator: "；"))。")
        if failing.isEmpty { return eval(.met, why, m) }
        return held.isEmpty ? eval(.notMet, why, m, fix) : eval(.partiallyMet, why, m, fix)
    }

    static func tlsCheck(_ r: DeploymentFacts.Network.Route, gatewayTLS: Bool) -> (holds: Bool, detail: LocalizedText) {
        var plain: [String] = []
        for u in r.upstreams {
            let c = URLComponents(string: u)
            let scheme = c?.scheme?.lowercased() ?? ""
            let host = (c?.host ?? "").lowercased()
            let loopback = host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
            if scheme != "https" && !loopback { plain.append(u) }
        }
        if !gatewayTLS {
            return (false, T("the gateway does not serve TLS itself (client leg not shown encrypted)", "閘道本身未提供 TLS（用戶端段未證明加密）"))
        }
        if !plain.isEmpty {
            return (false, T("plain-text upstreams: \(plain.joined(separator: ", "))", "未加密之上游：\(plain.joined(separator: "、"))"))
        }
        return (true, T("TLS at the gateway; upstreams https:// or on the same host", "閘道 TLS；上游為 https:// 或同一主機"))
    }

    static func T(_ en: String, _ zh: String) -> LocalizedText { LocalizedText(en: en, zhTW: zh) }

    /// `fix`, led by running the detections when they count as none because no node runs them (``DeploymentFacts/Visibility/detectionsStopped``;
    /// then no detection is counted, so a rule's other branches, which need some, never see the lead).
    static func runningDetections(_ v: DeploymentFacts.Visibility, _ fix: LocalizedText) -> LocalizedText {
        guard v.detectionsStopped else { return fix }
        return T("Run the detections on one node (response.detections_enabled: true there; this node leaves them to another and none keeps up). " + fix.en,
                 "於一個節點執行偵測（該節點設定 response.detections_enabled: true；本節點交由其他節點執行，但無節點跟上事件記錄）。" + fix.zhTW)
    }

    static func eval(_ v: Verdict, _ why: LocalizedText, _ m: [Measurement], _ fix: LocalizedText? = nil) -> PrincipleEvaluation {
        PrincipleEvaluation(verdict: v, rationale: why, measurements: m, remedy: v == .met || v == .notApplicable ? nil : fix)
    }

    /// `numerator / denominator ≥ share`, in integers (no rounding at the edge); false for an empty population.
    static func atLeast(_ numerator: Int, _ denominator: Int, _ share: Double) -> Bool {
        guard denominator > 0 else { return false }
        return Double(numerator) >= share * Double(denominator) - 1e-9
    }

    static func ratio(_ id: String, _ label: LocalizedText, _ n: Fact<Int>, of d: Fact<Int>) -> Measurement {
        .ratio(id, label, n.value, of: d.value, query: n.query == d.query ? n.query : "\(n.query) ÷ \(d.query)")
    }
    static func count(_ id: String, _ label: LocalizedText, _ n: Fact<Int>) -> Measurement { .count(id, label, n.value, query: n.query) }
    static func flag(_ id: String, _ label: LocalizedText, _ b: Fact<Bool>) -> Measurement { .flag(id, label, b.value, query: b.query) }
    static func level(_ id: String, _ label: LocalizedText, _ l: Fact<Int?>) -> Measurement {
        Measurement(id: id, label: label, value: l.value.map(Double.init), unit: .level, query: l.query)
    }
    static func policyCount(_ id: String, _ label: LocalizedText, _ p: [DeploymentFacts.Policies.Policy], _ f: DeploymentFacts) -> Measurement {
        .count(id, label, p.count, query: "\(f.policies.inForce.query)\(p.isEmpty ? "" : " — matching: " + p.map(\.id).joined(separator: ", "))")
    }
    static func routesQuery(_ f: DeploymentFacts) -> String { f.network.routes.query }

    static func describe(_ m: Measurement) -> String {
        guard let n = m.numerator, let d = m.denominator else { return m.value.map { String($0) } ?? "n/a" }
        return d == 0 ? "n/a (0 of 0)" : "\(percent(Double(n) / Double(d))) (\(n)/\(d))"
    }
    static func percent(_ x: Double) -> String {
        let p = (x * 1000).rounded() / 10
        return p == p.rounded() ? "\(Int(p)) %" : "\(p) %"
    }
    static func day(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withFullDate]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: d)
    }
}

extension LocalizedText {
    static func + (a: LocalizedText, b: LocalizedText) -> LocalizedText { LocalizedText(en: a.en + b.en, zhTW: a.zhTW + b.zhTW) }
}
