import Foundation
@testable import MenshenEnforcementPoint
import MenshenTestSupport
import NIOCore
import Testing

/// The idle timeout of upgraded (WebSocket) connections. Timed (run alone, `--no-parallel`): the talking client must
/// never fall silent for the timeout, which a starved cooperative pool in a loaded parallel run could make it do.
@Suite("Spliced connections: idle timeout")
struct TimedSpliceIdleTests {
    @Test("a WebSocket with no byte either way for the idle timeout is closed on both sides; one that keeps talking stays open")
    func idleTunnelClosed() async throws {
        try await withProxy(configure: { $0.upgradedIdleTimeout = .seconds(2); $0.reevaluationInterval = nil },
                            gate: { forwardAll($0) }) { server, upstream, _ in
            let talking = try #require(RawClient(port: server.localPort ?? 0))
            let silent = try #require(RawClient(port: server.localPort ?? 0))
            #expect(await SpliceTests.upgrade(talking))
            #expect(await SpliceTests.upgrade(silent))
            let start = Date()
            let silentEnd = Task { () -> (closed: Bool, after: TimeInterval) in
                let r = await silent.receiveAsync()
                return (r.closed, Date().timeIntervalSince(start))
            }
            // A frame every 250 ms for 6 s: three times the timeout, never silent for it.
            for n in 0..<24 {
                try await Task.sleep(for: .milliseconds(250))
                await talking.sendAsync("t\(n).")
                #expect(await talking.receiveAsync(until: "t\(n).").text == "echo:t\(n).")
            }
            let end = await silentEnd.value
            #expect(end.closed, "the silent WebSocket is still open")
            #expect(end.after >= 1.5 && end.after < 6, "closed after \(end.after) s")
            #expect(upstream.tunnelsClosed.current == 1, "the upstream side of the silent one is closed too, not the other")
            await talking.sendAsync("last.")
            #expect(await talking.receiveAsync(until: "last.").text == "echo:last.")
        }
    }
}
