import Foundation

/// The fixed wording of the reports in both languages, and the formatting of
/// values, levels and dates that every renderer shares (so the HTML, Markdown
/// and CSV reports say the same thing the same way).
///
/// Written by hand: Foundation's formatters depend on the host's locale data,
/// and a regulator's report must read the same on every machine.
enum ReportText {
    static let title = LocalizedText(en: "Zero Trust maturity assessment", zhTW: "零信任成熟度評估報告")
    static let organisation = LocalizedText(en: "Organisation", zhTW: "機構")
    static let generated = LocalizedText(en: "Generated", zhTW: "產生時間")
    static let window = LocalizedText(en: "Evidence window", zhTW: "證據期間")
    static let producer = LocalizedText(en: "Produced by", zhTW: "產生者")
    static let assessmentID = LocalizedText(en: "Assessment", zhTW: "評估編號")
    static let guideline = LocalizedText(en: "Guideline", zhTW: "指引")
    static let translationNote = LocalizedText(
        en: "The zh-TW text of the guideline is authoritative; the English text is a working translation.",
        zhTW: "指引以中文（繁體）原文為準；英文為工作翻譯。")
    static let scoringNote = LocalizedText(
        en: "A pillar reaches Level L when every principle of level L or lower in it is met (or not applicable). "
            + "A principle Menshen cannot measure yet, and no valid attestation covers, counts as not met: the report never claims a level its evidence does not support.",
        zhTW: "支柱達到第 L 級，須其中所有第 L 級（含）以下之原則皆符合（或不適用）。"
            + "Menshen 尚無法量測且無有效聲明涵蓋的原則，視為不符合：報告不會宣稱證據不足以支持的等級。")
    static let summary = LocalizedText(en: "Summary", zhTW: "摘要")
    static let overallLevel = LocalizedText(en: "Overall stage", zhTW: "整體成熟度")
    static let pillar = LocalizedText(en: "Pillar", zhTW: "支柱")
    static let level = LocalizedText(en: "Level", zhTW: "等級")
    static let reached = LocalizedText(en: "Level reached", zhTW: "已達等級")
    static let heatMap = LocalizedText(en: "Principles met, by pillar and level", zhTW: "各支柱與等級之原則符合情形")
    static let heatMapLegend = LocalizedText(
        en: "Each cell: principles met (or not applicable) / principles of that pillar and level. The outlined cells are the levels the pillar has reached.",
        zhTW: "每格：符合（或不適用）之原則數／該支柱該等級之原則數。加框者為該支柱已達之等級。")
    static let principles = LocalizedText(en: "Principles", zhTW: "原則")
    static let principle = LocalizedText(en: "Principle", zhTW: "原則")
    static let function = LocalizedText(en: "Function", zhTW: "功能")
    static let verdict = LocalizedText(en: "Verdict", zhTW: "評定")
    static let rationale = LocalizedText(en: "Rationale", zhTW: "理由")
    static let measurements = LocalizedText(en: "Measurements", zhTW: "量測")
    static let measurement = LocalizedText(en: "Measurement", zhTW: "量測項目")
    static let value = LocalizedText(en: "Value", zhTW: "數值")
    static let query = LocalizedText(en: "Query", zhTW: "查詢方式")
    static let noMeasurements = LocalizedText(en: "No measurement.", zhTW: "無量測。")
    static let attestations = LocalizedText(en: "Attestations", zhTW: "聲明")
    static let attestedBy = LocalizedText(en: "Attested by", zhTW: "聲明人")
    static let attestedAt = LocalizedText(en: "Attested", zhTW: "聲明日期")
    static let expires = LocalizedText(en: "Expires", zhTW: "到期")
    static let revoked = LocalizedText(en: "Revoked", zhTW: "撤銷")
    static let files = LocalizedText(en: "Evidence files", zhTW: "佐證檔案")
    static let noFiles = LocalizedText(en: "no file attached", zhTW: "未附檔案")
    static let bytes = LocalizedText(en: "bytes", zhTW: "位元組")
    static let remedy = LocalizedText(en: "To improve", zhTW: "改善建議")
    static let scenarios = LocalizedText(en: "High-risk scenarios", zhTW: "高風險場景")
    static let scenarioNote = LocalizedText(
        en: "For each scenario: the protected applications tagged with it, and the principles that hold for them (met deployment-wide, and no route check of the principle fails on those applications).",
        zhTW: "各場景：標記該場景之受保護應用，以及對其成立之原則（全域符合，且該原則於這些應用之路由檢查皆未失敗）。")
    static let noRoutes = LocalizedText(en: "No protected application is tagged with this scenario: no principle can be shown to hold for it.",
                                        zhTW: "尚無受保護應用標記此場景：無法顯示任何原則對其成立。")
    static let holds = LocalizedText(en: "holds", zhTW: "成立")
    static let doesNotHold = LocalizedText(en: "does not hold", zhTW: "未成立")
    static let failingOn = LocalizedText(en: "fails on", zhTW: "未通過之應用")
    static let holdsCount = LocalizedText(en: "principles hold", zhTW: "項原則成立")
    static let routes = LocalizedText(en: "Protected applications", zhTW: "受保護應用")
    static let application = LocalizedText(en: "Application", zhTW: "應用")
    static let address = LocalizedText(en: "Address", zhTW: "位址")
    static let classification = LocalizedText(en: "Classification", zhTW: "資料分級")
    static let checks = LocalizedText(en: "Route checks", zhTW: "路由檢查")
    static let none = LocalizedText(en: "none", zhTW: "無")
    static let roadmap = LocalizedText(en: "Roadmap", zhTW: "改善路徑")
    static let roadmapNote = LocalizedText(
        en: "The gaps, in the order the guideline advises closing them: lower levels first; within a level, gaps that touch high-risk scenarios first, then those closest to done.",
        zhTW: "待補強項目，依指引建議之順序：先低等級；同等級中，先涉及高風險場景者，再依接近完成程度。")
    static let noGaps = LocalizedText(en: "No gap: every principle is met or not applicable.", zhTW: "無待補強項目：所有原則皆符合或不適用。")
    static let rank = LocalizedText(en: "#", zhTW: "順序")
    static let why = LocalizedText(en: "Why now", zhTW: "排序理由")
    static let comparison = LocalizedText(en: "Change since the previous assessment", zhTW: "與前次評估之比較")
    static let previous = LocalizedText(en: "Previous assessment", zhTW: "前次評估")
    static let before = LocalizedText(en: "Before", zhTW: "前次")
    static let now = LocalizedText(en: "Now", zhTW: "本次")
    static let noChanges = LocalizedText(en: "No principle changed its verdict.", zhTW: "無原則之評定有所變動。")
    static let gaps = LocalizedText(en: "gaps", zhTW: "項待補強")
    static let noValue = LocalizedText(en: "no value (empty population)", zhTW: "無數值（母體為空）")
    static let yes = LocalizedText(en: "yes", zhTW: "是")
    static let no = LocalizedText(en: "no", zhTW: "否")
    static let days = LocalizedText(en: "days", zhTW: "天")
    static let seconds = LocalizedText(en: "s", zhTW: "秒")

