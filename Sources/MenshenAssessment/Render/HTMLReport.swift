import Foundation

/// The regulator-facing report: one self-contained HTML file (inline CSS, no
/// script, no external resource), printable (print CSS, a page per pillar),
/// with an inline SVG heat map pillar × level and a chart per pillar, all 36
/// principles with verdict, rationale, measurements and the query behind each,
/// attestations, the scenario view, the roadmap and the change since the
/// previous assessment.
///
/// Every string from the assessment or the catalog goes through ``escape(_:)``.
/// Stable hooks for tests and tools: `#heatmap` (cells carry `data-pillar`,
/// `data-level`, `data-satisfied`, `data-total`, `data-reached`), one
/// `article.principle[data-principle]` per principle with `data-verdict`,
/// `section.pillar[data-pillar]`, `#scenarios`, `#roadmap`, `#comparison`.
/// Written by hand: no listed package renders HTML or SVG.
struct HTMLReport {
    let language: ReportLanguage
    let catalog: PrincipleCatalog

    func t(_ text: LocalizedText) -> String { Self.escape(text.text(language)) }
    func e(_ s: String) -> String { Self.escape(s) }

    func render(_ a: Assessment) -> String {
        var h = "<!DOCTYPE html>\n<html lang=\"\(language.rawValue)\">\n<head>\n<meta charset=\"utf-8\">\n"
        h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        h += "<meta name=\"generator\" content=\"\(e(a.producer))\">\n"
        h += "<title>\(t(ReportText.title)) — \(e(a.organisation))</title>\n<style>\n\(Self.css)</style>\n</head>\n<body>\n"
        h += header(a)
        h += summary(a)
        if let c = a.comparison { h += comparison(c, a) }
        for pillar in Pillar.allCases { h += pillarSection(pillar, a) }
        h += scenarios(a)
        h += routes(a)
        h += roadmap(a)
        h += "<footer><p>\(t(ReportText.translationNote))</p><p>\(e(a.producer)) · \(t(ReportText.assessmentID)) \(e(a.id))</p></footer>\n"
        h += "</body>\n</html>\n"
        return h
    }

    // MARK: Sections

    func header(_ a: Assessment) -> String {
        var h = "<header id=\"report-header\">\n<h1>\(t(ReportText.title))</h1>\n<dl class=\"facts\">\n"
        func row(_ k: LocalizedText, _ v: String) { h += "<dt>\(t(k))</dt><dd>\(v)</dd>\n" }
        row(ReportText.organisation, e(a.organisation))
        row(ReportText.window, "\(ReportText.date(a.windowStart)) – \(ReportText.date(a.windowEnd))")
        row(ReportText.generated, ReportText.date(a.generatedAt))
        row(ReportText.guideline, "\(t(a.guideline)) (\(e(catalog.issuer)), \(e(catalog.date)))")
        row(ReportText.producer, e(a.producer))
        row(ReportText.assessmentID, "<code>\(e(a.id))</code>")
        h += "</dl>\n</header>\n"
        return h
    }

    func summary(_ a: Assessment) -> String {
        var h = "<section id=\"summary\">\n<h2>\(t(ReportText.summary))</h2>\n"
        h += "<p class=\"overall\" data-overall-level=\"\(a.overallLevel)\">\(t(ReportText.overallLevel)): "
        h += "<strong>\(e(ReportText.levelName(a.overallLevel, language, catalog: catalog)))</strong></p>\n"
        h += "<p class=\"note\">\(t(ReportText.scoringNote))</p>\n"
        h += "<figure>\n" + heatMap(a) + "<figcaption>\(t(ReportText.heatMapLegend))</figcaption>\n</figure>\n"
        h += "<table class=\"pillars\"><thead><tr><th>\(t(ReportText.pillar))</th><th>\(t(ReportText.reached))</th>"
        for v in Verdict.allCases { h += "<th>\(t(v.label))</th>" }
        h += "</tr></thead><tbody>\n"
        for p in a.pillars {
            let mine = a.principles.filter { $0.pillar == p.pillar }
            h += "<tr data-pillar=\"\(p.pillar.rawValue)\"><th><a href=\"#pillar-\(p.pillar.rawValue)\">\(t(catalog.name(of: p.pillar)))</a></th>"
            h += "<td>\(e(ReportText.levelName(p.level, language, catalog: catalog)))</td>"
            for v in Verdict.allCases { h += "<td class=\"num\">\(mine.filter { $0.verdict == v }.count)</td>" }
            h += "</tr>\n"
        }
        h += "</tbody></table>\n</section>\n"
        return h
    }

