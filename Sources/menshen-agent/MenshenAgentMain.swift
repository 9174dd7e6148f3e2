import ArgumentParser
import MenshenAgent

/// `menshen-agent`: the device agent as its own executable, for devices that
/// should not carry the server (`menshen-agent enrol URL TOKEN`, then
/// `menshen-agent report` on a schedule). The same code as `menshen agent …`.
@main
struct MenshenAgentMain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "menshen-agent",
        abstract: "Menshen device agent: enrol this device, send signed posture reports. 門神裝置代理程式：登錄與回報。",
        subcommands: [Enrol.self, AgentCommand.Report.self, AgentCommand.Renew.self])

    struct Enrol: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enrol this device with a one-time token (menshen device enrol-token): make the key, send a CSR, store the certificate.")
        @Argument(help: "The portal's URL (https; http only to a loopback address).") var url: String
        @Argument(help: "The one-time enrolment token.") var token: String
        @Option(help: "Directory for the key and certificate (created, mode 0700).") var keyDir = "/var/lib/menshen-agent"
        @Flag(help: "Make and keep the key in the TPM 2.0 (tpm2-tools) and prove it: the device is recorded hardware-bound.") var tpm = false
        @Option(help: "The TPM's TCTI with --tpm (default: $TPM2TOOLS_TCTI), e.g. device:/dev/tpmrm0.") var tcti: String?

        func run() async throws {
            var arguments = ["--server", url, "--token", token, "--key-dir", keyDir]
            if tpm { arguments.append("--tpm") }
            if let tcti { arguments += ["--tcti", tcti] }
            let enrol = try AgentCommand.Enrol.parse(arguments)
            try await enrol.run()
        }
    }
}
