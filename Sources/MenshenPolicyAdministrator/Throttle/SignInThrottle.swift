import Foundation

/// Slows down guessing per account and per source address, without ever
/// locking an account for good (a permanent lockout would let anyone deny
/// service to a user by failing on purpose).
///
/// After `freeAttempts` failures on a key, each further attempt must wait
/// `baseDelay × 2^(failures − freeAttempts)`, capped at `maximumDelay`. A
/// success clears the account's key. Keys fade after `forgetAfter` without
/// failures. State is per process: with several nodes each node throttles on
/// its own, which bounds guessing at nodes × the single-node rate.
public actor SignInThrottle {
    public struct Settings: Sendable {
        public var freeAttempts: Int
        public var baseDelay: TimeInterval
        public var maximumDelay: TimeInterval
        public var forgetAfter: TimeInterval
        /// Most keys kept; the stalest are dropped beyond it (memory bound under a spray).
        public var maximumKeys: Int
        public init(freeAttempts: Int = 5, baseDelay: TimeInterval = 1, maximumDelay: TimeInterval = 900,
                    forgetAfter: TimeInterval = 3600, maximumKeys: Int = 100_000) {
            self.freeAttempts = freeAttempts; self.baseDelay = baseDelay; self.maximumDelay = maximumDelay
            self.forgetAfter = forgetAfter; self.maximumKeys = maximumKeys
        }
    }

    private struct Entry { var failures: Int; var lastFailure: Date }
    private var entries: [String: Entry] = [:]
    public let settings: Settings

    public init(settings: Settings = Settings()) { self.settings = settings }

    /// Seconds to wait before another attempt on any of `keys` is considered, or nil.
    public func retryAfter(keys: [String], at now: Date) -> TimeInterval? {
        var wait: TimeInterval = 0
        for key in keys {
            guard let e = entries[key] else { continue }
            if now.timeIntervalSince(e.lastFailure) > settings.forgetAfter { entries[key] = nil; continue }
            let excess = e.failures - settings.freeAttempts
            guard excess >= 0 else { continue }
            let delay = min(settings.maximumDelay, settings.baseDelay * pow(2, Double(min(excess, 30))))
            let remaining = e.lastFailure.addingTimeInterval(delay).timeIntervalSince(now)
            wait = max(wait, remaining)
        }
        return wait > 0 ? wait : nil
    }

    public func recordFailure(keys: [String], at now: Date) {
        for key in keys {
            var e = entries[key] ?? Entry(failures: 0, lastFailure: now)
            if now.timeIntervalSince(e.lastFailure) > settings.forgetAfter { e.failures = 0 }
            e.failures += 1; e.lastFailure = now
            entries[key] = e
        }
        if entries.count > settings.maximumKeys {
            let stalest = entries.sorted { $0.value.lastFailure < $1.value.lastFailure }.prefix(entries.count - settings.maximumKeys)
            for (key, _) in stalest { entries[key] = nil }
        }
    }

    public func recordSuccess(keys: [String]) {
        for key in keys { entries[key] = nil }
    }

    public static func accountKey(_ name: String) -> String { "account:" + name.lowercased() }
    public static func sourceKey(_ address: String) -> String { "source:" + address }
}
