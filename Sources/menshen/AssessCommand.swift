import ArgumentParser
import Foundation
import MenshenAssessment
import MenshenServer

/// `menshen assess`: the maturity assessment against the guideline's 36
/// principles. This minimal form writes the signed evidence pack
/// (`--evidence-pack FILE`); the pack logic is EvidencePackAssembler's.
struct AssessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assess", abstract: "Measure the deployment against the FSC guideline's 36 principles; write and verify evidence packs.",
        subcommands: [AssessVerifyCommand.self, AssessKeyCommand.self])

    @OptionGroup var store: StoreOptions

    @Option(name: .customLong("evidence-pack"),
            help: ArgumentHelp("Write the signed evidence pack (a tar archive) of a new assessment here.", valueName: "file"))
    var evidencePack: String?

    func run() async throws {
        guard let evidencePack else { throw ValidationError("nothing to write: pass --evidence-pack FILE") }
        let (config, db) = try await store.openExisting()
        do {
            let key = try EvidencePackAssembler.signingKey(config, mayCreate: config.store.driver == .sqlite)
            let assessment = try await AssessmentRunner.assess(configuration: config, store: db, window: 30 * 86_400, now: Date(),
                                                               attestations: [], previous: nil)
            let summary = try await EvidencePackAssembler.write(assessment: assessment, reportHTML: nil, attestations: [],
                                                                configuration: config, store: db, key: key, to: evidencePack)
            try await db.close()
            print("""
                evidence pack:   \(summary.path) (\(summary.bytes) bytes, \(summary.files.count) files)
                assessment:      \(assessment.id), overall level \(assessment.overallLevel)
                manifest sha256: \(summary.manifestSHA256)
                signed by:       \(summary.keyFingerprint)
                """)
        } catch {
            try? await db.close()
            throw fail(error)
        }
    }
}
