import Foundation
import Synchronization

/// Bounds on `POST /device/posture/nonce`, which needs no credential (a device
/// asks before it signs): without them anyone knowing a device id could fill
/// the store with 10-minute nonce records.
///
/// - per source address, at most ``Settings/perSourcePerMinute`` requests in
///   a one-minute window (unknown device ids count too);
/// - per device, at most ``Settings/outstandingPerDevice`` nonces issued and
///   neither redeemed by a verified report nor expired.
///
/// The per-source window is a ``WindowLimiter``. State is per node (like the sign-in throttle), bounded to
/// ``Settings/maximumKeys`` sources and devices; when full it starts afresh.
public final class DeviceNonceLimiter: Sendable {
    public struct Settings: Sendable {
        public var perSourcePerMinute: Int
        public var outstandingPerDevice: Int
        public var maximumKeys: Int
        public init(perSourcePerMinute: Int = 60, outstandingPerDevice: Int = 5, maximumKeys: Int = 100_000) {
            self.perSourcePerMinute = perSourcePerMinute; self.outstandingPerDevice = outstandingPerDevice; self.maximumKeys = maximumKeys
        }
    }

    private struct State {
        var outstanding: [String: [Date]] = [:]   // device → expiry of each unredeemed nonce, oldest first
    }

    public let settings: Settings
    private let sources: WindowLimiter
    private let state = Mutex(State())

    public init(settings: Settings = Settings()) {
        self.settings = settings
        sources = WindowLimiter(perMinute: settings.perSourcePerMinute, maximumKeys: settings.maximumKeys)
    }

    /// Counts a request from `source`; the seconds to wait when over the limit, else nil.
    public func admitSource(_ source: String?, at now: Date) -> Int? { sources.admit(source, at: now) }

    /// Reserves one outstanding nonce for `device` that expires at `expiry`; the seconds until one
    /// frees up when the device already has its maximum, else nil.
    public func reserve(device: String, expiry: Date, at now: Date) -> Int? {
        state.withLock { s in
            if s.outstanding.count >= settings.maximumKeys, s.outstanding[device] == nil { s.outstanding.removeAll(keepingCapacity: true) }
            var list = (s.outstanding[device] ?? []).filter { $0 > now }
            guard list.count < settings.outstandingPerDevice else {
                s.outstanding[device] = list
                return max(1, Int((list.min() ?? now).timeIntervalSince(now).rounded(.up)))
            }
            list.append(expiry)
            s.outstanding[device] = list
            return nil
        }
    }

    /// A verified report redeemed one of `device`'s nonces.
    public func redeemed(device: String) {
        state.withLock { s in
            guard var list = s.outstanding[device], !list.isEmpty else { return }
            list.removeFirst()
            s.outstanding[device] = list.isEmpty ? nil : list
        }
    }
}
