import Foundation
import Synchronization

/// A store that can tell the log's followers (``EventTail``) that events were appended, so a follower that
/// has caught up waits for the next commit instead of polling blindly: detections and exports then see an
/// event moments after it is written, and a follower never sleeps through a backlog.
///
/// Only appends made through this store object are signalled. Other writers (another process on the same
/// SQLite file, another node on a shared PostgreSQL) are still seen within the follower's idle interval.
public protocol EventAppendSignal: Sendable {
    /// Grows with every committed append made through this store object.
    var appendGeneration: Int { get }
    /// Returns once ``appendGeneration`` exceeds `generation`, after `timeout`, or when the task is
    /// cancelled, whichever comes first.
    func waitForAppends(after generation: Int, timeout: Duration) async
}

/// The bookkeeping behind ``EventAppendSignal``: a generation counter and the followers waiting on it.
public final class AppendNotifier: Sendable {
    private struct State {
        var generation = 0
        var nextWaiter: UInt64 = 0
        /// Waiters between their start and their registration, and those of them already timed out or cancelled.
        var starting: Set<UInt64> = []
        var ended: Set<UInt64> = []
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    }
    private let state = Mutex(State())

    public init() {}

    public var generation: Int { state.withLock { $0.generation } }

    /// Called after a commit of appended events: wakes every waiter.
    public func signal() {
        let woken: [CheckedContinuation<Void, Never>] = state.withLock { s in
            s.generation += 1
            defer { s.waiters.removeAll(keepingCapacity: true) }
            return Array(s.waiters.values)
        }
        for w in woken { w.resume() }
    }

    public func wait(after generation: Int, timeout: Duration) async {
        let id: UInt64 = state.withLock { s in
            s.nextWaiter += 1
            s.starting.insert(s.nextWaiter)
            return s.nextWaiter
        }
        let timer = Task { [weak self] in
            do { try await Task.sleep(for: timeout) } catch { return }
            self?.end(id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    s.starting.remove(id)
                    if s.ended.remove(id) != nil || s.generation > generation { return true }
                    s.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.end(id)
        }
        timer.cancel()
    }

    /// Timed out or cancelled: resumes the waiter, or marks it so that it does not wait when it registers.
    private func end(_ id: UInt64) {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { s in
            if let w = s.waiters.removeValue(forKey: id) { return w }
            if s.starting.remove(id) != nil { s.ended.insert(id) }
            return nil
        }
        waiter?.resume()
    }
}