    func comparison(_ c: AssessmentComparison, _ a: Assessment) -> String {
        var h = "<section id=\"comparison\">\n<h2>\(t(ReportText.comparison))</h2>\n"
        h += "<p>\(t(ReportText.previous)): <code>\(e(c.previousID))</code>, \(ReportText.date(c.previousGeneratedAt))</p>\n"
        h += "<table><thead><tr><th></th><th>\(t(ReportText.before))</th><th>\(t(ReportText.now))</th></tr></thead><tbody>\n"
        h += "<tr><th>\(t(ReportText.overallLevel))</th><td>\(e(ReportText.levelName(c.overallLevelBefore, language, catalog: catalog)))</td>"
        h += "<td>\(e(ReportText.levelName(a.overallLevel, language, catalog: catalog)))</td></tr>\n"
        for p in a.pillars {
            let before = c.pillarLevelsBefore[p.pillar.rawValue].map { ReportText.levelName($0, language, catalog: catalog) } ?? "–"
            h += "<tr><th>\(t(catalog.name(of: p.pillar)))</th><td>\(e(before))</td>"
            h += "<td>\(e(ReportText.levelName(p.level, language, catalog: catalog)))</td></tr>\n"
        }
        h += "</tbody></table>\n"
        if c.changes.isEmpty {
            h += "<p>\(t(ReportText.noChanges))</p>\n"
        } else {
            h += "<ul class=\"changes\">\n"
            for ch in c.changes {
                h += "<li data-change=\"\(e(ch.principleID))\"><a href=\"#principle-\(e(ch.principleID))\">\(e(ch.principleID))</a>: "
                h += "\(badge(ch.before)) → \(badge(ch.after))</li>\n"
            }
            h += "</ul>\n"
        }
        return h + "</section>\n"
    }

    func pillarSection(_ pillar: Pillar, _ a: Assessment) -> String {
        let level = a.pillars.first { $0.pillar == pillar }?.level ?? 0
        let mine = a.principles.filter { $0.pillar == pillar }
        var h = "<section class=\"pillar\" id=\"pillar-\(pillar.rawValue)\" data-pillar=\"\(pillar.rawValue)\" data-level=\"\(level)\">\n"
        h += "<h2>\(t(catalog.name(of: pillar))) — \(e(ReportText.levelName(level, language, catalog: catalog)))</h2>\n"
        h += pillarChart(pillar, mine)
        for r in mine { h += principle(r) }
        return h + "</section>\n"
    }

    func principle(_ r: PrincipleResult) -> String {
        let p = catalog.principle(r.principleID)
        let id = e(r.principleID)
        var h = "<article class=\"principle \(r.verdict.rawValue)\" id=\"principle-\(id)\" data-principle=\"\(id)\" "
        h += "data-verdict=\"\(r.verdict.rawValue)\" data-level=\"\(r.level)\">\n"
        h += "<h3><span class=\"pid\">\(id)</span> \(p.map { t($0.function) } ?? "") "
        h += "<span class=\"lvl\" title=\"\(e(ReportText.levelName(r.level, language, catalog: catalog)))\">\(e(ReportText.roman(r.level, catalog: catalog)))</span> "
        h += badge(r.verdict) + "</h3>\n"
        if let p { h += "<blockquote class=\"text\">\(t(p.text))</blockquote>\n" }
        h += "<p class=\"rationale\"><strong>\(t(ReportText.rationale))</strong>: \(t(r.rationale))</p>\n"
        if r.measurements.isEmpty {
            h += "<p class=\"measurements none\">\(t(ReportText.noMeasurements))</p>\n"
        } else {
            h += "<table class=\"measurements\"><thead><tr><th>\(t(ReportText.measurement))</th><th>\(t(ReportText.value))</th>"
            h += "<th>\(t(ReportText.query))</th></tr></thead><tbody>\n"
            for m in r.measurements {
                h += "<tr data-measurement=\"\(e(m.id))\"><td>\(t(m.label))</td><td class=\"num\">\(e(ReportText.value(m, language)))</td>"
                h += "<td><code class=\"query\">\(e(m.query))</code></td></tr>\n"
            }
            h += "</tbody></table>\n"
        }
        if !r.attestations.isEmpty {
            h += "<div class=\"attestations\"><h4>\(t(ReportText.attestations))</h4>\n"
            for s in r.attestations { h += attestation(s) }
            h += "</div>\n"
        }
        if let remedy = r.remedy { h += "<p class=\"remedy\"><strong>\(t(ReportText.remedy))</strong>: \(t(remedy))</p>\n" }
        return h + "</article>\n"
    }

