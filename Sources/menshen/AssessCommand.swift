import ArgumentParser
import Foundation
import MenshenAssessment
import MenshenConfig
import MenshenServer
import MenshenStorage

/// `menshen assess`: measures the deployment against the guideline's 36
/// principles over a window and writes the report (HTML, JSON, CSV, Markdown,
/// or PDF printed by headless Chromium). Progress and a summary go to standard
/// error; the report is written atomically (a temporary file renamed into
/// place), so nothing is left behind when anything fails.
struct AssessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assess",
        abstract: "Maturity assessment against the FSC Zero Trust guideline's 36 principles (Levels I–IV).",
        discussion: """
            Measures the deployment over the window, scores each principle (met, partially met, not met, not \
            applicable, not measurable yet), and writes the report: pillar and overall levels, a pillar × level heat \
            map, every principle with its measurements and the query behind each, attestations, the high-risk \
            scenario view and the roadmap. The report is in Traditional Chinese by default (the organisation is \
            Taiwanese and the zh-TW text of the guideline is authoritative); --lang en gives the English working \
            translation. JSON carries both languages (schema: docs/assessment.schema.json). PDF needs Chromium \
            (Debian package `chromium`).
            """,
        subcommands: [AssessVerifyCommand.self, AssessKeyCommand.self])

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case html, json, csv, md, pdf
    }

    enum Language: String, ExpressibleByArgument, CaseIterable {
        case zhTW = "zh-TW", en
        var report: ReportLanguage { self == .en ? .en : .zhTW }
    }

    @OptionGroup var store: StoreOptions

    @Option(name: .long, help: ArgumentHelp("Evidence window: a number and a unit, h (hours), d (days) or w (weeks); 1h to 3650d.", valueName: "duration"))
    var window: String = "30d"

    @Option(name: .customLong("lang"), help: ArgumentHelp("Report language: zh-TW (Traditional Chinese) or en (English working translation).", valueName: "language"))
    var language: Language = .zhTW

    @Option(name: .long, help: ArgumentHelp("Report format: html, json, csv, md or pdf.", valueName: "format"))
    var format: Format = .html

    @Option(name: .long, help: ArgumentHelp("Where to write the report; - for standard output (not for pdf).", valueName: "file"))
    var out: String?

    @Option(name: .customLong("evidence-pack"),
            help: ArgumentHelp("Also write the signed evidence pack (a tar archive: the report in HTML and JSON, the attestations and their files, the policies in force, the newest audit checkpoint, a manifest of SHA-256s signed with Ed25519); check it with `menshen assess verify`.", valueName: "file"))
    var evidencePack: String?

    func validate() throws {
        // (Also runs before `assess verify`, so nothing here may require --out.)
        _ = try Self.parseWindow(window)
        if out == "-", format == .pdf { throw ValidationError("--format pdf cannot be written to standard output; pass --out FILE.pdf") }
    }

    func run() async throws {
        let window = try Self.parseWindow(window)
        let out = out.flatMap { $0.isEmpty ? nil : $0 }
        let evidencePack = evidencePack.flatMap { $0.isEmpty ? nil : $0 }
        guard out != nil || evidencePack != nil else {
            throw ValidationError("--out is required: the file to write the report to (or - for standard output); or --evidence-pack FILE")
        }
        if evidencePack == "-" { throw ValidationError("--evidence-pack needs a file, not standard output") }
        let chromium: String?
        if format == .pdf, out != nil {
            guard let found = Self.findChromium() else {
                throw fail(AssessCommandError("--format pdf needs Chromium, which is not installed (Debian: apt-get install chromium)"))
            }
            chromium = found
        } else {
            chromium = nil
        }
        // Check the destinations before the (possibly long) measurement, so a typo fails at once.
        if let out, out != "-" { try Self.checkWritable(out) }
        if let evidencePack { try Self.checkWritable(evidencePack) }

        let (config, db) = try await store.openExisting()
        let now = Date()
        Self.progress("assessing \(config.organisation.name) over \(Self.describe(window)) (\(config.store.driver.rawValue) store) …")
        let report = AssessmentReport(language: language.report)
        let assessment: Assessment
        // The HTML report, when the pack carries it, is rendered once and reused for --format html or pdf.
        var renderedHTML: Data?
        do {
            // The pack's key first: a deployment that cannot sign fails before anything is measured or stored.
            let packKey = try evidencePack.map { _ in try EvidencePackAssembler.signingKey(config, mayCreate: config.store.driver == .sqlite) }
            let attestations = try await AssessmentRecords.storedAttestations(db)
            let previous = try await AssessmentRecords.latestAssessment(db)
            assessment = try await AssessmentRunner.assess(configuration: config, store: db, window: window, now: now,
                                                           attestations: attestations, previous: previous,
                                                           progress: { Self.progress($0) })
            // Every assessment is kept (append-only), so the next report can show what changed.
            _ = try await AssessmentRecords.saveAssessment(db, assessment)
            if let evidencePack, let packKey {
                var evidence: [(Attestation, [String: Data])] = []
                for a in attestations {
                    var files: [String: Data] = [:]
                    for f in a.files {
                        // A file the store no longer has is left out here and refused by the pack (never written without it).
                        if let content = try await db.attestationFile(attestationID: a.id, name: f.name) { files[f.name] = content.bytes }
                    }
                    evidence.append((a, files))
                }
                let htmlBytes = try report.render(assessment, format: .html)
                renderedHTML = htmlBytes
                let html = String(decoding: htmlBytes, as: UTF8.self)
                let summary = try await EvidencePackAssembler.write(assessment: assessment, reportHTML: html, attestations: evidence,
                                                                    configuration: config, store: db, key: packKey, to: evidencePack)
                // What a regulator is sent along with the pack; on standard error when the report itself goes to standard output.
                let text = """
                    evidence pack:   \(summary.path) (\(summary.bytes) bytes, \(summary.files.count) files)
                    assessment:      \(assessment.id), overall level \(assessment.overallLevel)
                    manifest sha256: \(summary.manifestSHA256)
                    signed by:       \(summary.keyFingerprint)

                    """
                if out == "-" { FileHandle.standardError.write(Data(text.utf8)) } else { print(text, terminator: "") }
            }
            try await db.close()
        } catch {
            try? await db.close()
            throw fail(error)
        }
        do {
            if let out {
                let bytes: Data
                switch format {
                case .html: bytes = try renderedHTML ?? report.render(assessment, format: .html)
                case .json: bytes = try report.render(assessment, format: .json)
                case .csv: bytes = try report.render(assessment, format: .csv)
                case .md: bytes = try report.render(assessment, format: .md)
                case .pdf: bytes = try await Self.printPDF(html: try renderedHTML ?? report.render(assessment, format: .html), chromium: chromium ?? "chromium")
                }
                if out == "-" {
                    FileHandle.standardOutput.write(bytes)
                } else {
                    try Self.writeAtomically(bytes, to: out)
                }
                Self.progress("wrote \(out == "-" ? "standard output" : out) (\(format.rawValue), \(language.rawValue), \(bytes.count) bytes)")
            }
            Self.summarise(assessment)
        } catch {
            throw fail(error)
        }
    }

    // MARK: Window

    /// "30d", "12h", "2w" → seconds; 1 hour … 3650 days.
    static func parseWindow(_ text: String) throws -> TimeInterval {
        let s = text.trimmingCharacters(in: .whitespaces)
        guard let unit = s.last, let seconds: Double = ["h": 3600, "d": 86_400, "w": 604_800][unit],
              s.count >= 2, s.count <= 8, s.dropLast().allSatisfy(\.isASCII), s.dropLast().allSatisfy(\.isNumber),
              let n = Int(s.dropLast())
        else {
            throw ValidationError("--window '\(text)': expected a number and a unit h, d or w (e.g. 30d, 12h, 2w)")
        }
        let window = Double(n) * seconds
        guard window >= 3600, window <= 3650 * 86_400 else {
            throw ValidationError("--window '\(text)': must be between 1h and 3650d")
        }
        return window
    }

    static func describe(_ window: TimeInterval) -> String {
        window.truncatingRemainder(dividingBy: 86_400) == 0 ? "\(Int(window / 86_400)) days" : "\(Int(window / 3600)) hours"
    }

    // MARK: Output

    static func progress(_ line: String) { FileHandle.standardError.write(Data("menshen: \(line)\n".utf8)) }

    /// The levels and gaps on standard error, so a terminal user sees the outcome without opening the report.
    static func summarise(_ a: Assessment) {
        let catalog = PrincipleCatalog.builtIn
        func level(_ l: Int) -> String { catalog.level(l).map { "Level \($0.roman) (\($0.name.en))" } ?? "below Level Ⅰ" }
        var lines = ["overall: \(level(a.overallLevel))"]
        for p in a.pillars {
            let mine = a.principles.filter { $0.pillar == p.pillar }
            let name = catalog.name(of: p.pillar).en.padding(toLength: 12, withPad: " ", startingAt: 0)
            lines.append("  \(name) \(level(p.level)); \(mine.filter { $0.verdict.satisfies }.count)/\(mine.count) met")
        }
        let first = a.roadmap.prefix(8).map(\.principleID).joined(separator: " ")
        lines.append("gaps: \(a.roadmap.count)" + (a.roadmap.isEmpty ? "" : " (close first: \(first)\(a.roadmap.count > 8 ? " …" : ""))"))
        FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }

    /// Fails early when the report's directory does not exist or the path is a directory.
    static func checkWritable(_ path: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw fail(AssessCommandError("\(path) is a directory; --out names the report file"))
        }
        let dir = (path as NSString).deletingLastPathComponent
        let parent = dir.isEmpty ? "." : dir
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDir), isDir.boolValue else {
            throw fail(AssessCommandError("cannot write \(path): the directory \(parent) does not exist"))
        }
    }

    /// Writes `data` atomically (``AtomicFile``: a temporary file beside `path`,
    /// fsync, rename): readers see the old file or the whole new one, never a part.
    static func writeAtomically(_ data: Data, to path: String) throws {
        do {
            try AtomicFile.write([UInt8](data), to: path, mode: 0o644)
        } catch {
            let why = switch error {
            case .noDirectory(let dir): "the directory \(dir) does not exist"
            case .cannotCreate(let dir): "cannot create a file in \(dir)"
            case .writeFailed(let e), .fsyncFailed(let e), .renameFailed(let e): String(cString: strerror(e))
            }
            throw AssessCommandError("cannot write \(path): \(why)")
        }
    }

    // MARK: PDF

    /// `chromium` or `chromium-browser` on PATH.
    static func findChromium() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for name in ["chromium", "chromium-browser"] {
            for dir in path.split(separator: ":") where !dir.isEmpty {
                let candidate = "\(dir)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        return nil
    }

    /// Prints the HTML report to PDF with headless Chromium, in a private
    /// temporary directory (profile included) removed afterwards. The report
    /// has no script and loads nothing, so the page is printed as written.
    /// Chromium refuses to run as root inside its sandbox; as root it runs
    /// with --no-sandbox (it only ever opens this local, script-free file).
    static func printPDF(html: Data, chromium: String) async throws -> Data {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("menshen-assess-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: work) }
        let page = work.appendingPathComponent("report.html"), pdf = work.appendingPathComponent("report.pdf")
        let log = work.appendingPathComponent("chromium.log")
        try html.write(to: page)
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let logHandle = try FileHandle(forWritingTo: log)
        defer { try? logHandle.close() }

        let p = Process()
        p.executableURL = URL(fileURLWithPath: chromium)
        var args = ["--headless", "--disable-gpu", "--no-pdf-header-footer", "--no-first-run", "--disable-extensions",
                    "--user-data-dir=\(work.appendingPathComponent("profile").path)", "--print-to-pdf=\(pdf.path)"]
        if geteuid() == 0 { args.append("--no-sandbox") }
        p.arguments = args + [page.absoluteString]
        p.standardOutput = logHandle
        p.standardError = logHandle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning {
            if Date() > deadline {
                p.terminate()
                throw AssessCommandError("chromium did not finish printing the PDF within 120 s")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let output = (try? Data(contentsOf: pdf)) ?? Data()
        guard p.terminationStatus == 0, output.starts(with: Data("%PDF-".utf8)) else {
            let tail = ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").suffix(5).joined(separator: " | ")
            throw AssessCommandError("chromium could not print the PDF (exit \(p.terminationStatus)): \(tail)")
        }
        return output
    }
}

struct AssessCommandError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
