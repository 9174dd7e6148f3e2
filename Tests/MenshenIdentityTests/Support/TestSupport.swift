import Foundation
import MenshenTestSupport


/// External oracles (pyotp, py_webauthn, zbarimg). Under CI=true a missing
/// oracle is a failure; locally it is skipped with a printed warning.
enum Oracle {
    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    struct Output { var status: Int32; var stdout: String; var stderr: String }

    /// Runs an executable found on PATH (through /usr/bin/env) and collects its output.
    static func run(_ arguments: [String], stdin: String? = nil) throws -> Output {
        // posix_spawn, not Foundation's Process (see `spawnAndWait`).
        let r = try spawnAndWait("/usr/bin/env", arguments, input: Array((stdin ?? "").utf8))
        return Output(status: r.status, stdout: r.stdoutText, stderr: r.stderrText)
    }

    /// True when `python3 -c "import MODULE"` succeeds.
    static func pythonHas(_ module: String) -> Bool {
        (try? run(["python3", "-c", "import \(module)"]).status) == 0
    }

    static func commandExists(_ name: String) -> Bool {
        (try? run(["sh", "-c", "command -v \(name)"]).status) == 0
    }

    /// Decide what to do when an oracle is missing: nil means go ahead.
    /// Otherwise returns a message: the caller records an issue under CI, or prints and returns.
    static func missing(_ available: Bool, _ what: String) -> String? {
        guard !available else { return nil }
        let message = "\(what) is not installed; oracle cross-check not run"
        if !isCI { print("warning: \(message) (skipped; set CI=true to make this a failure)") }
        return message
    }
}

extension Array where Element == UInt8 {
    init(hex: String) {
        var bytes: [UInt8] = []
        var chars = Array(hex.utf8)[...]
        while chars.count >= 2 {
            let pair = String(decoding: chars.prefix(2), as: UTF8.self)
            bytes.append(UInt8(pair, radix: 16) ?? 0)
            chars = chars.dropFirst(2)
        }
        self = bytes
    }
    var hex: String { map { String(format: "%02x", $0) }.joined() }
}