    /// "Level Ⅱ (Initial)" / "第Ⅱ級（起始）"; 0 is "below Level Ⅰ".
    static func levelName(_ level: Int, _ lang: ReportLanguage, catalog: PrincipleCatalog) -> String {
        guard let l = catalog.level(level) else {
            return level <= 0 ? (lang == .en ? "Below Level Ⅰ" : "未達第Ⅰ級") : "\(level)"
        }
        return lang == .en ? "Level \(l.roman) (\(l.name.en))" : "第\(l.roman)級（\(l.name.zhTW)）"
    }

    /// The roman numeral of a level ("Ⅰ" … "Ⅳ"; "0" below Level I).
    static func roman(_ level: Int, catalog: PrincipleCatalog) -> String { catalog.level(level)?.roman ?? "0" }

    /// A measurement's value as a reader sees it: "87.5 % (7/8)", "12", "yes".
    static func value(_ m: Measurement, _ lang: ReportLanguage) -> String {
        guard let v = m.value else {
            if let n = m.numerator, let d = m.denominator { return "\(noValue.text(lang)) (\(n)/\(d))" }
            return noValue.text(lang)
        }
        guard v.isFinite else { return noValue.text(lang) }
        switch m.unit {
        case .ratio:
            let pct = number(v * 100)
            if let n = m.numerator, let d = m.denominator { return "\(pct) % (\(n)/\(d))" }
            return "\(pct) %"
        case .count: return number(v)
        case .seconds: return "\(number(v)) \(seconds.text(lang))"
        case .days: return "\(number(v)) \(days.text(lang))"
        case .boolean: return (v != 0 ? yes : no).text(lang)
        case .level: return lang == .en ? "Level \(number(v))" : "第 \(number(v)) 級"
        }
    }

    /// A number with at most one decimal, without trailing ".0".
    static func number(_ v: Double) -> String {
        guard v.isFinite else { return "–" }
        let rounded = (v * 10).rounded() / 10
        if rounded == rounded.rounded(), abs(rounded) < 1e15 { return String(Int64(rounded)) }
        return String(format: "%.1f", rounded)
    }

    /// "2026-11-26 17:14 UTC": fixed calendar and zone, whatever the host's locale.
    static func date(_ d: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: d)
        return String(format: "%04d-%02d-%02d %02d:%02d UTC", c.year ?? 0, c.month ?? 0, c.day ?? 0, c.hour ?? 0, c.minute ?? 0)
    }

    /// "2026-11-26": the day only (expiry dates).
    static func day(_ d: Date) -> String { String(date(d).prefix(10)) }

    static func state(_ s: Attestation.State) -> LocalizedText {
        switch s {
        case .valid: LocalizedText(en: "valid", zhTW: "有效")
        case .expired: LocalizedText(en: "expired", zhTW: "已過期")
        case .revoked: LocalizedText(en: "revoked", zhTW: "已撤銷")
        }
    }

    /// "yes" / "no" words for the scenario view.
    static func holdsWord(_ holds: Bool) -> LocalizedText { holds ? Self.holds : Self.doesNotHold }

    /// A scenario's name, from the catalog (the view carries it too).
    static func scenarioName(_ id: String, catalog: PrincipleCatalog) -> LocalizedText {
        catalog.scenarios.first { $0.id == id }?.name ?? LocalizedText(en: id, zhTW: id)
    }
}
