import Foundation
import Hummingbird
import NIOCore

/// The demo's protected upstream: a small "branch operations" application
/// served by Menshen itself, so `menshen demo` needs nothing else. It shows
/// what reaches an upstream (method, path, forwarded identity headers).
public enum SampleApplication {
    public static func router(organisation: String) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/healthz") { _, _ in "ok" }
        router.get("/static/menshen.css") { _, _ in HTMLPage.stylesheetResponse() }
        @Sendable func page(_ request: Request, _ title: String, _ titleEN: String) -> Response {
            let lang = UILanguage.negotiate(query: request.uri.queryParameters.get("lang"), acceptLanguage: request.headers[.acceptLanguage])
            let identity = request.headers.filter { $0.name.canonicalName.hasPrefix("x-menshen-") }
                .map { "<tr><td><code>\(HTMLPage.escape($0.name.canonicalName))</code></td><td>\(HTMLPage.escape($0.value))</td></tr>" }
                .joined()
            let heading = lang == .zhTW ? title : titleEN
            let caption = lang == .zhTW ? "上游收到的身分標頭" : "Identity headers received by the upstream"
            let none = lang == .zhTW ? "（無）" : "(none)"
            let body = """
                <h1>\(HTMLPage.escape(heading))</h1><p>\(HTMLPage.escape(organisation))</p>
                <p><code>\(HTMLPage.escape(request.method.rawValue)) \(HTMLPage.escape(request.uri.path))</code></p>
                <h2>\(caption)</h2><table><tbody>\(identity.isEmpty ? "<tr><td>\(none)</td></tr>" : identity)</tbody></table>
                """
            return HTMLPage.render(title: heading, language: lang, body: body, switchPath: request.uri.path)
        }
        router.get("/") { request, _ in page(request, "分行作業入口（範例應用）", "Branch operations portal (sample application)") }
        router.get("/maintenance") { request, _ in page(request, "核心系統維護（範例應用）", "Core system maintenance (sample application)") }
        router.get("/maintenance/**") { request, _ in page(request, "核心系統維護（範例應用）", "Core system maintenance (sample application)") }
        return router
    }
}
