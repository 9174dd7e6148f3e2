import Foundation
import Hummingbird
import Logging
import MenshenCore
import MenshenStorage

/// The user-facing listener: the landing page listing the protected
/// applications, and (``IdentityPortal``) sign-in, second factor, passkey and
/// TOTP enrolment, recovery codes, step-up, sign-out and one-time enrolment links.
public enum PortalServer {
    public static func router(store: any MenshenStore, organisation: String, clock: any WallClock,
                              identity: IdentityPortal) -> Router<PortalContext> {
        let router = Router(context: PortalContext.self)
        identity.register(on: router)
        router.get("/static/menshen.css") { _, _ in HTMLPage.stylesheetResponse() }
        router.get("/healthz") { _, _ in "ok" }
        router.get("/") { request, _ -> Response in
            let lang = language(request)
            let apps = try await identity.applications()
            let rows = apps.map { app in
                "<tr><td>\(HTMLPage.escape(app.displayName))</td><td><code>\(HTMLPage.escape(app.host + app.pathPrefix))</code></td>"
                    + "<td>\(HTMLPage.escape(app.classification))</td><td>\(HTMLPage.escape(app.scenario ?? "—"))</td></tr>"
            }.joined()
            let t = PortalText(lang)
            let body = """
                <h1>\(HTMLPage.escape(organisation))</h1>
                <p>\(t.intro)</p>
                <h2>\(t.applications)</h2>
                <table><thead><tr><th>\(t.name)</th><th>\(t.location)</th><th>\(t.classification)</th><th>\(t.scenario)</th></tr></thead>
                <tbody>\(rows)</tbody></table>
                """
            return HTMLPage.render(title: "\(organisation) — Menshen", language: lang, body: body)
        }
        return router
    }

    static func language(_ request: Request) -> UILanguage {
        UILanguage.negotiate(query: request.uri.queryParameters.get("lang"), acceptLanguage: request.headers[.acceptLanguage])
    }
}

/// Portal strings in both languages.
struct PortalText {
    let intro, applications, name, location, classification, scenario: String
    let enrolTitle, enrolFor, enrolExpires, enrolNext, enrolInvalidTitle, enrolInvalid: String

    init(_ lang: UILanguage) {
        switch lang {
        case .zhTW:
            intro = "門神依據金融監督管理委員會《金融業零信任架構參考指引》保護以下應用系統：每一個請求都依身分、設備、情境與資源分級重新授權。"
            applications = "受保護的應用系統"; name = "名稱"; location = "位置"; classification = "資料分級"; scenario = "高風險情境"
            enrolTitle = "帳號註冊"; enrolFor = "此一次性連結屬於帳號"; enrolExpires = "連結有效至"
            enrolNext = "請以通行金鑰（FIDO2）或安全金鑰完成註冊。"
            enrolInvalidTitle = "連結無效"; enrolInvalid = "此註冊連結無效、已使用或已過期。請向系統管理員申請新的連結。"
        case .en:
            intro = "Menshen protects the applications below following the FSC Zero Trust Architecture Reference Guideline for the Financial Industry: every request is authorized again from identity, device, context and the resource's classification."
            applications = "Protected applications"; name = "Name"; location = "Location"; classification = "Classification"; scenario = "High-risk scenario"
            enrolTitle = "Account enrolment"; enrolFor = "This one-time link belongs to the account"; enrolExpires = "The link is valid until"
            enrolNext = "Complete enrolment with a passkey (FIDO2) or a security key."
            enrolInvalidTitle = "Link not valid"; enrolInvalid = "This enrolment link is not valid, was already used or has expired. Ask an administrator for a new one."
        }
    }
}
