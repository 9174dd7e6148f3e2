import ArgumentParser
import Foundation
import MenshenCedar
import MenshenCedarConformance

/// `menshen policy …`: Cedar policy tools (validate, authorize, format, link,
/// conformance, bench), modelled on Cedar's own command line.
struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Validate, evaluate, format and test Cedar policies.",
        discussion: """
            The verbs follow Cedar's command line where it has one. Exit status: 0 success (allow for \
            `authorize`), 1 error (bad input, parse error, failed check), 2 deny (`authorize`), \
            3 validation failed (`validate`).
            Input files are limited to \(PolicyIO.maxInputBytes) bytes; errors are printed as \
            `menshen: error: FILE:LINE:COL: message`.
            """,
        subcommands: [PolicyValidate.self, PolicyAuthorize.self, PolicyFormat.self, PolicyLink.self,
                      PolicyConformance.self, PolicyBench.self, PolicySave.self, PolicyList.self]
    )
}

// MARK: - validate

struct PolicyValidate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Validate policies against a schema (strict mode) and print every error with its location.",
        discussion: """
            Each diagnostic is printed as `FILE:LINE:COL: error: POLICY-ID: message`. \
            Exit status: 0 valid, 3 validation errors, 1 unreadable or unparsable input.
            """
    )

    @Option(name: [.short, .long], help: ArgumentHelp("Cedar policy file (`-` for standard input).", valueName: "file"))
    var policies: String

    @Option(name: [.short, .long], help: ArgumentHelp("Schema file.", valueName: "file"))
    var schema: String

    @Option(name: .long, help: ArgumentHelp("Schema format: cedar or json (default: json for *.json, else cedar).", valueName: "format"))
    var schemaFormat: String?

    func run() throws {
        do {
            let set = try PolicyIO.parsePolicies(try PolicyIO.readText(policies, what: "policy"), file: policies)
            let s = try PolicyIO.parseSchema(try PolicyIO.readText(schema, what: "schema"),
                                             format: PolicyIO.schemaFormat(schemaFormat, path: schema), file: schema)
            let result = Validator(schema: s).validate(set)
            for d in result.errors { print(line(d, kind: "error")) }
            for d in result.warnings { print(line(d, kind: "warning")) }
            if result.passed {
                print("policies are valid (\(set.policies.count + set.templates.count) checked\(result.warnings.isEmpty ? "" : ", \(result.warnings.count) warning(s)"))")
                return
            }
            print("validation failed: \(result.errors.count) error(s), \(result.warnings.count) warning(s)")
            throw ExitCode(3)
        } catch let e as PolicyCLIError {
            printError(e.description)
            throw ExitCode(1)
        }
    }

    private func line(_ d: ValidationDiagnostic, kind: String) -> String {
        let loc = d.location.map { "\($0.line):\($0.column):" } ?? ""
        return "\(policies):\(loc) \(kind): \(d.policyID): \(d.message) [\(d.code.rawValue)]"
    }
}

// MARK: - authorize

