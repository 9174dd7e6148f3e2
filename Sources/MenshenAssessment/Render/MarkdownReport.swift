import Foundation

/// The assessment as a Markdown document (CommonMark, GitHub tables): the
/// summary, every principle with its measurements and the query behind each
/// (in fenced code blocks), attestations, the scenario view, the roadmap and
/// the change since the previous assessment.
///
/// Every piece of text from the assessment goes through ``inline(_:)``, which
/// backslash-escapes the characters Markdown would interpret (so a rationale or
/// route name cannot inject links, HTML or table cells); queries go in fences
/// longer than any run of backticks they contain.
struct MarkdownReport {
    let language: ReportLanguage
    let catalog: PrincipleCatalog

    func t(_ text: LocalizedText) -> String { text.text(language) }

    func render(_ a: Assessment) -> String {
        var out: [String] = []
        out.append("# \(t(ReportText.title)) — \(inline(a.organisation))")
        out.append("")
        out.append("- **\(t(ReportText.organisation))**: \(inline(a.organisation))")
        out.append("- **\(t(ReportText.window))**: \(ReportText.date(a.windowStart)) – \(ReportText.date(a.windowEnd))")
        out.append("- **\(t(ReportText.generated))**: \(ReportText.date(a.generatedAt))")
        out.append("- **\(t(ReportText.producer))**: \(inline(a.producer))")
        out.append("- **\(t(ReportText.assessmentID))**: \(inline(a.id))")
        out.append("- **\(t(ReportText.guideline))**: \(inline(t(a.guideline))) (\(inline(catalog.issuer)), \(inline(catalog.date)))")
        out.append("")
        out.append("> \(t(ReportText.translationNote)) \(t(ReportText.scoringNote))")
        out.append("")
        out.append("## \(t(ReportText.summary))")
        out.append("")
        out.append("**\(t(ReportText.overallLevel))**: \(ReportText.levelName(a.overallLevel, language, catalog: catalog))")
        out.append("")
        let levels = (1...4).map { ReportText.roman($0, catalog: catalog) }
        out.append("| \(t(ReportText.pillar)) | \(t(ReportText.reached)) | " + levels.joined(separator: " | ") + " |")
        out.append("|---|---|" + String(repeating: "---|", count: 4))
        for p in a.pillars {
            let cells = (1...4).map { l -> String in
                guard let tally = p.perLevel.first(where: { $0.level == l }), tally.total > 0 else { return "–" }
                return "\(tally.satisfied)/\(tally.total)"
            }
            out.append("| \(inline(t(catalog.name(of: p.pillar)))) | \(ReportText.levelName(p.level, language, catalog: catalog)) | "
                       + cells.joined(separator: " | ") + " |")
        }
        out.append("")
        if let c = a.comparison { out += comparison(c, a) }
        for pillar in Pillar.allCases {
            let level = a.pillars.first { $0.pillar == pillar }?.level ?? 0
            out.append("## \(inline(t(catalog.name(of: pillar)))) — \(ReportText.levelName(level, language, catalog: catalog))")
            out.append("")
            for r in a.principles where r.pillar == pillar { out += principle(r) }
        }
        out += scenarios(a)
        out += routes(a)
        out += roadmap(a)
        return out.joined(separator: "\n") + "\n"
    }

