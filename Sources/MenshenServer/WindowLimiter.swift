import Foundation
import Synchronization

/// At most `perMinute` requests per key (a source address) in a fixed one-minute window, per node: for endpoints that
/// need no credential and write to the store (a device's posture nonce, a username-less passkey ceremony), so that
/// nobody can fill the store or take its writer from the decision audit by calling them in a loop.
///
/// Written by hand: the identity pillar's `SignInThrottle` is a back-off on *failures* that never fades under steady
/// use (it would end up throttling an office behind one address); this is a plain window counter. Bounded to
/// `maximumKeys` keys; when full it starts afresh.
public final class WindowLimiter: Sendable {
    public let perMinute: Int
    public let maximumKeys: Int
    private let windows = Mutex<[String: (start: Date, count: Int)]>([:])

    public init(perMinute: Int, maximumKeys: Int = 100_000) {
        self.perMinute = max(1, perMinute); self.maximumKeys = max(1, maximumKeys)
    }

    /// Counts one request for `key` (nil: the requests whose source is unknown, together); the seconds to wait when
    /// over the limit (not counted then), else nil.
    public func admit(_ key: String?, at now: Date) -> Int? {
        let key = key ?? "-"
        return windows.withLock { w in
            if w.count >= maximumKeys, w[key] == nil { w.removeAll(keepingCapacity: true) }
            var window = w[key] ?? (now, 0)
            if now.timeIntervalSince(window.start) >= 60 || now < window.start { window = (now, 0) }
            guard window.count < perMinute else {
                return max(1, Int((window.start.addingTimeInterval(60).timeIntervalSince(now)).rounded(.up)))
            }
            window.count += 1
            w[key] = window
            return nil
        }
    }
}
