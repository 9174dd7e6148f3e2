import Foundation
import Logging
import MenshenCore
import MenshenStorage
import ServiceLifecycle

/// How far the detections lag behind the event log, read from the shared consumer cursor
/// ``DetectionService/cursorName``: what a node that leaves detections to another
/// (`response.detections_enabled: false`) can know about them. The maturity assessment counts them only while
/// they are not ``behind(cursor:event:time:)``; ``DetectionLagWatch`` warns while they are, or never ran.
///
/// The cursor is saved at most once a second while events flow (``CursorSaver``), so the first event after it
/// is at most about a second old while a detecting node keeps up. On a quiet log nothing follows the cursor:
/// that shows no lag, not that a node is running (a gateway's decisions keep its log from being quiet for long).
public enum DetectionLag: Sendable, Equatable {
    /// No node ever saved the cursor: no detection ran on this database.
    case neverRan
    /// The first event after the cursor is older than ``limit``.
    case behind(cursor: Int64, event: Int64, time: Date)
    /// The first event after the cursor (if any: `unexamined`) is at most ``limit`` old.
    case keepingUp(cursor: Int64, unexamined: Bool)

    /// How old the first event the detections have not examined may be.
    public static let limit: TimeInterval = 600

    public static func read(_ store: any MenshenStore, now: Date) async throws -> DetectionLag {
        guard let cursor = try await store.cursor(named: DetectionService.cursorName) else { return .neverRan }
        guard let next = try await store.events(after: cursor, limit: 1).first else { return .keepingUp(cursor: cursor, unexamined: false) }
        if now.timeIntervalSince(next.event.time) > limit { return .behind(cursor: cursor, event: next.sequence, time: next.event.time) }
        return .keepingUp(cursor: cursor, unexamined: true)
    }
}

/// On a node that leaves detections to another: reads ``DetectionLag`` every `interval` and logs a warning when the
/// detections never ran or fall behind (once, until that changes) and a notice when they keep up again, so an operator
/// learns that the detecting node stopped — findings, risk scores, playbooks and approved steps wait until one runs.
public struct DetectionLagWatch: Service {
    let store: any MenshenStore
    let clock: any WallClock
    let logger: Logger
    let interval: Duration

    public init(store: any MenshenStore, clock: any WallClock, logger: Logger, interval: Duration = .seconds(60)) {
        self.store = store; self.clock = clock; self.logger = logger; self.interval = interval
    }

    enum State: Equatable { case unknown, neverRan, behind, keepingUp }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var state = State.unknown
            while !Task.isCancelled {
                state = await check(after: state)
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// One reading: logs what changed since `state`, returns the new state (unchanged when the store cannot be read).
    func check(after state: State) async -> State {
        let lag: DetectionLag
        do { lag = try await DetectionLag.read(store, now: clock.now()) } catch {
            logger.warning("could not read how far the detections have got", metadata: ["error": "\(error)"])
            return state
        }
        switch lag {
        case .neverRan:
            if state != .neverRan {
                logger.warning("no node has run the detections on this database: nothing is detected (response.detections_enabled is off here; turn it on for one node)")
            }
            return .neverRan
        case .behind(let cursor, let event, let time):
            if state != .behind {
                logger.warning("the detections are behind the event log: no node is running them, or it does not keep up; findings, risk scores, playbooks and approved steps wait", metadata: [
                    "cursor": "\(cursor)", "first_unexamined_event": "\(event)",
                    "unexamined_since": "\(ISO8601DateFormatter().string(from: time))"])
            }
            return .behind
        case .keepingUp:
            if state == .neverRan || state == .behind { logger.notice("the detections keep up with the event log again") }
            return .keepingUp
        }
    }
}
