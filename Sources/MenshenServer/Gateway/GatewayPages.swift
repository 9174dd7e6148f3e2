import Foundation
import MenshenEnforcementPoint

/// What the enforcement point answers instead of forwarding: a redirect to
/// sign-in or step-up for browsers, a deny page in zh-TW or English with the
/// request id and a plain reason (never policy internals), and RFC 9457
/// problem+json for API clients (anything that does not accept `text/html`).
enum GatewayPages {
    enum Reason {
        case notPermitted, readOnly, policyError, noSuchApplication, unavailable, auditUnavailable, upstreamDown, upstreamSlow, badRequest

        func text(_ lang: UILanguage) -> (title: String, detail: String) {
            switch (self, lang) {
            case (.notPermitted, .zhTW): ("拒絕存取", "依據目前的身分、驗證強度、設備與情境，您沒有存取此應用系統的權限。")
            case (.notPermitted, .en): ("Access denied", "Given your identity, how strongly it was verified, your device and the context, you may not access this application.")
            case (.readOnly, .zhTW): ("僅限唯讀", "此時您只能檢視，不能變更此應用系統的資料。")
            case (.readOnly, .en): ("Read only", "You may view this application now, but not change anything in it.")
            case (.policyError, .zhTW): ("拒絕存取", "授權政策無法完成判斷，為安全起見已拒絕此請求。")
            case (.policyError, .en): ("Access denied", "The authorization policy could not reach a decision, so the request was refused to stay safe.")
            case (.noSuchApplication, .zhTW): ("找不到應用系統", "此網址沒有對應的受保護應用系統。")
            case (.noSuchApplication, .en): ("No such application", "No protected application is configured at this address.")
            case (.unavailable, .zhTW): ("暫時無法授權", "授權服務暫時無法使用，為安全起見已拒絕此請求。")
            case (.unavailable, .en): ("Authorization unavailable", "The authorization service is unavailable, so the request was refused to stay safe.")
            case (.auditUnavailable, .zhTW): ("暫時無法授權", "存取決策目前無法寫入稽核紀錄，為安全起見已拒絕此請求，請稍後再試。")
            case (.auditUnavailable, .en): ("Access paused", "Access decisions cannot be written to the audit log right now, so the request was refused to stay safe. Try again shortly.")
            case (.upstreamDown, .zhTW): ("應用系統無法連線", "受保護的應用系統目前無法連線，請稍後再試。")
            case (.upstreamDown, .en): ("Application unavailable", "The protected application cannot be reached right now. Try again later.")
            case (.upstreamSlow, .zhTW): ("應用系統回應逾時", "受保護的應用系統未在時限內回應，請稍後再試。")
            case (.upstreamSlow, .en): ("Application timed out", "The protected application did not answer in time. Try again later.")
            case (.badRequest, .zhTW): ("無法處理的請求", "此請求的格式無法接受，已被拒絕。")
            case (.badRequest, .en): ("Request refused", "This request is malformed or not allowed, so it was refused.")
            }
        }
    }

    /// Whether the request is a browser's navigation (a redirect and pages help it) rather than a script's or an API
    /// client's call (which needs problem+json: a redirect to the portal, another origin, ends in a CORS failure).
    /// Browsers say so in `Sec-Fetch-Mode` (`navigate` for a page load); without it, `X-Requested-With` marks a
    /// script, and an `Accept` naming `text/html` a page load.
    static func wantsHTML(_ request: GateRequest) -> Bool {
        if let mode = request.headerValues("sec-fetch-mode").first?.trimmingCharacters(in: .whitespaces).lowercased() {
            return mode == "navigate" || mode == "nested-navigate"
        }
        if !request.headerValues("x-requested-with").isEmpty { return false }
        return request.headerValues("accept").contains { $0.lowercased().contains("text/html") }
    }

    static func language(_ request: GateRequest) -> UILanguage {
        UILanguage.negotiate(query: nil, acceptLanguage: request.headerValues("accept-language").first)
    }

    static func encoded(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? ""
    }

    static func problem(_ status: Int, title: String, detail: String, request: GateRequest, extra: [String: Any] = [:],
                        challenge: String? = nil) -> GateVerdict {
        var object: [String: Any] = ["type": "about:blank", "title": title, "status": status, "detail": detail, "request_id": request.requestID]
        object.merge(extra) { a, _ in a }
        let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        var headers = [("Content-Type", "application/problem+json"), ("Cache-Control", "no-store")]
        if let challenge { headers.append(("WWW-Authenticate", challenge)) }
        return .respond(status: status, headers: headers, body: Array(body))
    }

    static func redirect(_ location: String) -> GateVerdict {
        .respond(status: 302, headers: [("Location", location), ("Cache-Control", "no-store"), ("Content-Length", "0")], body: [])
    }

