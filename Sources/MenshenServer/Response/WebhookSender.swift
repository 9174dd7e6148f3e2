import AsyncHTTPClient
import Foundation
import Logging
import MenshenVisibility
import NIOCore
import Synchronization

/// Delivers webhook tickets off the detection path.
///
/// ``enqueue(_:)`` never waits for a delivery: tickets go into a bounded buffer (the oldest
/// is dropped when it is full) that ``run()`` drains with at
/// most ``maxInFlight`` deliveries at a time. Each delivery is a POST of the
/// JSON ticket with the target's timeout per attempt (the deadline covers the
/// whole exchange, body included, so a receiver that hangs costs one timeout);
/// a failed attempt (no answer, an error, a status outside 2xx) is tried again
/// after 0.5 s, 1 s, 2 s … up to the target's `retries`. Redirects are not
/// followed and at most 64 KiB of an answer is read and ignored (``WebhookPost``): a receiver
/// that answers garbage changes nothing.
///
/// Every ticket ends in exactly one outcome told to `finished` (the caller writes the audit event): delivered, not
/// delivered after its attempts, dropped from a full queue, refused after ``close()``, or cut short by it. `finished`
/// runs in a task of its own: a delivery cut short is a cancelled task, and a store may refuse a cancelled task's work
/// (the event log's appends are group-committed by a writer of their own and do not, so no test can tell the
/// difference today; the cursor's writes do).
///
/// AsyncHTTPClient does the HTTP; the queue and the retry loop are ours.
final class WebhookSender: Sendable {
    struct Ticket: Sendable {
        var target: WebhookTarget
        var body: String
        var step: PlaybookStep
        var finding: DetectionFinding
    }

    static let maxQueued = 1000
    static let maxInFlight = 8

    private let stream: AsyncStream<Ticket>
    private let continuation: AsyncStream<Ticket>.Continuation
    private let client: HTTPClient
    private let logger: Logger
    private let finished: @Sendable (Ticket, ResponseEvents.Outcome) async -> Void
    private let closingFlag = Atomic<Bool>(false)
    private var closing: Bool { closingFlag.load(ordering: .sequentiallyConsistent) }
    /// Finished by ``close()``: ends ``run()``'s watcher.
    private let closed: AsyncStream<Void>
    private let closedContinuation: AsyncStream<Void>.Continuation
    /// Back-off before the n-th retry is `initialBackoff × 2^(n−1)`.
    let initialBackoff: Duration

