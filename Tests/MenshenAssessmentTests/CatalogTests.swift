import Foundation
import Testing
@testable import MenshenAssessment

@Suite struct CatalogTests {
    /// The catalog compiled into the binary is the shared guideline catalog, byte for byte
    /// (regenerate with scripts/embed-catalog when it changes).
    @Test func embeddedCatalogIsTheSharedOne() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../shared/guideline/principles.json").standardizedFileURL
        let shared = try String(contentsOf: url, encoding: .utf8)
        #expect(PrincipleCatalog.embeddedJSON == shared.trimmingCharacters(in: .newlines))
    }

    @Test func builtInCatalogHasThe36PrinciplesInBothLanguages() {
        let c = PrincipleCatalog.builtIn
        #expect(c.principles.count == 36)
        #expect(c.scenarios.count == 6)
        #expect(c.levels.map(\.level) == [1, 2, 3, 4])
        #expect(Set(c.principles.map(\.pillar)) == Set(Pillar.allCases))
        for p in c.principles {
            #expect(!p.text.zhTW.isEmpty && !p.text.en.isEmpty, "principle \(p.id)")
            #expect(p.text.zhTW.unicodeScalars.contains { $0.value >= 0x4E00 && $0.value <= 0x9FFF }, "principle \(p.id) zh-TW text has CJK")
        }
        #expect(c.principle("1.2")?.level == 2)
        #expect(c.principle("5.8")?.pillar == .data)
        #expect(c.principle("9.9") == nil)
        // Every pillar has a Level I principle, so Level I is reachable and a gap there caps the pillar at 0.
        for pillar in Pillar.allCases { #expect(c.principles(of: pillar).contains { $0.level == 1 }, "\(pillar)") }
    }

    @Test func malformedCatalogsAreRefusedWithAMessage() {
        #expect(throws: AssessmentError.self) { try PrincipleCatalog(json: Data("{".utf8)) }
        #expect(throws: AssessmentError.self) { try PrincipleCatalog(json: Data(count: (1 << 20) + 1)) }
        var text = PrincipleCatalog.embeddedJSON
        text = text.replacingOccurrences(of: "\"pillar\": \"data\"", with: "\"pillar\": \"finance\"")
        #expect(throws: AssessmentError.catalog("principle 5.1: unknown pillar finance")) { try PrincipleCatalog(json: Data(text.utf8)) }
    }
}
