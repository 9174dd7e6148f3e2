import Foundation
import MenshenStorage
import MenshenVisibility
import Testing

/// Checkpoint signatures, the anchor line format and the verifier's verdicts on
/// the in-memory store (the tampering kinds on a real SQLite file are in
/// IntegrationTests/AuditCommandTests).
@Suite("Audit checkpoints")
struct AuditCheckpointTests {
    static func events(_ n: Int, from first: Int = 0) -> [NewEvent] {
        (first..<first + n).map { i in
            NewEvent(id: UUID(), time: Date(timeIntervalSince1970: 1_700_000_000 + Double(i)), classUID: 3002,
                     payloadJSON: #"{"n":\#(i)}"#)
        }
    }

    @Test("a checkpoint verifies with its key, and not after any signed field changes or with another key")
    func signatures() throws {
        let key = AuditSigningKey()
        let c = try key.checkpoint(sequence: 42, eventID: UUID(), hash: String(repeating: "a", count: 64), time: Date())
        #expect(key.verifyKey.isValidSignature(of: c))
        #expect(c.keyID.hasPrefix("ed25519:") && c.keyID.count == 8 + 16)
        var changed = c; changed.sequence = 43
        #expect(!key.verifyKey.isValidSignature(of: changed))
        changed = c; changed.eventID = UUID()
        #expect(!key.verifyKey.isValidSignature(of: changed))
        changed = c; changed.hash = String(repeating: "b", count: 64)
        #expect(!key.verifyKey.isValidSignature(of: changed))
        changed = c; changed.time = c.time.addingTimeInterval(1)
        #expect(!key.verifyKey.isValidSignature(of: changed))
        changed = c; changed.signature = "not base64!"
        #expect(!key.verifyKey.isValidSignature(of: changed))
        #expect(!AuditSigningKey().verifyKey.isValidSignature(of: c))
        // The exported public key, read back, checks the same signature; the raw key round-trips.
        #expect(try AuditVerifyKey(base64: key.verifyKey.base64).isValidSignature(of: c))
        #expect(try AuditSigningKey(rawRepresentation: key.rawRepresentation).verifyKey == key.verifyKey)
    }

    @Test("malformed keys are refused with a clear error")
    func badKeys() {
        for text in ["", "not base64", Data(repeating: 1, count: 31).base64EncodedString(), String(repeating: "A", count: 10_000)] {
            #expect(throws: VisibilityError(.invalidAuditKey, "")) { _ = try AuditVerifyKey(base64: text) }
        }
        #expect(throws: VisibilityError(.invalidAuditKey, "")) { _ = try AuditSigningKey(rawRepresentation: [1, 2, 3]) }
    }

    @Test("anchor lines round-trip; oversized, malformed and incomplete lines are refused")
    func anchorLines() throws {
        let c = try AuditSigningKey().checkpoint(sequence: 7, eventID: UUID(), hash: String(repeating: "c", count: 64), time: Date())
        let line = try AuditAnchorLine.encode(c)
        #expect(!line.contains("\n"))
        #expect(try AuditAnchorLine.decode(line) == c)
        for bad in ["", "{", "[]", #"{"sequence":1}"#, line.replacingOccurrences(of: c.eventID.uuidString, with: "x"),
                    line.replacingOccurrences(of: #""sequence":7"#, with: #""sequence":-7"#),
                    String(repeating: " ", count: AuditAnchorLine.maxBytes) + line, String(repeating: "[", count: 900)] {
            #expect(throws: VisibilityError(.invalidAuditAnchor, "")) { _ = try AuditAnchorLine.decode(bad) }
        }
    }

    @Test("an intact log passes and counts the unsigned tail; a checkpoint past the end is a truncated tail")
    func verdicts() async throws {
        let key = AuditSigningKey()
        let store = InMemoryStore()
        let stored = try await store.appendEvents(Self.events(25), hasher: EventChain.hasher)
        for s in [stored[9], stored[19]] {
            try await store.appendCheckpoint(try key.checkpoint(sequence: s.sequence, eventID: s.event.id, hash: s.hash, time: Date()))
        }
        let verifier = AuditChainVerifier(trustedKeys: [key.verifyKey], batchSize: 4)
        let ok = try await verifier.verify(store: store, anchor: [])
        #expect(ok.intact && ok.eventsChecked == 25 && ok.checkpointsChecked == 2 && ok.newestCheckpoint == 20 && ok.eventsAfterNewestCheckpoint == 5)

        // A checkpoint signed over a longer log, kept only in the anchor: this log lost its tail.
        let longer = InMemoryStore()
        let more = try await longer.appendEvents(Self.events(30), hasher: EventChain.hasher)
        let far = try key.checkpoint(sequence: 30, eventID: more[29].event.id, hash: more[29].hash, time: Date())
        let cut = try await verifier.verify(store: longer.prefixCopy(25), anchor: [far])
        #expect(cut.firstBreak?.kind == .truncated && cut.firstBreak?.sequence == 26, "\(String(describing: cut.firstBreak))")

        // Checkpoints by a key that is not trusted are bad signatures.
        let stranger = try await AuditChainVerifier(trustedKeys: [AuditSigningKey().verifyKey]).verify(store: store, anchor: [])
        #expect(stranger.firstBreak?.kind == .badSignature && stranger.firstBreak?.sequence == 10)
    }
}

extension InMemoryStore {
    /// A new store holding the first `n` records of this one, re-appended (the same chain).
    func prefixCopy(_ n: Int) async throws -> InMemoryStore {
        let copy = InMemoryStore()
        _ = try await copy.appendEvents(try await events(after: 0, limit: n).map(\.event), hasher: EventChain.hasher)
        return copy
    }
}
