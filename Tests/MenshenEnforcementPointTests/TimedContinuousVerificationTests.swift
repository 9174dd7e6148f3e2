import Foundation
import MenshenCore
import MenshenEnforcementPoint
import MenshenPolicyAdministrator
import MenshenPolicyEngine
import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import NIOCore
import Synchronization
import Testing

/// Revocation reaches every request and every open connection: the real
/// gate (sessions in a real SQLite store, Cedar policies) behind the real
/// proxy, a client looping requests and a WebSocket open through it.
@Suite("Continuous verification (timed: run alone)")
struct TimedContinuousVerificationTests {
    static let policy = """
        @id("chat-staff")
        permit (principal in Group::"staff", action, resource == Application::"chat");
        """

    struct World {
        let store: SQLiteStore
        let sessions: SessionManager
        let state: GatewayState
        let gate: PolicyGate
        let directory: URL

        init(upstream: TestUpstream) async throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("cv-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            store = try SQLiteStore(path: directory.appendingPathComponent("m.sqlite").path)
            let clock = SystemClock()
            sessions = SessionManager(store: store, clock: clock, random: SystemRandomSource())
            let app = ApplicationRecord(id: "chat", displayName: "Chat", host: "chat.bank.example", pathPrefix: "/",
                                        upstreams: ["http://127.0.0.1:\(upstream.port)"], classification: "internal", scenario: nil,
                                        updatedAt: Date())
            state = GatewayState(GatewaySnapshot(routes: RouteTable([app]),
                                                 decisionPoint: try PolicyDecisionPoint(documents: [(name: "chat.cedar", text: TimedContinuousVerificationTests.policy)])))
            gate = PolicyGate(store: store, sessions: sessions, clock: clock, state: state, portalOrigin: "https://portal.bank.example",
                              timeZone: "Asia/Taipei")
            try await store.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
            try await store.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: Date()))
            try await store.addMember("amy", to: "staff")
        }

        func signIn() async throws -> String {
            try await sessions.issue(SessionGrant(userID: "amy", levelOfAssurance: 2, amr: ["pwd", "otp"], aal: nil, phishingResistant: false)).token
        }

        func cleanup() async {
            try? await store.close()
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// What the looping client saw: each request's send time (monotonic) and status.
    final class LoopLog: Sendable {
        let results = Mutex<[(sent: UInt64, status: Int)]>([])
        let stop = Atomic<Bool>(false)
    }

    static func openWebSocket(_ port: Int, token: String) async throws -> RawClient {
        let ws = try #require(RawClient(port: port))
        await ws.sendAsync("GET /live HTTP/1.1\r\nHost: chat.bank.example\r\nCookie: __Host-menshen-session=\(token)\r\n"
                           + "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        let switched = await ws.receiveAsync(until: "\r\n\r\n")
        #expect(switched.text.hasPrefix("HTTP/1.1 101"), "\(switched.text)")
        await ws.sendAsync("hello")
        #expect(await ws.receiveAsync(until: "hello").text == "echo:hello")
        return ws
    }

    /// One request on its own connection; returns the status code (0 when none came back).
    static func request(_ port: Int, token: String) -> Int {
        guard let c = RawClient(port: port) else { return 0 }
        c.send("GET /messages HTTP/1.1\r\nHost: chat.bank.example\r\nAccept: application/json\r\nCookie: __Host-menshen-session=\(token)\r\nConnection: close\r\n\r\n")
        let reply = c.receive(until: "\r\n\r\n").text
        return Int(reply.dropFirst(9).prefix(3)) ?? 0
    }

    @Test("a revocation made while a client loops requests and a WebSocket is open: no request is admitted after it returns, the WebSocket closes within the interval")
    func revocationUnderLoad() async throws {
        try await withUpstream { try await Self.revocationScenario($0) }
    }

    // (A separate function: as a closure body this crashed the 6.3.1 compiler's SendNonSendable pass.)
    static func revocationScenario(_ upstream: TestUpstream) async throws {
        let interval = 2.0
        do {
            let w = try await World(upstream: upstream)
            var config = ProxyConfiguration()
            config.reevaluationInterval = .milliseconds(Int64(interval * 1000))
            let server = EnforcementPointServer(configuration: config, gate: w.gate, group: upstream.group)
            try await server.start()
            let port = try #require(server.localPort)
            let token = try await w.signIn()

            // The looping client: every request with the monotonic time it was sent and its status.
            let log = LoopLog()
            let loop = Task.detached {
                while !log.stop.load(ordering: .relaxed) {
                    let sent = DispatchTime.now().uptimeNanoseconds
                    let status = Self.request(port, token: token)
                    log.results.withLock { $0.append((sent, status)) }
                }
            }
            let ws = try await Self.openWebSocket(port, token: token)
            while log.results.withLock({ $0.filter { $0.status == 200 }.count }) < 20 { try await Task.sleep(for: .milliseconds(20)) }

            try await w.sessions.revoke(idHash: SessionManager.hash(token: token), reason: "test: revoked under load")
            let revoked = DispatchTime.now().uptimeNanoseconds
            let closed = await ws.receiveAsync()
            let closedAfter = Double(DispatchTime.now().uptimeNanoseconds - revoked) / 1e9
            try await Task.sleep(for: .milliseconds(300))   // keep looping a little after the revocation
            log.stop.store(true, ordering: .relaxed)
            await loop.value

            let all = log.results.withLock { $0 }
            let before = all.filter { $0.sent < revoked }, after = all.filter { $0.sent > revoked }
            #expect(before.contains { $0.status == 200 }, "the session worked before it was revoked")
            #expect(!after.isEmpty, "requests kept coming after the revocation")
            #expect(after.allSatisfy { $0.status == 401 }, "admitted after revoke: \(after.filter { $0.status != 401 }.map(\.status))")
            #expect(closed.closed, "the WebSocket was closed by the proxy")
            #expect(closedAfter <= interval + 0.5, "closed \(closedAfter) s after the revocation; interval \(interval) s")
            #expect(server.metrics.reevaluationClosures >= 1)
            try await server.shutdown()
            await w.cleanup()
        }
    }

    @Test("periodic re-evaluation: a response still streaming is checked within one interval of its decision, whenever it started")
    func cadence() async throws {
        try await withProxy(configure: { $0.reevaluationInterval = .seconds(1) }, gate: { upstream in
            let target = upstream.upstream
            return RecordingGate { request in
                if request.isReevaluation && request.path == "/slow" { return .respond(status: 403, headers: [], body: []) }
                return .forward(upstream: target, addHeaders: [])
            }
        }) { server, _, gate in
            let port = try #require(server.localPort)
            // A canary WebSocket, always allowed: its re-evaluations show when the periodic ones run.
            let canary = try #require(RawClient(port: port))
            await canary.sendAsync(webSocketUpgrade)
            #expect(await canary.receiveAsync(until: "\r\n\r\n").text.hasPrefix("HTTP/1.1 101"))
            let reevaluations = { gate.asked.all.filter(\.isReevaluation).count }
            let before = reevaluations()
            for _ in 0..<300 where reevaluations() == before { try await Task.sleep(for: .milliseconds(5)) }
            // Right after a periodic re-evaluation: a request whose response never comes (it stays forwarding), and
            // that the gate no longer allows when asked again.
            let stream = try #require(RawClient(port: port))
            let sent = DispatchTime.now().uptimeNanoseconds
            await stream.sendAsync("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
            let closed = await stream.receiveAsync()
            let after = Double(DispatchTime.now().uptimeNanoseconds - sent) / 1e9
            #expect(closed.closed)
            // Checked once per interval with a minimum age of one interval, it was first asked almost two intervals later.
            #expect(after < 1.4, "closed \(after) s after its decision; interval 1 s")
        }
    }

    @Test("re-evaluation on demand: a disabled user's or newly denied WebSocket closes at once; an allowed one stays open")
    func onDemand() async throws {
        try await withUpstream { upstream in
            let w = try await World(upstream: upstream)
            var config = ProxyConfiguration()
            config.reevaluationInterval = nil   // only on demand here
            let server = EnforcementPointServer(configuration: config, gate: w.gate, group: upstream.group)
            try await server.start()
            let port = try #require(server.localPort)

            let ws = try await Self.openWebSocket(port, token: try await w.signIn())
            #expect(await server.reevaluate() == 0, "still allowed: nothing closed")
            await ws.sendAsync("still-here")
            #expect(await ws.receiveAsync(until: "still-here").text == "echo:still-here")

            // A policy change that now denies: the next re-evaluation closes the connection.
            let forbid = TimedContinuousVerificationTests.policy + "\n@id(\"freeze\")\nforbid (principal, action, resource == Application::\"chat\");\n"
            w.state.replace(GatewaySnapshot(routes: w.state.snapshot.routes,
                                            decisionPoint: try PolicyDecisionPoint(documents: [(name: "chat.cedar", text: forbid)]), generation: 2))
            #expect(await server.reevaluate() == 1)
            #expect(await ws.receiveAsync().closed)

            // Disabling the user closes their connection on the next re-evaluation.
            w.state.replace(GatewaySnapshot(routes: w.state.snapshot.routes,
                                            decisionPoint: try PolicyDecisionPoint(documents: [(name: "chat.cedar", text: TimedContinuousVerificationTests.policy)]), generation: 3))
            let second = try await Self.openWebSocket(port, token: try await w.signIn())
            var amy = try #require(try await w.store.user("amy"))
            amy.disabled = true
            try await w.store.updateUser(amy)
            #expect(await server.reevaluate() == 1)
            #expect(await second.receiveAsync().closed)
            try await server.shutdown()
            await w.cleanup()
        }
    }
}
