import Foundation

/// The formats an ``Assessment`` is rendered in without any outside tool.
/// (PDF is the HTML report printed by headless Chromium: the command line does that.)
public enum ReportFormat: String, Sendable, CaseIterable {
    /// The whole assessment as data, both languages; shape in `docs/assessment.schema.json`.
    case json
    /// A readable text report (CommonMark with GitHub tables).
    case md
    /// One row per principle, for a spreadsheet (RFC 4180, UTF-8 with a byte-order mark).
    case csv
    /// The self-contained, printable report with the SVG heat map and charts.
    case html
}

/// Renders an ``Assessment`` into one of the ``ReportFormat``s. Pure: the
/// caller writes the bytes wherever they go.
public struct AssessmentReport: Sendable {
    public let language: ReportLanguage
    public let catalog: PrincipleCatalog

    public init(language: ReportLanguage, catalog: PrincipleCatalog = .builtIn) {
        self.language = language
        self.catalog = catalog
    }

    /// The report's bytes (UTF-8). Throws ``AssessmentError/render(_:)`` when
    /// the assessment cannot be represented (e.g. a measurement that is not a
    /// finite number in JSON).
    public func render(_ assessment: Assessment, format: ReportFormat) throws -> Data {
        switch format {
        case .json: return try Self.json(assessment)
        case .md: return Data(MarkdownReport(language: language, catalog: catalog).render(assessment).utf8)
        case .csv: return Data(CSVReport(language: language, catalog: catalog).render(assessment).utf8)
        case .html: return Data(HTMLReport(language: language, catalog: catalog).render(assessment).utf8)
        }
    }

    /// The JSON document: sorted keys, ISO 8601 dates (UTC, whole seconds),
    /// pretty-printed, slashes unescaped. Both languages are in it, so it does
    /// not depend on ``language``.
    public static func json(_ assessment: Assessment) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        do {
            var data = try encoder.encode(assessment)
            data.append(0x0A)
            return data
        } catch {
            throw AssessmentError.render("the assessment cannot be written as JSON: \(error)")
        }
    }
}