    func principle(_ r: PrincipleResult) -> [String] {
        let p = catalog.principle(r.principleID)
        var out = ["### \(inline(r.principleID)) \(inline(p.map { t($0.function) } ?? "")) (\(ReportText.roman(r.level, catalog: catalog))) — \(t(r.verdict.label))", ""]
        if let p { out += ["> \(inline(t(p.text)))", ""] }
        out += ["**\(t(ReportText.rationale))**: \(inline(t(r.rationale)))", ""]
        if !r.measurements.isEmpty {
            out += ["**\(t(ReportText.measurements))**:", ""]
            for m in r.measurements {
                out.append("- \(inline(t(m.label))) (`\(m.id.filter { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." })`): \(inline(ReportText.value(m, language)))")
                out.append("")
                out += Self.fenced(m.query).map { "  " + $0 }
                out.append("")
            }
        }
        if !r.attestations.isEmpty {
            out += ["**\(t(ReportText.attestations))**:", ""]
            for s in r.attestations {
                let att = s.attestation
                out.append("- \(inline(att.statement)) — **\(t(ReportText.state(s.state)))**; \(t(ReportText.attestedBy)): \(inline(att.attestedBy)), "
                           + "\(t(ReportText.attestedAt)): \(ReportText.day(att.attestedAt)), \(t(ReportText.expires)): \(ReportText.day(att.expiresAt))"
                           + (att.revokedAt.map { ", \(t(ReportText.revoked)): \(ReportText.day($0))" } ?? ""))
                if att.files.isEmpty { out.append("  - \(t(ReportText.noFiles))") }
                for f in att.files { out.append("  - \(inline(f.name)) (\(f.size) \(t(ReportText.bytes))), SHA-256 `\(f.sha256.filter(\.isHexDigit))`") }
            }
            out.append("")
        }
        if let remedy = r.remedy { out += ["**\(t(ReportText.remedy))**: \(inline(t(remedy)))", ""] }
        return out
    }

    func comparison(_ c: AssessmentComparison, _ a: Assessment) -> [String] {
        var out = ["## \(t(ReportText.comparison))", ""]
        out.append("\(t(ReportText.previous)): \(inline(c.previousID)), \(ReportText.date(c.previousGeneratedAt))")
        out.append("")
        out.append("| | \(t(ReportText.before)) | \(t(ReportText.now)) |")
        out.append("|---|---|---|")
        out.append("| \(t(ReportText.overallLevel)) | \(ReportText.levelName(c.overallLevelBefore, language, catalog: catalog)) | \(ReportText.levelName(a.overallLevel, language, catalog: catalog)) |")
        for p in a.pillars {
            let before = c.pillarLevelsBefore[p.pillar.rawValue].map { ReportText.levelName($0, language, catalog: catalog) } ?? "–"
            out.append("| \(inline(t(catalog.name(of: p.pillar)))) | \(before) | \(ReportText.levelName(p.level, language, catalog: catalog)) |")
        }
        out.append("")
        if c.changes.isEmpty { out.append(t(ReportText.noChanges)) }
        for ch in c.changes { out.append("- \(inline(ch.principleID)): \(t(ch.before.label)) → \(t(ch.after.label))") }
        out.append("")
        return out
    }

    func scenarios(_ a: Assessment) -> [String] {
        var out = ["## \(t(ReportText.scenarios))", "", t(ReportText.scenarioNote), ""]
        let names = Dictionary(a.routes.map { ($0.applicationID, $0.displayName) }, uniquingKeysWith: { x, _ in x })
        for s in a.scenarios {
            out.append("### \(inline(t(s.name)))")
            out.append("")
            if s.routes.isEmpty {
                out.append(t(ReportText.noRoutes))
            } else {
                out.append("\(t(ReportText.routes)): " + s.routes.map { inline(names[$0] ?? $0) }.joined(separator: ", "))
                out.append("")
                let holding = s.principles.filter(\.holds)
                out.append("\(holding.count)/\(s.principles.count) \(t(ReportText.holdsCount)): " + holding.map { inline($0.principleID) }.joined(separator: ", "))
                for p in s.principles where !p.failingRoutes.isEmpty {
                    out.append("- \(inline(p.principleID)) \(t(ReportText.failingOn)): " + p.failingRoutes.map { inline(names[$0] ?? $0) }.joined(separator: ", "))
                }
            }
            out.append("")
        }
        return out
    }

    func routes(_ a: Assessment) -> [String] {
        guard !a.routes.isEmpty else { return [] }
        var out = ["## \(t(ReportText.routes))", ""]
        out.append("| \(t(ReportText.application)) | \(t(ReportText.address)) | \(t(ReportText.classification)) | \(t(ReportText.scenarios)) | \(t(ReportText.checks)) |")
        out.append("|---|---|---|---|---|")
        for r in a.routes {
            let scen = r.scenarios.map { inline(t(ReportText.scenarioName($0, catalog: catalog))) }.joined(separator: ", ")
            let checks = r.checks.map { "\(inline($0.principleID)) \(t(ReportText.holdsWord($0.holds))): \(inline(t($0.detail)))" }.joined(separator: "; ")
            out.append("| \(inline(r.displayName)) (\(inline(r.applicationID))) | \(inline(r.host + r.pathPrefix)) | \(inline(r.classification)) | "
                       + "\(scen.isEmpty ? t(ReportText.none) : scen) | \(checks.isEmpty ? t(ReportText.none) : checks) |")
        }
        out.append("")
        return out
    }

    func roadmap(_ a: Assessment) -> [String] {
        var out = ["## \(t(ReportText.roadmap))", "", t(ReportText.roadmapNote), ""]
        if a.roadmap.isEmpty { return out + [t(ReportText.noGaps), ""] }
        out.append("| \(t(ReportText.rank)) | \(t(ReportText.principle)) | \(t(ReportText.level)) | \(t(ReportText.verdict)) | \(t(ReportText.why)) | \(t(ReportText.remedy)) |")
        out.append("|---|---|---|---|---|---|")
        for item in a.roadmap {
            let fn = catalog.principle(item.principleID).map { t($0.function) } ?? ""
            out.append("| \(item.rank) | \(inline(item.principleID)) \(inline(fn)) | \(ReportText.roman(item.level, catalog: catalog)) | \(t(item.verdict.label)) | "
                       + "\(inline(t(item.why))) | \(item.remedy.map { inline(t($0)) } ?? "") |")
        }
        out.append("")
        return out
    }

    /// Text safe inside a Markdown paragraph, list item or table cell: line
    /// breaks become spaces, control characters are dropped, and the ASCII
    /// punctuation Markdown interprets is backslash-escaped.
    func inline(_ s: String) -> String { Self.inline(s) }

    static func inline(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for u in s.unicodeScalars {
            switch u {
            case "\n", "\r", "\t": out.append(" ")
            case "\\", "`", "*", "_", "{", "}", "[", "]", "<", ">", "(", ")", "#", "+", "!", "|", "~", "&", "$", "=":
                out.append("\\"); out.unicodeScalars.append(u)
            default:
                if u.value < 0x20 || u.value == 0x7F || (0x80..<0xA0).contains(u.value) { continue }
                out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// A fenced code block holding `text` verbatim: the fence is longer than
    /// any run of backticks in the text, so the text cannot close it.
    static func fenced(_ text: String) -> [String] {
        var longest = 0, run = 0
        for c in text { if c == "`" { run += 1; longest = max(longest, run) } else { run = 0 } }
        let fence = String(repeating: "`", count: max(3, longest + 1))
        let body = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .unicodeScalars.filter { $0 == "\n" || $0 == "\t" || !($0.value < 0x20 || $0.value == 0x7F) }
        return [fence + "text"] + String(String.UnicodeScalarView(body)).components(separatedBy: "\n") + [fence]
    }
}
