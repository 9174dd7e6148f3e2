/// MenshenVisibility — the detection half of the visibility pillar.
///
/// It reads OCSF events as the event store keeps them (parsed JSON plus the
/// record's id and time), evaluates Sigma detection and correlation rules and
/// Swift behaviour detectors over them in time order, and returns OCSF
/// Detection Findings (class 2004) mapped to MITRE ATT&CK. Per-user baselines
/// (usual hours, places, daily volume) feed a 0–100 risk score per user that
/// the policy engine can read (see ``RiskScore`` for the formula).
///
/// What it must never do: perform I/O, read the global clock, or write to a
/// store. Time comes from the events; findings are values the caller stores
/// or exports. Every input (event JSON, rule YAML) is bounded and refused with
/// a ``VisibilityError`` when malformed; nothing traps on input.
///
/// Written by hand here, because none of the listed packages does it:
/// - Sigma rule evaluation (detection selections, value modifiers, condition
///   expressions, `event_count` / `value_count` / `temporal` /
///   `temporal_ordered` correlations). The reference implementation, pySigma,
///   is Python and converts rules to backend queries rather than evaluating
///   them; it is used only in the tests, to validate our rule files. Yams
///   parses the YAML; everything after that is ours.
/// - A small bounded JSON reader (``EventValue``): the module may not depend on
///   MenshenCedar's, and Foundation's `JSONSerialization` neither caps depth
///   nor keeps integers and booleans apart.
/// - Streaming windows with bounded state, baselines and the risk score.
///
/// The audit half (`Audit/`): Ed25519 checkpoints of the event hash chain
/// (signing, verify keys, the anchor line format) and ``AuditChainVerifier``,
/// which reads the log through the `EventStore` and `AuditCheckpointStore`
/// protocols in batches (it never writes; files are the caller's business).
///
/// Layout: `Events/` (event access), `Sigma/` (rule model, loader,
/// conditions, matching), `Detection/` (engine, correlation state, baselines,
/// risk, findings, ATT&CK table, Swift detectors), `Rules/` (the built-in
/// Sigma rules, one file each).
public enum MenshenVisibility {
    /// The OCSF schema version of the findings this module builds.
    public static let ocsfVersion = "1.8.0"
    /// The ATT&CK version the technique table follows.
    public static let attackVersion = "18.1"
}
