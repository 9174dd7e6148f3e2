import Foundation
import MenshenEnforcementPoint
import Testing

/// Memory bounds of the streaming proxy. They compare the test process' resident memory before
/// and after a transfer, which only means something when no other suite allocates meanwhile, so
/// they run with the timed suites (alone, `--no-parallel`).
@Suite("Proxy memory bounds (timed: run alone)")
struct TimedProxyMemoryTests {
    @Test("a 50 MB streamed response passes with bounded proxy memory")
    func largeResponse() async throws {
        try await withProxy(gate: { forwardAll($0) }) { server, upstream, _ in
            let url = "http://127.0.0.1:\(server.localPort ?? 0)/big?bytes=52428800"
            _ = await curl(["-o", "/dev/null", "http://127.0.0.1:\(server.localPort ?? 0)/big?bytes=1000000"])
            let before = residentMemoryBytes()
            // --limit-rate makes the client the bottleneck, so the proxy must apply back-pressure.
            let r = await curl(["-o", "/dev/null", "-w", "%{http_code} %{size_download}", "--limit-rate", "25M", url])
            let after = residentMemoryBytes()
            #expect(r.stdout == "200 52428800", "\(r.stderr)")
            #expect(after - before < 20 * 1024 * 1024, "RSS grew by \(after - before) bytes")
        }
    }

    @Test("a 30 MB upload to a slowly reading upstream is streamed with bounded proxy memory")
    func largeUploadBackPressure() async throws {
        try await withProxy(gate: { forwardAll($0) }) { server, upstream, _ in
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("pep-upload-\(server.localPort ?? 0).bin")
            try Data(count: 30 * 1024 * 1024).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let before = residentMemoryBytes()
            // curl sends Expect: 100-continue for this size; the proxy answers it once the gate approved.
            let r = await curl(["--data-binary", "@\(file.path)", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
                                "http://127.0.0.1:\(server.localPort ?? 0)/slowsink"])
            let after = residentMemoryBytes()
            #expect(r.stdout.hasPrefix("200 "), "\(r.stderr)")
            #expect(upstream.seen.all.last?.bodyBytes == 30 * 1024 * 1024)
            #expect(after - before < 20 * 1024 * 1024, "RSS grew by \(after - before) bytes")
        }
    }
}
