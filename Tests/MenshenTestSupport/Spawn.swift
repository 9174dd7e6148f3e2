#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// What a child program did: its exit status (or 128 + the signal that ended it) and its output.
public struct SpawnResult: Sendable {
    public var status: Int32
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    /// The child was killed because it ran past the timeout.
    public var timedOut: Bool

    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

public struct SpawnError: Error, CustomStringConvertible {
    public let description: String
}

/// Runs a program to completion with `posix_spawn` and collects its output (blocking: call it off the
/// cooperative pool).
///
/// Test helpers use this instead of Foundation's `Process` on Linux: `Process.run()` scans
/// `/proc/self/fd` copying a fixed 256 bytes of each directory entry's name, which reads past the end of
/// the last entry and crashes the whole test process with SIGSEGV when that entry sits at the end of a
/// mapping (swift-corelibs-foundation#5472; seen here as `Process.run() + 6428` in the parallel test
/// pass). The child gets the output pipes, `input` on a pipe (else `/dev/null`) as standard input, and no
/// other descriptor of this process (all above 2 are closed in the child, as `Process` does). `executable`
/// is a path (no `PATH` search: use `/usr/bin/env` for that).
public func spawnAndWait(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                         directory: String? = nil, input: [UInt8]? = nil, timeout: Double? = nil) throws -> SpawnResult {
    // (Close-on-exec at once: children spawned meanwhile by other threads must not hold these open. Ours close
    // every descriptor above 2 anyway, as `Process` does; the Glibc module has no `pipe2`.)
    var out: [Int32] = [0, 0], err: [Int32] = [0, 0], inp: [Int32] = [-1, -1]
    guard pipe(&out) == 0 else { throw SpawnError(description: "pipe: errno \(errno)") }
    guard pipe(&err) == 0 else {
        let e = errno
        close(out[0]); close(out[1])
        throw SpawnError(description: "pipe: errno \(e)")
    }
    if input != nil, pipe(&inp) != 0 {
        let e = errno
        for fd in out + err { close(fd) }
        throw SpawnError(description: "pipe: errno \(e)")
    }
    for fd in out + err + inp where fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    let pid: pid_t
    do {
        pid = try spawnChild(executable, arguments, environment: environment, directory: directory,
                             input: inp[0] >= 0 ? inp[0] : nil, output: .descriptors(stdout: out[1], stderr: err[1]))
    } catch {
        for fd in out + err + inp where fd >= 0 { close(fd) }
        throw error
    }
    close(out[1]); close(err[1])
    if let input {
        close(inp[0])
        // Written from a thread of its own (a child that reads only after writing much would otherwise stall
        // against its full output pipe), with SIGPIPE blocked there: a child that exits without reading it all
        // makes the write fail with EPIPE, and the signal, directed at that thread, dies with it.
        let fd = inp[1]
        let writer = Thread {
            var pipeSignal = sigset_t()
            sigemptyset(&pipeSignal)
            sigaddset(&pipeSignal, SIGPIPE)
            pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
            input.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                    if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { break }
                }
            }
            close(fd)
        }
        writer.start()
    }

    // Both pipes are read together (a child filling one while the other is read would otherwise stall).
    var collected: [[UInt8]] = [[], []]
    var fds = [pollfd(fd: out[0], events: Int16(POLLIN), revents: 0), pollfd(fd: err[0], events: Int16(POLLIN), revents: 0)]
    let deadline = timeout.map { Date().addingTimeInterval($0) }
    var timedOut = false
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while fds.contains(where: { $0.fd >= 0 }) {
        let wait = deadline.map { max(0, Int32($0.timeIntervalSinceNow * 1000)) } ?? -1
        let ready = poll(&fds, nfds_t(fds.count), wait)
        if ready < 0 {
            if errno == EINTR { continue }
            break
        }
        if ready == 0, let deadline, Date() >= deadline, !timedOut {
            timedOut = true
            kill(pid, SIGKILL)
            continue
        }
        for i in fds.indices where fds[i].fd >= 0 && fds[i].revents != 0 {
            let n = buffer.withUnsafeMutableBytes { read(fds[i].fd, $0.baseAddress, $0.count) }
            if n > 0 {
                collected[i] += buffer[..<n]
            } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                close(fds[i].fd)
                fds[i].fd = -1
            }
        }
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return SpawnResult(status: code, stdout: collected[0], stderr: collected[1], timedOut: timedOut)
}

/// Where a spawned child's standard output and error go.
enum SpawnOutput {
    /// Standard output appended to the first file, standard error to the second, or to the first when it is
    /// nil (files created if missing); nil for both: discarded.
    case files(stdout: String?, stderr: String?)
    /// Onto these descriptors of this process.
    case descriptors(stdout: Int32, stderr: Int32)
    /// Nowhere.
    case discarded
}

