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
/// - stops the job when it has not renewed the lease for half its `duration` (a renewal that fails, or does not
///   answer within `renewEvery`), so it has stopped well before the lease lapses and another node may take it:
///   two nodes never run the job at once while the store's clock and theirs run at the same rate;
/// - stops it too when the lease turns out to be another's;
/// - starts the job again (at the next renewal) when it ended on its own;
/// - gives the lease up when it stops (a graceful shutdown), so another node takes over at its next ask
///   instead of at the lease's expiry.
///
/// A node that stops abruptly (killed, cut off) is replaced once its lease has lapsed: within `duration` plus
/// `renewEvery`. `onChange` is told whether the job runs here each time that changes (metrics, tests).
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

    /// A running job: its task, and whether it has ended on its own.
    final class Running: Sendable {
        final class Flag: Sendable { let value = Atomic<Bool>(false) }
        let task: Task<Void, Never>
        private let flag = Flag()
        var ended: Bool { flag.value.load(ordering: .sequentiallyConsistent) }
        init(_ service: any Service, logger: Logger, name: String) {
            let flag = flag
            task = Task {
                do { try await service.run() } catch {
                    logger.error("the job under a lease failed", metadata: ["lease": "\(name)", "error": "\(error)"])
                }
                flag.value.store(true, ordering: .sequentiallyConsistent)
            }
        }

        func stop() async {
            task.cancel()
            await task.value
        }
    }

    enum Ask { case held(Lease), timedOut }

    func lead() async {
        let clock = ContinuousClock()
        let stopAfter = duration / 2
        var running: Running?
        var renewedAt: ContinuousClock.Instant?
        var otherHolder: String?
        func stop(_ why: String, level: Logger.Level) async {
            guard let r = running else { return }
            running = nil
            await r.stop()
            onChange(false)
            logger.log(level: level, "this node stopped \(name): \(why)", metadata: ["lease": "\(name)", "holder": "\(holder)"])
        }
        while !Task.isCancelled {
            let asked = clock.now
            do {
                switch try await ask() {
                case .timedOut:
                    logger.warning("the lease did not answer in time; asking again", metadata: ["lease": "\(name)", "within": "\(renewEvery)"])
                case .held(let lease) where lease.holder == holder:
                    renewedAt = asked
                    if otherHolder != nil { otherHolder = nil }
                    if let r = running, r.ended {
                        running = nil
                        onChange(false)
                        logger.error("\(name) ended on its own; starting it again", metadata: ["lease": "\(name)"])
                    }
                    if running == nil {
                        logger.notice("this node runs \(name) (it holds the lease)", metadata: [
                            "lease": "\(name)", "holder": "\(holder)", "until": "\(ISO8601DateFormatter().string(from: lease.expiresAt))"])
                        running = Running(job(), logger: logger, name: name)
                        onChange(true)
                    }
                case .held(let lease):
                    renewedAt = nil
                    await stop("the lease is held by \(lease.holder)", level: .warning)
                    if otherHolder != lease.holder {
                        otherHolder = lease.holder
                        logger.notice("\(name) runs on another node; this one stands by", metadata: [
                            "lease": "\(name)", "holder": "\(lease.holder)", "until": "\(ISO8601DateFormatter().string(from: lease.expiresAt))"])
                    }
                }
            } catch {
                logger.warning("could not take or renew the lease", metadata: ["lease": "\(name)", "error": "\(error)"])
            }
            if running != nil, renewedAt.map({ clock.now - $0 >= stopAfter }) ?? true {
                renewedAt = nil
                await stop("the lease was not renewed for \(stopAfter) (the store does not answer); another node may take it once it lapses",
                           level: .error)
            }
            try? await Task.sleep(for: renewEvery)
        }
        if running != nil {
            await stop("shutting down", level: .notice)
            // Given up outside this (cancelled) task: a store may refuse work asked for by a cancelled task.
            let store = store, name = name, holder = holder
            do { try await Task.detached { try await store.releaseLease(named: name, holder: holder) }.value } catch {
                logger.warning("could not give the lease up; another node takes it when it lapses", metadata: ["lease": "\(name)", "error": "\(error)"])
            }
        }
    }

    /// One ask, given at most `renewEvery` to answer.
    private func ask() async throws -> Ask {
        let store = store, name = name, holder = holder, duration = duration, limit = renewEvery
        return try await withThrowingTaskGroup(of: Ask.self) { group in
            group.addTask { .held(try await store.acquireLease(named: name, holder: holder, duration: duration)) }
            group.addTask { try await Task.sleep(for: limit); return .timedOut }
            defer { group.cancelAll() }
            return try await group.next() ?? .timedOut
        }
    }
}
