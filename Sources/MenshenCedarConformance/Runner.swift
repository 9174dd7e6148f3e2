import Foundation
import MenshenCedar

/// Schema services the conformance runner needs. The schema/validator code provides an
/// implementation; without one, tests run without schema-directed parsing and
/// `shouldValidate` checks are skipped.
public protocol ConformanceSchemaSupport: Sendable {
    /// Parses a schema (`format` is "cedar" or "json") into JSON type hints (which also
    /// supply the schema's action entities).
    func loadSchema(_ text: String, format: String) throws -> any EntityJSONTypeHints
    /// Strict-mode validation of `policies` against the schema: true iff no errors.
    func validates(_ policies: PolicySet, schema: any EntityJSONTypeHints) -> Bool
    /// Request validation against the schema; returns an error message or nil.
    func validateRequest(_ request: Request, schema: any EntityJSONTypeHints) -> String?
}

/// One disagreement with the expected result.
public struct ConformanceMismatch: Sendable, CustomStringConvertible {
    /// Test file, relative to its root.
    public let file: String
    /// The request's description (or "shouldValidate").
    public let testDescription: String
    /// What differed.
    public let detail: String
    public var description: String { "FAIL \(file) :: \(testDescription) | \(detail)" }
}

/// Totals of a conformance run.
public struct ConformanceResult: Sendable {
    public var passed = 0
    public var failed = 0
    /// shouldValidate checks skipped because no schema support was available.
    public var skippedValidationChecks = 0
    public var files = 0
    public var mismatches: [ConformanceMismatch] = []
    /// The summary line, `N passed, M failed`.
    public var summary: String { "\(passed) passed, \(failed) failed" }
}

/// Runs cedar-integration-tests JSON test files (see the conformance README): a test
/// file, a directory searched recursively, or a `.tar.gz` archive (extracted with
/// `/bin/tar` into a temporary directory, which becomes the root for relative paths).
public struct ConformanceRunner: Sendable {
    public let schemaSupport: (any ConformanceSchemaSupport)?
    /// Evaluate with the policy index instead of a full scan.
    public let useIndex: Bool

    public init(schemaSupport: (any ConformanceSchemaSupport)? = nil, useIndex: Bool = true) {
        self.schemaSupport = schemaSupport
        self.useIndex = useIndex
    }

    public func run(paths: [String]) -> ConformanceResult {
        var result = ConformanceResult()
        for path in paths {
            if path.hasSuffix(".tar.gz") || path.hasSuffix(".tgz") {
                let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("cedar-conformance-\(UUID().uuidString)")
                do {
                    try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
                    defer { try? FileManager.default.removeItem(at: tmp) }
                    let p = Process()
                    p.executableURL = URL(fileURLWithPath: "/bin/tar")
                    p.arguments = ["xzf", URL(fileURLWithPath: path).standardizedFileURL.path, "-C", tmp.path]
                    try p.run()
                    p.waitUntilExit()
                    guard p.terminationStatus == 0 else {
                        result.failed += 1
                        result.mismatches.append(ConformanceMismatch(file: path, testDescription: "archive", detail: "tar exited with status \(p.terminationStatus)"))
                        continue
                    }
                    for f in Self.testFiles(under: tmp.path) { runFile(f, root: tmp.path, into: &result) }
                } catch {
                    result.failed += 1
                    result.mismatches.append(ConformanceMismatch(file: path, testDescription: "archive", detail: "\(error)"))
                }
            } else if isDirectory(path) {
                for f in Self.testFiles(under: path) { runFile(f, root: nil, into: &result) }
            } else {
                runFile(path, root: nil, into: &result)
            }
        }
        return result
    }

    private func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    /// Test files (JSON objects with string `policies` and array `requests`) under `dir`, sorted.
    static func testFiles(under dir: String) -> [String] {
        guard let en = FileManager.default.enumerator(atPath: dir) else { return [] }
        var out: [String] = []
        while let rel = en.nextObject() as? String {
            guard rel.hasSuffix(".json"), !rel.hasSuffix(".entities.json"), (rel as NSString).lastPathComponent != "entities.json" else { continue }
            let full = (dir as NSString).appendingPathComponent(rel)
            guard let data = FileManager.default.contents(atPath: full) else { continue }
            let head = data.prefix(4096)
            guard String(decoding: head, as: UTF8.self).contains("\"policies\"") else { continue }
            guard let text = String(data: data, encoding: .utf8), let j = try? JSONValue.parse(text),
                  j["policies"]?.stringValue != nil, j["requests"]?.arrayValue != nil else { continue }
            out.append(full)
        }
        return out.sorted()
    }

    /// The nearest ancestor directory of `file` under which `rel` exists.
    static func findRoot(_ file: String, _ rel: String) -> String? {
        var d = (URL(fileURLWithPath: file).standardizedFileURL.path as NSString).deletingLastPathComponent
        while true {
            if FileManager.default.fileExists(atPath: (d as NSString).appendingPathComponent(rel)) { return d }
            let parent = (d as NSString).deletingLastPathComponent
            if parent == d || parent.isEmpty { return nil }
            d = parent
        }
    }

