import Foundation
import MenshenAssessment
import MenshenConfig
import MenshenStorage

/// Measures the running deployment (its store and configuration) over a window
/// and assembles the ``Assessment``: the glue between the I/O (store queries,
/// configuration and the files it names) and MenshenAssessment's pure scoring.
public enum AssessmentRunner {
    /// The assessment of the deployment at `now` over `[now - window, now]`.
    /// `attestations` are the stored attestations; `previous` the last stored
    /// assessment (for the comparison), if any. `progress` hears about long
    /// event scans (a line every ``AssessmentFacts/progressEvery`` events).
    public static func assess(configuration: MenshenConfiguration, store: any MenshenStore, window: TimeInterval, now: Date,
                              attestations: [Attestation], previous: Assessment?,
                              progress: (@Sendable (String) -> Void)? = nil) async throws -> Assessment {
        let facts = try await AssessmentFacts.gather(configuration: configuration, store: store, window: window, now: now,
                                                     progress: progress)
        let input = AssessmentBuilder.Input(
            id: UUID().uuidString.lowercased(), generatedAt: now, windowStart: now.addingTimeInterval(-window),
            organisation: configuration.organisation.name, producer: "menshen (\(store.backendName))",
            evaluations: PrincipleRules.evaluate(facts: facts, attestations: attestations, now: now),
            routes: PrincipleRules.routeAssessments(facts), attestations: attestations, previous: previous)
        return AssessmentBuilder().build(input)
    }
}