    func attestation(_ s: AttestationStatus) -> String {
        let a = s.attestation
        var h = "<div class=\"attestation \(s.state.rawValue)\" data-attestation=\"\(e(a.id))\" data-state=\"\(s.state.rawValue)\">\n"
        h += "<p>\(e(a.statement)) <span class=\"state \(s.state.rawValue)\">\(t(ReportText.state(s.state)))</span></p>\n"
        h += "<p class=\"who\">\(t(ReportText.attestedBy)): \(e(a.attestedBy)) · \(t(ReportText.attestedAt)): \(ReportText.day(a.attestedAt)) · "
        h += "\(t(ReportText.expires)): \(ReportText.day(a.expiresAt))"
        if let r = a.revokedAt { h += " · \(t(ReportText.revoked)): \(ReportText.day(r))" }
        h += "</p>\n"
        if a.files.isEmpty {
            h += "<p class=\"files none\">\(t(ReportText.noFiles))</p>\n"
        } else {
            h += "<ul class=\"files\">\n"
            for f in a.files {
                h += "<li>\(e(f.name)) (\(f.size) \(t(ReportText.bytes))) <code class=\"sha256\">SHA-256 \(e(f.sha256))</code></li>\n"
            }
            h += "</ul>\n"
        }
        return h + "</div>\n"
    }

    func scenarios(_ a: Assessment) -> String {
        let names = Dictionary(a.routes.map { ($0.applicationID, $0.displayName) }, uniquingKeysWith: { x, _ in x })
        var h = "<section id=\"scenarios\">\n<h2>\(t(ReportText.scenarios))</h2>\n<p class=\"note\">\(t(ReportText.scenarioNote))</p>\n"
        for s in a.scenarios {
            let holding = s.principles.filter(\.holds).count
            h += "<div class=\"scenario\" data-scenario=\"\(e(s.scenarioID))\" data-holding=\"\(holding)\">\n"
            h += "<h3>\(t(s.name))</h3>\n"
            if s.routes.isEmpty {
                h += "<p class=\"note\">\(t(ReportText.noRoutes))</p>\n</div>\n"
                continue
            }
            h += "<p>\(t(ReportText.routes)): " + s.routes.map { "<span class=\"route\">\(e(names[$0] ?? $0))</span>" }.joined(separator: ", ") + "</p>\n"
            h += "<p>\(holding)/\(s.principles.count) \(t(ReportText.holdsCount))</p>\n<ul class=\"chips\">\n"
            for p in s.principles {
                var title = ReportText.holdsWord(p.holds).text(language)
                if !p.failingRoutes.isEmpty {
                    title += "; \(ReportText.failingOn.text(language)): " + p.failingRoutes.map { names[$0] ?? $0 }.joined(separator: ", ")
                }
                h += "<li class=\"\(p.holds ? "holds" : "fails")\" data-scenario-principle=\"\(e(p.principleID))\" title=\"\(e(title))\">\(e(p.principleID))</li>\n"
            }
            h += "</ul>\n</div>\n"
        }
        return h + "</section>\n"
    }

