import Foundation
import MenshenConfig
import MenshenCore
import MenshenDevice
import MenshenStorage
import NIOSSL
import X509

extension DeviceBinding {
    /// The device binding of `menshen serve`: the device CA is the first
    /// certificate of `gateway.tls.client_ca_file`; nil when that key is empty
    /// (then no request carries a device, and device-requiring policies deny).
    static func load(gateway: MenshenConfiguration.Gateway, rules: DeviceRulesState, store: any MenshenStore,
                     clock: any WallClock, random: any RandomSource) throws -> DeviceBinding? {
        guard !gateway.tlsClientCAFile.isEmpty else { return nil }
        let ca: Certificate
        do {
            guard let first = try NIOSSLCertificate.fromPEMFile(gateway.tlsClientCAFile).first else {
                throw GatewayLoadError(message: "gateway.tls.client_ca_file \(gateway.tlsClientCAFile): no certificate in it")
            }
            ca = try Certificate(derEncoded: try first.toDERBytes())
        } catch let error as GatewayLoadError {
            throw error
        } catch {
            throw GatewayLoadError(message: "gateway.tls.client_ca_file \(gateway.tlsClientCAFile): \(error)")
        }
        return DeviceBinding(store: store, caCertificate: ca, rules: rules,
                             events: DeviceEvents(store: store, clock: clock, random: random))
    }
}

/// The compliance baselines used when the configuration names none: every
/// class must report within an hour and have disk encryption, a firewall, a
/// screen lock and a running EDR with signatures at most 7 days old, and no
/// known vulnerability rated critical; vulnerability scanning is not
/// required (no advisory database is configured by default).
public enum DeviceComplianceDefaults {
    public static let maxPostureAgeSeconds = 3600

    /// Throws only if the baselines above were made invalid (a test checks they are not).
    public static func policy() throws -> CompliancePolicy {
        let baseline = DeviceClassPolicy(maxPostureAgeSeconds: maxPostureAgeSeconds, maxVulnerabilitySeverity: .high,
                                         requireVulnerabilityScan: false)
        return try CompliancePolicy(classes: [.managed: baseline, .byod: baseline, .vendor: baseline])
    }
}
