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

    @Test("standard input: bytes read whole (more than a pipe holds), /dev/null without, and a child that stops reading early")
    func input() throws {
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let echoed = try spawnAndWait("/bin/cat", [], input: bytes)
        #expect(echoed.status == 0 && echoed.stdout == bytes)
        #expect(try spawnAndWait("/bin/cat", []).stdout.isEmpty, "no input: /dev/null, at once")
        // head exits after 1 byte while 4 MiB are being written: the writer's EPIPE (SIGPIPE blocked on its thread)
        // must neither kill this process nor hang the call.
        let early = try spawnAndWait("/usr/bin/head", ["-c", "1"], input: [UInt8](repeating: 0x41, count: 4 << 20), timeout: 30)
        #expect(early.status == 0 && early.stdoutText == "A" && !early.timedOut)
    }
}

@Suite("Test support: ChildProcess")
struct ChildProcessTests {
    static func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    @Test("output and error to files of their own or together, a working directory, the status")
    func outputs() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spawn-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out").path, err = dir.appendingPathComponent("err").path
        let split = ChildProcess()
        split.executableURL = URL(fileURLWithPath: "/bin/sh")
        split.arguments = ["-c", "pwd; echo oops >&2; exit 4"]
        split.currentDirectoryURL = URL(fileURLWithPath: "/tmp")
        split.outputPath = out
        split.errorPath = err
        try split.run()
        split.waitUntilExit()
        #expect(split.terminationStatus == 4 && split.terminationReason == .exit)
        #expect(Self.text(out) == "/tmp\n" && Self.text(err) == "oops\n")
        let both = dir.appendingPathComponent("both").path
        let merged = ChildProcess()
        merged.executableURL = URL(fileURLWithPath: "/bin/sh")
        merged.arguments = ["-c", "echo a; echo b >&2"]
        merged.outputPath = both
        try merged.run()
        merged.waitUntilExit()
        #expect(Set(Self.text(both).split(separator: "\n")) == ["a", "b"])
    }

    @Test("a held standard input: the child runs until it is closed, then reads its end")
    func heldInput() throws {
        let child = ChildProcess()
        child.executableURL = URL(fileURLWithPath: "/bin/cat")
        child.holdsStandardInput = true
        try child.run()
        usleep(300_000)
        #expect(child.isRunning, "cat ended although its input is held open")
        child.closeStandardInput()
        let deadline = Date().addingTimeInterval(10)
        while child.isRunning, Date() < deadline { usleep(10_000) }
        #expect(!child.isRunning && child.terminationStatus == 0)
        // Without it: /dev/null, so cat ends at once.
        let plain = ChildProcess()
        plain.executableURL = URL(fileURLWithPath: "/bin/cat")
        try plain.run()
        plain.waitUntilExit()
        #expect(plain.terminationStatus == 0)
        // A signal after the child was reaped reaches nobody (no reused pid).
        plain.signal(SIGKILL)
        #expect(plain.terminationStatus == 0)
    }
}
