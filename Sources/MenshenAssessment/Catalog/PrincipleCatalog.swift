import Foundation

/// Text in the guideline's two languages. zh-TW is authoritative; English is a
/// working translation.
public struct LocalizedText: Sendable, Equatable, Hashable, Codable {
    public var en: String
    public var zhTW: String
    public init(en: String, zhTW: String) { self.en = en; self.zhTW = zhTW }
    public func text(_ language: ReportLanguage) -> String { language == .zhTW ? zhTW : en }
    enum CodingKeys: String, CodingKey { case en, zhTW = "zh-TW" }
}

/// The languages reports are produced in.
public enum ReportLanguage: String, Sendable, CaseIterable, Codable {
    case en
    case zhTW = "zh-TW"
}

/// A guideline pillar.
public enum Pillar: String, Sendable, CaseIterable, Codable, Comparable {
    case identity, device, network, application, data
    public static func < (a: Pillar, b: Pillar) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// A maturity level: I Traditional, II Initial, III Advanced, IV Optimal.
public struct MaturityLevel: Sendable, Equatable, Codable {
    public var level: Int
    public var roman: String
    public var name: LocalizedText
    public var meaning: String
}

public struct PillarInfo: Sendable, Equatable, Codable {
    public var pillar: Pillar
    public var name: LocalizedText
}

/// One of the guideline's six high-risk scenarios (remote work, cloud access, …).
public struct HighRiskScenario: Sendable, Equatable, Codable {
    public var id: String
    public var name: LocalizedText
}

/// One of the 36 principles.
public struct Principle: Sendable, Equatable, Codable {
    /// "1.1" … "5.8": pillar number, then position.
    public var id: String
    public var pillar: Pillar
    public var function: LocalizedText
    /// 1…4.
    public var level: Int
    public var text: LocalizedText
    /// Measurable signals the catalog suggests (English; a design suggestion, not guideline text).
    public var suggestedEvidence: [String]
}

/// The guideline's catalog: levels, pillars, high-risk scenarios and principles.
public struct PrincipleCatalog: Sendable {
    public let source: LocalizedText
    public let issuer: String
    public let date: String
    public let levels: [MaturityLevel]
    public let pillars: [PillarInfo]
    public let scenarios: [HighRiskScenario]
    public let principles: [Principle]
    private let byID: [String: Int]

    /// The catalog compiled into this binary.
    public static let builtIn: PrincipleCatalog = {
        do { return try PrincipleCatalog(json: Data(embeddedJSON.utf8)) } catch {
            // The text is fixed at build time and checked by CatalogTests; a failure here is a build defect.
            preconditionFailure("the embedded principle catalog does not parse: \(error)")
        }
    }()

    public func principle(_ id: String) -> Principle? { byID[id].map { principles[$0] } }
    public func principles(of pillar: Pillar) -> [Principle] { principles.filter { $0.pillar == pillar } }
    public func name(of pillar: Pillar) -> LocalizedText {
        pillars.first { $0.pillar == pillar }?.name ?? LocalizedText(en: pillar.rawValue, zhTW: pillar.rawValue)
    }
    public func level(_ n: Int) -> MaturityLevel? { levels.first { $0.level == n } }

    /// Parses a catalog in the shape of `principles.json` (bounded: 1 MiB).
    public init(json: Data) throws {
        guard json.count <= 1 << 20 else { throw AssessmentError.catalog("the catalog is larger than 1 MiB") }
        let raw: RawCatalog
        do { raw = try JSONDecoder().decode(RawCatalog.self, from: json) } catch {
            throw AssessmentError.catalog("the catalog is not valid: \(error)")
        }
        source = LocalizedText(en: raw.source.title_en, zhTW: raw.source.title_zh)
        issuer = raw.source.issuer
        date = raw.source.date
        levels = raw.levels.map {
            MaturityLevel(level: $0.level, roman: $0.roman, name: LocalizedText(en: $0.name_en, zhTW: $0.name_zh), meaning: $0.meaning)
        }
        pillars = try raw.pillars.map {
            guard let p = Pillar(rawValue: $0.id) else { throw AssessmentError.catalog("unknown pillar \($0.id)") }
            return PillarInfo(pillar: p, name: LocalizedText(en: $0.name_en, zhTW: $0.name_zh))
        }
        scenarios = raw.high_risk_scenarios.map {
            HighRiskScenario(id: $0.id, name: LocalizedText(en: $0.description_en, zhTW: $0.name_zh))
        }
        principles = try raw.principles.map {
            guard let p = Pillar(rawValue: $0.pillar) else { throw AssessmentError.catalog("principle \($0.id): unknown pillar \($0.pillar)") }
            guard (1...4).contains($0.level) else { throw AssessmentError.catalog("principle \($0.id): level \($0.level) is not 1–4") }
            return Principle(id: $0.id, pillar: p, function: LocalizedText(en: $0.function_en, zhTW: $0.function_zh), level: $0.level,
                             text: LocalizedText(en: $0.text_en, zhTW: $0.text_zh), suggestedEvidence: $0.evidence)
        }
        var byID: [String: Int] = [:]
        for (i, p) in principles.enumerated() {
            guard byID.updateValue(i, forKey: p.id) == nil else { throw AssessmentError.catalog("principle \(p.id) appears twice") }
        }
        self.byID = byID
    }

    private struct RawCatalog: Decodable {
        struct Source: Decodable { var title_zh: String; var title_en: String; var issuer: String; var date: String }
        struct Level: Decodable { var level: Int; var roman: String; var name_zh: String; var name_en: String; var meaning: String }
        struct PillarRaw: Decodable { var id: String; var name_zh: String; var name_en: String }
        struct Scenario: Decodable { var id: String; var name_zh: String; var description_en: String }
        struct PrincipleRaw: Decodable {
            var id: String; var pillar: String; var function_zh: String; var function_en: String; var level: Int
            var text_zh: String; var text_en: String; var evidence: [String]
        }
        var source: Source
        var levels: [Level]
        var pillars: [PillarRaw]
        var high_risk_scenarios: [Scenario]
        var principles: [PrincipleRaw]
    }
}
