import Foundation
import Testing
@testable import MenshenAssessment

@Suite("Report renderers: JSON, Markdown, CSV and HTML with the SVG heat map")
struct ReportRenderTests {
    static let now = Date(timeIntervalSince1970: 1_795_000_000)
    static let hostile = "<script>alert(1)</script> & \"quotes\" 'single' [link](http://evil.example) `tick` | pipe"
    static let formula = "=HYPERLINK(\"http://evil.example\",\"x\")"

    /// An assessment with a spread of verdicts, hostile text in a rationale, a route name and an attestation,
    /// measurements with queries, and (optionally) a previous assessment to compare with.
    static func assessment(previous: Assessment? = nil, verdicts override: [String: Verdict] = [:]) -> Assessment {
        var evaluations: [String: PrincipleEvaluation] = [:]
        let verdicts: [String: Verdict] = ["1.1": .met, "1.3": .met, "1.4": .met, "1.2": .partiallyMet, "1.5": .notMet,
                                           "2.1": .met, "2.3": .notApplicable, "3.4": .notMet, "4.1": .met, "5.6": .met]
            .merging(override) { _, n in n }
        for (id, v) in verdicts {
            evaluations[id] = PrincipleEvaluation(
                verdict: v,
                rationale: LocalizedText(en: "English rationale for \(id)", zhTW: "中文理由 \(id)"),
                measurements: [.ratio("users_with_mfa", LocalizedText(en: "Users with MFA", zhTW: "具多因子之使用者"), 7, of: 8,
                                      query: "SELECT count(*) FROM users u WHERE EXISTS (SELECT 1 FROM authenticators a WHERE a.user_id = u.id)")],
                remedy: LocalizedText(en: "Enrol the rest", zhTW: "完成其餘註冊"))
        }
        evaluations["1.2"]?.rationale = LocalizedText(en: hostile, zhTW: hostile)
        evaluations["1.5"]?.rationale = LocalizedText(en: formula, zhTW: formula)
        evaluations["3.4"]?.measurements.append(.count("routes_tls", LocalizedText(en: "Routes, TLS", zhTW: "路由 TLS"), 3,
                                                       query: "routes with ``` fences and <b>tags</b>"))
        evaluations["3.4"]?.measurements.append(.ratio("empty", LocalizedText(en: "Empty population", zhTW: "空母體"), 0, of: 0, query: "none"))
        let route = RouteAssessment(applicationID: "core", displayName: "Core \"><img src=x onerror=alert(1)>", host: "core.bank.example",
                                    pathPrefix: "/", classification: "confidential", scenarios: ["remote-work"],
                                    checks: [RouteCheck(principleID: "3.4", holds: false, detail: LocalizedText(en: "upstream is http", zhTW: "上游為 http"))])
        let attestation = Attestation(id: "att-1", principleID: "4.4", statement: "Penetration test <2026>", attestedBy: "CISO 王小明",
                                      attestedAt: now.addingTimeInterval(-400 * 86_400), expiresAt: now.addingTimeInterval(-35 * 86_400),
                                      files: [.init(name: "pentest-report.pdf", sha256: String(repeating: "ab", count: 32), size: 123_456)])
        return AssessmentBuilder().build(.init(
            id: "a-2", generatedAt: now, windowStart: now.addingTimeInterval(-30 * 86_400), organisation: "Example Bank 範例銀行",
            producer: "menshen test", evaluations: evaluations, routes: [route], attestations: [attestation], previous: previous))
    }

    static func html(_ a: Assessment, _ l: ReportLanguage) throws -> String {
        String(decoding: try AssessmentReport(language: l).render(a, format: .html), as: UTF8.self)
    }

    static func matches(_ pattern: String, in text: String) throws -> [[String]] {
        let re = try NSRegularExpression(pattern: pattern)
        return re.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { m in
            (0..<m.numberOfRanges).map { i in Range(m.range(at: i), in: text).map { String(text[$0]) } ?? "" }
        }
    }

