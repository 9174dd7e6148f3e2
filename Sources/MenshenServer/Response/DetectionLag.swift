import Foundation
import Logging
import MenshenCore
import MenshenStorage
import ServiceLifecycle

/// How far the detections lag behind the event log, read from the shared consumer cursor
/// ``DetectionService/cursorName``: what any node can know about them, whether it runs them or leaves them to another.
/// The maturity assessment on a node with `response.detections_enabled: false` counts them only while they are not
/// ``behind(cursor:event:time:)``; ``DetectionLagWatch`` (on every node) warns while they are, or never ran, and keeps
/// the `/metrics` gauge of ``age(now:)``.
///
/// The cursor is saved at most once a second while events flow (``CursorSaver``), so the first event after it
/// is at most about a second old while a detecting node keeps up. On a quiet log nothing follows the cursor:
/// that shows no lag, not that a node is running (a gateway's decisions keep its log from being quiet for long).
public enum DetectionLag: Sendable, Equatable {
    /// No node ever saved the cursor: no detection ran on this database. `first`: the time of the log's first event, if any.
    case neverRan(first: Date?)
    /// The first event after the cursor is older than ``limit``.
    case behind(cursor: Int64, event: Int64, time: Date)
    /// The first event after the cursor (if any: `unexamined`, its time) is at most ``limit`` old.
    case keepingUp(cursor: Int64, unexamined: Date?)

    public enum Kind: Sendable, Equatable { case neverRan, behind, keepingUp }

    public var kind: Kind {
        switch self {
        case .neverRan: .neverRan
        case .behind: .behind
        case .keepingUp: .keepingUp
        }
    }

    /// How long the oldest event the detections have not examined has waited, in seconds: 0 when they have examined
    /// every event (or the log is empty).
    public func age(now: Date) -> TimeInterval {
        let oldest: Date?
        switch self {
        case .neverRan(let first): oldest = first
        case .behind(_, _, let time): oldest = time
        case .keepingUp(_, let unexamined): oldest = unexamined
        }
        return oldest.map { max(0, now.timeIntervalSince($0)) } ?? 0
    }

    /// How old the first event the detections have not examined may be.
    public static let limit: TimeInterval = 600

    public static func read(_ store: any MenshenStore, now: Date) async throws -> DetectionLag {
        guard let cursor = try await store.cursor(named: DetectionService.cursorName) else {
            return .neverRan(first: try await store.events(after: 0, limit: 1).first?.event.time)
        }
        guard let next = try await store.events(after: cursor, limit: 1).first else { return .keepingUp(cursor: cursor, unexamined: nil) }
        if now.timeIntervalSince(next.event.time) > limit { return .behind(cursor: cursor, event: next.sequence, time: next.event.time) }
        return .keepingUp(cursor: cursor, unexamined: next.event.time)
    }
}

/// On every node: reads ``DetectionLag`` every `interval`, tells `onAge` its ``DetectionLag/age(now:)`` (the
/// `/metrics` gauge `menshen_detections_lag_seconds`), and logs a warning when the detections never ran or fall behind
/// (once, until that changes) and a notice when they keep up again, so an operator learns that no node runs them —
/// the node holding their lease stopped, or none may run them — and findings, risk scores, playbooks and approved
/// steps wait. On a node that may run them itself (`runsHere`), nothing is logged during the first `interval`: the
/// lease is taken and the cursor saved within seconds of the first start.
public struct DetectionLagWatch: Service {
    let store: any MenshenStore
    let clock: any WallClock
    let logger: Logger
    let interval: Duration
    let runsHere: Bool
    let onAge: @Sendable (TimeInterval) -> Void

    public init(store: any MenshenStore, clock: any WallClock, logger: Logger, interval: Duration = .seconds(15), runsHere: Bool,
                onAge: @escaping @Sendable (TimeInterval) -> Void = { _ in }) {
        self.store = store; self.clock = clock; self.logger = logger; self.interval = interval; self.runsHere = runsHere; self.onAge = onAge
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var state: DetectionLag.Kind?
            var quiet = runsHere
            while !Task.isCancelled {
                state = await check(after: state, log: !quiet)
                quiet = false
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// One reading: tells `onAge`, logs (when `log`) what changed since `state`, returns the new state (unchanged when
    /// the store cannot be read, or when nothing was logged).
    func check(after state: DetectionLag.Kind?, log: Bool = true) async -> DetectionLag.Kind? {
        let lag: DetectionLag
        let now = clock.now()
        do { lag = try await DetectionLag.read(store, now: now) } catch {
            logger.warning("could not read how far the detections have got", metadata: ["error": "\(error)"])
            return state
        }
        onAge(lag.age(now: now))
        guard log else { return state }
        switch lag {
        case .neverRan:
            if state != .neverRan {
                let hint = runsHere ? "" : " (response.detections_enabled is off here; turn it on for one node)"
                logger.warning("no node has run the detections on this database: nothing is detected\(hint)")
            }
        case .behind(let cursor, let event, let time):
            if state != .behind {
                logger.warning("the detections are behind the event log: no node is running them, or it does not keep up; findings, risk scores, playbooks and approved steps wait", metadata: [
                    "cursor": "\(cursor)", "first_unexamined_event": "\(event)",
                    "unexamined_since": "\(ISO8601DateFormatter().string(from: time))"])
            }
        case .keepingUp:
            if state == .neverRan || state == .behind { logger.notice("the detections keep up with the event log again") }
        }
        return lag.kind
    }
}