    func routes(_ a: Assessment) -> String {
        var h = "<section id=\"routes\">\n<h2>\(t(ReportText.routes))</h2>\n"
        guard !a.routes.isEmpty else { return h + "<p>\(t(ReportText.none))</p>\n</section>\n" }
        h += "<table><thead><tr><th>\(t(ReportText.application))</th><th>\(t(ReportText.address))</th><th>\(t(ReportText.classification))</th>"
        h += "<th>\(t(ReportText.scenarios))</th><th>\(t(ReportText.checks))</th></tr></thead><tbody>\n"
        for r in a.routes {
            h += "<tr data-route=\"\(e(r.applicationID))\"><td>\(e(r.displayName))<br><code>\(e(r.applicationID))</code></td>"
            h += "<td><code>\(e(r.host + r.pathPrefix))</code></td><td>\(e(r.classification))</td><td>"
            h += r.scenarios.isEmpty ? t(ReportText.none) : r.scenarios.map { t(ReportText.scenarioName($0, catalog: catalog)) }.joined(separator: "<br>")
            h += "</td><td>"
            h += r.checks.isEmpty ? t(ReportText.none) : r.checks.map {
                "<span class=\"\($0.holds ? "holds" : "fails")\">\(e($0.principleID)) \(t(ReportText.holdsWord($0.holds)))</span>: \(t($0.detail))"
            }.joined(separator: "<br>")
            h += "</td></tr>\n"
        }
        return h + "</tbody></table>\n</section>\n"
    }

    func roadmap(_ a: Assessment) -> String {
        var h = "<section id=\"roadmap\">\n<h2>\(t(ReportText.roadmap))</h2>\n<p class=\"note\">\(t(ReportText.roadmapNote))</p>\n"
        guard !a.roadmap.isEmpty else { return h + "<p>\(t(ReportText.noGaps))</p>\n</section>\n" }
        h += "<table><thead><tr><th>\(t(ReportText.rank))</th><th>\(t(ReportText.principle))</th><th>\(t(ReportText.pillar))</th>"
        h += "<th>\(t(ReportText.level))</th><th>\(t(ReportText.verdict))</th><th>\(t(ReportText.why))</th><th>\(t(ReportText.remedy))</th></tr></thead><tbody>\n"
        for item in a.roadmap {
            let fn = catalog.principle(item.principleID).map { t($0.function) } ?? ""
            h += "<tr data-roadmap=\"\(e(item.principleID))\"><td class=\"num\">\(item.rank)</td>"
            h += "<td><a href=\"#principle-\(e(item.principleID))\">\(e(item.principleID))</a> \(fn)</td>"
            h += "<td>\(t(catalog.name(of: item.pillar)))</td><td>\(e(ReportText.roman(item.level, catalog: catalog)))</td>"
            h += "<td>\(badge(item.verdict))</td><td>\(t(item.why))</td><td>\(item.remedy.map { t($0) } ?? "")</td></tr>\n"
        }
        return h + "</tbody></table>\n</section>\n"
    }

    func badge(_ v: Verdict) -> String { "<span class=\"badge \(v.rawValue)\">\(t(v.label))</span>" }

    // MARK: SVG

    /// The pillar × level heat map: a cell per pillar and level, coloured from
    /// red (none met) to green (all met), with "met/total"; the levels a
    /// pillar has reached are outlined, and its level is written at the end of the row.
    func heatMap(_ a: Assessment) -> String {
        let labelW = 200, cellW = 110, cellH = 44, top = 48, reachedW = 190
        let width = labelW + 4 * cellW + reachedW, height = top + Pillar.allCases.count * cellH + 8
        var s = "<svg id=\"heatmap\" class=\"heatmap\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(width) \(height)\" "
        s += "width=\"\(width)\" height=\"\(height)\" role=\"img\" aria-labelledby=\"heatmap-title\" font-size=\"14\">\n"
        s += "<title id=\"heatmap-title\">\(t(ReportText.heatMap))</title>\n"
        for l in 1...4 {
            let x = labelW + (l - 1) * cellW + cellW / 2
            let name = catalog.level(l).map { "\($0.roman) \($0.name.text(language))" } ?? "\(l)"
            s += "<text x=\"\(x)\" y=\"\(top - 16)\" text-anchor=\"middle\" font-weight=\"bold\">\(e(name))</text>\n"
        }
        s += "<text x=\"\(labelW + 4 * cellW + 14)\" y=\"\(top - 16)\" font-weight=\"bold\">\(t(ReportText.reached))</text>\n"
        for (row, pillar) in Pillar.allCases.enumerated() {
            let y = top + row * cellH
            let result = a.pillars.first { $0.pillar == pillar }
            let reached = result?.level ?? 0
            s += "<g class=\"heat-row\" data-pillar=\"\(pillar.rawValue)\" data-level=\"\(reached)\">\n"
            s += "<text x=\"\(labelW - 10)\" y=\"\(y + cellH / 2 + 5)\" text-anchor=\"end\">\(t(catalog.name(of: pillar)))</text>\n"
            for l in 1...4 {
                let tally = result?.perLevel.first { $0.level == l }
                let satisfied = tally?.satisfied ?? 0, total = tally?.total ?? 0
                let x = labelW + (l - 1) * cellW
                let fill = Self.heatColour(satisfied: satisfied, total: total)
                s += "<g class=\"heat-cell\" data-pillar=\"\(pillar.rawValue)\" data-level=\"\(l)\" data-satisfied=\"\(satisfied)\" "
                s += "data-total=\"\(total)\" data-reached=\"\(l <= reached)\">"
                s += "<rect x=\"\(x + 2)\" y=\"\(y + 2)\" width=\"\(cellW - 4)\" height=\"\(cellH - 4)\" rx=\"4\" fill=\"\(fill)\"/>"
                let label = total == 0 ? "–" : "\(satisfied)/\(total)"
                s += "<text x=\"\(x + cellW / 2)\" y=\"\(y + cellH / 2 + 5)\" text-anchor=\"middle\" fill=\"\(total == 0 ? "#555" : "#fff")\" "
                s += "font-weight=\"bold\">\(label)</text></g>\n"
            }
            if reached > 0 {
                s += "<rect class=\"reached\" x=\"\(labelW)\" y=\"\(y)\" width=\"\(reached * cellW)\" height=\"\(cellH)\" rx=\"6\" "
                s += "fill=\"none\" stroke=\"#1a237e\" stroke-width=\"4\"/>\n"
            }
            s += "<text x=\"\(labelW + 4 * cellW + 14)\" y=\"\(y + cellH / 2 + 5)\">\(e(ReportText.levelName(reached, language, catalog: catalog)))</text>\n"
            s += "</g>\n"
        }
        return s + "</svg>\n"
    }