struct PolicyAuthorize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authorize",
        abstract: "Evaluate one request (or a batch of JSON requests) and print the decision.",
        discussion: """
            Single request: prints ALLOW or DENY, the determining policies and the policies whose evaluation \
            failed. Exit status (as in Cedar's CLI): 0 allow, 2 deny, 1 error.

            With --json the result is one line: \
            {"decision":"allow","reasons":["policy0"],"errors":[{"policy":"policy1","message":"…"}]}

            Batch mode (--batch FILE, `-` for standard input) reads one JSON object per line and writes one \
            JSON result per line, in order, in one process. Each request line has:
              "policies" (policy text) or "policiesFile" (path);
              "schema" (schema text) or "schemaFile" (path), optional, with "schemaFormat" (cedar|json);
              "entities" (a JSON array, or its text) or "entitiesFile" (path), optional;
              "principal", "action", "resource": {"type":…,"id":…} (or {"__entity":…}) or Cedar text User::"alice";
              "context": a JSON object (optional); "validateRequest": false to skip request validation;
              "id": echoed back.
            Each result line is {"id":…,"decision":…,"reasons":[…],"errors":[…]} or {"id":…,"error":"message"} \
            when the line could not be evaluated (bad JSON, parse error, invalid request). Identical policy, \
            schema and entity inputs on consecutive lines are parsed once. Batch exit status: 0 when every line \
            was evaluated (whatever the decisions), 1 when any line had an error.
            """
    )

    @Option(name: [.short, .long], help: ArgumentHelp("Cedar policy file.", valueName: "file"))
    var policies: String?

    @Option(name: [.long], help: ArgumentHelp("Entities file (JSON array). Default: no entities.", valueName: "file"))
    var entities: String?

    @Option(name: [.short, .long], help: ArgumentHelp("Schema file: entities and context are then parsed with it and the request is validated.", valueName: "file"))
    var schema: String?

    @Option(name: .long, help: ArgumentHelp("Schema format: cedar or json (default: json for *.json, else cedar).", valueName: "format"))
    var schemaFormat: String?

    @Option(name: [.customShort("l"), .long], help: ArgumentHelp("Principal entity uid, e.g. 'User::\"alice\"'.", valueName: "uid"))
    var principal: String?

    @Option(name: [.short, .long], help: ArgumentHelp("Action entity uid, e.g. 'Action::\"view\"'.", valueName: "uid"))
    var action: String?

    @Option(name: [.short, .long], help: ArgumentHelp("Resource entity uid.", valueName: "uid"))
    var resource: String?

    @Option(name: [.short, .long], help: ArgumentHelp("Context: a JSON object, inline or in a file.", valueName: "file|json"))
    var context: String?

    @Flag(name: .long, help: "Do not validate the request against the schema.")
    var noRequestValidation = false

    @Flag(name: .long, help: "Print the result as one JSON object.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Batch mode: JSON request lines from a file (`-` for standard input).", valueName: "file"))
    var batch: String?

    func validate() throws {
        if batch == nil {
            guard policies != nil else { throw ValidationError("--policies is required (or use --batch)") }
            guard principal != nil, action != nil, resource != nil else {
                throw ValidationError("--principal, --action and --resource are required (or use --batch)")
            }
        }
    }

    func run() throws {
        if let batch { throw ExitCode(PolicyBatch.run(path: batch)) }
        do {
            let policyFile = policies ?? "-"
            let set = try PolicyIO.parsePolicies(try PolicyIO.readText(policyFile, what: "policy"), file: policyFile)
            var schemaValue: Schema? = nil
            if let schema {
                schemaValue = try PolicyIO.parseSchema(try PolicyIO.readText(schema, what: "schema"),
                                                       format: PolicyIO.schemaFormat(schemaFormat, path: schema), file: schema)
            }
            var store = Entities()
            if let entities {
                let text = try PolicyIO.readText(entities, what: "entities")
                do { store = try EntityJSON.entities(text, hints: schemaValue) } catch { throw PolicyCLIError(PolicyIO.located(entities, error)) }
            } else if let schemaValue {
                // The schema's action entities (and their groups) even without an entities file.
                do { store = try EntityJSON.entities(.array([]), hints: schemaValue) } catch { throw PolicyCLIError(PolicyIO.located(schema ?? "schema", error)) }
            }
            let p = try PolicyIO.parseUID(principal ?? "", role: "principal")
            let a = try PolicyIO.parseUID(action ?? "", role: "action")
            let r = try PolicyIO.parseUID(resource ?? "", role: "resource")
            var ctx: [String: Value] = [:]
            if let context {
                let trimmed = context.trimmingCharacters(in: .whitespacesAndNewlines)
                let (text, label) = trimmed.hasPrefix("{") ? (trimmed, "--context") : (try PolicyIO.readText(context, what: "context"), context)
                do { ctx = try EntityJSON.context(try JSONValue.parse(text), action: a, hints: schemaValue) } catch {
                    throw PolicyCLIError(PolicyIO.located(label, error))
                }
            }
            let request = Request(principal: p, action: a, resource: r, context: ctx)
            if let schemaValue, !noRequestValidation, let problem = schemaValue.validateRequest(request) {
                throw PolicyCLIError("invalid request: \(problem.message)")
            }
            let response = Authorizer.isAuthorized(request, index: PolicyIndex(set), entities: store)
            if json {
                print(PolicyBatch.resultJSON(id: nil, response))
            } else {
                print(response.decision == .allow ? "ALLOW" : "DENY")
                if !response.reasons.isEmpty {
                    print("\nnote: this decision was due to the following policies:")
                    for id in response.reasons { print("  \(id)") }
                }
                if !response.errors.isEmpty {
                    print("\nnote: there were errors evaluating the following policies:")
                    for e in response.errors { print("  \(e.policyID): \(e.error.message)") }
                }
            }
            if response.decision != .allow { throw ExitCode(2) }
        } catch let e as PolicyCLIError {
            printError(e.description)
            throw ExitCode(1)
        }
    }
}

// MARK: - format

