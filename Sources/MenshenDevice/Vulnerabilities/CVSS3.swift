/// The base score of a CVSS v3.0 or v3.1 vector (FIRST CVSS v3.1
/// specification §7.1 and Appendix A for the round-up). Written here because
/// none of the listed packages scores CVSS; OSV carries vectors, not scores.
/// Temporal and environmental metrics may appear in the vector and are
/// ignored: the base score is what feeds publish as the severity.
public enum CVSS3 {
    /// The base score, or nil when the vector is not a complete, well-formed
    /// v3.x vector (each base metric exactly once, known values only).
    public static func baseScore(_ vector: String) -> Double? {
        guard vector.utf8.count <= 256 else { return nil }
        var parts = vector.split(separator: "/", omittingEmptySubsequences: false)
        guard let prefix = parts.first, prefix == "CVSS:3.0" || prefix == "CVSS:3.1" else { return nil }
        parts.removeFirst()
        var metrics: [Substring: Substring] = [:]
        for part in parts {
            let pair = part.split(separator: ":", omittingEmptySubsequences: false)
            guard pair.count == 2, metrics[pair[0]] == nil else { return nil }
            metrics[pair[0]] = pair[1]
        }
        guard let scope = metrics["S"], scope == "U" || scope == "C" else { return nil }
        let changed = scope == "C"
        guard let av = value(metrics["AV"], ["N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2]),
              let ac = value(metrics["AC"], ["L": 0.77, "H": 0.44]),
              let pr = value(metrics["PR"], changed ? ["N": 0.85, "L": 0.68, "H": 0.5] : ["N": 0.85, "L": 0.62, "H": 0.27]),
              let ui = value(metrics["UI"], ["N": 0.85, "R": 0.62]),
              let c = value(metrics["C"], cia), let i = value(metrics["I"], cia), let a = value(metrics["A"], cia)
        else { return nil }

        let iss = 1 - (1 - c) * (1 - i) * (1 - a)
        let impact = changed ? 7.52 * (iss - 0.029) - 3.25 * pow15(iss - 0.02) : 6.42 * iss
        let exploitability = 8.22 * av * ac * pr * ui
        guard impact > 0 else { return 0 }
        return changed ? roundUp(min(1.08 * (impact + exploitability), 10)) : roundUp(min(impact + exploitability, 10))
    }

    private static let cia: [Substring: Double] = ["H": 0.56, "L": 0.22, "N": 0]

    private static func value(_ key: Substring?, _ table: [Substring: Double]) -> Double? {
        guard let key else { return nil }
        return table[key]
    }

    private static func pow15(_ x: Double) -> Double {
        var result = 1.0
        for _ in 0..<15 { result *= x }
        return result
    }

    /// The smallest number with one decimal place that is ≥ x, computed on
    /// integers to avoid floating-point surprises (v3.1 Appendix A).
    static func roundUp(_ x: Double) -> Double {
        let scaled = Int((x * 100_000).rounded())
        if scaled % 10_000 == 0 { return Double(scaled) / 100_000 }
        return Double(scaled / 10_000 + 1) / 10
    }
}
