import Foundation
import Logging
import MenshenCore
import MenshenStorage
import ServiceLifecycle
import Synchronization

/// Runs a job on one node at a time among all the nodes that share a store: the detections and their
/// playbooks, which would otherwise write every finding and carry out every playbook once per node.
///
/// Every node that may run the job asks for the lease `name` (``LeaseStore``) every `renewEvery`; the one that
/// gets it starts the job and keeps renewing it, the others wait and ask again. The holder:
///
/// - stops the job by half the lease's `duration` after the start of its last successful renewal (asks that fail,
///   or do not answer, are not waited for past that deadline: each is given `renewEvery` at most, and the loop wakes
///   at the deadline), and waits at most a quarter of the duration for the job to end — so the job has stopped before
///   the lease can lapse and another node may take it: two nodes never run it at once while the store's clock and
///   theirs run at the same rate and no process is paused for longer than that margin (there is no fencing);
/// - stops it too when the lease turns out to be another's;
/// - when a stopped job has not ended within that wait (a store call inside it that ignores cancellation), starts no
///   other copy and does not give the lease up until it has ended: it keeps renewing the lease while the store answers,
///   and at shutdown leaves it to lapse (another node may then take it while the copy still waits on the store: see
///   "Several nodes" in docs/operations.md for what that leaves open; `onChange(false)` is not told then);
/// - when the job ends on its own, gives the lease up (another node may take over) and asks again after
///   `renewEvery`, doubling while the job keeps ending soon after its start, up to five minutes;
/// - gives the lease up when it stops (a graceful shutdown), so another node takes over at its next ask
///   instead of at the lease's expiry.
///
/// One ask is under way at a time: an ask that did not answer within its limit is waited for again, not sent anew.
/// A store that fails or does not answer is logged once (and once more when it answers again), not at every ask.
/// A node that stops abruptly (killed, cut off) is replaced once its lease has lapsed: within `duration` plus
/// `renewEvery`. `onChange` is told whether the job runs here each time that changes (metrics, tests).
///
/// Each ask is raced against its time limit by ``FirstOutcome/within(_:evenIfCancelled:_:)``: a task group would wait
/// for all its children, and postgres-nio's queries do not end on cancellation once sent.
public struct LeasedService: Service {
    /// The lease the detections run under.
    public static let detectionsLease = "detections"
    public static let defaultDuration: Duration = .seconds(30)
    public static let defaultRenewEvery: Duration = .seconds(5)

    let store: any LeaseStore
    let name: String
    let holder: String
    let duration: Duration
    let renewEvery: Duration
    let logger: Logger
    let job: @Sendable () -> any Service
    let onChange: @Sendable (Bool) -> Void

    public init(store: any LeaseStore, name: String, holder: String = LeasedService.nodeName(), duration: Duration = LeasedService.defaultDuration,
                renewEvery: Duration = LeasedService.defaultRenewEvery, logger: Logger,
                onChange: @escaping @Sendable (Bool) -> Void = { _ in }, job: @escaping @Sendable () -> any Service) {
        self.store = store; self.name = name; self.holder = holder; self.duration = duration
        self.renewEvery = min(renewEvery, duration / 4); self.logger = logger; self.job = job; self.onChange = onChange
    }

