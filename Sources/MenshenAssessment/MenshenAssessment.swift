/// MenshenAssessment — the regulator's view: where the deployment stands
/// against the 36 principles of the FSC "Zero Trust Architecture Reference
/// Guideline for the Financial Industry" (2024-07-15), Levels I–IV.
///
/// The pipeline is: ``PrincipleCatalog`` (compiled into the binary, both
/// languages) → ``DeploymentFacts`` (numbers measured from the running
/// deployment by the caller, each with the query that produced it) and
/// ``Attestation``s (what the system cannot observe) → ``Assessor`` (a
/// verdict and rationale per principle) → ``Assessment`` (pillar and overall
/// levels, the scenario view, the roadmap, the change since the previous
/// assessment) → renderers and the signed evidence pack.
///
/// What it must never do: perform I/O or read the global clock (the caller
/// passes `now`), or claim a level its measurements do not support: a
/// principle whose feature does not exist yet is "not measurable yet" and
/// counts as not met.
///
/// Written by hand here, because none of the listed packages does it: the
/// scoring rules, the report renderers (HTML with inline SVG, Markdown, CSV),
/// and the evidence-pack archive (POSIX ustar, written and read strictly).
/// JSON is Foundation's `JSONEncoder`; signatures are swift-crypto's Ed25519.
public enum MenshenAssessmentModule {}