    private struct LoadError: Error, CustomStringConvertible { let description: String }

    private func readText(_ root: String, _ rel: String) throws -> String {
        let path = rel.hasPrefix("/") ? rel : (root as NSString).appendingPathComponent(rel)
        guard let data = FileManager.default.contents(atPath: path), let s = String(data: data, encoding: .utf8) else {
            throw LoadError(description: "cannot read \(path)")
        }
        return s
    }

    private func runFile(_ file: String, root givenRoot: String?, into result: inout ConformanceResult) {
        result.files += 1
        var name = file
        var requestCount = 0
        do {
            let testText = try readText("/", file)
            let test = try JSONValue.parse(testText)
            guard let polRel = test["policies"]?.stringValue, let reqs = test["requests"]?.arrayValue else {
                throw LoadError(description: "not a test file")
            }
            requestCount = reqs.count
            guard let root = givenRoot ?? Self.findRoot(file, polRel) else { throw LoadError(description: "cannot resolve \(polRel)") }
            if file.hasPrefix(root + "/") { name = String(file.dropFirst(root.count + 1)) }

            var hints: (any EntityJSONTypeHints)? = nil
            if let support = schemaSupport, let schemaRel = test["schema"]?.stringValue {
                hints = try support.loadSchema(try readText(root, schemaRel), format: test["schemaFormat"]?.stringValue ?? "cedar")
            }
            let policyText = try readText(root, polRel)
            let policies = (test["policyFormat"]?.stringValue ?? "cedar") == "json"
                ? try PolicyJSON.parsePolicySet(policyText)
                : try CedarParser.parsePolicySet(policyText)
            let entities: Entities
            if let entRel = test["entities"]?.stringValue {
                entities = try EntityJSON.entities(try readText(root, entRel), hints: hints)
            } else {
                entities = Entities()
            }
            if case .bool(let expected)? = test["shouldValidate"] {
                if let support = schemaSupport, let hints {
                    let got = support.validates(policies, schema: hints)
                    if got == expected { result.passed += 1 } else {
                        result.failed += 1
                        result.mismatches.append(ConformanceMismatch(file: name, testDescription: "shouldValidate", detail: "expected=\(expected) got=\(got)"))
                    }
                } else {
                    result.skippedValidationChecks += 1
                }
            }
            let index = useIndex ? PolicyIndex(policies) : nil
            for r in reqs {
                let desc = r["description"]?.stringValue ?? ""
                do {
                    guard let p = r["principal"], let a = r["action"], let res = r["resource"] else {
                        throw LoadError(description: "request lacks principal/action/resource")
                    }
                    let action = try EntityJSON.entityUID(a)
                    let ctx = try EntityJSON.context(r["context"] ?? .object([]), action: action, hints: hints)
                    let request = Request(principal: try EntityJSON.entityUID(p), action: action,
                                          resource: try EntityJSON.entityUID(res), context: ctx)
                    if let support = schemaSupport, let hints, r["validateRequest"] != .bool(false),
                       let problem = support.validateRequest(request, schema: hints) {
                        throw LoadError(description: "request failed schema validation: \(problem)")
                    }
                    let response = index.map { Authorizer.isAuthorized(request, index: $0, entities: entities) }
                        ?? Authorizer.isAuthorized(request, policies: policies, entities: entities)
                    let expDecision = (r["decision"]?.stringValue ?? "").lowercased()
                    let expReason = Set((r["reason"]?.arrayValue ?? []).compactMap(\.stringValue))
                    let expErrors = Set((r["errors"]?.arrayValue ?? []).compactMap(\.stringValue))
                    let gotReason = Set(response.reasons)
                    let gotErrors = Set(response.errors.map(\.policyID))
                    var problems: [String] = []
                    if response.decision.rawValue != expDecision { problems.append("decision expected=\(expDecision) got=\(response.decision.rawValue)") }
                    if gotReason != expReason { problems.append("reason expected=\(expReason.sorted()) got=\(gotReason.sorted())") }
                    if gotErrors != expErrors {
                        let msgs = response.errors.map { "\($0.policyID): \($0.error.message)" }.joined(separator: "; ")
                        problems.append("errors expected=\(expErrors.sorted()) got=\(gotErrors.sorted()) [\(msgs)]")
                    }
                    if problems.isEmpty { result.passed += 1 } else {
                        result.failed += 1
                        result.mismatches.append(ConformanceMismatch(file: name, testDescription: desc, detail: problems.joined(separator: "; ")))
                    }
                } catch {
                    result.failed += 1
                    result.mismatches.append(ConformanceMismatch(file: name, testDescription: desc, detail: "request error: \(error)"))
                }
            }
        } catch {
            let n = max(1, requestCount)
            result.failed += n
            result.mismatches.append(ConformanceMismatch(file: name, testDescription: "(\(n) request(s))", detail: "load error: \(error)"))
        }
    }
}
