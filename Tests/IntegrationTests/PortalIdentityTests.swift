import Foundation
import MenshenServer
import MenshenTestSupport
import Testing

/// The sign-in pages over real HTTP against the real binary: cookie
/// attributes, CSRF, open redirects, fixation, revocation, throttling and
/// bad input (a clear 400, nothing changed, an event recorded).
@Suite("Portal identity over HTTP", .serialized)
struct PortalIdentityTests {
    /// One HTTP exchange through curl (no redirects followed).
    struct Exchange {
        var status: Int
        var headers: [(String, String)]
        var body: String
        func header(_ name: String) -> [String] { headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1) }
        func cookie(_ name: String) -> String? {
            for line in header("set-cookie") where line.hasPrefix(name + "=") {
                return String(line.dropFirst(name.count + 1).prefix { $0 != ";" })
            }
            return nil
        }
    }

    static func http(_ method: String, _ url: String, cookies: [String: String] = [:], form: [(String, String)] = [],
                     headers: [String: String] = [:], rawBody: String? = nil) async throws -> Exchange {
        let request = UncheckedBox(value: (form, headers))
        return try await Harness.offPool {
            try httpSync(method, url, cookies: cookies, form: request.value.0, headers: request.value.1, rawBody: rawBody)
        }
    }

    static func httpSync(_ method: String, _ url: String, cookies: [String: String] = [:], form: [(String, String)] = [],
                         headers: [String: String] = [:], rawBody: String? = nil) throws -> Exchange {
        var args = ["-s", "-i", "-X", method, url, "--max-time", "90"]  // long: a loaded parallel run starves the server
        if !cookies.isEmpty { args += ["-H", "Cookie: " + cookies.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: "; ")] }
        for (k, v) in headers { args += ["-H", "\(k): \(v)"] }
        for (k, v) in form { args += ["--data-urlencode", "\(k)=\(v)"] }
        var bodyFile: URL?
        if let rawBody {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("menshen-body-\(UUID().uuidString)")
            try rawBody.write(to: file, atomically: true, encoding: .utf8)
            bodyFile = file
            args += ["--data-binary", "@" + file.path, "-H", "Content-Type: application/x-www-form-urlencoded"]
        }
        defer { if let bodyFile { try? FileManager.default.removeItem(at: bodyFile) } }
        // posix_spawn, not Foundation's Process (see `spawnAndWait`).
        let text = try spawnAndWait("/usr/bin/curl", args).stdoutText
        guard let split = text.range(of: "\r\n\r\n") else { throw Harness.HarnessError("no HTTP response from \(url): \(text)") }
        let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return Exchange(status: status, headers: headers, body: String(text[split.upperBound...]))
    }

    /// A browser-like visitor: keeps cookies, reads CSRF tokens from pages.
    final class Visitor {
        let base: String
        var cookies: [String: String] = [:]
        init(_ base: String) { self.base = base }

        func get(_ path: String) async throws -> Exchange {
            let r = try await PortalIdentityTests.http("GET", base + path, cookies: cookies)
            absorb(r)
            return r
        }

        func post(_ path: String, _ form: [(String, String)], csrf: Bool = true, origin: String? = nil) async throws -> Exchange {
            var fields = form
            if csrf {
                var page = try await get("/signin")
                if page.status == 303 { page = try await get("/account") }   // signed in: /signin redirects
                fields.append(("csrf", try Self.csrf(in: page.body)))
            }
            let r = try await PortalIdentityTests.http("POST", base + path, cookies: cookies, form: fields,
                                                 headers: ["Origin": origin ?? base])
            absorb(r)
            return r
        }

        func absorb(_ r: Exchange) {
            for line in r.header("set-cookie") {
                let pair = line.prefix { $0 != ";" }
                guard let eq = pair.firstIndex(of: "=") else { continue }
                let name = String(pair[..<eq]), value = String(pair[pair.index(after: eq)...])
                if line.contains("Max-Age=0") { cookies[name] = nil } else { cookies[name] = value }
            }
        }

        static func csrf(in html: String) throws -> String {
            guard let r = html.range(of: #"name="csrf-token" content=""#) else { throw Harness.HarnessError("no CSRF token in page") }
            return String(html[r.upperBound...].prefix { $0 != "\"" })
        }
    }

    /// A demo with one enrolled user (password only) called `pat`.
    static func demoWithUser() async throws -> (Harness.Demo, URL, String) {
        let dir = try Harness.tempDir()
        let data = dir.appendingPathComponent("menshen-data")
        let demo = try Harness.Demo(dataDir: data, cwd: dir)
        let box = UncheckedBox(value: demo)
        try await Harness.offPool { try box.value.waitUntilReady() }
        #expect(try await Harness.runAsync(["user", "add", "pat", "--name", "Pat 林", "--group", "staff", "--data", data.path]).status == 0)
        let link = try await Harness.runAsync(["user", "enrol-link", "pat", "--data", data.path]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let path = try #require(URL(string: link)?.path)
        let v = Visitor(demo.portalURL)
        let start = try await v.post(path, [])
        #expect(start.status == 303 && start.header("location") == ["/account?lang=zh-TW"])
        #expect(try await v.post("/account/password", [("password", Self.password)]).status == 200)
        #expect(try await v.post("/account/finish", []).status == 303)
        return (demo, dir, data.path)
    }

    static let password = "quiet harbour 淡水 lantern"

    func events(_ data: String) async throws -> String {
        try await Harness.runAsync(["store", "status", "--data", data]).out
    }

    @Test("sign-in sets a __Host- session cookie with Secure, HttpOnly, SameSite=Lax and no Domain; a planted id is never adopted")
    func cookieAndFixation() async throws {
        let (demo, dir, _) = try await Self.demoWithUser()
        defer { demo.kill(signal: SIGTERM); try? FileManager.default.removeItem(at: dir) }
        let v = Visitor(demo.portalURL)
        let planted = String(repeating: "A", count: 43)
        v.cookies["__Host-menshen-session"] = planted
        let r = try await v.post("/signin", [("user", "pat"), ("password", Self.password), ("ret", "/account")])
        #expect(r.status == 303 && r.header("location") == ["/account"])
        let line = try #require(r.header("set-cookie").first { $0.hasPrefix("__Host-menshen-session=") })
        #expect(line.hasSuffix("; Path=/; Secure; HttpOnly; SameSite=Lax"))
        #expect(!line.lowercased().contains("domain="))
        let issued = try #require(r.cookie("__Host-menshen-session"))
        #expect(issued != planted && issued.count == 43)
        #expect(try await Self.http("GET", demo.portalURL + "/account", cookies: ["__Host-menshen-session": planted]).status == 303)
        let account = try await v.get("/account?lang=en")
        #expect(account.status == 200 && account.body.contains(#"<strong id="account-loa">LoA 1</strong>"#))
        // The step-up page's language switch keeps the requirement and the way back.
        let stepUp = try await v.get("/stepup?loa=3&max_age=5&return=%2Faccount&lang=zh-TW")
        #expect(stepUp.status == 200 && stepUp.body.contains("/stepup?loa=3&amp;max_age=5&amp;return=/account&amp;lang=en"), "\(stepUp.body.components(separatedBy: "<nav>").dropFirst().first?.prefix(200) ?? "")")
        let csp = account.header("content-security-policy").first ?? ""
        #expect(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'"))
    }

    @Test("return URLs: own paths are followed, other origins never (no open redirect)")
    func openRedirect() async throws {
        let (demo, dir, _) = try await Self.demoWithUser()
        defer { demo.kill(signal: SIGTERM); try? FileManager.default.removeItem(at: dir) }
        for (ret, expected) in [("https://evil.example/x", "/"), ("//evil.example/x", "/"), ("/\\evil.example", "/"),
                                ("javascript:alert(1)", "/"), ("/account?lang=en", "/account?lang=en"),
                                (demo.portalURL + "/account", demo.portalURL + "/account")] {
            let v = Visitor(demo.portalURL)
            let r = try await v.post("/signin", [("user", "pat"), ("password", Self.password), ("ret", ret)])
            #expect(r.status == 303 && r.header("location") == [expected], "\(ret)")
        }
    }

    @Test("signed in, and sent to sign-in again by an application on another host name: a page says why instead of redirecting back (its gateway never receives the session cookie, so the round trip would loop)")
    func otherHostNoLoop() async throws {
        let (demo, dir, data) = try await Self.demoWithUser()
        defer { demo.kill(signal: SIGTERM); try? FileManager.default.removeItem(at: dir) }
        let v = Visitor(demo.portalURL)
        #expect(try await v.post("/signin", [("user", "pat"), ("password", Self.password)]).status == 303)
        // An application on another host name, saved by an independent writer: the return URLs follow the gateway's routes.
        // (posix_spawn through `spawnAndWait`, not Foundation's `Process`: see MenshenTestSupport/Spawn.swift.)
        let database = (data as NSString).appendingPathComponent("menshen.sqlite")
        let insert = try await Harness.offPool { try spawnAndWait("/usr/bin/env", [
            "python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()", database,
            #"INSERT INTO applications VALUES ('wiki', 'Wiki', 'wiki.example.test', '/', '["http://127.0.0.1:9"]', 'internal', NULL, 0)"#]) }
        #expect(insert.status == 0, "\(insert.stderrText)")
        let target = "https://wiki.example.test/page?x=1"
        let query = "/signin?return=" + (target.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        var r = try await v.get(query)
        let deadline = Date().addingTimeInterval(20)
        // Until the gateway has reloaded, the URL is not a known application's and the portal's home is used instead.
        while r.status == 303 && r.header("location") == ["/"] && Date() < deadline {
            try await Task.sleep(for: .milliseconds(200))
            r = try await v.get(query)
        }
        #expect(r.status == 200, "\(r.status) \(r.header("location"))")
        #expect(r.body.contains("wiki.example.test") && r.body.contains("另一個主機名稱"), "\(r.body.prefix(600))")
        // The portal's own pages are still returned to at once.
        let own = try await v.get("/signin?return=%2Faccount")
        #expect(own.status == 303 && own.header("location") == ["/account"])
    }

    @Test("step-up for an account with no second factor (password only, or federated): the page says what to do and offers sign-out, not an empty page")
    func stepUpWithoutMethod() async throws {
        let (demo, dir, _) = try await Self.demoWithUser()
        defer { demo.kill(signal: SIGTERM); try? FileManager.default.removeItem(at: dir) }
        let v = Visitor(demo.portalURL)
        #expect(try await v.post("/signin", [("user", "pat"), ("password", Self.password)]).status == 303)
        let r = try await v.get("/stepup?loa=3&return=%2Faccount&lang=en")
        #expect(r.status == 200)
        #expect(r.body.contains("no method to verify again here"), "\(r.body.prefix(800))")
        #expect(r.body.contains("action=\"/signout") && r.body.contains("href=\"/account"))
        // A level above what any method here gives (the enrolment level, LoA 3 by default) is said as such, in both languages.
        let four = try await v.get("/stepup?loa=4&return=%2Faccount&lang=en")
        #expect(four.status == 200 && four.body.contains("id=\"stepup-out-of-reach\""))
        #expect(four.body.contains("requires assurance level LoA 4") && four.body.contains("more than LoA 3") && !four.body.contains("no method to verify"))
        let zh = try await v.get("/stepup?loa=4&return=%2Faccount&lang=zh-TW")
        #expect(zh.body.contains("要求身分驗證等級 LoA 4"))
    }

    @Test("bad input: missing CSRF, foreign Origin, malformed or oversized bodies give a clear 400/413, change nothing, and are recorded")
    func badInput() async throws {
        let (demo, dir, data) = try await Self.demoWithUser()
        defer { demo.kill(signal: SIGTERM); try? FileManager.default.removeItem(at: dir) }
        let before = try await events(data)
        let v = Visitor(demo.portalURL)
        let noToken = try await v.post("/signin", [("user", "pat"), ("password", Self.password)], csrf: false)
        #expect(noToken.status == 400 && noToken.cookie("__Host-menshen-session") == nil)
        #expect(noToken.body.contains("無法處理此請求，未做任何變更。"))
        let foreign = try await v.post("/signin", [("user", "pat"), ("password", Self.password)], origin: "https://evil.example")
        #expect(foreign.status == 400 && foreign.cookie("__Host-menshen-session") == nil)
        let malformed = try await Self.http("POST", demo.portalURL + "/signin", cookies: v.cookies, rawBody: "user=%ZZ&password=%")
        #expect(malformed.status == 400)
        let huge = try await Self.http("POST", demo.portalURL + "/signin", cookies: v.cookies, rawBody: "user=" + String(repeating: "a", count: 200_000))
        #expect(huge.status == 413)
        let json = try await Self.http("POST", demo.portalURL + "/signin/passkey", cookies: v.cookies, form: [("handle", "x"), ("credential", "{")])
        #expect(json.status == 403 && json.header("content-type") == ["application/problem+json"])
        let after = try await events(data)
        #expect(before != after, "the refusals were recorded as events")
        #expect(after.contains("event chain:     intact"))
    }

    @Test("disabling a user ends their session on the very next request; sign-out too")
    func revocation() async throws {
        let (demo, dir, data) = try await Self.demoWithUser()
        defer { demo.kill(signal: SIGTERM); try? FileManager.default.removeItem(at: dir) }
        let v = Visitor(demo.portalURL)
        #expect(try await v.post("/signin", [("user", "pat"), ("password", Self.password)]).status == 303)
        #expect(try await v.get("/account").status == 200)
        let disable = try await Harness.runAsync(["user", "disable", "pat", "--data", data])
        #expect(disable.status == 0 && disable.out.contains("ended 1 session"))
        #expect(try await v.get("/account").status == 303)
        #expect(try await Harness.runAsync(["user", "enable", "pat", "--data", data]).status == 0)
        #expect(try await v.post("/signin", [("user", "pat"), ("password", Self.password)]).status == 303)
        let token = try #require(v.cookies["__Host-menshen-session"])
        #expect(try await v.post("/signout", []).status == 303)
        #expect(try await Self.http("GET", demo.portalURL + "/account", cookies: ["__Host-menshen-session": token]).status == 303)
    }

    @Test("throttling answers 429 with Retry-After, and an unknown user looks like a wrong password")
    func throttling() async throws {
        let (demo, dir, _) = try await Self.demoWithUser()
        defer { demo.kill(signal: SIGTERM); try? FileManager.default.removeItem(at: dir) }
        let v = Visitor(demo.portalURL)
        let wrong = try await v.post("/signin?lang=en", [("user", "pat"), ("password", "not it at all")])
        let unknown = try await v.post("/signin?lang=en", [("user", "nobody"), ("password", "not it at all")])
        #expect(wrong.status == 401 && unknown.status == 401)
        // Every 401 names a challenge (RFC 9110 §11.6.1), the same for both: where to sign in.
        let challenge = wrong.header("www-authenticate")
        #expect(challenge.count == 1 && challenge[0].hasPrefix("Menshen realm=\"menshen\", sign_in=\"http") && challenge[0].hasSuffix("/signin\""),
                "\(challenge)")
        #expect(unknown.header("www-authenticate") == wrong.header("www-authenticate"))
        func message(_ html: String) -> String { html.components(separatedBy: "role=\"alert\">").dropFirst().first?.components(separatedBy: "<").first ?? "" }
        #expect(message(wrong.body) == message(unknown.body) && !message(wrong.body).isEmpty)
        // Five failures are free; then the account and the source wait 1 s, 2 s, 4 s … after each failure.
        // Stop at the first 429: how many attempts that takes depends on how long each password check
        // takes here (a refusal after the first wait has passed is another counted failure).
        var last = wrong
        for _ in 0..<10 {
            last = try await v.post("/signin?lang=en", [("user", "pat"), ("password", "still not it")])
            if last.status != 401 { break }
        }
        #expect(last.status == 429)
        #expect(Int(last.header("retry-after").first ?? "") ?? 0 >= 1)
    }

    @Test("username-less passkey ceremonies, which need no account and are stored until they expire, are limited per source address: 429 with Retry-After, and nothing more is stored")
    func ceremonyStartsLimited() async throws {
        let (demo, dir, data) = try await Self.demoWithUser()
        defer { demo.kill(signal: SIGTERM); try? FileManager.default.removeItem(at: dir) }
        let v = Visitor(demo.portalURL)
        func storedCeremonies() throws -> String {   // read with Python's sqlite3 while the server runs
            try spawnAndWait("/usr/bin/env", ["python3", "-c", """
                import sqlite3, sys
                print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM flow_states WHERE kind = 'webauthn-get'").fetchone()[0])
                """, URL(fileURLWithPath: data).appendingPathComponent("menshen.sqlite").path]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let before = Int(try storedCeremonies()) ?? -1
        for n in 0..<IdentityPortal.ceremonyStartsPerMinute {
            let r = try await v.post("/signin/passkey/options?lang=en", [])
            #expect(r.status == 200 && r.body.contains("\"challenge\""), "start \(n): \(r.status) \(r.body.prefix(200))")
        }
        let refused = try await v.post("/signin/passkey/options?lang=en", [])
        #expect(refused.status == 429, "\(refused.status) \(refused.body.prefix(200))")
        #expect((1...60).contains(Int(refused.header("retry-after").first ?? "") ?? 0), "\(refused.header("retry-after"))")
        #expect(Int(try storedCeremonies()) == before + IdentityPortal.ceremonyStartsPerMinute, "the refused start stored a ceremony")
    }

    @Test("menshen user: add, list, show, disable, enable, reset-mfa, enrol-link; mistakes change nothing")
    func userCommands() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("menshen-data").path
        let demo = try Harness.Demo(dataDir: URL(fileURLWithPath: data), cwd: dir)
        let box = UncheckedBox(value: demo)
        try await Harness.offPool { try box.value.waitUntilReady() }
        demo.kill(signal: SIGTERM)
        let add = try await Harness.runAsync(["user", "add", "vendor.chen", "--name", "陳 Chen", "--kind", "vendor", "--group", "vendors", "--data", data])
        #expect(add.status == 0 && add.out.contains("added user vendor.chen (vendor)"))
        let typo = try await Harness.runAsync(["user", "add", "zed", "--group", "no-such-group", "--data", data])
        #expect(typo.status == 1 && typo.err.contains("no group no-such-group"))
        let badID = try await Harness.runAsync(["user", "add", "bad id!", "--data", data])
        #expect(badID.status != 0 && badID.err.contains("user id must be"))
        let list = try await Harness.runAsync(["user", "list", "--data", data])
        #expect(list.status == 0 && list.out.contains("vendor.chen") && !list.out.contains("zed") && list.out.contains("6 users"))
        let json = try await Harness.runAsync(["user", "list", "--json", "--data", data])
        #expect(json.out.split(separator: "\n").count == 6)
        let show = try await Harness.runAsync(["user", "show", "vendor.chen", "--data", data])
        #expect(show.out.contains("kind:            vendor") && show.out.contains("groups:          vendors"))
        #expect(try await Harness.runAsync(["user", "show", "ghost", "--data", data]).err.contains("no user ghost"))
        #expect(try await Harness.runAsync(["user", "disable", "vendor.chen", "--data", data]).status == 0)
        #expect(try await Harness.runAsync(["user", "show", "vendor.chen", "--data", data]).out.contains("state:           disabled"))
        #expect(try await Harness.runAsync(["user", "enrol-link", "vendor.chen", "--data", data]).err.contains("is disabled"))
        #expect(try await Harness.runAsync(["user", "enable", "vendor.chen", "--data", data]).status == 0)
        let link = try await Harness.runAsync(["user", "enrol-link", "vendor.chen", "--valid-hours", "2", "--data", data])
        #expect(link.status == 0 && link.out.hasPrefix("http://localhost:8080/enrol/"))
        let reset = try await Harness.runAsync(["user", "reset-mfa", "vendor.chen", "--data", data])
        #expect(reset.status == 0 && reset.out.contains("removed 0 second factors"))
        let status = try await Harness.runAsync(["store", "status", "--data", data]).out
        #expect(status.contains("event chain:     intact"))
    }
}
