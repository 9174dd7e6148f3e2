import AsyncHTTPClient
import Foundation
import Logging
import MenshenVisibility
import NIOCore

/// Delivers webhook tickets off the detection path.
///
/// ``enqueue(_:)`` never waits: tickets go into a bounded buffer (the oldest
/// is dropped, and counted, when it is full) that ``run()`` drains with at
/// most ``maxInFlight`` deliveries at a time. Each delivery is a POST of the
/// JSON ticket with the target's timeout per attempt (the deadline covers the
/// whole exchange, body included, so a receiver that hangs costs one timeout);
/// a failed attempt (no answer, an error, a status outside 2xx) is tried again
/// after 0.5 s, 1 s, 2 s … up to the target's `retries`. Redirects are not
/// followed and at most 64 KiB of an answer is read and ignored (``WebhookPost``): a receiver
/// that answers garbage changes nothing. When a delivery ends, `finished` is
/// told the outcome (the caller writes the audit event).
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
    /// Back-off before the n-th retry is `initialBackoff × 2^(n−1)`.
    let initialBackoff: Duration

    init(logger: Logger, initialBackoff: Duration = .milliseconds(500),
         finished: @escaping @Sendable (Ticket, ResponseEvents.Outcome) async -> Void) {
        let (stream, continuation) = AsyncStream.makeStream(of: Ticket.self, bufferingPolicy: .bufferingNewest(Self.maxQueued))
        self.stream = stream; self.continuation = continuation
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .seconds(5))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.logger = logger
        self.initialBackoff = initialBackoff
        self.finished = finished
    }

    /// Queues a ticket; returns false when the queue was full and the oldest ticket was dropped.
    @discardableResult
    func enqueue(_ ticket: Ticket) -> Bool {
        switch continuation.yield(ticket) {
        case .enqueued: return true
        case .dropped(let old):
            logger.error("webhook queue full; the oldest ticket was dropped", metadata: ["playbook": "\(old.step.playbook)", "finding": "\(old.finding.uid)"])
            return false
        case .terminated: return false
        @unknown default: return false
        }
    }

    /// Delivers queued tickets until the calling task is cancelled, then shuts the HTTP client down.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            var inFlight = 0
            await withTaskCancellationHandler {
                for await ticket in stream {
                    if inFlight >= Self.maxInFlight { await group.next(); inFlight -= 1 }
                    group.addTask { await self.deliver(ticket) }
                    inFlight += 1
                }
            } onCancel: {
                continuation.finish()
            }
            group.cancelAll()
        }
        try? await client.shutdown()
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
            if Task.isCancelled { lastProblem = "shut down before delivery"; break }
            attempts += 1
            do {
                let answer = try await WebhookPost.send(client, url: target.url,
                                                        headers: [("Content-Type", "application/json"),
                                                                  ("User-Agent", "Menshen-playbooks/\(ResponseEvents.productVersion)")],
                                                        body: ByteBuffer(string: ticket.body), timeout: .seconds(target.timeoutSeconds))
                if (200..<300).contains(answer.status) {
                    await finished(ticket, .init(success: true, detail: "ticket delivered to \(target.host) (HTTP \(answer.status))",
                                                 facts: ["host": .string(target.host), "attempts": .number(attempts),
                                                         "http_status": .number(answer.status)]))
                    return
                }
                lastProblem = "HTTP \(answer.status)"
            } catch {
                lastProblem = String("\(error)".prefix(200))
            }
            logger.warning("webhook attempt failed", metadata: ["host": "\(target.host)", "attempt": "\(attempts)", "problem": "\(lastProblem)"])
        }
        await finished(ticket, .init(success: false, detail: "ticket not delivered to \(target.host) after \(attempts) attempt(s): \(lastProblem)",
                                     facts: ["host": .string(target.host), "attempts": .number(attempts)]))
    }
}
