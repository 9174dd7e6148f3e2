/// MenshenCore — the shared vocabulary of Menshen.
///
/// Identifiers, the injectable clock and randomness, input limits and the
/// event record that every pillar emits. Pure code: this module performs no
/// I/O, reads no global clock and no system randomness except through the
/// ``Clock`` and ``RandomSource`` values a caller injects.
public enum MenshenCore {
    /// The product name used in event metadata and the user interface.
    public static let productName = "Menshen"
    /// The product version. Bumped with each release.
    public static let version = "0.1.0"
}
