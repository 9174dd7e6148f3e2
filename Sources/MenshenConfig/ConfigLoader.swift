import Foundation
import MenshenCore
import Yams

/// Reads a YAML file and `MENSHEN_*` environment overrides into a validated
/// ``MenshenConfiguration``, reporting every problem with its key path.
public enum ConfigLoader {
    /// Loads and validates. Throws ``ConfigError`` listing every problem.
    ///
    /// - Parameters:
    ///   - file: a YAML file, or nil for defaults only.
    ///   - environment: usually `ProcessInfo.processInfo.environment`.
    ///   - overrides: programmatic values (dotted key → text) applied before the environment (used by `menshen demo`).
    public static func load(file: String?, environment: [String: String] = [:], overrides: [String: String] = [:]) throws
        -> MenshenConfiguration
    {
        let (values, problems) = collect(file: file, environment: environment, overrides: overrides)
        guard problems.isEmpty else { throw ConfigError(problems: problems) }
        return MenshenConfiguration(checked: values)
    }

    /// Every problem in a file (and the environment); empty when valid.
    public static func check(file: String, environment: [String: String] = [:]) -> [ConfigProblem] {
        collect(file: file, environment: environment, overrides: [:]).1
    }

    /// Loads YAML text directly (for tests and embedded configurations).
    public static func load(yaml: String, name: String = "<config>", environment: [String: String] = [:]) throws
        -> MenshenConfiguration
    {
        var values: [String: (String, String)] = [:]
        var problems: [ConfigProblem] = []
        parse(yaml: yaml, name: name, into: &values, problems: &problems)
        let (checked, more) = finish(values, environment: environment, overrides: [:])
        problems += more
        guard problems.isEmpty else { throw ConfigError(problems: problems) }
        return MenshenConfiguration(checked: checked)
    }

    // MARK: Implementation

    /// Raw values: key path → (text, location).
    typealias Raw = [String: (String, String)]

    static func collect(file: String?, environment: [String: String], overrides: [String: String]) -> ([String: String], [ConfigProblem]) {
        var values: Raw = [:]
        var problems: [ConfigProblem] = []
        if let file {
            if let text = readFile(file, problems: &problems) {
                parse(yaml: text, name: file, into: &values, problems: &problems)
            }
        }
        let (checked, more) = finish(values, environment: environment, overrides: overrides)
        return (checked, problems + more)
    }

    static func readFile(_ path: String, problems: inout [ConfigProblem]) -> String? {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else {
            problems.append(ConfigProblem(keyPath: "", location: path, message: "configuration file not found"))
            return nil
        }
        guard !isDir.boolValue else {
            problems.append(ConfigProblem(keyPath: "", location: path, message: "is a directory, not a configuration file"))
            return nil
        }
        guard let data = fm.contents(atPath: path) else {
            problems.append(ConfigProblem(keyPath: "", location: path, message: "cannot be read (permission denied?)"))
            return nil
        }
        guard data.count <= InputLimits.maxConfigBytes else {
            problems.append(ConfigProblem(keyPath: "", location: path,
                                          message: "is \(data.count) bytes; the limit is \(InputLimits.maxConfigBytes)"))
            return nil
        }
        guard let text = String(data: data, encoding: .utf8) else {
            problems.append(ConfigProblem(keyPath: "", location: path, message: "is not valid UTF-8"))
            return nil
        }
        return text
    }

