import Foundation
import MenshenEnforcementPoint
import Testing

/// ``ProxyConfiguration/maxClientConnections``: idle connections cannot pile up without bound.
@Suite("Client connection limit")
struct ConnectionLimitTests {
    /// Waits up to 10 s for `condition` (the server counts connections on its event loops).
    static func settle(_ condition: () -> Bool) async throws {
        for _ in 0..<200 where !condition() { try await Task.sleep(for: .milliseconds(50)) }
    }

    @Test("beyond the limit a connection is closed before anything is read and counted; admitted ones are served; a closed one frees its place")
    func limit() async throws {
        try await withProxy(configure: { $0.maxClientConnections = 3 }, gate: { forwardAll($0) }) { server, _, _ in
            let port = server.localPort ?? 0
            var held: [RawClient] = []
            for _ in 0..<3 { held.append(try #require(RawClient(port: port))) }
            try await Self.settle { server.clientConnections == 3 }
            #expect(server.clientConnections == 3)

            // The kernel completes the TCP handshake; the server closes the connection at once (nothing is sent on it:
            // a request would be answered with a reset, unread).
            let extra = try #require(RawClient(port: port))
            let refused = await extra.receiveAsync()
            #expect(refused.closed && refused.text.isEmpty, "\(refused.text)")
            #expect(server.metrics.connectionsRefused == 1)
            #expect(server.clientConnections == 3)

            // The admitted ones are served as usual.
            await held[0].sendAsync("GET /in HTTP/1.1\r\nHost: app\r\n\r\n")
            let served = await held[0].receiveAsync(until: "\r\n\r\n")
            #expect(served.text.hasPrefix("HTTP/1.1 200"), "\(served.text)")

            // One closes: its place is free again.
            held.removeLast()
            try await Self.settle { server.clientConnections == 2 }
            #expect(server.clientConnections == 2)
            let again = try #require(RawClient(port: port))
            await again.sendAsync("GET /again HTTP/1.1\r\nHost: app\r\n\r\n")
            let servedAgain = await again.receiveAsync(until: "\r\n\r\n")
            #expect(servedAgain.text.hasPrefix("HTTP/1.1 200"), "\(servedAgain.text)")
            #expect(server.metrics.connectionsRefused == 1)
            withExtendedLifetime(held) {}
        }
    }
}
