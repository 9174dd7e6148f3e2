import Foundation
import Logging
import MenshenCore
import MenshenEnforcementPoint
import MenshenPolicyAdministrator
import MenshenPolicyEngine
@testable import MenshenServer
import MenshenStorage
import Testing

/// A routes-file reload re-authorizes open connections at once: the file is not in the store's change feed, so
/// nothing else would until the next periodic re-evaluation.
@Suite("Routes file reload and open connections")
struct ReloadSweepTests {
    static let routes = """
        policies: [chat.cedar]
        routes:
          - id: chat
            host: chat.bank.example
            path_prefix: /
            upstreams: ["http://127.0.0.1:UPSTREAM"]
            classification: internal
        """

    @Test("a routes-file change that now denies closes an open WebSocket at the reload, with periodic re-evaluation off")
    func reloadClosesWebSocket() async throws {
        try await withUpstream { upstream in
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("menshen-reload-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let routesFile = dir.appendingPathComponent("routes.yaml")
            try Self.routes.replacingOccurrences(of: "UPSTREAM", with: String(upstream.port)).write(to: routesFile, atomically: true, encoding: .utf8)
            let policyFile = dir.appendingPathComponent("chat.cedar")
            try TimedContinuousVerificationTests.policy.write(to: policyFile, atomically: true, encoding: .utf8)

            let (store, clock, sessions, loader, state) = try await ObligationsEndToEndTests.staffGateway(routesFile: routesFile.path)
            let gate = PolicyGate(store: store, sessions: sessions, clock: clock, state: state, portalOrigin: "https://portal.bank.example",
                                  timeZone: "Asia/Taipei")
            var config = ProxyConfiguration()
            config.reevaluationInterval = nil   // only the reload may close it
            let server = EnforcementPointServer(configuration: config, gate: gate, group: upstream.group)
            let bound = AsyncStream<Int>.makeStream()
            let service = GatewayService(server: server, state: state, loader: loader, reloadInterval: .milliseconds(100),
                                         logger: Logger(label: "test.reload"), onBound: { bound.continuation.yield($0) })
            let running = Task { try await service.run() }
            defer { running.cancel() }
            var ports = bound.stream.makeAsyncIterator()
            let port = try #require(await ports.next())
            let token = try await sessions.issue(SessionGrant(userID: "amy", levelOfAssurance: 2, amr: ["pwd", "otp"], aal: nil,
                                                              phishingResistant: false)).token
            let ws = try await TimedContinuousVerificationTests.openWebSocket(port, token: token)

            // The policy file now forbids the application: the reload (100 ms, plus the settle check) closes the connection.
            let forbid = TimedContinuousVerificationTests.policy + "\n@id(\"freeze\")\nforbid (principal, action, resource == Application::\"chat\");\n"
            try forbid.write(to: policyFile, atomically: true, encoding: .utf8)
            let closed = await ws.receiveAsync()
            #expect(closed.closed, "the WebSocket stayed open after the routes file denied it")
            #expect(state.snapshot.generation > 1, "the change was loaded")
            running.cancel()
            _ = try? await running.value
        }
    }
}
