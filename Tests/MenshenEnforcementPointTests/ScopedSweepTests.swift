import Foundation
import Logging
import MenshenCore
import MenshenEnforcementPoint
import MenshenPolicyAdministrator
import MenshenPolicyEngine
@testable import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import Synchronization
import Testing

/// With SQLite, a sweep after access changes asks again only about the long-lived connections of the users the changes
/// concerned (`access_changes`, migration 19): a sign-out or a risk score for one user no longer re-authorizes every
/// open WebSocket of the gateway. Real `ChangeWatcher`, real store, real server and WebSockets; the changes are made by
/// another store handle, as another process would.
@Suite("Sweeps scoped to the users a change concerned")
struct ScopedSweepTests {
    /// The real gate, counting the re-evaluations it is asked, by the session cookie they present.
    final class CountingGate: AccessGate {
        let inner: PolicyGate
        let reevaluated = Mutex<[String: Int]>([:])
        init(inner: PolicyGate) { self.inner = inner }
        func decide(_ request: GateRequest) async -> GateVerdict {
            if request.isReevaluation, let token = PolicyGate.cookie(PortalCookies.session, in: request) {
                reevaluated.withLock { $0[token, default: 0] += 1 }
            }
            return await inner.decide(request)
        }
        func decideImmediately(_ request: GateRequest) -> GateVerdict? { inner.decideImmediately(request) }
        func asked(_ token: String) -> Int { reevaluated.withLock { $0[token] ?? 0 } }
    }

    /// Waits (polling) until `condition` holds or `seconds` pass; returns whether it held.
    static func eventually(_ seconds: Double = 10, _ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while !condition() {
            guard ContinuousClock.now < deadline else { return false }
            try await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    @Test("a change to one user's access asks again about that user's WebSockets only; one that may concern anyone asks about all; a membership removed closes that WebSocket at once")
    func scopedToUsers() async throws {
        try await withUpstream { upstream in
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("menshen-scoped-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let routesFile = dir.appendingPathComponent("routes.yaml")
            try ReloadSweepTests.routes.replacingOccurrences(of: "UPSTREAM", with: String(upstream.port)).write(to: routesFile, atomically: true, encoding: .utf8)
            try TimedContinuousVerificationTests.policy.write(to: dir.appendingPathComponent("chat.cedar"), atomically: true, encoding: .utf8)
            let file = dir.appendingPathComponent("menshen.sqlite").path
            let store = try SQLiteStore(path: file)
            let other = try SQLiteStore(path: file)   // another process: the command line, the detections on another node
            let clock = SystemClock()
            let sessions = SessionManager(store: store, clock: clock, random: SystemRandomSource())
            try await store.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
            try await store.createRole(RoleRecord(id: "teller", displayName: "Teller", riskTier: .standard))
            for id in ["amy", "bob", "carol"] {
                try await store.createUser(UserRecord(id: UserID(id), displayName: id, createdAt: Date()))
                try await store.addMember(UserID(id), to: "staff")
            }
            let loader = GatewayLoader(store: store, routesFile: routesFile.path, clock: clock)
            let state = GatewayState(try await loader.load())
            let policyGate = PolicyGate(store: store, sessions: sessions, clock: clock, state: state, portalOrigin: "https://portal.bank.example",
                                        timeZone: "Asia/Taipei")
            let gate = CountingGate(inner: policyGate)
            var config = ProxyConfiguration()
            config.reevaluationInterval = nil   // only the change watcher's sweeps ask
            let server = EnforcementPointServer(configuration: config, gate: gate, group: upstream.group)
            try await server.start()
            let port = try #require(server.localPort)
            let watcher = ChangeWatcher(store: store, server: server, state: state, loader: loader, logger: Logger(label: "test.scoped"),
                                        sessionUser: { policyGate.sessionUser(of: $0) })
            let watching = Task { try await watcher.run() }

            var tokens: [String: String] = [:]
            var sockets: [String: RawClient] = [:]
            for id in ["amy", "bob", "carol"] {
                let token = try await sessions.issue(SessionGrant(userID: UserID(id), levelOfAssurance: 2, amr: ["pwd", "otp"], aal: nil,
                                                                   phishingResistant: false)).token
                tokens[id] = token
                sockets[id] = try await TimedContinuousVerificationTests.openWebSocket(port, token: token)
            }
            let amy = try #require(tokens["amy"]), bob = try #require(tokens["bob"]), carol = try #require(tokens["carol"])
            // Let the watcher's first poll settle before changing anything.
            try await Task.sleep(for: .milliseconds(600))

            // Bob's access changes (a role, a risk score): bob's WebSocket is asked again, amy's and carol's are not.
            try await other.assignRole("teller", to: "bob")
            try await other.saveRiskScore(RiskScoreRecord(userID: "bob", contributions: "[]", updatedAt: Date()))
            #expect(try await Self.eventually { gate.asked(bob) >= 1 }, "bob's connection was not asked after bob's change")
            try await Task.sleep(for: .milliseconds(800))   // several more polls: nothing else is asked
            #expect(gate.asked(amy) == 0 && gate.asked(carol) == 0, "asked about others: amy \(gate.asked(amy)), carol \(gate.asked(carol))")

            // A change that may concern anyone (a role's tier edited): every connection is asked.
            let before = (amy: gate.asked(amy), bob: gate.asked(bob), carol: gate.asked(carol))
            try other.unsafeExecute("UPDATE roles SET risk_tier = 'sensitive' WHERE id = 'teller'")
            #expect(try await Self.eventually { gate.asked(amy) > before.amy && gate.asked(bob) > before.bob && gate.asked(carol) > before.carol })

            // Amy leaves the group: her WebSocket is closed; carol's stays open and works.
            try await other.removeMember("amy", from: "staff")
            let amySocket = try #require(sockets["amy"])
            #expect(await amySocket.receiveAsync().closed, "amy's WebSocket stayed open")
            let carolSocket = try #require(sockets["carol"])
            await carolSocket.sendAsync("still")
            #expect(await carolSocket.receiveAsync(until: "still").text == "echo:still")

            watching.cancel()
            _ = try? await watching.value
            try await server.shutdown()
            try await other.close()
            try await store.close()
        }
    }
}
