import Foundation
import MenshenConfig
import MenshenCore
import MenshenDevice
import MenshenStorage
import Yams

/// Builds the device pillar's services from the configuration (`device.*`).
public enum DeviceWiring {
    /// `device.compliance_file`, or ``DeviceComplianceDefaults`` when empty. Every problem is reported with the file name.
    public static func compliance(config: MenshenConfiguration) throws -> CompliancePolicy {
        try DeviceRulesLoader.compliance(file: config.device.complianceFile)
    }

    /// The loader of `device.compliance_file` and `device.advisories_dir`.
    public static func rulesLoader(config: MenshenConfiguration) -> DeviceRulesLoader {
        DeviceRulesLoader(complianceFile: config.device.complianceFile, advisoriesDirectory: config.device.advisoriesDir)
    }

    /// The persisted device CA (`device.ca_file`), created on first use with SQLite. Needs no store.
    public static func ca(config: MenshenConfiguration, clock: any WallClock, random: any RandomSource = SystemRandomSource()) throws -> DeviceCA {
        let caPath = try IdentityWiring.keyPath(config.device.caFile, default: "device-ca.json", key: "device.ca_file", config: config)
        let keyPath = try IdentityWiring.keyPath(config.identity.secretsKeyFile, default: "secrets.key", key: "identity.secrets_key_file", config: config)
        _ = try IdentityWiring.secretBox(config: config, random: random)   // creates the secrets key when missing (SQLite)
        guard let text = FileManager.default.contents(atPath: keyPath), text.count <= 1024,
              let key = Data(base64Encoded: String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)), key.count == 32
        else { throw DeviceAuthorityError("\(keyPath): not a base64-encoded 32-byte key") }
        return try DeviceAuthority.loadOrCreateCA(path: caPath, secretsKey: Array(key), organisation: config.organisation.name,
                                                  mayCreate: config.store.driver == .sqlite, clock: clock, random: random)
    }

    /// The enrolment and posture service with the persisted device CA. Without `rules` (the command
    /// line, which only issues tokens) the compliance file is read and no advisory database is loaded.
    public static func authority(config: MenshenConfiguration, store: any MenshenStore, clock: any WallClock,
                                 random: any RandomSource = SystemRandomSource(), rules: DeviceRulesState? = nil) throws -> DeviceAuthority {
        let rules = try rules ?? DeviceRulesState(DeviceRules(compliance: compliance(config: config), advisories: nil))
        var authority = DeviceAuthority(store: store, ca: try ca(config: config, clock: clock, random: random), rules: rules, clock: clock, random: random)
        authority.tpmAnchors = try tpmAnchors(config: config)
        return authority
    }

    /// `device.tpm_ca_file`: the TPM manufacturers' CAs, or nil when empty (TPM enrolment refused).
    public static func tpmAnchors(config: MenshenConfiguration) throws -> TPMTrustAnchors? {
        let path = config.device.tpmCAFile
        guard !path.isEmpty else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else { throw DeviceAuthorityError("device.tpm_ca_file \(path): cannot read it") }
        do { return try TPMTrustAnchors(pemBundle: String(decoding: data, as: UTF8.self)) } catch {
            throw DeviceAuthorityError("device.tpm_ca_file \(path): \(error)")
        }
    }
}
