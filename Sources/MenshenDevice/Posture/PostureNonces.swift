import Foundation
import MenshenCore

/// What redeeming a nonce found.
public enum PostureNonceRedemption: Sendable, Hashable {
    /// It was outstanding for this device and is now used up.
    case redeemed
    /// Never issued (or already forgotten).
    case unknown
    /// Issued and already redeemed once: a replay.
    case alreadyUsed
    /// Issued, but its time to live ran out before this report arrived.
    case expired
    /// Issued to another device.
    case otherDevice
}

/// The caller's store of nonces it has handed out for posture reports. The
/// verifier redeems the report's nonce last, after every other check passed,
/// so a forged report cannot burn a device's nonce.
///
/// Implementations must make `redeem` atomic: of two concurrent calls with
/// the same nonce, at most one gets `.redeemed`.
public protocol PostureNonceStore: Sendable {
    /// Marks `nonce` used if it was issued to `device`, is unexpired at
    /// `time` and unused, and says what it found.
    func redeem(_ nonce: String, for device: DeviceID, at time: Date) async throws -> PostureNonceRedemption
}

/// An in-memory ``PostureNonceStore`` (one process; tests and single-node use).
/// Issued nonces are 32 random bytes in base64url and live ``timeToLive``.
public actor InMemoryPostureNonces: PostureNonceStore {
    private struct Issued {
        var device: DeviceID
        var expires: Date
        var used: Bool
    }

    public nonisolated let timeToLive: TimeInterval
    private let random: any RandomSource
    private var issued: [String: Issued] = [:]

    public init(timeToLive: TimeInterval = 600, random: any RandomSource = SystemRandomSource()) {
        self.timeToLive = timeToLive
        self.random = random
    }

    /// A new nonce for `device`'s next report.
    public func issue(for device: DeviceID, at time: Date) -> String {
        let nonce = random.token(byteCount: 32)
        issued[nonce] = Issued(device: device, expires: time.addingTimeInterval(timeToLive), used: false)
        return nonce
    }

    public func redeem(_ nonce: String, for device: DeviceID, at time: Date) -> PostureNonceRedemption {
        guard var entry = issued[nonce] else { return .unknown }
        guard entry.device == device else { return .otherDevice }
        guard !entry.used else { return .alreadyUsed }
        guard time <= entry.expires else { return .expired }
        entry.used = true
        issued[nonce] = entry
        return .redeemed
    }

    /// Forgets nonces that expired before `time` (used ones included: a
    /// replay after expiry is refused as unknown, which is as good).
    public func prune(at time: Date) {
        issued = issued.filter { $0.value.expires >= time }
    }
}
