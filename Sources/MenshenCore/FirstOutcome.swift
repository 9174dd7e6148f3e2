import Synchronization

/// Waiting for a piece of async work with a time limit, without waiting for the work itself past it.
///
/// Written by hand because a task group (the structured way to race work against a timer) waits for all its
/// children: a library call that ignores cancellation (postgres-nio's queries once sent, a connection racing its
/// close) would hold the caller for as long as it never returns.
public enum FirstOutcome {
    /// `work`'s answer, or nil after `limit` (or at once when the caller is cancelled, unless `evenIfCancelled`:
    /// work that must still be given its time, such as a stop or a release at shutdown, runs in a cancelled task) —
    /// without waiting for `work`, which is cancelled then and left to end on its own.
    public static func within<T: Sendable>(_ limit: Duration, evenIfCancelled: Bool = false,
                                           _ work: @escaping @Sendable () async -> T) async -> T? {
        let first = First<T>()
        let task = Task { first.finish(await work()) }
        let timer = Task {
            try? await Task.sleep(for: limit)
            first.finish(nil)
        }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { first.install($0) }
        } onCancel: {
            if !evenIfCancelled { first.finish(nil) }
        }
        task.cancel()
        timer.cancel()
        return result
    }

    /// The first outcome resumes the one waiter; later ones are ignored. Either the outcome or the waiter may come first.
    final class First<T: Sendable>: Sendable {
        private let state = Mutex<(continuation: CheckedContinuation<T?, Never>?, result: T??)>((nil, nil))

        func install(_ continuation: CheckedContinuation<T?, Never>) {
            let ready: T?? = state.withLock { s in
                if let r = s.result { return .some(r) }
                s.continuation = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }

        func finish(_ value: T?) {
            let waiting: CheckedContinuation<T?, Never>? = state.withLock { s in
                guard s.result == nil else { return nil }
                s.result = .some(value)
                defer { s.continuation = nil }
                return s.continuation
            }
            waiting?.resume(returning: value)
        }
    }
}
