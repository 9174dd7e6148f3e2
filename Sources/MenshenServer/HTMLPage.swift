import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The two user interface languages.
public enum UILanguage: String, Sendable, CaseIterable {
    case zhTW = "zh-TW"
    case en = "en"

    /// Chooses from `?lang=` first, then `Accept-Language` (RFC 9110 §12.5.4: the
    /// `zh` or `en` range with the highest weight, the first of equals; `q=0` means
    /// "not acceptable" and a malformed weight drops its range), defaulting to zh-TW.
    public static func negotiate(query: String?, acceptLanguage: String?) -> UILanguage {
        if let q = query, let l = UILanguage(rawValue: q) { return l }
        if let q = query?.lowercased(), q.hasPrefix("zh") { return .zhTW }
        if let q = query?.lowercased(), q.hasPrefix("en") { return .en }
        guard let header = acceptLanguage, header.utf8.count <= 1024 else { return .zhTW }
        var best: (UILanguage, Double)?
        for part in header.split(separator: ",").prefix(64) {
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let tag = pieces.first else { continue }
            var weight = 1.0
            if let q = pieces.dropFirst().first(where: { $0.hasPrefix("q=") }) {
                guard let w = qvalue(q.dropFirst(2)) else { continue }
                weight = w
            }
            func range(_ primary: String) -> Bool { tag == primary || tag.hasPrefix(primary + "-") }
            let lang: UILanguage? = range("zh") ? .zhTW : range("en") ? .en : nil
            if let lang, weight > 0, weight > (best?.1 ?? 0) { best = (lang, weight) }
        }
        return best?.0 ?? .zhTW
    }

    /// An RFC 9110 qvalue: `0`, `1`, `0.` or `1.` with up to three decimals (`1.000` at most); nil otherwise.
    static func qvalue(_ text: Substring) -> Double? {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, first == UInt8(ascii: "0") || first == UInt8(ascii: "1") else { return nil }
        if bytes.count > 1 {
            guard bytes[1] == UInt8(ascii: "."), bytes.count <= 5,
                  bytes.dropFirst(2).allSatisfy({ first == UInt8(ascii: "0") ? (0x30...0x39).contains($0) : $0 == UInt8(ascii: "0") })
            else { return nil }
        }
        // In thousandths, so that equal weights written differently (0.5, 0.500) compare equal.
        var thousandths = Int(first - 0x30) * 1000, scale = 100
        for digit in bytes.dropFirst(2) { thousandths += Int(digit - 0x30) * scale; scale /= 10 }
        return Double(thousandths) / 1000
    }
}

/// Server-rendered HTML with strict security headers. Every dynamic string
/// goes through ``HTMLPage/escape(_:)``.
public enum HTMLPage {
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Headers every page carries: no inline script or style, no framing,
    /// no referrer to other origins (links may carry one-time tokens; same-origin
    /// requests keep their `Origin` header, which the CSRF check reads).
    public static let securityHeaders: HTTPFields = [
        .contentType: "text/html; charset=utf-8",
        .contentSecurityPolicy: "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        .xContentTypeOptions: "nosniff",
        .referrerPolicy: "same-origin",
        .cacheControl: "no-store",
    ]

    /// The page policy: nothing inline, scripts only from this origin (the
    /// WebAuthn ceremony), forms only to this origin and the given origins.
    static func contentSecurityPolicy(script: Bool, formTargets: [String]) -> String {
        let forms = (["'self'"] + formTargets).joined(separator: " ")
        let scripts = script ? "; script-src 'self'; connect-src 'self'" : ""
        return "default-src 'none'; style-src 'self'; img-src 'self'\(scripts); form-action \(forms); frame-ancestors 'none'; base-uri 'none'"
    }

    /// A complete page. `body` must already be escaped HTML.
    public static func render(title: String, language: UILanguage, body: String, status: HTTPResponse.Status = .ok,
                              switchPath: String = "/", csrfToken: String? = nil, script: Bool = false,
                              formTargets: [String] = [], extraHeaders: HTTPFields = [:]) -> Response
    {
        let other: UILanguage = language == .zhTW ? .en : .zhTW
        let switchLabel = other == .en ? "English" : "繁體中文"
        let html = """
            <!doctype html>
            <html lang="\(language.rawValue)">
            <head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title))</title><link rel="stylesheet" href="/static/menshen.css">\(csrfToken.map { "<meta name=\"csrf-token\" content=\"\(escape($0))\">" } ?? "")\(script ? "<script src=\"/static/webauthn.js\" defer></script>" : "")</head>
            <body><header><span class="brand">門神 Menshen</span>
            <nav><a href="\(escape(switchPath))\(switchPath.contains("?") ? "&amp;" : "?")lang=\(other.rawValue)" hreflang="\(other.rawValue)">\(switchLabel)</a></nav></header>
            <main>\(body)</main></body></html>
            """
        var headers = securityHeaders
        headers[.contentLanguage] = language.rawValue
        if script || !formTargets.isEmpty {
            headers[.contentSecurityPolicy] = contentSecurityPolicy(script: script, formTargets: formTargets)
        }
        headers.append(contentsOf: extraHeaders)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// The only stylesheet (served from `/static/menshen.css`).
    public static let stylesheet = """
        body{font-family:"Noto Sans TC","Noto Sans CJK TC",system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
        header{display:flex;justify-content:space-between;align-items:center;padding:.8rem 1.5rem;background:#7a1f1f;color:#fff}
        header a{color:#fff}.brand{font-weight:700;letter-spacing:.05em}
        main{max-width:52rem;margin:2rem auto;padding:0 1.5rem}
        table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #d0d4da}
        .note{background:#fff;border-left:4px solid #7a1f1f;padding:.8rem 1rem}
        code{background:#eceef1;padding:.1rem .3rem}
        form{margin:1rem 0}label{display:block;margin:.6rem 0 .2rem;font-weight:600}
        input[type=text],input[type=password]{width:100%;max-width:24rem;padding:.5rem;font-size:1rem;border:1px solid #8a9099;border-radius:4px}
        button{margin-top:.8rem;padding:.55rem 1.1rem;font-size:1rem;border:0;border-radius:4px;background:#7a1f1f;color:#fff;cursor:pointer}
        button.secondary{background:#4b5563}.error{background:#fdecec;border-left:4px solid #b42318;padding:.8rem 1rem}
        .ok{background:#ecfdf3;border-left:4px solid #067647;padding:.8rem 1rem}
        section{background:#fff;padding:.4rem 1.2rem 1rem;margin:1rem 0;border-radius:6px}
        ul.codes{columns:2;font-family:monospace;font-size:1.1rem}.qr svg{width:14rem;height:14rem}
        """

    public static func stylesheetResponse() -> Response {
        Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "max-age=3600",
                                        .xContentTypeOptions: "nosniff"],
                 body: .init(byteBuffer: ByteBuffer(string: stylesheet)))
    }
}

extension HTTPField.Name {
    /// `Referrer-Policy`. Invariant: the literal is a valid field-name token, so the initializer cannot fail.
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
}
