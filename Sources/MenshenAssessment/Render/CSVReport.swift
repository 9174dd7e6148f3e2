import Foundation

/// The assessment as a spreadsheet: one row per principle, its measurements
/// and attestations summarised in one cell each (RFC 4180: CRLF line ends,
/// fields quoted when they hold a comma, quote or line break, quotes doubled),
/// UTF-8 with a byte-order mark so spreadsheet programs read the Chinese text.
///
/// Guards against formula injection (OWASP "CSV injection"): a cell that
/// begins with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading
/// apostrophe, so a rationale or route name can never run as a formula.
/// Written by hand: no listed package writes CSV.
struct CSVReport {
    let language: ReportLanguage
    let catalog: PrincipleCatalog

    static let header = ["principle_id", "pillar", "level", "function", "principle", "verdict", "verdict_label", "rationale",
                         "measurements", "attestations", "remedy", "scenarios_holding", "roadmap_rank"]

    func render(_ a: Assessment) -> String {
        let rank = Dictionary(a.roadmap.map { ($0.principleID, $0.rank) }, uniquingKeysWith: { x, _ in x })
        var rows = [Self.header]
        for r in a.principles {
            let p = catalog.principle(r.principleID)
            let measurements = r.measurements.map { m in
                "\(m.label.text(language)) [\(m.id)] = \(ReportText.value(m, language)) {\(m.query)}"
            }.joined(separator: "; ")
            let attestations = r.attestations.map { s in
                let att = s.attestation
                let files = att.files.map { "\($0.name) sha256:\($0.sha256)" }.joined(separator: ", ")
                return "\(att.statement) — \(ReportText.state(s.state).text(language)); \(att.attestedBy); "
                    + "\(ReportText.day(att.attestedAt))–\(ReportText.day(att.expiresAt))" + (files.isEmpty ? "" : "; \(files)")
            }.joined(separator: " | ")
            let holding = a.scenarios.filter { v in v.principles.contains { $0.principleID == r.principleID && $0.holds } }.map(\.scenarioID)
            rows.append([r.principleID, r.pillar.rawValue, String(r.level), p.map { $0.function.text(language) } ?? "",
                         p.map { $0.text.text(language) } ?? "", r.verdict.rawValue, r.verdict.label.text(language),
                         r.rationale.text(language), measurements, attestations, r.remedy?.text(language) ?? "",
                         holding.joined(separator: " "), rank[r.principleID].map(String.init) ?? ""])
        }
        return "\u{FEFF}" + rows.map { $0.map(Self.field).joined(separator: ",") }.joined(separator: "\r\n") + "\r\n"
    }

    /// One field: formula guard first, then RFC 4180 quoting.
    static func field(_ raw: String) -> String {
        var s = raw
        if let first = s.unicodeScalars.first, ["=", "+", "-", "@", "\t", "\r"].contains(first) { s = "'" + s }
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