    /// This process among the nodes: `host:pid:random` (visible ASCII, at most 100 bytes), so a restarted process
    /// on the same host is a new holder and waits for its predecessor's lease like any other node.
    public static func nodeName(random: any RandomSource = SystemRandomSource()) -> String {
        let host = String(decoding: ProcessInfo.processInfo.hostName.utf8.prefix(64).map { $0 > 0x20 && $0 < 0x7F && $0 != 0x3A ? $0 : 0x5F }, as: UTF8.self)
        let tag = random.bytes(4).map { String(format: "%02x", $0) }.joined()
        return "\(host.isEmpty ? "host" : host):\(getpid()):\(tag)"
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.lead() }
    }

    /// Starts the job; its failure is logged.
    static func start(_ service: any Service, logger: Logger, name: String) -> TrackedTask<Void> {
        TrackedTask {
            do { try await service.run() } catch {
                logger.error("the job under a lease failed", metadata: ["lease": "\(name)", "error": "\(error)"])
            }
        }
    }

    /// A task, and whether it has finished, known without awaiting it: the job under the lease (`TrackedTask<Void>`,
    /// see ``stop(within:)``), and an ask for the lease (`TrackedTask<Ask>`), which may outlive the wait for it: while it
    /// has not answered, the next asks wait for it instead of sending another (a store that does not answer would
    /// otherwise collect one call, and one database connection, per `renewEvery`).
    final class TrackedTask<Value: Sendable>: Sendable {
        final class Flag: Sendable { let value = Atomic<Bool>(false) }
        let task: Task<Value, Never>
        let startedAt: ContinuousClock.Instant
        private let flag = Flag()
        var finished: Bool { flag.value.load(ordering: .sequentiallyConsistent) }
        init(_ work: @escaping @Sendable () async -> Value) {
            startedAt = .now
            let flag = flag
            task = Task { let value = await work(); flag.value.store(true, ordering: .sequentiallyConsistent); return value }
        }
    }

    enum Ask: Sendable { case held(Lease), failed(String), timedOut }

    /// Why the node last could not renew, so a store that stays down is logged once, not at every ask.
    enum AskTrouble: Equatable { case none, failed, timedOut }

    func lead() async {
        let clock = ContinuousClock()
        // The job is stopped by this long after the start of the last ask that renewed the lease, and given at most
        // `stopWait` to end: both well inside the lease, so it has ended before another node can take the lease.
        let stopAfter = duration / 2
        let stopWait = duration / 4
        var running: TrackedTask<Void>?
        // A stopped job that had not ended within `stopWait`: until it ends, no other copy starts here, the lease is not
        // given up (another node takes it only once it lapses), and `onChange(false)` is not told.
        var lingering: TrackedTask<Void>?
        var waitingNoted = false
        var pending: TrackedTask<Ask>?
        var renewedAt: ContinuousClock.Instant?
        // Whether the lease may be this node's: set when an ask is sent (an ask that is not waited for may still take
        // it), cleared when an answer names another holder or the lease is given up.
        var holding = false
        var otherHolder: String?
        var trouble = AskTrouble.none
        // A job that ends on its own gives the lease up and is started again no sooner than this (doubling while it
        // keeps ending soon after its start, up to five minutes), so a node whose job cannot start lets another take over.
        var restartDelay = renewEvery
        var notBefore: ContinuousClock.Instant?
        var startedAt = clock.now
        func stop(_ why: String, level: Logger.Level) async {
            guard let r = running else { return }
            running = nil
            let ended = await r.stop(within: stopWait)
            logger.log(level: level, "this node stopped \(name): \(why)", metadata: ["lease": "\(name)", "holder": "\(holder)"])
            if ended {
                onChange(false)
            } else {
                lingering = r
                waitingNoted = false
                logger.error("\(name) did not end within \(stopWait) of being stopped; until it ends, no other copy starts on this node and the lease is not given up",
                             metadata: ["lease": "\(name)"])
            }
        }
        func noteEnded() {
            if let l = lingering, l.finished {
                lingering = nil
                onChange(false)
                logger.notice("the stopped \(name) has ended", metadata: ["lease": "\(name)"])
            }
        }
        func release() async {
            noteEnded()
            guard holding else { return }
            if lingering != nil {
                logger.error("not giving the lease up: the stopped \(name) has not ended; the lease lapses instead", metadata: ["lease": "\(name)"])
                return
            }
            holding = false
            renewedAt = nil
            // Given up outside this (possibly cancelled) task, within one ask's time: a store may refuse work asked for
            // by a cancelled task, or not answer at all. An ask still under way could take the lease after the release,
            // so it is waited for first (within one ask's time too).
            if let p = pending, !p.finished {
                _ = await FirstOutcome.within(renewEvery, evenIfCancelled: true) { await p.task.value }
            }
            pending = nil
            let store = store, name = name, holder = holder
            let outcome = await FirstOutcome.within(renewEvery, evenIfCancelled: true) { () -> String? in
                do { try await store.releaseLease(named: name, holder: holder); return nil } catch { return "\(error)" }
            }
            if outcome != .some(nil) {
                logger.warning("could not give the lease up; another node takes it when it lapses",
                               metadata: ["lease": "\(name)", "error": "\(outcome.flatMap { $0 } ?? "no answer within \(renewEvery)")"])
            }
        }
        while !Task.isCancelled {
            noteEnded()
            // A job that ended on its own: stopped for good here, the lease given up, a later start delayed.
            if let r = running, r.finished {
                running = nil
                onChange(false)
                restartDelay = clock.now - startedAt > .seconds(600) ? renewEvery : restartDelay
                logger.error("\(name) ended on its own; giving the lease up and asking again in \(restartDelay)", metadata: ["lease": "\(name)"])
                notBefore = clock.now + restartDelay
                restartDelay = min(restartDelay * 2, .seconds(300))
                await release()
            }
            if let nb = notBefore, clock.now < nb {
                try? await Task.sleep(until: nb, clock: clock)
                continue
            }
            notBefore = nil
            // While the job runs, the ask may take only until the stop deadline. An ask still under way is waited for
            // again rather than sent anew; the lease counts as renewed from when that ask was sent.
            let deadline = renewedAt.map { $0 + stopAfter }
            let now = clock.now
            let limit = deadline.map { min(renewEvery, max(.zero, $0 - now)) } ?? renewEvery
            let answer: Ask
            var asked = now
            // An answer that came in since the last wait (while the loop slept) is taken, not thrown away; another ask is
            // sent at once after it (no sleep), so a slow store's answers are not left to age past the deadline.
            var askAgainNow = false
            if let p = pending, p.finished {
                answer = await p.task.value
                asked = p.startedAt
                pending = nil
                askAgainNow = true
            } else if limit > .zero {
                let ask: TrackedTask<Ask>
                if let p = pending {
                    ask = p
                } else {
                    let store = store, name = name, holder = holder, duration = duration
                    ask = TrackedTask {
                        do { return .held(try await store.acquireLease(named: name, holder: holder, duration: duration)) } catch {
                            return .failed("\(error)")
                        }
                    }
                    holding = true
                }
                pending = ask
                asked = ask.startedAt
                if let got = await FirstOutcome.within(limit, { await ask.task.value }) {
                    answer = got
                    pending = nil
                } else if ask.finished {   // answered as the time limit ran out
                    answer = await ask.task.value
                    pending = nil
                } else {
                    answer = .timedOut
                }
            } else {
                answer = .timedOut
            }
            if Task.isCancelled { break }
            switch answer {
            case .timedOut, .failed:
                let now: AskTrouble, detail: String
                if case .failed(let why) = answer { now = .failed; detail = why } else { now = .timedOut; detail = "no answer within \(limit)" }
                if trouble != now {
                    logger.warning("could not take or renew the lease; asking again every \(renewEvery)", metadata: ["lease": "\(name)", "error": "\(detail)"])
                }
                trouble = now
            case .held(let lease) where lease.holder == holder:
                if trouble != .none { logger.notice("the lease answers again", metadata: ["lease": "\(name)"]) }
                trouble = .none
                renewedAt = asked
                holding = true
                otherHolder = nil
                noteEnded()
                if running == nil, lingering != nil {
                    if !waitingNoted {
                        waitingNoted = true
                        logger.warning("this node holds the lease but waits for the stopped \(name) to end before starting it again",
                                       metadata: ["lease": "\(name)"])
                    }
                } else if running == nil, clock.now - asked < stopAfter {
                    logger.notice("this node runs \(name) (it holds the lease)", metadata: [
                        "lease": "\(name)", "holder": "\(holder)", "until": "\(ISO8601DateFormatter().string(from: lease.expiresAt))"])
                    running = Self.start(job(), logger: logger, name: name)
                    startedAt = clock.now
                    onChange(true)
                }
            case .held(let lease):
                if trouble != .none { logger.notice("the lease answers again", metadata: ["lease": "\(name)"]) }
                trouble = .none
                renewedAt = nil
                holding = false
                await stop("the lease is held by \(lease.holder)", level: .warning)
                if otherHolder != lease.holder {
                    otherHolder = lease.holder
                    logger.notice("\(name) runs on another node; this one stands by", metadata: [
                        "lease": "\(name)", "holder": "\(lease.holder)", "until": "\(ISO8601DateFormatter().string(from: lease.expiresAt))"])
                }
            }
            // A renewal older than `stopAfter` (no answer since, or an answer to an ask sent that long ago) no longer
            // counts, whether or not the job runs here: kept, it would leave the next ask no time and the loop no sleep.
            if renewedAt.map({ clock.now - $0 >= stopAfter }) ?? false { renewedAt = nil }
            if running != nil, renewedAt == nil {
                await stop("the lease was not renewed for \(stopAfter) (the store fails or does not answer); another node may take it once it lapses",
                           level: .error)
            }
            // The next ask comes after `renewEvery`, or at the stop deadline if that is sooner (at once after an answer
            // taken late).
            if askAgainNow && !Task.isCancelled { continue }
            let next = renewedAt.map { min(clock.now + renewEvery, $0 + stopAfter) } ?? clock.now + renewEvery
            try? await Task.sleep(until: next, clock: clock)
        }
        await stop("shutting down", level: .notice)
        await release()
    }
}

extension LeasedService.TrackedTask where Value == Void {
    /// Cancels the job and waits for it to end, at most `limit`; false when it had not ended by then (it is left to
    /// end on its own: a store call inside it that ignores cancellation must not hold the node).
    func stop(within limit: Duration) async -> Bool {
        task.cancel()
        let task = task
        return await FirstOutcome.within(limit, evenIfCancelled: true) { await task.value; return true } ?? false
    }
}