    /// Red (0 %) through amber to green (100 %); grey when a level has no principle in the pillar.
    static func heatColour(satisfied: Int, total: Int) -> String {
        guard total > 0 else { return "#e0e0e0" }
        let ratio = Double(max(0, min(satisfied, total))) / Double(total)
        return "hsl(\(Int((ratio * 120).rounded())), 60%, 38%)"
    }

    static let verdictColours: [Verdict: String] = [
        .met: "#2e7d32", .partiallyMet: "#f9a825", .notMet: "#c62828", .notApplicable: "#78909c", .notMeasurable: "#6d4c41",
    ]

    /// A pillar's chart: per level, a bar of its principles split by verdict, with a legend.
    func pillarChart(_ pillar: Pillar, _ mine: [PrincipleResult]) -> String {
        let labelW = 120, unit = 60, barH = 22, gap = 8, top = 8
        let most = max(1, (1...4).map { l in mine.filter { $0.level == l }.count }.max() ?? 1)
        let width = labelW + most * unit + 60, legendY = top + 4 * (barH + gap) + 8
        let height = legendY + 26
        var s = "<svg class=\"pillar-chart\" data-pillar=\"\(pillar.rawValue)\" xmlns=\"http://www.w3.org/2000/svg\" "
        s += "viewBox=\"0 0 \(max(width, 640)) \(height)\" width=\"\(max(width, 640))\" height=\"\(height)\" role=\"img\" font-size=\"13\">\n"
        s += "<title>\(t(catalog.name(of: pillar))): \(t(ReportText.principles))</title>\n"
        for l in 1...4 {
            let y = top + (l - 1) * (barH + gap)
            let atLevel = mine.filter { $0.level == l }
            let name = catalog.level(l).map { "\($0.roman) \($0.name.text(language))" } ?? "\(l)"
            s += "<text x=\"0\" y=\"\(y + barH - 6)\">\(e(name))</text>\n"
            var x = labelW
            for v in Verdict.allCases {
                let n = atLevel.filter { $0.verdict == v }.count
                guard n > 0 else { continue }
                s += "<rect class=\"bar \(v.rawValue)\" data-level=\"\(l)\" data-verdict=\"\(v.rawValue)\" data-count=\"\(n)\" x=\"\(x)\" y=\"\(y)\" "
                s += "width=\"\(n * unit - 2)\" height=\"\(barH)\" fill=\"\(Self.verdictColours[v] ?? "#999")\"><title>\(t(v.label)): \(n)</title></rect>"
                s += "<text x=\"\(x + (n * unit) / 2)\" y=\"\(y + barH - 6)\" text-anchor=\"middle\" fill=\"#fff\">\(n)</text>\n"
                x += n * unit
            }
        }
        var lx = 0
        for v in Verdict.allCases {
            s += "<rect x=\"\(lx)\" y=\"\(legendY)\" width=\"12\" height=\"12\" fill=\"\(Self.verdictColours[v] ?? "#999")\"/>"
            s += "<text x=\"\(lx + 16)\" y=\"\(legendY + 11)\">\(t(v.label))</text>\n"
            lx += 128
        }
        return s + "</svg>\n"
    }

