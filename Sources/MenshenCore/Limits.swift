/// Input limits shared by every parser. Untrusted input larger or deeper than
/// these is refused with an error, never processed.
public enum InputLimits {
    /// Largest configuration file accepted, in bytes.
    public static let maxConfigBytes = 1 << 20
    /// Deepest nesting accepted in a configuration file.
    public static let maxConfigDepth = 32
    /// Largest single event payload (OCSF JSON) accepted by a store, in bytes.
    public static let maxEventPayloadBytes = 256 * 1024
    /// Largest Cedar policy text accepted by a store, in bytes.
    public static let maxPolicyTextBytes = 1 << 20
}
