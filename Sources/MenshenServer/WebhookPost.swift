import AsyncHTTPClient
import Foundation
import NIOCore

/// One POST of a JSON body to a webhook receiver: the exchange both webhook senders share (the playbooks'
/// tickets in `Response/WebhookSender` and the event export in `Export/WebhookExporter`), so there is one
/// way Menshen talks HTTP to the outside.
///
/// The deadline covers the whole exchange, answer included, so a receiver that hangs costs one timeout.
/// Redirects are the client's business (both senders disallow them). At most ``maxAnswerBytes`` of the
/// answer are read and then ignored: only the status and `Retry-After` matter, and a receiver that
/// answers garbage or a flood changes nothing. AsyncHTTPClient does the HTTP.
enum WebhookPost {
    static let maxAnswerBytes = 64 * 1024

    struct Answer: Sendable {
        var status: Int
        /// The `Retry-After` header as sent (at most 64 bytes kept).
        var retryAfter: String?
        /// False when the connection failed while the answer's body was being read (the status may still be 2xx).
        var complete: Bool
    }

    static func send(_ client: HTTPClient, url: String, headers: [(String, String)], body: ByteBuffer,
                     timeout: Duration) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(body)
        let c = timeout.components
        let deadline = NIODeadline.now() + .nanoseconds(c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000)
        let response = try await client.execute(request, deadline: deadline)
        var complete = true
        do {
            _ = try await response.body.collect(upTo: maxAnswerBytes)
        } catch is NIOTooManyBytesError {
            // A long answer: the status line already said what it had to.
        } catch {
            complete = false
        }
        let retryAfter = response.headers.first(name: "Retry-After").map { String($0.prefix(64)) }
        return Answer(status: Int(response.status.code), retryAfter: retryAfter, complete: complete)
    }
}