    // MARK: Escaping and style

    /// Text safe in HTML content and quoted attributes (and in inline SVG):
    /// the five markup characters become entities; C0/C1 control characters
    /// other than tab and line breaks (not allowed in HTML) become U+FFFD.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for u in s.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n", "\r": out.unicodeScalars.append(u)
            default:
                if u.value < 0x20 || (0x7F..<0xA0).contains(u.value) { out += "\u{FFFD}" } else { out.unicodeScalars.append(u) }
            }
        }
        return out
    }

    static let css = """
        :root { color-scheme: light; }
        body { font-family: "Noto Sans CJK TC", "Noto Sans TC", "PingFang TC", "Microsoft JhengHei", system-ui, sans-serif;
               margin: 2rem auto; max-width: 64rem; padding: 0 1rem; color: #1b1b1b; line-height: 1.5; }
        svg { font-family: inherit; max-width: 100%; height: auto; }
        h1 { font-size: 1.7rem; margin-bottom: .5rem; } h2 { border-bottom: 2px solid #1a237e; padding-bottom: .2rem; margin-top: 2rem; }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
        dl.facts dt { font-weight: bold; } dl.facts dd { margin: 0; }
        table { border-collapse: collapse; width: 100%; margin: .5rem 0; font-size: .92rem; }
        th, td { border: 1px solid #bbb; padding: .25rem .45rem; text-align: left; vertical-align: top; }
        td.num { text-align: right; white-space: nowrap; }
        .note { color: #444; font-size: .92rem; }
        article.principle { border: 1px solid #ccc; border-left: 6px solid #999; border-radius: 4px; padding: .4rem .9rem; margin: .9rem 0;
                            break-inside: avoid; }
        article.met { border-left-color: #2e7d32; } article.partially_met { border-left-color: #f9a825; }
        article.not_met { border-left-color: #c62828; } article.not_applicable { border-left-color: #78909c; }
        article.not_measurable_yet { border-left-color: #6d4c41; }
        article h3 { font-size: 1.05rem; margin: .3rem 0; } .pid { font-family: ui-monospace, monospace; }
        .lvl { border: 1px solid #555; border-radius: 3px; padding: 0 .3rem; font-size: .85rem; }
        blockquote.text { margin: .3rem 0; padding-left: .7rem; border-left: 3px solid #ddd; color: #333; }
        .badge { display: inline-block; border-radius: 3px; padding: 0 .4rem; color: #fff; font-size: .85rem; }
        .badge.met { background: #2e7d32; } .badge.partially_met { background: #f9a825; color: #000; } .badge.not_met { background: #c62828; }
        .badge.not_applicable { background: #78909c; } .badge.not_measurable_yet { background: #6d4c41; }
        code { font-family: ui-monospace, "Noto Sans Mono CJK TC", monospace; font-size: .85rem; white-space: pre-wrap; word-break: break-all; }
        .state.valid { color: #2e7d32; font-weight: bold; } .state.expired, .state.revoked { color: #c62828; font-weight: bold; }
        ul.chips { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .25rem; }
        ul.chips li { border-radius: 3px; padding: 0 .35rem; font-size: .85rem; font-family: ui-monospace, monospace; }
        li.holds, span.holds { background: #c8e6c9; } li.fails, span.fails { background: #ffcdd2; }
        footer { margin-top: 2rem; color: #555; font-size: .85rem; border-top: 1px solid #ccc; }
        @page { size: A4; margin: 14mm; }
        @media print {
          body { margin: 0; max-width: none; font-size: 10.5pt; }
          section.pillar, #scenarios, #roadmap { break-before: page; }
          a { color: inherit; text-decoration: none; }
          tr, figure, .scenario { break-inside: avoid; }
          * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
        }

        """
}
