import Foundation
import MenshenCore
import MenshenPolicyAdministrator
import MenshenStorage
import MenshenStorageSQLite
import MenshenTestSupport
import Testing

/// `https://` upstreams in the real `menshen serve`: two `openssl s_server -www` upstreams, one with a certificate
/// from the CA in `gateway.upstream_tls.ca_file`, one self-signed by a CA nobody configured. A signed-in user
/// reaches the first through the gateway over verified TLS and gets 502 from the second.
@Suite("TLS to upstreams (real menshen serve, openssl s_server upstreams)", .serialized)
struct UpstreamTLSServeTests {
    static func openssl(_ args: [String], in dir: URL) throws {
        let r = try spawnAndWait("/usr/bin/openssl", args, directory: dir.path)
        guard r.status == 0 else { throw Harness.HarnessError("openssl \(args.joined(separator: " ")): \(r.stderrText)") }
    }

    /// A self-signed certificate and key for localhost (`name`.pem, `name`.key).
    static func certificate(_ name: String, in dir: URL) throws {
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                     "-keyout", "\(name).key", "-out", "\(name).pem", "-subj", "/CN=localhost",
                     "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], in: dir)
    }

    /// `openssl s_server -www` on a free port with `name`.pem: answers every request with its status page.
    static func sServer(_ name: String, in dir: URL) throws -> (ChildProcess, Int) {
        let port = try Harness.freePort()
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", "\(name).pem", "-key", "\(name).key", "-www", "-quiet"]
        p.currentDirectoryURL = dir
        try p.run()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if (try? spawnAndWait("/usr/bin/curl", ["-sk", "-o", "/dev/null", "--max-time", "2", "https://127.0.0.1:\(port)/"]))?.status == 0 {
                return (p, port)
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        stop(p)
        throw Harness.HarnessError("openssl s_server did not start on \(port)")
    }

    /// SIGKILL: a child of this test process inherits its threads' blocked signals, so SIGTERM may never arrive.
    static func stop(_ p: ChildProcess) {
        p.signal(SIGKILL)
        p.waitUntilExit()
    }

    @Test("a verified https upstream is reached (200, its page through the gateway); one whose CA is not configured gives 502")
    func httpsUpstreams() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.certificate("trusted", in: dir)
        try Self.certificate("stranger", in: dir)
        let (trusted, trustedPort) = try Self.sServer("trusted", in: dir)
        defer { Self.stop(trusted) }
        let (stranger, strangerPort) = try Self.sServer("stranger", in: dir)
        defer { Self.stop(stranger) }

        let p = try Harness.freePort(), g = try Harness.freePort(), admin = try Harness.freePort()
        let database = dir.appendingPathComponent("menshen.sqlite").path
        try """
            routes:
              - id: secure
                host: localhost
                path_prefix: /secure
                upstreams: ["https://localhost:\(trustedPort)"]
                classification: internal
                require:
                  groups: [staff]
              - id: stranger
                host: localhost
                path_prefix: /stranger
                upstreams: ["https://127.0.0.1:\(strangerPort)"]
                classification: internal
                require:
                  groups: [staff]
            """.write(to: dir.appendingPathComponent("routes.yaml"), atomically: true, encoding: .utf8)
        let config = dir.appendingPathComponent("menshen.yaml")
        try """
            server:
              listen: 127.0.0.1:\(p)
              public_url: http://localhost:\(p)
            gateway:
              listen: 127.0.0.1:\(g)
              public_url: http://localhost:\(g)
              routes_file: \(dir.appendingPathComponent("routes.yaml").path)
              upstream_tls:
                ca_file: \(dir.appendingPathComponent("trusted.pem").path)
            admin:
              listen: 127.0.0.1:\(admin)
            store:
              driver: sqlite
              sqlite:
                path: \(database)
            """.write(to: config, atomically: true, encoding: .utf8)
        let serve = UncheckedBox(value: ChildProcess())
        defer {
            serve.value.signal(SIGTERM)
            serve.value.waitUntilExit()
        }
        try await Harness.offPool { try Harness.startServe(serve.value, config: config.path, adminPort: admin) }

        let store = try SQLiteStore(path: database)
        try await store.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
        try await store.createUser(UserRecord(id: UserID("amy"), displayName: "Amy", createdAt: Date()))
        try await store.addMember(UserID("amy"), to: "staff")
        let token = try await SessionManager(store: store, clock: SystemClock(), random: SystemRandomSource())
            .issue(SessionGrant(userID: UserID("amy"), levelOfAssurance: 2, amr: ["pwd", "otp"], aal: nil, phishingResistant: false)).token
        try await store.close()
        let cookie = ["Cookie": "__Host-menshen-session=\(token)", "Accept": "application/json"]

        let ok = try await PortalIdentityTests.http("GET", "http://localhost:\(g)/secure/page", headers: cookie)
        #expect(ok.status == 200, "\(ok.status) \(ok.body.prefix(300))")
        #expect(ok.body.contains("s_server"), "\(ok.body.prefix(300))")   // openssl's status page came through
        let refused = try await PortalIdentityTests.http("GET", "http://localhost:\(g)/stranger/page", headers: cookie)
        #expect(refused.status == 502, "\(refused.status) \(refused.body.prefix(300))")
        #expect(!refused.body.contains("s_server"))
    }
}