    /// Refuses flow-collection nesting deeper than the limit before handing
    /// the text to the YAML parser (whose node builder recurses).
    static func nestingTooDeep(_ text: String) -> Bool {
        var depth = 0
        var indentDepth = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let indent = line.prefix(while: { $0 == " " }).count
            indentDepth = max(indentDepth, indent / 2)
            for c in line.utf8 {
                if c == UInt8(ascii: "[") || c == UInt8(ascii: "{") { depth += 1 }
                if c == UInt8(ascii: "]") || c == UInt8(ascii: "}") { depth -= 1 }
                if depth > InputLimits.maxConfigDepth { return true }
            }
        }
        return indentDepth > InputLimits.maxConfigDepth * 4
    }

    static func parse(yaml: String, name: String, into values: inout Raw, problems: inout [ConfigProblem]) {
        guard !nestingTooDeep(yaml) else {
            problems.append(ConfigProblem(keyPath: "", location: name, message: "nesting deeper than \(InputLimits.maxConfigDepth) levels"))
            return
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let e as YamlError {
            problems.append(ConfigProblem(keyPath: "", location: name, message: "not valid YAML: \(yamlMessage(e))"))
            return
        } catch {
            problems.append(ConfigProblem(keyPath: "", location: name, message: "not valid YAML: \(error)"))
            return
        }
        guard let root else { return }  // an empty file means all defaults
        walk(root, path: "", file: name, values: &values, problems: &problems)
    }

    static func yamlMessage(_ e: YamlError) -> String {
        "\(e)".split(separator: "\n").first.map(String.init) ?? "syntax error"
    }

    static func location(_ node: Node, _ file: String) -> String {
        guard let m = node.mark else { return file }
        return "\(file):\(m.line):\(m.column)"
    }

    static func walk(_ node: Node, path: String, file: String, values: inout Raw, problems: inout [ConfigProblem]) {
        guard case .mapping(let mapping) = node else {
            problems.append(ConfigProblem(keyPath: path, location: location(node, file),
                                          message: path.isEmpty ? "the top level must be a mapping of sections" : "must be a mapping of keys"))
            return
        }
        var seen = Set<String>()
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let keyScalar) = keyNode else {
                problems.append(ConfigProblem(keyPath: path, location: location(keyNode, file), message: "keys must be plain names"))
                continue
            }
            let key = keyScalar.string
            let full = path.isEmpty ? key : "\(path).\(key)"
            guard seen.insert(key).inserted else {
                problems.append(ConfigProblem(keyPath: full, location: location(keyNode, file), message: "duplicate key"))
                continue
            }
            if ConfigKeys.byPath[full] != nil {
                guard case .scalar(let scalar) = valueNode else {
                    problems.append(ConfigProblem(keyPath: full, location: location(valueNode, file), message: "must be a single value"))
                    continue
                }
                values[full] = (scalar.string, location(valueNode, file))
            } else if ConfigKeys.sections.contains(full) {
                if case .scalar(let s) = valueNode, s.string.isEmpty || s.tag.description.hasSuffix("null") { continue }
                walk(valueNode, path: full, file: file, values: &values, problems: &problems)
            } else {
                problems.append(ConfigProblem(keyPath: full, location: location(keyNode, file), message: unknownKeyMessage(full)))
            }
        }
    }

    static func unknownKeyMessage(_ path: String) -> String {
        let candidates = ConfigKeys.all.map(\.path) + ConfigKeys.sections.filter { !$0.isEmpty }
        if let best = candidates.min(by: { editDistance($0, path) < editDistance($1, path) }), editDistance(best, path) <= 3 {
            return "unknown key (did you mean '\(best)'?)"
        }
        return "unknown key"
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        var row = Array(0...b.count)
        for i in 1...max(1, a.count) where !a.isEmpty {
            var prev = row[0]; row[0] = i
            for j in 1...max(1, b.count) where !b.isEmpty {
                let tmp = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
                prev = tmp
            }
        }
        return row[b.count]
    }

    static func finish(_ fileValues: Raw, environment: [String: String], overrides: [String: String]) -> ([String: String], [ConfigProblem]) {
        var raw = fileValues
        var problems: [ConfigProblem] = []
        for (k, v) in overrides {
            if ConfigKeys.byPath[k] != nil { raw[k] = (v, "override") } else {
                problems.append(ConfigProblem(keyPath: k, location: "override", message: "unknown key"))
            }
        }
        for spec in ConfigKeys.all {
            if let v = environment[spec.environmentName] { raw[spec.path] = (v, "environment \(spec.environmentName)") }
        }
        var checked: [String: String] = [:]
        for spec in ConfigKeys.all {
            let (text, loc) = raw[spec.path] ?? (spec.defaultValue, "default")
            if let message = validate(text, spec.kind) {
                problems.append(ConfigProblem(keyPath: spec.path, location: loc, message: message))
            } else {
                checked[spec.path] = text
            }
        }
        // Cross-key rules.
        if checked["store.driver"] == "postgres", (checked["store.postgres.url"] ?? "").isEmpty {
            let loc = raw["store.driver"]?.1 ?? "default"
            problems.append(ConfigProblem(keyPath: "store.postgres.url", location: loc,
                                          message: "is required when store.driver is postgres"))
        }
        if let a = checked["server.listen"], let b = checked["admin.listen"], a == b, !a.hasSuffix(":0") {
            problems.append(ConfigProblem(keyPath: "admin.listen", location: raw["admin.listen"]?.1 ?? "default",
                                          message: "must differ from server.listen (\(a))"))
        }
        func effective(_ key: String) -> String? { checked[key] ?? ConfigKeys.byPath[key]?.defaultValue }
        if let g = effective("gateway.listen"), !g.hasSuffix(":0") {
            for other in ["server.listen", "admin.listen"] where effective(other) == g {
                problems.append(ConfigProblem(keyPath: "gateway.listen", location: raw["gateway.listen"]?.1 ?? "default",
                                              message: "must differ from \(other) (\(g))"))
            }
        }
        let cert = effective("gateway.tls.certificate_file") ?? "", key = effective("gateway.tls.private_key_file") ?? ""
        if cert.isEmpty != key.isEmpty {
            let missing = cert.isEmpty ? "gateway.tls.certificate_file" : "gateway.tls.private_key_file"
            problems.append(ConfigProblem(keyPath: missing, location: "default",
                                          message: "is required with \(cert.isEmpty ? "gateway.tls.private_key_file" : "gateway.tls.certificate_file")"))
        }
        let upstreamCert = effective("gateway.upstream_tls.certificate_file") ?? "", upstreamKey = effective("gateway.upstream_tls.private_key_file") ?? ""
        if upstreamCert.isEmpty != upstreamKey.isEmpty {
            let given = upstreamCert.isEmpty ? "gateway.upstream_tls.private_key_file" : "gateway.upstream_tls.certificate_file"
            let missing = upstreamCert.isEmpty ? "gateway.upstream_tls.certificate_file" : "gateway.upstream_tls.private_key_file"
            problems.append(ConfigProblem(keyPath: missing, location: raw[given]?.1 ?? "default", message: "is required with \(given)"))
        }
        if !(effective("gateway.tls.client_ca_file") ?? "").isEmpty, cert.isEmpty {
            problems.append(ConfigProblem(keyPath: "gateway.tls.client_ca_file", location: raw["gateway.tls.client_ca_file"]?.1 ?? "default",
                                          message: "needs gateway.tls.certificate_file and gateway.tls.private_key_file (client certificates are asked for over TLS)"))
        }
        if effective("export.jsonl.enabled") == "true", effective("store.driver") == "postgres", (effective("export.jsonl.path") ?? "").isEmpty {
            problems.append(ConfigProblem(keyPath: "export.jsonl.path", location: raw["export.jsonl.enabled"]?.1 ?? "default",
                                          message: "is required when export.jsonl.enabled with store.driver postgres"))
        }
        // The webhook export: a URL that is safe to send the audit log to, and the mutual-TLS pair together.
        let webhookURL = effective("export.webhook.url") ?? ""
        if let message = webhookURLProblem(webhookURL, required: effective("export.webhook.enabled") == "true") {
            problems.append(ConfigProblem(keyPath: "export.webhook.url", location: raw["export.webhook.url"]?.1 ?? raw["export.webhook.enabled"]?.1 ?? "default",
                                          message: message))
        }
        let whCert = effective("export.webhook.client_certificate_file") ?? "", whKey = effective("export.webhook.client_key_file") ?? ""
        if whCert.isEmpty != whKey.isEmpty {
            let (missing, given) = whCert.isEmpty ? ("export.webhook.client_certificate_file", "export.webhook.client_key_file")
                                                  : ("export.webhook.client_key_file", "export.webhook.client_certificate_file")
            problems.append(ConfigProblem(keyPath: missing, location: raw[given]?.1 ?? "default", message: "is required with \(given)"))
        }
        if let days = effective("audit.retention_days").flatMap({ Int($0) }), days > 0, (effective("audit.retention_export_dir") ?? "").isEmpty {
            problems.append(ConfigProblem(keyPath: "audit.retention_export_dir", location: raw["audit.retention_days"]?.1 ?? "default",
                                          message: "is required when audit.retention_days is above 0 (the records are exported before they are pruned)"))
        }
        return (checked, problems.sorted { ($0.location, $0.keyPath) < ($1.location, $1.keyPath) })
    }

    /// Why `text` cannot be the webhook export's URL (nil when it can): an absolute https URL, or http to a
    /// loopback host (``LoopbackHost``), with a host, no user name or password and no fragment. Empty is
    /// allowed only when the export is off.
    static func webhookURLProblem(_ text: String, required: Bool) -> String? {
        if text.isEmpty { return required ? "is required when export.webhook.enabled" : nil }
        let shown = String(text.prefix(80))
        guard !text.contains(where: { $0.isWhitespace || $0.isNewline }), let parts = URLComponents(string: text),
              let scheme = parts.scheme?.lowercased(), let host = parts.host, !host.isEmpty
        else { return "must be an absolute https:// URL, not '\(shown)'" }
        guard parts.user == nil, parts.password == nil else { return "must not carry a user name or password (use export.webhook.token_file)" }
        guard parts.fragment == nil else { return "must not have a fragment (#…)" }
        switch scheme {
        case "https": return nil
        case "http" where LoopbackHost.contains(host): return nil
        case "http": return "plain http is only allowed to a loopback host (localhost, 127.0.0.0/8, ::1); use https, not '\(shown)'"
        default: return "must be an https:// URL, not '\(shown)'"
        }
    }

    /// An RFC 9110 `tchar`: what a header name is made of.
    static func isHeaderNameByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        default: Array("!#$%&'*+-.^_`|~".utf8).contains(b)
        }
    }

    /// Returns an error message, or nil when `text` is valid for `kind`.
    static func validate(_ text: String, _ kind: ConfigValueKind) -> String? {
        switch kind {
        case .string:
            return text.utf8.count > 4096 ? "is longer than 4096 bytes" : nil
        case .integer(let range):
            guard let n = Int(text) else { return "must be a whole number, not '\(text)'" }
            return range.contains(n) ? nil : "must be between \(range.lowerBound) and \(range.upperBound), not \(n)"
        case .boolean:
            return ["true", "false"].contains(text) ? nil : "must be true or false, not '\(text)'"
        case .oneOf(let options):
            return options.contains(text) ? nil : "must be one of \(options.joined(separator: ", ")), not '\(text)'"
        case .listenAddress:
            return ListenAddress(parsing: text) == nil ? "must be host:port with a port from 0 to 65535, not '\(text)'" : nil
        case .httpURL:
            guard let u = URL(string: text), let scheme = u.scheme, ["http", "https"].contains(scheme), u.host != nil else {
                return "must be an absolute http:// or https:// URL, not '\(text)'"
            }
            return nil
        case .postgresURL:
            if text.isEmpty { return nil }
            guard let c = URLComponents(string: text), let scheme = c.scheme, ["postgres", "postgresql"].contains(scheme),
                  let host = c.host, !host.isEmpty
            else { return "must look like postgres://user@host:5432/database" }
            return nil
        case .timeZone:
            return TimeZone(identifier: text) == nil ? "is not a known IANA time zone: '\(text)'" : nil
        case .cidrList:
            let bad = ConfigValues.cidrs(text).filter { CIDR($0) == nil }
            return bad.isEmpty ? nil : "is not a list of CIDR blocks (e.g. 10.0.0.0/8, ::1/128): '\(bad.joined(separator: "', '"))'"
        case .headerNameList:
            let names = ConfigValues.cidrs(text)
            let bad = names.filter { name in name.utf8.count > 256 || !name.utf8.allSatisfy(isHeaderNameByte) }
            if names.count > 100 { return "lists more than 100 header names" }
            return bad.isEmpty ? nil : "is not a list of header names (e.g. X-Bank-User, X-Employee-Id): '\(bad.joined(separator: "', '"))'"
        }
    }

    /// A complete configuration file with every key at its default and its documentation.
    public static func exampleYAML() -> String {
        var out = "# Menshen configuration. Every key is optional; shown here with its default.\n"
        out += "# Each key can be overridden by the environment variable named after it.\n"
        var openSections: [String] = []
        for spec in ConfigKeys.all {
            var parts = spec.path.split(separator: ".").map(String.init)
            let leaf = parts.removeLast()
            var common = 0
            while common < min(parts.count, openSections.count), parts[common] == openSections[common] { common += 1 }
            openSections = Array(openSections.prefix(common))
            while openSections.count < parts.count {
                let name = parts[openSections.count]
                out += String(repeating: "  ", count: openSections.count) + "\(name):\n"
                openSections.append(name)
            }
            let indent = String(repeating: "  ", count: parts.count)
            out += "\(indent)# \(spec.doc) (\(spec.environmentName))\n"
            out += "\(indent)\(leaf): \(yamlQuoted(spec.defaultValue))\n"
        }
        return out
    }

    static func yamlQuoted(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