    static func signIn(_ request: GateRequest, returnURL: String, portalOrigin: String) -> GateVerdict {
        let location = "\(portalOrigin)/signin?return=\(encoded(returnURL))"
        if wantsHTML(request) { return redirect(location) }
        return problem(401, title: "Sign-in required", detail: "Sign in first.", request: request, extra: ["signin": location],
                       challenge: challenge([("realm", "menshen"), ("sign_in", location)]))
    }

    /// The `WWW-Authenticate` field every 401 carries (RFC 9110 §11.6.1: a 401 must name a challenge). Menshen's
    /// session is a cookie from the portal, which no registered scheme describes, so the scheme is `Menshen`; its
    /// parameters say where to go (`sign_in`, `step_up`) and, for a step-up, what is asked, in the words of RFC 9470
    /// (`error="insufficient_user_authentication"`, `acr_values`, `max_age`).
    static func challenge(_ parameters: [(String, String)]) -> String {
        "Menshen " + parameters.map { name, value in
            // quoted-string of visible ASCII: `"` and `\` escaped, any other byte (controls, non-ASCII) percent-encoded.
            var quoted = ""
            for b in value.utf8 {
                switch b {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): quoted.append("\\"); quoted.unicodeScalars.append(Unicode.Scalar(b))
                case 0x20...0x7E: quoted.unicodeScalars.append(Unicode.Scalar(b))
                default: quoted += String(format: "%%%02X", b)
                }
            }
            return "\(name)=\"\(quoted)\""
        }.joined(separator: ", ")
    }

    static func stepUp(_ request: GateRequest, loa: Int, maxAge: Int?, returnURL: String, portalOrigin: String) -> GateVerdict {
        let location = "\(portalOrigin)/stepup?loa=\(loa)\(maxAge.map { "&max_age=\($0)" } ?? "")&return=\(encoded(returnURL))"
        if wantsHTML(request) { return redirect(location) }
        var extra: [String: Any] = ["step_up": location, "loa": loa]
        if let maxAge { extra["max_age"] = maxAge }
        var parameters = [("realm", "menshen"), ("error", "insufficient_user_authentication"), ("step_up", location), ("acr_values", "loa\(loa)")]
        if let maxAge { parameters.append(("max_age", String(maxAge))) }
        return problem(401, title: "Step-up required", detail: "Verify again with a stronger or fresher factor.", request: request, extra: extra,
                       challenge: challenge(parameters))
    }

    /// The enforcement point's own error answers (502, 504, 503, 4xx) as pages for browsers and
    /// problem+json for APIs, like the deny pages. (Headers are nil when the request could not be read.)
    static func refusal(_ refusal: ProxyRefusal, requestID: String, headers: [(String, String)]?, portalOrigin: String)
        -> (headers: [(String, String)], body: [UInt8])
    {
        let reason: Reason = switch refusal {
        case .upstreamUnavailable, .upstreamBusy: .upstreamDown
        case .upstreamTimeout: .upstreamSlow
        case .gateUnavailable: .unavailable
        default: .badRequest
        }
        let request = GateRequest(method: "GET", path: "/", rawTarget: "/", query: nil, host: "", scheme: "http", clientAddress: nil,
                                  headers: headers ?? [], requestID: requestID)
        guard case .respond(_, let h, let body) = deny(request, reason: reason, portalOrigin: portalOrigin, status: refusal.status)
        else { return ([("Content-Type", "text/plain; charset=utf-8")], Array("\(refusal)\n".utf8)) }
        return (h, body)
    }

    static func deny(_ request: GateRequest, reason: Reason, portalOrigin: String, status: Int = 403) -> GateVerdict {
        let lang = language(request)
        let (title, detail) = reason.text(lang)
        guard wantsHTML(request) else { return problem(status, title: reason.text(.en).title, detail: reason.text(.en).detail, request: request) }
        let label = lang == .zhTW ? "請求編號" : "Request id"
        let back = lang == .zhTW ? "回到入口網站" : "Back to the portal"
        let html = """
            <!doctype html>
            <html lang="\(lang.rawValue)"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(HTMLPage.escape(title))</title></head>
            <body><main><h1>\(HTMLPage.escape(title))</h1><p>\(HTMLPage.escape(detail))</p>
            <p>\(label): <code>\(HTMLPage.escape(request.requestID))</code></p>
            <p><a href="\(HTMLPage.escape(portalOrigin))/">\(back)</a></p></main></body></html>
            """
        return .respond(status: status, headers: [
            ("Content-Type", "text/html; charset=utf-8"), ("Content-Language", lang.rawValue), ("Cache-Control", "no-store"),
            ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
            ("X-Content-Type-Options", "nosniff"),
        ], body: Array(html.utf8))
    }
}
