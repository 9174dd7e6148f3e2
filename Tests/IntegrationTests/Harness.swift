import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MenshenTestSupport
import Testing

/// Runs the real `menshen` binary (built by `swift build`) as a user would.
enum Harness {
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// `MENSHEN_BINARY`, or the debug build in the package's .build folder.
    static var binary: String {
        if let b = ProcessInfo.processInfo.environment["MENSHEN_BINARY"], !b.isEmpty { return b }
        return packageRoot.appendingPathComponent(".build/debug/menshen").path
    }

    static func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("menshen-it-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs to completion; returns exit status, stdout and stderr.
    static func run(_ args: [String], cwd: URL? = nil, environment: [String: String] = [:], timeout: TimeInterval = 60) throws
        -> (status: Int32, out: String, err: String)
    {
        // posix_spawn, not Foundation's Process (see `spawnAndWait`).
        let r = try spawnAndWait(binary, args, environment: ProcessInfo.processInfo.environment.merging(environment) { _, n in n },
                                 directory: cwd?.path, timeout: timeout)
        if r.timedOut { Issue.record("menshen \(args) timed out") }
        return (r.status, r.stdoutText, r.stderrText)
    }

    /// Collects a child's output in a temporary file. (Files, not pipes: with
    /// tests running in parallel, other children can inherit a pipe's write
    /// end and hold its end-of-file back for as long as they live.)
    final class Collector: @unchecked Sendable {
        let url: URL
        let handle: FileHandle
        init() throws {
            url = FileManager.default.temporaryDirectory.appendingPathComponent("menshen-out-\(UUID().uuidString)")
            FileManager.default.createFile(atPath: url.path, contents: nil)
            handle = try FileHandle(forWritingTo: url)
        }
        var text: String { (try? String(contentsOf: url, encoding: .utf8)) ?? "" }
        func finish() -> String {
            try? handle.close()
            defer { try? FileManager.default.removeItem(at: url) }
            return text
        }
    }

    /// A long-running `menshen demo`, started in `dir` on free ports.
    final class Demo: @unchecked Sendable {
        let process = ChildProcess()
        let out: Collector
        let err: Collector
        private(set) var adminURL = ""
        private(set) var portalURL = ""
        private(set) var sampleURL = ""
        private(set) var gatewayURL = ""
        private(set) var enrolmentLink = ""

        init(dataDir: URL, cwd: URL) throws {
            process.executableURL = URL(fileURLWithPath: Harness.binary)
            process.arguments = ["demo", "--data", dataDir.path, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                                 "--app-listen", "127.0.0.1:0", "--gateway-listen", "127.0.0.1:0"]
            process.currentDirectoryURL = cwd
            out = try Collector(); err = try Collector()
            // posix_spawn, not Foundation's Process (see `spawnAndWait`).
            process.outputPath = out.url.path; process.errorPath = err.url.path
            try process.run()
        }

        /// Waits for the banner and reads the URLs from it.
        func waitUntilReady(timeout: TimeInterval = 60) throws {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                let text = out.text
                if text.contains("Press Ctrl-C to stop.") {
                    func find(_ label: String) -> String {
                        guard let line = text.split(separator: "\n").first(where: { $0.contains(label) }),
                              let r = line.range(of: "http://") else { return "" }
                        return String(line[r.lowerBound...].prefix(while: { $0 != " " }))
                    }
                    portalURL = find("Portal:").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
                    sampleURL = find("Sample application:").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
                    gatewayURL = find("Protected applications:").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
                    adminURL = find("Operations:").replacingOccurrences(of: "/healthz", with: "")
                    enrolmentLink = text.split(separator: "\n").first(where: { $0.contains("/enrol/") })
                        .map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
                    return
                }
                if !process.isRunning { throw HarnessError("demo exited early: \(err.text)") }
                Thread.sleep(forTimeInterval: 0.1)
            }
            throw HarnessError("demo not ready within \(timeout) s; stderr: \(err.text)")
        }

        func kill(signal: Int32) {
            process.signal(signal)
            process.waitUntilExit()
        }

        deinit {
            process.signal(SIGKILL)
            process.waitUntilExit()
            _ = out.finish(); _ = err.finish()
        }
    }

    struct HarnessError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// A GET with status and body.
    static func get(_ url: String, headers: [String: String] = [:]) async throws -> (status: Int, body: String, headers: [String: String]) {
        guard let u = URL(string: url) else { throw HarnessError("bad URL \(url)") }
        var request = URLRequest(url: u)
        request.timeoutInterval = 90  // a loaded parallel run can starve the in-process server for tens of seconds
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as? HTTPURLResponse
        var h: [String: String] = [:]
        for (k, v) in http?.allHeaderFields ?? [:] { h[String(describing: k).lowercased()] = String(describing: v) }
        return (http?.statusCode ?? 0, String(decoding: data, as: UTF8.self), h)
    }
}

extension Harness {
    /// A TCP port free on 127.0.0.1 right now (for servers whose public URL
    /// must be known before they start).
    /// Starts `menshen serve --config file` in `process` and waits (blocking; call off the
    /// cooperative pool) until its operations listener on `adminPort` answers /healthz.
    static func startServe(_ process: ChildProcess, config file: String, adminPort: Int, environment: [String: String] = [:],
                           name: String = "menshen serve", log: String? = nil) throws {
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--config", file]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, n in n }
        process.outputPath = log
        // Its standard error, for the message when it exits before it is healthy (a port taken meanwhile by a parallel
        // test, a config error): in a file of its own unless the caller keeps its output.
        let errors = process.errorPath == nil && log == nil
            ? FileManager.default.temporaryDirectory.appendingPathComponent("serve-err-\(UUID().uuidString)").path : nil
        if let errors { process.errorPath = errors }
        defer { if let errors { try? FileManager.default.removeItem(atPath: errors) } }
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let r = try? PortalIdentityTests.httpSync("GET", "http://127.0.0.1:\(adminPort)/healthz"), r.status == 200 { return }
            if !process.isRunning {
                let said = (process.errorPath ?? log).flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? ""
                throw HarnessError("\(name) exited with \(process.terminationStatus): \(said.suffix(1500))")
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        // Not left running with its ports taken (callers set their clean-up only once this returns).
        process.terminate()
        process.waitUntilExit()
        throw HarnessError("\(name) did not become healthy")
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { throw HarnessError("bind() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Carries a non-Sendable value across an `offPool` hop (used only by one task at a time).
struct UncheckedBox<T>: @unchecked Sendable { let value: T }

extension Harness {
    /// Runs blocking work (child processes, polling loops) on a Dispatch thread,
    /// so it never occupies one of the few cooperative threads that async tests
    /// running in parallel (the proxy's gate, for one) need.
    static func offPool<T>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let box: UncheckedBox<Result<T, any Error>> = await withCheckedContinuation { c in
            DispatchQueue.global().async { c.resume(returning: UncheckedBox(value: Result { try body() })) }
        }
        return try box.value.get()
    }

    /// ``run(_:cwd:environment:timeout:)`` off the cooperative pool.
    static func runAsync(_ args: [String], environment: [String: String] = [:]) async throws -> (status: Int32, out: String, err: String) {
        try await offPool { try run(args, environment: environment) }
    }
}
