import Foundation
import MenshenTestSupport
import Testing

/// The test helpers' process runner (posix_spawn instead of Foundation's `Process`, whose `/proc/self/fd`
/// scan crashes the test process now and then): status, both outputs at once, working directory, timeout,
/// environment, and no inherited descriptors.
@Suite("Test support: spawnAndWait")
struct SpawnTests {
    @Test("exit status and both outputs, also when both are large and written together")
    func outputs() throws {
        let r = try spawnAndWait("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"])
        #expect(r.status == 3 && r.stdoutText == "out\n" && r.stderrText == "err\n" && !r.timedOut)
        // 1 MiB on each stream, interleaved: a runner that read one pipe to its end first would stall here.
        let big = try spawnAndWait("/bin/sh", ["-c", "head -c 1048576 /dev/zero | tr '\\0' a & head -c 1048576 /dev/zero | tr '\\0' b >&2; wait"])
        #expect(big.status == 0 && big.stdout.count == 1_048_576 && big.stderr.count == 1_048_576)
        #expect(big.stdout.allSatisfy { $0 == UInt8(ascii: "a") } && big.stderr.allSatisfy { $0 == UInt8(ascii: "b") })
    }

    @Test("working directory, environment, a signal's status, the timeout, no inherited descriptors")
    func options() throws {
        #expect(try spawnAndWait("/bin/pwd", [], directory: "/tmp").stdoutText == "/tmp\n")
        #expect(try spawnAndWait("/bin/sh", ["-c", "echo $SPAWN_T"], environment: ["SPAWN_T": "淡水"]).stdoutText == "淡水\n")
        #expect(try spawnAndWait("/bin/sh", ["-c", "kill -TERM $$"]).status == 128 + 15)
        let started = Date()
        let slow = try spawnAndWait("/bin/sleep", ["30"], timeout: 0.3)
        #expect(slow.timedOut && slow.status == 128 + 9 && Date().timeIntervalSince(started) < 10)
        // A descriptor open here (not close-on-exec) is not open in the child: only 0–2 and ls's own.
        let fd = open("/dev/null", O_RDONLY)
        defer { close(fd) }
        let fds = try spawnAndWait("/bin/ls", ["/proc/self/fd"]).stdoutText.split(separator: "\n").compactMap { Int($0) }
        #expect(fd > 2 && !fds.contains(Int(fd)) && fds.filter { $0 > 2 }.count <= 1, "\(fds), ours \(fd)")
        #expect(throws: SpawnError.self) { try spawnAndWait("/nonexistent/tool", []) }
    }
}
