import ArgumentParser
import Foundation
import MenshenCore
import MenshenServer
import MenshenStorage

extension DeviceCommand {
    /// `menshen device enrol-token`: a one-time token with which the agent enrols one device for a user.
    struct EnrolToken: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "enrol-token",
            abstract: "Print a one-time enrolment token for a user's device (only its hash is stored; it expires).",
            discussion: "Give the token to the device's agent: menshen agent enrol --server URL --token TOKEN --key-dir DIR. 發給裝置代理程式登錄使用，僅能使用一次。")
        @Option(help: "The user the device is enrolled for.") var user: String
        @Option(name: .customLong("class"), help: "managed, byod or vendor.") var deviceClass: String
        @Option(help: "A name the user recognises (default: the user's id and class).") var name: String?
        @Flag(help: "Require a hardware-bound device: enrolment must prove the key is in a TPM (menshen agent enrol --tpm); without TPM evidence it is refused. 須以 TPM 金鑰登錄。") var hardwareBound = false
        @Option(help: "Minutes until the token expires (1–10080).") var ttlMinutes = 60
        @OptionGroup var store: StoreOptions

        func validate() throws {
            guard IdentifierSyntax.isValid(user) else { throw ValidationError("--user must be 1–128 characters from A–Z a–z 0–9 . _ @ -") }
            guard StoreDeviceClass(rawValue: deviceClass) != nil else { throw ValidationError("--class must be managed, byod or vendor") }
            guard (1...10_080).contains(ttlMinutes) else { throw ValidationError("--ttl-minutes must be 1–10080") }
            if let name { guard !name.isEmpty, name.count <= 200 else { throw ValidationError("--name must be 1–200 characters") } }
        }

        func run() async throws {
            try await UserCommand.withServices(store) { db, _, config in
                let authority = try DeviceWiring.authority(config: config, store: db, clock: SystemClock())
                let (token, expires) = try await authority.issueEnrolmentToken(
                    user: UserID(user), deviceClass: StoreDeviceClass(rawValue: deviceClass) ?? .managed,
                    name: name ?? "\(user) \(deviceClass)", hardwareBound: hardwareBound, lifetime: TimeInterval(ttlMinutes * 60))
                print(token)
                FileHandle.standardError.write(Data("expires \(ISO8601DateFormatter().string(from: expires))\n".utf8))
            }
        }
    }

    /// `menshen device ca`: the device CA certificate (created on first use with SQLite), for `gateway.tls.client_ca_file`.
    struct CA: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ca", abstract: "Print the device CA certificate (PEM) for gateway.tls.client_ca_file; creates the CA on first use with SQLite.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            do {
                let config = try store.load()
                print(try DeviceWiring.ca(config: config, clock: SystemClock()).certificatePEM, terminator: "")
            } catch { throw fail(error) }
        }
    }
}
