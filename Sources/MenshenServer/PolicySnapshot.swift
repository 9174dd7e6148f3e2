import Foundation
import MenshenPolicyEngine
import MenshenStorage

/// Loads the policy documents in force from the store into a validated
/// decision point. A set that does not validate is refused with every
/// problem (document, line, column); the caller keeps the previous snapshot.
public enum PolicySnapshot {
    public static func load(from store: any MenshenStore) async throws -> PolicyDecisionPoint {
        let documents = try await store.currentPolicies().map { (name: "\($0.policyID).cedar (v\($0.version))", text: $0.text) }
        return try PolicyDecisionPoint(documents: documents)
    }
}