    init(logger: Logger, initialBackoff: Duration = .milliseconds(500),
         finished: @escaping @Sendable (Ticket, ResponseEvents.Outcome) async -> Void) {
        let (stream, continuation) = AsyncStream.makeStream(of: Ticket.self, bufferingPolicy: .bufferingNewest(Self.maxQueued))
        self.stream = stream; self.continuation = continuation
        (closed, closedContinuation) = AsyncStream.makeStream(of: Void.self)
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .seconds(5))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.logger = logger
        self.initialBackoff = initialBackoff
        self.finished = finished
    }

    /// Queues a ticket. A ticket that will not be delivered — the oldest one, dropped from a full queue, or this one
    /// once the sender is closed — has its failure told to `finished` before this returns.
    func enqueue(_ ticket: Ticket) async {
        switch continuation.yield(ticket) {
        case .enqueued: return
        case .dropped(let old):
            logger.error("webhook queue full; the oldest ticket was dropped", metadata: ["playbook": "\(old.step.playbook)", "finding": "\(old.finding.uid)"])
            await tell(old, .init(success: false, detail: "ticket not delivered to \(old.target.host): the webhook queue was full (\(Self.maxQueued) tickets) and it was the oldest",
                                  facts: ["host": .string(old.target.host), "attempts": .number(0)]))
        case .terminated:
            await tell(ticket, Self.shutDown(ticket, attempts: 0))
        @unknown default:
            await tell(ticket, Self.shutDown(ticket, attempts: 0))
        }
    }

    /// Ends the queue: tickets already queued are not attempted (each is told as not delivered), deliveries under way
    /// are cancelled at once, and ``run()`` returns once every outcome has been told. Later tickets are refused.
    func close() {
        closingFlag.store(true, ordering: .sequentiallyConsistent)
        closedContinuation.finish()
        continuation.finish()
    }

    /// Delivers queued tickets until ``close()`` (not until cancelled: the caller closes it once nothing can queue any
    /// more, so no step is left without an outcome), then shuts the HTTP client down.
    func run() async {
        // Children answer whether they are the watcher of `close()` (true) or a delivery (false): the watcher ending
        // cancels the deliveries under way, also while the loop waits for one of them to make room.
        await withTaskGroup(of: Bool.self) { group in
            let closed = closed
            group.addTask { for await _ in closed {}; return true }
            var inFlight = 0
            for await ticket in stream {
                if closing {
                    group.cancelAll()   // the deliveries under way, at once (the watcher's end may not have been read)
                    await tell(ticket, Self.shutDown(ticket, attempts: 0))
                    continue
                }
                while inFlight >= Self.maxInFlight, let isWatcher = await group.next() {
                    if isWatcher { group.cancelAll(); break }
                    inFlight -= 1
                }
                group.addTask { await self.deliver(ticket); return false }
                inFlight += 1
            }
            group.cancelAll()
        }
        try? await client.shutdown()
    }

    static func shutDown(_ ticket: Ticket, attempts: Int) -> ResponseEvents.Outcome {
        .init(success: false, detail: "ticket not delivered to \(ticket.target.host): the detections stopped on this node before its delivery",
              facts: ["host": .string(ticket.target.host), "attempts": .number(attempts)])
    }

    /// Tells `finished` in a task of its own (see the type's comment).
    private func tell(_ ticket: Ticket, _ outcome: ResponseEvents.Outcome) async {
        let finished = finished
        await Task { await finished(ticket, outcome) }.value
    }

    func deliver(_ ticket: Ticket) async {
        let target = ticket.target
        var lastProblem = ""
        var attempts = 0
        for attempt in 0...target.retries {
            if attempt > 0 {
                let backoff = min(initialBackoff * (1 << (attempt - 1)), .seconds(30))
                try? await Task.sleep(for: backoff)
            }
            if Task.isCancelled || closing {
                await tell(ticket, Self.shutDown(ticket, attempts: attempts))
                return
            }
            attempts += 1
            do {
                let answer = try await WebhookPost.send(client, url: target.url,
                                                        headers: [("Content-Type", "application/json"),
                                                                  ("User-Agent", "Menshen-playbooks/\(ResponseEvents.productVersion)")],
                                                        body: ByteBuffer(string: ticket.body), timeout: .seconds(target.timeoutSeconds))
                if (200..<300).contains(answer.status) {
                    await tell(ticket, .init(success: true, detail: "ticket delivered to \(target.host) (HTTP \(answer.status))",
                                             facts: ["host": .string(target.host), "attempts": .number(attempts),
                                                     "http_status": .number(answer.status)]))
                    return
                }
                lastProblem = "HTTP \(answer.status)"
            } catch {
                lastProblem = String("\(error)".prefix(200))
            }
            if Task.isCancelled || closing {   // cut short by close(): the attempt's failure is the stop's
                await tell(ticket, Self.shutDown(ticket, attempts: attempts))
                return
            }
            logger.warning("webhook attempt failed", metadata: ["host": "\(target.host)", "attempt": "\(attempts)", "problem": "\(lastProblem)"])
        }
        await tell(ticket, .init(success: false, detail: "ticket not delivered to \(target.host) after \(attempts) attempt(s): \(lastProblem)",
                                 facts: ["host": .string(target.host), "attempts": .number(attempts)]))
    }
}