/// Starts `executable` with `posix_spawn`: `input` (else `/dev/null`) as standard input, the output as given, no other
/// descriptor of this process, no signal blocked and every signal at its default. Returns its pid.
func spawnChild(_ executable: String, _ arguments: [String], environment: [String: String]?, directory: String?,
                input: Int32? = nil, output: SpawnOutput) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let input {
        posix_spawn_file_actions_adddup2(&actions, input, 0)
    } else {
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    }
    switch output {
    case .files(let stdout, let stderr):
        posix_spawn_file_actions_addopen(&actions, 1, stdout ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if let stderr {
            posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        } else if stdout != nil {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
    case .descriptors(let stdout, let stderr):
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
    case .discarded:
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
    }
    guard SpawnActions.closeFrom(&actions, 3) == 0 else { throw SpawnError(description: "closefrom") }
    if let directory {
        guard SpawnActions.chdir(&actions, directory) == 0 else { throw SpawnError(description: "chdir \(directory)") }
    }
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    let env = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        for p in argv { free(p) }
        for p in env { free(p) }
    }
    // The child starts with no signal blocked and every signal at its default (threads of this process block some).
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t(), all = sigset_t()
    sigemptyset(&none)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, env)
    guard spawned == 0 else { throw SpawnError(description: "posix_spawn \(executable): errno \(spawned)") }
    return pid
}

/// A long-running child (`menshen serve`) started with `posix_spawn` instead of Foundation's `Process`
/// (see ``spawnAndWait(_:_:environment:directory:timeout:)`` for why), with the part of `Process`'s
/// interface the tests use. Set the properties, then ``run()``; the child is reaped by
/// ``isRunning``/``waitUntilExit()`` (waitpid on its own pid only).
public final class ChildProcess: @unchecked Sendable {
    // Invariant: the properties are set before `run()` by one thread; `state` is behind the lock afterwards.
    public var executableURL: URL?
    public var arguments: [String] = []
    /// Nil: this process's environment.
    public var environment: [String: String]?
    /// Where standard output goes (appended), and standard error unless ``errorPath`` is set; nil: discarded.
    public var outputPath: String?
    /// Where standard error goes (appended); nil: where standard output goes.
    public var errorPath: String?
    /// Give the child a pipe as standard input and hold its write end until ``closeStandardInput()`` (or this
    /// object's end): for children that stop when their input ends (`--exit-on-stdin-eof`). Otherwise `/dev/null`.
    public var holdsStandardInput = false
    /// The child's working directory; nil: this process's.
    public var currentDirectoryURL: URL?

    private let lock = NSLock()
    private var pid: pid_t = 0
    /// The write end of the child's standard input, while held.
    private var inputWriter: Int32 = -1
    /// The raw wait status once reaped.
    private var exitStatus: Int32?

    public init() {}

    public func run() throws {
        guard let executableURL else { throw SpawnError(description: "no executable") }
        var input: [Int32] = [-1, -1]
        if holdsStandardInput {
            guard pipe(&input) == 0 else { throw SpawnError(description: "pipe: errno \(errno)") }
            for fd in input { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        let output: SpawnOutput = outputPath == nil && errorPath == nil ? .discarded : .files(stdout: outputPath, stderr: errorPath)
        let started: pid_t
        do {
            started = try spawnChild(executableURL.path, arguments, environment: environment, directory: currentDirectoryURL?.path,
                                     input: input[0] >= 0 ? input[0] : nil, output: output)
        } catch {
            for fd in input where fd >= 0 { close(fd) }
            throw error
        }
        if input[0] >= 0 { close(input[0]) }
        lock.withLock { pid = started; inputWriter = input[1] }
    }

    /// Closes the child's standard input (it reads end of file), when held (``holdsStandardInput``).
    public func closeStandardInput() {
        lock.withLock {
            if inputWriter >= 0 { close(inputWriter); inputWriter = -1 }
        }
    }

    deinit { if inputWriter >= 0 { close(inputWriter) } }

    public var processIdentifier: Int32 { lock.withLock { pid } }

    /// Whether the child is still running (reaps it when it has ended).
    public var isRunning: Bool {
        lock.withLock {
            guard pid > 0, exitStatus == nil else { return false }
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { exitStatus = status; return false }
            return r == 0
        }
    }

    /// As `Process`: the exit status, or the number of the signal that ended the child (-1 while running or never
    /// started).
    public var terminationStatus: Int32 {
        _ = isRunning
        return lock.withLock { exitStatus.map { Self.signalled($0) ? $0 & 0x7f : ($0 >> 8) & 0xff } ?? -1 }
    }

    /// As `Process`: whether the child exited or a signal ended it.
    public var terminationReason: Process.TerminationReason {
        _ = isRunning
        return lock.withLock { exitStatus.map(Self.signalled) == true ? .uncaughtSignal : .exit }
    }

    /// SIGTERM.
    public func terminate() { signal(SIGTERM) }

    public func signal(_ number: Int32) {
        lock.withLock { if pid > 0, exitStatus == nil { kill(pid, number) } }
    }

    /// Blocks until the child has ended (returns at once if it never started or was reaped elsewhere). The child is
    /// reaped only under the lock (``isRunning``), so no status is lost to a second waiter and no signal reaches a
    /// reused pid.
    public func waitUntilExit() {
        while isRunning { usleep(5_000) }
    }

    /// A wait status that says a signal ended the child.
    static func signalled(_ status: Int32) -> Bool { (status & 0x7f) != 0 && (status & 0x7f) != 0x7f }
}

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34) and `…_addchdir_np` (2.29), which the Glibc
/// module does not import.
enum SpawnActions {
    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    typealias ChDir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    static func closeFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ fd: Int32) -> Int32 {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return -1 }
        return unsafeBitCast(symbol, to: CloseFrom.self)(actions, fd)
    }

    static func chdir(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ path: String) -> Int32 {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else { return -1 }
        return path.withCString { unsafeBitCast(symbol, to: ChDir.self)(actions, $0) }
    }
}
