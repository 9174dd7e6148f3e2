import Foundation
import MenshenCore
import MenshenTestSupport
import Testing


/// External oracles (dpkg, openssl). Under CI=true a missing oracle is a
/// failure; locally it is skipped with a printed warning.
enum Oracle {
    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    struct Output { var status: Int32; var stdout: String; var stderr: String }

    /// Runs an executable found on PATH (through /usr/bin/env) and collects its output.
    @discardableResult
    static func run(_ arguments: [String], stdin: Data? = nil, in directory: URL? = nil) throws -> Output {
        // posix_spawn, not Foundation's Process (see `spawnAndWait`).
        let r = try spawnAndWait("/usr/bin/env", arguments, directory: directory?.path, input: [UInt8](stdin ?? Data()))
        return Output(status: r.status, stdout: r.stdoutText, stderr: r.stderrText)
    }

    static func commandExists(_ name: String) -> Bool {
        (try? run(["sh", "-c", "command -v \(name)"]).status) == 0
    }

    /// nil means go ahead. Otherwise the oracle is missing: under CI the caller
    /// records an issue; locally a warning is printed and the caller returns.
    static func missing(_ command: String) -> String? {
        guard !commandExists(command) else { return nil }
        let message = "\(command) is not installed; oracle cross-check not run"
        if !isCI { print("warning: \(message) (skipped; set CI=true to make this a failure)") }
        return message
    }
}

/// A fresh temporary directory, removed by `cleanup()`.
struct TemporaryDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("menshen-device-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func write(_ name: String, _ text: String) throws {
        let file = url.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: file)
    }
    func write(_ name: String, data: Data) throws {
        let file = url.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: file)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    func cleanup() { try? FileManager.default.removeItem(at: url) }
}

/// Files under Tests/MenshenDeviceTests/Fixtures.
enum Fixtures {
    static var directory: URL {
        URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")
    }
    static var osv: String { directory.appendingPathComponent("osv").path }
}

/// A deterministic `RandomSource` for tests (SplitMix64 behind a lock).
final class SeededRandom: RandomSource, @unchecked Sendable {
    // Invariant: `generator` is only touched while holding `lock`.
    private let lock = NSLock()
    private var generator: SeededGenerator
    init(seed: UInt64) { generator = SeededGenerator(seed: seed) }
    func bytes(_ count: Int) -> [UInt8] {
        lock.withLock { (0..<max(0, count)).map { _ in UInt8.random(in: .min ... .max, using: &generator) } }
    }
}

/// openssl in a scratch directory.
struct OpenSSL {
    let dir: TemporaryDirectory
    init() throws { dir = try TemporaryDirectory() }

    /// Runs openssl with `arguments` in the scratch directory; fails the test on a non-zero exit.
    @discardableResult
    func run(_ arguments: [String], stdin: Data? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> Oracle.Output {
        let output = try Oracle.run(["openssl"] + arguments, stdin: stdin, in: dir.url)
        #expect(output.status == 0, "openssl \(arguments.joined(separator: " ")): \(output.stderr)", sourceLocation: sourceLocation)
        return output
    }

    func read(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: dir.url.appendingPathComponent(name))) }
    func write(_ name: String, _ bytes: [UInt8]) throws { try dir.write(name, data: Data(bytes)) }
    func write(_ name: String, _ text: String) throws { try dir.write(name, text) }

    func p256Key(_ name: String) throws { try run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name]) }

    /// A PKCS#10 request for the key in `key`, PEM (or DER with `der: true`).
    func csr(key: String, subject: String = "/CN=chosen-by-the-device/O=Not The Bank", der: Bool = false) throws -> [UInt8] {
        let out = key + (der ? ".csr.der" : ".csr.pem")
        try run(["req", "-new", "-key", key, "-subj", subject, "-outform", der ? "DER" : "PEM", "-out", out])
        return try read(out)
    }

    func cleanup() { dir.cleanup() }
}
