import Foundation

/// A source of wall-clock time. Domain code never calls `Date()` directly; it
/// is handed a `WallClock` so tests can fix or advance time.
public protocol WallClock: Sendable {
    /// The current instant.
    func now() -> Date
}

/// The system clock, for production wiring only.
public struct SystemClock: WallClock {
    public init() {}
    public func now() -> Date { Date() }
}

/// A clock that stays where the test puts it.
public final class FixedClock: WallClock, @unchecked Sendable {
    // Invariant: `current` is only read or written while holding `lock`.
    private let lock = NSLock()
    private var current: Date

    public init(_ start: Date) { self.current = start }

    public func now() -> Date { lock.withLock { current } }

    /// Moves the clock forward (or backward with a negative interval).
    public func advance(by seconds: TimeInterval) {
        lock.withLock { current = current.addingTimeInterval(seconds) }
    }

    /// Sets the clock to an instant.
    public func set(_ date: Date) { lock.withLock { current = date } }
}
