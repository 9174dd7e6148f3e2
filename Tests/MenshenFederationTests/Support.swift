import Foundation
import MenshenFederation
import MenshenIdentity
import MenshenTestSupport
import Testing

// MARK: - The real OpenID Provider (scripts/oidc-op/op.py, built on Authlib)

/// Why the provider cannot run here, or nil when it can.
enum OPAvailability {
    static let repositoryRoot: URL = {
        // #filePath may go through the development package's symlink; resolve it.
        URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }()

    static var python: String {
        ProcessInfo.processInfo.environment["MENSHEN_TEST_PYTHON"]
            ?? repositoryRoot.appendingPathComponent(".venv-test/bin/python").path
    }

    static var script: String { repositoryRoot.appendingPathComponent("scripts/oidc-op/op.py").path }

    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// nil when `python -c "import authlib, flask, joserfc"` succeeds.
    static let problem: String? = {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            return "no Python at \(python) (scripts/test creates .venv-test; pip install -r scripts/oidc-op/requirements.txt)"
        }
        // posix_spawn, not Foundation's Process (see `spawnAndWait`).
        let status: Int32
        do { status = try spawnAndWait(python, ["-c", "import authlib, flask, joserfc"]).status } catch { return "cannot run \(python): \(error)" }
        return status == 0
            ? nil : "\(python) lacks authlib/flask/joserfc (pip install -r scripts/oidc-op/requirements.txt)"
    }()

    /// Tests needing the provider run when it is usable, and always under CI
    /// (where a provider that cannot start is a failure, not a skip).
    static let shouldRun: Bool = {
        if let problem {
            if isCI {
                print("MenshenFederationTests: CI=true and the test OpenID Provider is unusable: \(problem) — the tests will FAIL")
                return true
            }
            print("MenshenFederationTests: SKIPPING the real-OpenID-Provider tests: \(problem)")
            return false
        }
        return true
    }()
}

struct OPFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One running provider process on 127.0.0.1 (a free port chosen by the
/// system and read from its READY line). Stopped by `stop()`; it also exits
/// by itself when its standard input closes, i.e. if the test process dies.
final class TestOP: @unchecked Sendable {
    static let redirectURI = "https://menshen.test/oidc/callback"

    let port: Int
    var issuer: String { "http://127.0.0.1:\(port)" }
    private let process: ChildProcess
    private let logPath: String

    private init(port: Int, process: ChildProcess, logPath: String) {
        self.port = port
        self.process = process
        self.logPath = logPath
    }

    static func start() async throws -> TestOP {
        if let problem = OPAvailability.problem { throw OPFailure("the test OpenID Provider cannot run: \(problem)") }
        // posix_spawn, not Foundation's Process (see `spawnAndWait`); its standard input held open until stop().
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: OPAvailability.python)
        process.arguments = [OPAvailability.script, "--port", "0", "--redirect-uri", redirectURI, "--exit-on-stdin-eof"]
        process.holdsStandardInput = true
        let outPath = NSTemporaryDirectory() + "menshen-oidc-op-\(UUID().uuidString).out"
        let logPath = NSTemporaryDirectory() + "menshen-oidc-op-\(UUID().uuidString).log"
        process.outputPath = outPath
        process.errorPath = logPath
        try process.run()
        defer { try? FileManager.default.removeItem(atPath: outPath) }

        // The READY line, polled from its output file on a plain thread (within 60 s).
        let port: Int? = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let deadline = Date().addingTimeInterval(60)
                while Date() < deadline {
                    let text = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
                    if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("OIDC-OP READY port=") }),
                       let value = line.split(separator: " ").first(where: { $0.hasPrefix("port=") }).flatMap({ Int($0.dropFirst(5)) }) {
                        continuation.resume(returning: value)
                        return
                    }
                    if !process.isRunning { break }
                    usleep(20_000)
                }
                continuation.resume(returning: nil)
            }
        }
        guard let port else {
            process.signal(SIGKILL)
            process.waitUntilExit()
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(atPath: logPath)
            throw OPFailure("the test OpenID Provider did not become ready:\n\(log.suffix(3000))")
        }
        return TestOP(port: port, process: process, logPath: logPath)
    }

    func stop() {
        process.closeStandardInput()
        process.terminate()
        // SIGKILL after a grace period (the OP may be slow to shut its server down).
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        process.signal(SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: logPath)
    }

    // MARK: control endpoints

    @discardableResult
    func control(_ path: String, _ body: [String: Any]) async throws -> [String: Any] {
        let response = try await Browser.shared.send(issuer + path, method: "POST",
                                                     body: try JSONSerialization.data(withJSONObject: body),
                                                     contentType: "application/json")
        guard response.status == 200 else { throw OPFailure("\(path) answered \(response.status)") }
        return (try JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
    }

    func stats() async throws -> [String: Any] {
        let response = try await Browser.shared.send(issuer + "/control/stats")
        return (try JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
    }

    func count(_ name: String) async throws -> Int { try await stats()[name] as? Int ?? -1 }

    func addUser(_ username: String, acr: String? = nil, amr: [String]?, groups: [String] = []) async throws {
        var body: [String: Any] = ["username": username, "password": "\(username)-password", "sub": "sub-\(username)",
                                   "groups": groups]
        if let acr { body["acr"] = acr }
        if let amr { body["amr"] = amr }
        try await control("/control/users", body)
    }

    /// Rotates the provider's signing keys; `keepOld: false` stops publishing the old ones.
    func rotateKeys(keepOld: Bool) async throws {
        try await control("/control/rotate", ["keep_old": keepOld])
    }
}

struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

private final class ResumeOnce: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Int?, Never>?
    init(_ continuation: CheckedContinuation<Int?, Never>) { self.continuation = continuation }
    func resume(_ value: Int?) {
        lock.lock()
        let c = continuation
        continuation = nil
        lock.unlock()
        c?.resume(returning: value)
    }
}

