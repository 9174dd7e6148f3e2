import Foundation
import MenshenTestSupport
import Testing

/// A software TPM 2.0 (Debian's swtpm) for one test: its own state directory,
/// manufactured by `swtpm_setup --create-ek-cert --create-platform-cert` with a
/// throwaway swtpm-localca configuration in the same directory (nothing read
/// from /etc or /var/lib), then served by `swtpm socket` on two free ports.
/// ``stop()`` kills it (by its pid) and removes the directory; call it in a `defer`.
final class SoftwareTPM: @unchecked Sendable {
    let dir: URL
    let port: Int
    let process: ChildProcess

    var tcti: String { "swtpm:host=127.0.0.1,port=\(port)" }
    /// The localca's root certificate (a TPM manufacturer's root, for `device.tpm_ca_file`).
    var rootCA: String { dir.appendingPathComponent("ca/swtpm-localca-rootca-cert.pem").path }
    /// The localca's intermediate that signs EK certificates.
    var issuerCA: String { dir.appendingPathComponent("ca/issuercert.pem").path }

    private init(dir: URL, port: Int, process: ChildProcess) { self.dir = dir; self.port = port; self.process = process }

    static let tools = ["/usr/bin/swtpm", "/usr/bin/swtpm_setup", "/usr/bin/tpm2_createek", "/usr/bin/tpm2_activatecredential"]

    /// nil (with a warning) when swtpm or tpm2-tools are missing, which is an issue under `CI=true`.
    static func start() throws -> SoftwareTPM? {
        guard tools.allSatisfy({ FileManager.default.isExecutableFile(atPath: $0) }) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("swtpm, swtpm-tools and tpm2-tools are missing under CI") }
            print("warning: swtpm or tpm2-tools missing; skipping (apt-get install swtpm swtpm-tools tpm2-tools)")
            return nil
        }
        let dir = try Harness.tempDir()
        do {
            let path: (String) -> String = { dir.appendingPathComponent($0).path }
            try FileManager.default.createDirectory(atPath: path("ca"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: path("state"), withIntermediateDirectories: true)
            try "statedir = \(path("ca"))\nsigningkey = \(path("ca/signkey.pem"))\nissuercert = \(path("ca/issuercert.pem"))\ncertserial = \(path("ca/certserial"))\n"
                .write(toFile: path("localca.conf"), atomically: true, encoding: .utf8)
            try "--platform-manufacturer Menshen\n--platform-version 2.1\n--platform-model test\n"
                .write(toFile: path("localca.options"), atomically: true, encoding: .utf8)
            try "create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = \(path("localca.conf"))\ncreate_certs_tool_options = \(path("localca.options"))\nactive_pcr_banks = sha256\n"
                .write(toFile: path("swtpm_setup.conf"), atomically: true, encoding: .utf8)
            let setup = try shell("/usr/bin/swtpm_setup", ["--tpm2", "--tpm-state", path("state"), "--create-ek-cert", "--create-platform-cert",
                                                            "--config", path("swtpm_setup.conf"), "--overwrite"],
                                  environment: ["XDG_CONFIG_HOME": path("xdg"), "HOME": dir.path])
            guard setup.status == 0 else { throw Harness.HarnessError("swtpm_setup: \(setup.err) \(setup.out)") }
            // The swtpm TCTI finds the control channel at port + 1.
            var port = try Harness.freePort()
            for _ in 0..<50 where !canBind(port + 1) { port = try Harness.freePort() }
            let control = port + 1
            let process = ChildProcess()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/swtpm")
            process.arguments = ["socket", "--tpm2", "--server", "type=tcp,port=\(port),bindaddr=127.0.0.1",
                                 "--ctrl", "type=tcp,port=\(control),bindaddr=127.0.0.1", "--tpmstate", "dir=\(path("state"))",
                                 "--flags", "not-need-init,startup-clear"]
            try process.run()
            let tpm = SoftwareTPM(dir: dir, port: port, process: process)
            // Ready when tpm2-tools can talk to it.
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                if (try? tpm.tool("tpm2_getcap", ["properties-fixed"]))?.status == 0 { return tpm }
                if !process.isRunning { break }
                Thread.sleep(forTimeInterval: 0.1)
            }
            tpm.stop()
            throw Harness.HarnessError("swtpm did not start")
        } catch {
            try? FileManager.default.removeItem(at: dir)
            throw error
        }
    }

    /// True when 127.0.0.1:`port` can be bound right now.
    static func canBind(_ port: Int) -> Bool {
        guard port < 65536 else { return false }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    func stop() {
        // SIGKILL: swtpm may not leave its accept loop on SIGTERM, and its state is thrown away anyway.
        process.signal(SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: dir)
    }

    /// A tpm2-tools command against this TPM. Without a resource manager the objects a tool loads stay in the
    /// TPM's three slots, so transient objects are flushed after each (their contexts are saved in files).
    @discardableResult
    func tool(_ name: String, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let environment = ["TPM2TOOLS_TCTI": tcti, "TPM2OPENSSL_TCTI": tcti]
        let result = try Self.shell("/usr/bin/" + name, args, environment: environment)
        if name != "tpm2_flushcontext" { _ = try Self.shell("/usr/bin/tpm2_flushcontext", ["-t"], environment: environment) }
        return result
    }

    /// A tpm2-tools command that must succeed.
    func must(_ name: String, _ args: [String]) throws {
        let r = try tool(name, args)
        guard r.status == 0 else { throw Harness.HarnessError("\(name) \(args.joined(separator: " ")): \(r.err)") }
    }

    static func shell(_ tool: String, _ args: [String], environment: [String: String] = [:], stdin: String? = nil) throws
        -> (status: Int32, out: String, err: String)
    {
        // posix_spawn, not Foundation's Process (see `spawnAndWait`).
        let r = try spawnAndWait(tool, args, environment: ProcessInfo.processInfo.environment.merging(environment) { _, n in n },
                                 input: stdin.map { Array($0.utf8) })
        return (r.status, r.stdoutText, r.stderrText)
    }
}
