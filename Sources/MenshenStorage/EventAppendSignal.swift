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
    /// A waiter between its start and its registration may already have timed out or been cancelled.
    private enum Waiter {
        case starting
        case ended
        case waiting(CheckedContinuation<Void, Never>)
    }
    private struct State {
        var generation = 0
        var nextID: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
    }
    private let state = Mutex(State())

    public init() {}

    public var generation: Int { state.withLock { $0.generation } }

    /// Called after a commit of appended events: wakes every registered waiter (one still starting sees the new
    /// generation when it registers).
    public func signal() {
        let woken: [CheckedContinuation<Void, Never>] = state.withLock { s in
            s.generation += 1
            var woken: [CheckedContinuation<Void, Never>] = []
            for (id, w) in s.waiters { if case .waiting(let c) = w { woken.append(c); s.waiters[id] = nil } }
            return woken
        }
        for w in woken { w.resume() }
    }

    public func wait(after generation: Int, timeout: Duration) async {
        let id: UInt64 = state.withLock { s in
            s.nextID += 1
            s.waiters[s.nextID] = .starting
            return s.nextID
        }
        let timer = Task { [weak self] in
            do { try await Task.sleep(for: timeout) } catch { return }
            self?.end(id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if case .ended = s.waiters[id] { s.waiters[id] = nil; return true }
                    if s.generation > generation { s.waiters[id] = nil; return true }
                    s.waiters[id] = .waiting(continuation)
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
            switch s.waiters[id] {
            case .waiting(let c): s.waiters[id] = nil; return c
            case .starting: s.waiters[id] = .ended; return nil
            case .ended, nil: return nil
            }
        }
        waiter?.resume()
    }
}
