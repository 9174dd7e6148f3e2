import Foundation
@testable import MenshenEnforcementPoint
import MenshenServer
import MenshenTestSupport
import NIOCore
import NIOSSL
import Testing

/// Upgraded (WebSocket) connections after the 101: the upstream pool's slots, and a revocation over TLS (the idle timeout:
/// ``TimedSpliceIdleTests``).
@Suite("Spliced connections")
struct SpliceTests {
    static func upgrade(_ client: RawClient) async -> Bool {
        await client.sendAsync(webSocketUpgrade)
        return await client.receiveAsync(until: "\r\n\r\n").text.hasPrefix("HTTP/1.1 101")
    }

    @Test("a WebSocket does not hold one of the upstream pool's slots: with one connection per upstream, requests still pass; none is counted twice")
    func tunnelLeavesPool() async throws {
        // One event loop: the pool counts per loop, so the WebSocket and the request must share it.
        try await withProxy(threads: 1, configure: {
            $0.maxConnectionsPerUpstream = 1
            $0.connectTimeout = .seconds(2)   // how long a request waits for a slot before its 503
            $0.reevaluationInterval = nil
        }, gate: { forwardAll($0) }) { server, upstream, _ in
            // The pool counts per event loop (here one): the sum over the loops.
            func counted() -> Int {
                upstream.group.makeIterator().reduce(0) { $0 + server.shared.pool.connectionCount(UpstreamPool.key(upstream.upstream, on: $1)) }
            }
            let base = "http://127.0.0.1:\(server.localPort ?? 0)"
            let ws = try #require(RawClient(port: server.localPort ?? 0))
            #expect(await Self.upgrade(ws))
            await ws.sendAsync("x.")
            #expect(await ws.receiveAsync(until: "x.").text == "echo:x.")
            #expect(counted() == 0, "the tunnel is not counted")
            let during = await curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", "\(base)/during"])
            #expect(during.stdout == "200", "a request while the WebSocket is open: \(during.stdout)")
            #expect(counted() == 1, "the request's connection, idle now")
            #expect(server.closeConnections { $0.spliced } == 1)
            for _ in 0..<100 where upstream.tunnelsClosed.current == 0 { try await Task.sleep(for: .milliseconds(20)) }
            #expect(upstream.tunnelsClosed.current == 1)
            try await Task.sleep(for: .milliseconds(100))
            #expect(counted() == 1, "the tunnel's close is not taken off the count a second time")
        }
    }

    @Test("a revocation over TLS closes the upstream side at once: client bytes sent after it never reach the upstream, though the TLS close waits for the client")
    func revocationOverTLS() async throws {
        let certs = try await TLSAndHTTP2Tests.Certificates.make()
        defer { try? FileManager.default.removeItem(at: certs.dir) }
        let context = try certs.serverContext(http2: false)
        try await withProxy(configure: {
            $0.tlsHandler = { NIOSSLServerHandler(context: context) }
            $0.reevaluationInterval = nil
        }, gate: { forwardAll($0) }) { server, upstream, _ in
            // The client upgrades, checks one echo and says so with a file, then waits for the signal file, sends one more
            // frame without reading (so it never answers the server's close_notify), and holds its socket open for 3 s.
            // (The test revokes only once the echo has reached the client: a revocation while it is still on its way
            // closes the connection before it arrives, and the client would never start.)
            let signal = certs.dir.appendingPathComponent("revoked").path
            let upgradedFile = certs.dir.appendingPathComponent("upgraded").path
            let script = """
                import os, socket, ssl, sys, time
                ctx = ssl.create_default_context(cafile=sys.argv[2])
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20), server_hostname="localhost")
                s.sendall(b"GET /ws HTTP/1.1\\r\\nHost: a\\r\\nConnection: Upgrade\\r\\nUpgrade: websocket\\r\\n"
                          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n")
                got = b""
                def more():
                    global got
                    chunk = s.recv(4096)
                    if not chunk:
                        print("closed before the echo", got, flush=True); sys.exit(1)
                    got += chunk
                while b"\\r\\n\\r\\n" not in got:
                    more()
                s.sendall(b"before.")
                while b"echo:before." not in got:
                    more()
                print("upgraded", flush=True)
                open(sys.argv[4], "w").close()
                for _ in range(1000):
                    if os.path.exists(sys.argv[3]): break
                    time.sleep(0.02)
                try:
                    s.sendall(b"after-revocation.")
                    print("sent", flush=True)
                except OSError as e:
                    print("refused", e, flush=True)
                time.sleep(3)
                """
            let port = String(server.localPort ?? 0), ca = certs.serverCert
            // On a thread of its own: the client runs for seconds, and a blocked cooperative thread would starve parallel tests.
            let client = Task { await offPool { Result { try spawnAndWait("/usr/bin/env", ["python3", "-c", script, port, ca, signal, upgradedFile], timeout: 60) } } }
            for _ in 0..<500 where !FileManager.default.fileExists(atPath: upgradedFile) { try await Task.sleep(for: .milliseconds(20)) }
            #expect(upstream.tunnelled.all.contains("before."), "the tunnel never carried the first frame")
            #expect(FileManager.default.fileExists(atPath: upgradedFile), "the client never got the first echo")
            #expect(server.closeConnections { $0.spliced } == 1)
            let revoked = Date()
            // The close was handed to the connection's event loop: a task queued on every loop after it runs once it has.
            for loop in upstream.group.makeIterator() { try await loop.submit {}.get() }
            FileManager.default.createFile(atPath: signal, contents: Data())
            for _ in 0..<200 where upstream.tunnelsClosed.current == 0 { try await Task.sleep(for: .milliseconds(20)) }
            let upstreamClosedAfter = Date().timeIntervalSince(revoked)
            // (Generous: this polling runs on a cooperative pool a parallel run can starve; NIOSSL's close waits 5 s.)
            #expect(upstream.tunnelsClosed.current == 1 && upstreamClosedAfter < 4,
                    "the upstream side stayed open \(upstreamClosedAfter) s after the revocation")
            let r = try await client.value.get()
            #expect(r.stdoutText.hasPrefix("upgraded\n"), "\(r.stdoutText) \(r.stderrText)")
            #expect(!upstream.tunnelled.all.joined().contains("after-revocation"), "a frame sent after the revocation reached the upstream")
        }
    }
}