struct PolicyFormat: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "format",
        abstract: "Pretty-print a policy file in canonical form.",
        discussion: """
            The output is idempotent (formatting formatted text changes nothing). Comments are not kept, and \
            templates are printed after the static policies. --check exits 1 when the file is not formatted; \
            --write rewrites the file in place.
            """
    )

    @Argument(help: ArgumentHelp("Policy file (`-` or nothing for standard input).", valueName: "file"))
    var file: String = "-"

    @Flag(name: .long, help: "Do not print; exit 1 if the file is not already formatted.")
    var check = false

    @Flag(name: [.short, .long], help: "Write the formatted text back to the file.")
    var write = false

    func run() throws {
        do {
            let text = try PolicyIO.readText(file, what: "policy")
            let formatted = CedarFormatter.format(try PolicyIO.parsePolicies(text, file: file))
            if check {
                if formatted != text {
                    FileHandle.standardError.write(Data("\(file): not formatted\n".utf8))
                    throw ExitCode(1)
                }
                return
            }
            if write {
                guard file != "-" else { throw PolicyCLIError("--write needs a file, not standard input") }
                if formatted != text {
                    do { try Data(formatted.utf8).write(to: URL(fileURLWithPath: file), options: .atomic) } catch {
                        throw PolicyCLIError("\(file): cannot write: \(error.localizedDescription)")
                    }
                }
                return
            }
            print(formatted, terminator: "")
        } catch let e as PolicyCLIError {
            printError(e.description)
            throw ExitCode(1)
        }
    }
}

// MARK: - link

struct PolicyLink: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "link",
        abstract: "Link a policy template with slot values and print the linked policy.",
        discussion: "Fills ?principal (and ?resource) of the template TEMPLATE-ID in the policy file; the template's id is its parser-assigned id (policy0, policy1, …)."
    )

    @Option(name: [.short, .long], help: ArgumentHelp("Policy file containing the template.", valueName: "file"))
    var policies: String

    @Option(name: .long, help: ArgumentHelp("Id of the template.", valueName: "id"))
    var templateId: String

    @Option(name: .long, help: ArgumentHelp("Id of the new linked policy.", valueName: "id"))
    var newId: String

    @Option(name: .long, help: ArgumentHelp("Value of ?principal, e.g. 'User::\"alice\"'.", valueName: "uid"))
    var principal: String?

    @Option(name: .long, help: ArgumentHelp("Value of ?resource.", valueName: "uid"))
    var resource: String?

    func run() throws {
        do {
            var set = try PolicyIO.parsePolicies(try PolicyIO.readText(policies, what: "policy"), file: policies)
            var values: [SlotID: EntityUID] = [:]
            if let principal { values[.principal] = try PolicyIO.parseUID(principal, role: "principal") }
            if let resource { values[.resource] = try PolicyIO.parseUID(resource, role: "resource") }
            let linked: Policy
            do { linked = try set.link(templateID: templateId, newID: newId, values: values) } catch {
                throw PolicyCLIError(error.message)
            }
            print("// \(linked.id): linked from template \(templateId)")
            print(CedarFormatter.format(linked))
        } catch let e as PolicyCLIError {
            printError(e.description)
            throw ExitCode(1)
        }
    }
}

// MARK: - conformance

struct PolicyConformance: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformance",
        abstract: "Run cedar-integration-tests files and print every mismatch and `N passed, M failed`.",
        discussion: """
            PATH is a test file, a directory (searched recursively) or a .tar.gz archive of tests. Relative file \
            names inside a test resolve against the test tree's root: the nearest ancestor directory of the test \
            under which the referenced policy file exists (the archive's root for archives). Exit status 0 only \
            when nothing failed.
            """
    )

    @Argument(help: ArgumentHelp("Test files, directories or .tar.gz archives.", valueName: "path"))
    var paths: [String]

    @Flag(name: .long, help: "Evaluate with a full scan instead of the policy index.")
    var noIndex = false

    func validate() throws {
        guard !paths.isEmpty else { throw ValidationError("give at least one test file, directory or archive") }
    }

    func run() throws {
        for p in paths where !FileManager.default.fileExists(atPath: p) {
            printError("\(p): no such file or directory")
            throw ExitCode(1)
        }
        // The runner needs absolute paths (it resolves test files from `/`).
        let absolute = paths.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        let result = ConformanceRunner.withSchema(useIndex: !noIndex).run(paths: absolute)
        for m in result.mismatches { print(m.description) }
        if result.files == 0 { printError("no test files found in \(paths.joined(separator: " "))") }
        print("\(result.passed) passed, \(result.failed) failed")
        if result.failed != 0 || result.files == 0 { throw ExitCode(1) }
    }
}