    @Test("JSON: sorted keys, ISO 8601 dates, both languages; it decodes back to the same assessment")
    func json() throws {
        let a = Self.assessment()
        let data = try AssessmentReport.json(a)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"generatedAt\" : \"2026-11-18T11:06:40Z\""))
        #expect(text.contains("\"zh-TW\" : \"中文理由 1.1\""))
        #expect(text.range(of: "\"generatedAt\"")!.lowerBound < text.range(of: "\"id\"")!.lowerBound, "keys are sorted")
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        #expect(try decoder.decode(Assessment.self, from: data) == a)
        // The language does not change the JSON: both are in it.
        #expect(try AssessmentReport(language: .en).render(a, format: .json) == data)
    }

    @Test("JSON: a measurement that is not a finite number is refused with a clear error, not written")
    func jsonRefusesNaN() {
        var a = Self.assessment()
        a.principles[0].measurements = [Measurement(id: "x", label: .init(en: "x", zhTW: "x"), value: .nan, unit: .count, query: "q")]
        #expect(throws: AssessmentError.self) { try AssessmentReport.json(a) }
    }

    @Test("HTML: self-contained, lang set, all 36 principles once each, hostile text escaped everywhere", arguments: ReportLanguage.allCases)
    func htmlStructure(_ language: ReportLanguage) throws {
        let a = Self.assessment()
        let h = try Self.html(a, language)
        #expect(h.hasPrefix("<!DOCTYPE html>\n<html lang=\"\(language.rawValue)\">"))
        let ids = try Self.matches("<article class=\"principle [a-z_]+\" id=\"principle-([0-9.]+)\" data-principle=\"([0-9.]+)\" data-verdict=\"([a-z_]+)\"", in: h)
        #expect(ids.map { $0[2] } == PrincipleCatalog.builtIn.principles.map(\.id))
        for m in ids { #expect(m[3] == a.result(m[2])?.verdict.rawValue) }
        // Nothing is fetched and nothing runs: no script, no external reference (the SVG namespace is a name, not a fetch).
        #expect(!h.lowercased().contains("<script"))
        #expect(!h.contains("<img"))
        // No tag has an attribute that loads something (attribute values are skipped whole: they are escaped).
        #expect(try Self.matches(#"<[a-zA-Z][a-zA-Z0-9-]*(\s+[a-zA-Z:-]+(="[^"]*")?)*\s+(src|srcset|data|action|formaction|background|poster)="#, in: h).isEmpty)
        #expect(!h.contains("url("))
        #expect(!h.contains("@import"))
        #expect(try Self.matches("href=\"(?!#)", in: h).isEmpty)
        // The hostile strings appear, escaped.
        #expect(h.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot; &#39;single&#39;"))
        #expect(h.contains("Core &quot;&gt;&lt;img src=x onerror=alert(1)&gt;"))
        #expect(h.contains("Penetration test &lt;2026&gt;"))
        #expect(h.contains("routes with ``` fences and &lt;b&gt;tags&lt;/b&gt;"))
        #expect(h.contains("id=\"heatmap\""))
        #expect(h.contains("@media print"))
        #expect(try Self.matches("<section class=\"pillar\" id=\"pillar-", in: h).count == 5)
        #expect(try Self.matches("<svg class=\"pillar-chart\"", in: h).count == 5)
    }

    @Test("HTML: the control characters HTML forbids become U+FFFD")
    func htmlControlCharacters() {
        #expect(HTMLReport.escape("a\u{0}b\u{1B}c\u{85}d\te\nf") == "a\u{FFFD}b\u{FFFD}c\u{FFFD}d\te\nf")
    }

    @Test("HTML: the heat map's cells carry the pillar tallies, and the outlined (reached) cells are the pillar's levels")
    func heatMapMatchesTallies() throws {
        let cases = [Self.assessment(),
                     Self.assessment(verdicts: Dictionary(uniqueKeysWithValues: PrincipleCatalog.builtIn.principles.map { ($0.id, Verdict.met) })
                        .merging(["1.6": .notMet, "5.5": .partiallyMet, "3.7": .notMeasurable]) { _, n in n })]
        for a in cases {
            let h = try Self.html(a, .zhTW)
            let cells = try Self.matches(
                "class=\"heat-cell\" data-pillar=\"([a-z]+)\" data-level=\"([1-4])\" data-satisfied=\"([0-9]+)\" data-total=\"([0-9]+)\" data-reached=\"(true|false)\"><rect [^>]* fill=\"([^\"]+)\"/><text [^>]*>([^<]+)</text>",
                in: h)
            #expect(cells.count == 20)
            for c in cells {
                let pillar = try #require(a.pillars.first { $0.pillar.rawValue == c[1] })
                let tally = try #require(pillar.perLevel.first { String($0.level) == c[2] })
                #expect(c[3] == String(tally.satisfied) && c[4] == String(tally.total), "\(c[1]) level \(c[2])")
                #expect(c[5] == String(tally.level <= pillar.level), "\(c[1]) level \(c[2]) reached")
                #expect(c[7] == (tally.total == 0 ? "–" : "\(tally.satisfied)/\(tally.total)"))
                #expect(c[6] == HTMLReport.heatColour(satisfied: tally.satisfied, total: tally.total))
            }
            let rows = try Self.matches("<g class=\"heat-row\" data-pillar=\"([a-z]+)\" data-level=\"([0-4])\"", in: h)
            #expect(rows.map { "\($0[1])=\($0[2])" } == a.pillars.map { "\($0.pillar.rawValue)=\($0.level)" })
            #expect(h.contains("data-overall-level=\"\(a.overallLevel)\""))
        }
        #expect(HTMLReport.heatColour(satisfied: 0, total: 3) == "hsl(0, 60%, 38%)")
        #expect(HTMLReport.heatColour(satisfied: 3, total: 3) == "hsl(120, 60%, 38%)")
    }

    @Test("HTML: zh-TW uses the catalog's zh-TW texts and Chinese wording; en the English ones")
    func htmlLanguages() throws {
        let a = Self.assessment()
        let p = try #require(PrincipleCatalog.builtIn.principle("1.1"))
        let zh = try Self.html(a, .zhTW), en = try Self.html(a, .en)
        #expect(zh.contains(HTMLReport.escape(p.text.zhTW)) && !zh.contains(HTMLReport.escape(p.text.en)))
        #expect(en.contains(HTMLReport.escape(p.text.en)) && !en.contains(HTMLReport.escape(p.text.zhTW)))
        #expect(zh.contains("零信任成熟度評估報告") && zh.contains("中文理由 1.1") && zh.contains("部分符合"))
        #expect(en.contains("Zero Trust maturity assessment") && en.contains("English rationale for 1.1") && en.contains("Partially met"))
        #expect(zh.contains("87.5 % (7/8)") && zh.contains("無數值（母體為空） (0/0)"))
        // The expired attestation shows as expired, with who attested it and the evidence file's hash.
        #expect(zh.contains("data-state=\"expired\"") && zh.contains("已過期") && zh.contains("CISO 王小明"))
        #expect(en.contains("SHA-256 " + String(repeating: "ab", count: 32)) && en.contains(">expired<"))
    }

    @Test("HTML and Markdown: the comparison section appears only when there is a previous assessment")
    func comparisonOnlyWhenPresent() throws {
        let first = Self.assessment(verdicts: ["1.1": .notMet])
        let alone = try Self.html(first, .en)
        #expect(!alone.contains("id=\"comparison\""))
        let md = String(decoding: try AssessmentReport(language: .en).render(first, format: .md), as: UTF8.self)
        #expect(!md.contains("Change since the previous assessment"))

        var prev = first; prev.id = "previous-1"
        let second = Self.assessment(previous: prev)
        let h = try Self.html(second, .en)
        #expect(h.contains("id=\"comparison\"") && h.contains("previous-1"))
        #expect(h.contains("data-change=\"1.1\""))
        let md2 = String(decoding: try AssessmentReport(language: .zhTW).render(second, format: .md), as: UTF8.self)
        #expect(md2.contains("與前次評估之比較") && md2.contains("- 1.1: 不符合 → 符合"))
    }

    /// A strict RFC 4180 reader for the test (fields, quoted fields with doubled quotes, CRLF records).
    static func parseCSV(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = "", quoted = false
        var chars = Array(text.unicodeScalars)[...]
        while let c = chars.popFirst() {
            if quoted {
                if c == "\"" {
                    if chars.first == "\"" { field.unicodeScalars.append("\""); chars.removeFirst() } else { quoted = false }
                } else { field.unicodeScalars.append(c) }
            } else if c == "\"" { quoted = true }
            else if c == "," { row.append(field); field = "" }
            else if c == "\r", chars.first == "\n" { chars.removeFirst(); row.append(field); rows.append(row); row = []; field = "" }
            else { field.unicodeScalars.append(c) }
        }
        return rows
    }

    @Test("CSV: one row per principle, RFC 4180 quoting, UTF-8 with a BOM, formula cells neutralised", arguments: ReportLanguage.allCases)
    func csv(_ language: ReportLanguage) throws {
        let a = Self.assessment()
        let data = try AssessmentReport(language: language).render(a, format: .csv)
        var text = String(decoding: data, as: UTF8.self)
        #expect(text.hasPrefix("\u{FEFF}"))
        text.removeFirst()
        let rows = Self.parseCSV(text)
        #expect(rows.count == 37)
        #expect(rows.allSatisfy { $0.count == CSVReport.header.count })
        #expect(rows[0] == CSVReport.header)
        #expect(rows.dropFirst().map { $0[0] } == PrincipleCatalog.builtIn.principles.map(\.id))
        let byID = Dictionary(uniqueKeysWithValues: rows.dropFirst().map { ($0[0], $0) })
        #expect(byID["1.2"]?[7] == Self.hostile, "quotes, commas and pipes survive the round trip")
        #expect(byID["1.5"]?[7] == "'" + Self.formula, "a formula gets a leading apostrophe")
        #expect(byID["1.1"]?[5] == "met")
        #expect(byID["1.1"]?[6] == (language == .en ? "Met" : "符合"))
        #expect(byID["1.1"]?[8].contains("87.5 % (7/8)") == true)
        #expect(byID["1.1"]?[8].contains("SELECT count(*) FROM users") == true)
        #expect(byID["4.4"]?[9].contains(String(repeating: "ab", count: 32)) == true)
        #expect(byID["3.4"]?[12] == a.roadmap.first { $0.principleID == "3.4" }.map { String($0.rank) })
        #expect(!text.contains("\n\n"))
    }

    @Test("CSV fields: every formula trigger is guarded; quoting only when needed", arguments: [
        ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
        ("\rx", "\"'\rx\""), ("a,b", "\"a,b\""), ("say \"hi\"", "\"say \"\"hi\"\"\""), ("line\r\nbreak", "\"line\r\nbreak\""),
        ("plain 中文", "plain 中文"), ("=a,\"b\"", "\"'=a,\"\"b\"\"\""),
    ])
    func csvField(_ pair: (String, String)) {
        #expect(CSVReport.field(pair.0) == pair.1)
    }

    @Test("Markdown: both languages, measurements with their queries fenced, hostile text escaped")
    func markdown() throws {
        let a = Self.assessment()
        let en = String(decoding: try AssessmentReport(language: .en).render(a, format: .md), as: UTF8.self)
        let zh = String(decoding: try AssessmentReport(language: .zhTW).render(a, format: .md), as: UTF8.self)
        #expect(en.hasPrefix("# Zero Trust maturity assessment — Example Bank 範例銀行"))
        #expect(zh.hasPrefix("# 零信任成熟度評估報告 — Example Bank 範例銀行"))
        for id in PrincipleCatalog.builtIn.principles.map(\.id) { #expect(en.contains("\n### \(id) "), "principle \(id)") }
        #expect(!en.contains("<script>") && en.contains("\\<script\\>alert\\(1\\)\\</script\\>"))
        #expect(!en.contains("[link](http") && en.contains("\\[link\\]\\(http://evil.example\\)"))
        #expect(en.contains("Core \"\\>\\<img src\\=x onerror\\=alert\\(1\\)\\>"))
        // A query containing ``` is fenced with four backticks, so it cannot close its block.
        #expect(en.contains("  ````text\n  routes with ``` fences and <b>tags</b>\n  ````"))
        #expect(en.contains("  ```text\n  SELECT count(*) FROM users"))
        // Table rows are not broken by a pipe in the text.
        for line in en.split(separator: "\n") where line.hasPrefix("| ") {
            #expect(line.replacingOccurrences(of: "\\|", with: "").filter { $0 == "|" }.count >= 3)
        }
        #expect(MarkdownReport.inline("a\nb\u{7}c|d") == "a bc\\|d")
    }
}