// MARK: - The browser

/// Runs blocking work on its own thread (not the cooperative pool).
func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            do { continuation.resume(returning: try work()) } catch { continuation.resume(throwing: error) }
        }
    }
}

/// A user agent for the provider's pages, independent of the relying party's
/// HTTP client: curl, which does not follow redirects, so the test sees the
/// provider's 302 to the redirect URI (which nobody serves) and takes the
/// callback query from its Location.
struct Browser: Sendable {
    static let shared = Browser()

    struct Response: Sendable {
        let status: Int
        let headers: [String: String]
        let body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    func send(_ url: String, method: String = "GET", body: Data? = nil, contentType: String? = nil) async throws -> Response {
        try await onThread {
            var arguments = ["curl", "-s", "-S", "-i", "--max-time", "90", "-H", "Expect:", "-X", method]
            if let contentType { arguments += ["-H", "Content-Type: \(contentType)"] }
            if body != nil { arguments += ["--data-binary", "@-"] }
            // posix_spawn, not Foundation's Process (see `spawnAndWait`).
            let r = try spawnAndWait("/usr/bin/env", arguments + [url], input: body.map { [UInt8]($0) })
            let data = Data(r.stdout + r.stderr)
            guard r.status == 0 else {
                throw OPFailure("curl \(method) \(url) failed: \(String(decoding: data, as: UTF8.self).prefix(300))")
            }
            guard let split = data.range(of: Data("\r\n\r\n".utf8)) else { throw OPFailure("no HTTP response from \(url)") }
            let head = String(decoding: data[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
            let statusLine = head.first?.split(separator: " ") ?? []
            guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw OPFailure("bad status line from \(url)") }
            var headers: [String: String] = [:]
            for line in head.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            return Response(status: status, headers: headers, body: Data(data[split.upperBound...]))
        }
    }

    /// Opens the authorization URL, fills in the provider's login form and
    /// submits it; returns the query of the callback the provider redirects to.
    func signIn(at authorizationURL: URL, username: String, password: String? = nil, decision: String = "allow")
        async throws -> String
    {
        let page = try await send(authorizationURL.absoluteString)
        guard page.status == 200 else { throw OPFailure("login page answered \(page.status): \(page.text.prefix(300))") }
        guard let actionRange = page.text.range(of: #"<form method="post" action="([^"]*)""#, options: .regularExpression)
        else { throw OPFailure("no login form on the provider's page") }
        let formTag = String(page.text[actionRange])
        let rawAction = String(formTag.split(separator: "\"", omittingEmptySubsequences: false)[3])
        let action = rawAction.replacingOccurrences(of: "&amp;", with: "&").replacingOccurrences(of: "&#x27;", with: "'")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&lt;", with: "<")
            .replacingOccurrences(of: "&gt;", with: ">")
        guard let target = URL(string: action, relativeTo: authorizationURL)?.absoluteURL else {
            throw OPFailure("unusable form action")
        }
        let fields = [("username", username), ("password", password ?? "\(username)-password"), ("decision", decision)]
        let form = Data(fields.map { "\($0.0)=\(formEncode($0.1))" }.joined(separator: "&").utf8)
        let answer = try await send(target.absoluteString, method: "POST", body: form,
                                    contentType: "application/x-www-form-urlencoded")
        guard answer.status == 302, let location = answer.headers["location"] else {
            throw OPFailure("login answered \(answer.status): \(answer.text.prefix(300))")
        }
        guard location.hasPrefix(TestOP.redirectURI + "?"), let query = URLComponents(string: location)?.percentEncodedQuery else {
            throw OPFailure("the provider redirected elsewhere: \(location)")
        }
        return query
    }

    private func formEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

// MARK: - Provider configurations for the tests

enum TestClients {
    static let basic = (id: "menshen-basic", secret: "secret-basic-0123456789")
    static let post = (id: "menshen-post", secret: "secret-post-0123456789")
    static let publicClient = "menshen-public"
}

func testProvider(
    op: TestOP,
    id: String = "partner",
    clientID: String = TestClients.basic.id,
    clientSecret: String? = TestClients.basic.secret,
    issuer: String? = nil,
    acrLevels: [String: LevelOfAssurance] = OIDCProviderConfiguration.eapACRLevels,
    maximumLevelOfAssurance: LevelOfAssurance = .loa3
) -> OIDCProviderConfiguration {
    OIDCProviderConfiguration(
        id: id, displayNameZhTW: "合作機構", displayNameEnglish: "Partner institution",
        issuer: issuer ?? op.issuer, clientID: clientID, clientSecret: clientSecret,
        redirectURI: TestOP.redirectURI, scopes: ["openid", "profile", "email", "groups"],
        groupMappings: [.init(claim: "groups", groups: ["vendors": "grp-vendors", "maintenance": "grp-maintenance",
                                                        "staff": "grp-staff"])],
        acrLevels: acrLevels, userKind: .vendor, maximumLevelOfAssurance: maximumLevelOfAssurance,
        allowsInsecureLoopback: true)
}

/// Runs `body` with a fresh provider process, stopping it afterwards.
func withTestOP(_ body: (TestOP) async throws -> Void) async throws {
    let op = try await TestOP.start()
    defer { op.stop() }
    try await body(op)
}

/// Runs `body` with a relying party for `providers`, always shutting it down.
@discardableResult
func withRelyingParty<T: Sendable>(_ providers: [OIDCProviderConfiguration],
                                   _ body: (OIDCRelyingParty) async throws -> T) async throws -> T {
    let rp = try OIDCRelyingParty(providers: providers)
    let result: T
    do {
        result = try await body(rp)
    } catch {
        try? await rp.shutdown()
        throw error
    }
    try await rp.shutdown()
    return result
}

/// Asserts that `body` throws an `OIDCError` with `code`.
func expectOIDCError<T>(_ code: OIDCError.Code, sourceLocation: SourceLocation = #_sourceLocation,
                        _ body: () async throws -> T) async {
    do {
        _ = try await body()
        Issue.record("expected OIDCError.\(code.rawValue), but it succeeded", sourceLocation: sourceLocation)
    } catch let error as OIDCError {
        #expect(error.code == code, "got \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected OIDCError.\(code.rawValue), got \(error)", sourceLocation: sourceLocation)
    }
}
