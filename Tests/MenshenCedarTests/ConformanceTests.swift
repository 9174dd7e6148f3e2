import Foundation
import Testing
@testable import MenshenCedarConformance

@Suite("Conformance")
struct ConformanceTests {
    @Test("The hand-written cedar-integration-tests pass with no mismatches")
    func handWritten() {
        let dir = "/work/shared/conformance/cedar/tests"
        guard FileManager.default.fileExists(atPath: dir) else { return }
        let result = ConformanceRunner.withSchema().run(paths: [dir])
        #expect(result.mismatches.isEmpty, "\(result.mismatches.prefix(10))")
        #expect(result.failed == 0)
        #expect(result.passed == 52 + 17)  // requests plus shouldValidate checks
        #expect(result.summary == "69 passed, 0 failed")
    }

    @Test("A missing test file is reported as a failure, not a crash")
    func missingFile() {
        let result = ConformanceRunner.withSchema().run(paths: ["/nonexistent/test.json"])
        #expect(result.failed == 1)
        #expect(result.passed == 0)
    }
}
