import Foundation
import MenshenCedar

/// `menshen policy authorize --batch`: one JSON request per input line, one JSON result
/// per output line (see `PolicyAuthorize`'s discussion for the format).
enum PolicyBatch {
    /// Parsed inputs of the previous line, reused when the next line has the same text.
    private struct Cache {
        var policies: (key: String, set: PolicySet, index: PolicyIndex)?
        var schema: (key: String, schema: Schema)?
        var entities: (key: JSONValue, schemaKey: String?, store: Entities)?
    }

    /// Processes every line; returns the exit status (0 when all lines were evaluated).
    static func run(path: String) -> Int32 {
        let handle: FileHandle
        if path == "-" {
            handle = FileHandle.standardInput
        } else {
            guard let h = FileHandle(forReadingAtPath: path) else {
                printError("\(path): cannot read batch file")
                return 1
            }
            handle = h
        }
        defer { if path != "-" { try? handle.close() } }
        var reader = LineReader(handle, maxLine: PolicyIO.maxBatchLineBytes)
        var cache = Cache()
        var failures = 0
        var lineNumber = 0
        let out = FileHandle.standardOutput
        var pending = ""
        while let line = reader.next() {
            lineNumber += 1
            let result: String
            switch line {
            case .tooLong:
                result = errorJSON(id: nil, "\(path):\(lineNumber): line longer than \(PolicyIO.maxBatchLineBytes) bytes")
                failures += 1
            case .invalidUTF8:
                result = errorJSON(id: nil, "\(path):\(lineNumber): line is not valid UTF-8")
                failures += 1
            case .text(let text):
                if text.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
                let (r, ok) = evaluate(text, label: "\(path):\(lineNumber)", cache: &cache)
                result = r
                if !ok { failures += 1 }
            }
            pending += result + "\n"
            if pending.utf8.count > 1 << 15 { out.write(Data(pending.utf8)); pending = "" }
            // Interactive use (a tester writing a line and waiting): flush when no more input is buffered.
            if path == "-" { out.write(Data(pending.utf8)); pending = "" }
        }
        out.write(Data(pending.utf8))
        return failures == 0 ? 0 : 1
    }

    private static func evaluate(_ text: String, label: String, cache: inout Cache) -> (String, Bool) {
        var id: JSONValue? = nil
        do {
            let j: JSONValue
            do { j = try JSONValue.parse(text) } catch { throw PolicyCLIError(PolicyIO.located(label, error)) }
            guard j.objectValue != nil else { throw PolicyCLIError("\(label): a request line must be a JSON object") }
            id = j["id"]

            // Schema (optional).
            var schema: Schema? = nil
            var schemaKey: String? = nil
            let format = j["schemaFormat"]?.stringValue ?? "cedar"
            if let (schemaText, file) = try source(j, "schema", label: label, what: "schema") {
                let key = format + "\u{0}" + schemaText
                schemaKey = key
                if let c = cache.schema, c.key == key { schema = c.schema } else {
                    let s = try PolicyIO.parseSchema(schemaText, format: format, file: file)
                    cache.schema = (key, s)
                    schema = s
                }
            }

            // Policies.
            guard let (policyText, policyFile) = try source(j, "policies", label: label, what: "policy") else {
                throw PolicyCLIError("\(label): missing \"policies\" (text) or \"policiesFile\" (path)")
            }
            let index: PolicyIndex
            if let c = cache.policies, c.key == policyText { index = c.index } else {
                let set = try PolicyIO.parsePolicies(policyText, file: policyFile)
                let ix = PolicyIndex(set)
                cache.policies = (policyText, set, ix)
                index = ix
            }

            // Entities.
            var store = Entities()
            var entitiesJSON: JSONValue? = j["entities"]
            var entitiesLabel = "\(label): entities"
            if let f = j["entitiesFile"]?.stringValue {
                entitiesLabel = f
                do { entitiesJSON = try JSONValue.parse(try PolicyIO.readText(f, what: "entities")) } catch let e as CedarError {
                    throw PolicyCLIError(PolicyIO.located(f, e))
                }
            } else if case .string(let t)? = entitiesJSON {
                do { entitiesJSON = try JSONValue.parse(t) } catch { throw PolicyCLIError(PolicyIO.located(entitiesLabel, error)) }
            }
            if let ej = entitiesJSON, ej != .null {
                if let c = cache.entities, c.key == ej, c.schemaKey == schemaKey { store = c.store } else {
                    do { store = try EntityJSON.entities(ej, hints: schema) } catch { throw PolicyCLIError(PolicyIO.located(entitiesLabel, error)) }
                    cache.entities = (ej, schemaKey, store)
                }
            } else if let schema {
                do { store = try EntityJSON.entities(.array([]), hints: schema) } catch { throw PolicyCLIError(PolicyIO.located(entitiesLabel, error)) }
            }

            // Request.
            let p = try uid(j, "principal", label: label)
            let a = try uid(j, "action", label: label)
            let r = try uid(j, "resource", label: label)
            var ctx: [String: Value] = [:]
            if let c = j["context"], c != .null {
                do { ctx = try EntityJSON.context(c, action: a, hints: schema) } catch {
                    throw PolicyCLIError(PolicyIO.located("\(label): context", error))
                }
            }
            let request = Request(principal: p, action: a, resource: r, context: ctx)
            if let schema, j["validateRequest"] != .bool(false), let problem = schema.validateRequest(request) {
                throw PolicyCLIError("invalid request: \(problem.message)")
            }
            let response = Authorizer.isAuthorized(request, index: index, entities: store)
            return (resultJSON(id: id, response), true)
        } catch let e as PolicyCLIError {
            return (errorJSON(id: id, e.description), false)
        } catch {
            return (errorJSON(id: id, "\(label): \(error)"), false)
        }
    }

    /// The text of `key` (inline) or of the file named by `keyFile`, with a label for errors.
    private static func source(_ j: JSONValue, _ key: String, label: String, what: String) throws(PolicyCLIError) -> (String, String)? {
        if let f = j[key + "File"]?.stringValue { return (try PolicyIO.readText(f, what: what), f) }
        switch j[key] {
        case nil, .null?: return nil
        case .string(let s)?: return (s, "\(label): \(key)")
        default: throw PolicyCLIError("\(label): \"\(key)\" must be a string (the \(what) text)")
        }
    }

    private static func uid(_ j: JSONValue, _ key: String, label: String) throws(PolicyCLIError) -> EntityUID {
        guard let v = j[key] else { throw PolicyCLIError("\(label): missing \"\(key)\"") }
        if case .string(let s) = v { return try PolicyIO.parseUID(s, role: key) }
        do { return try EntityJSON.entityUID(v) } catch { throw PolicyCLIError("\(label): \(key): \(error.message)") }
    }

    // MARK: JSON

    static func resultJSON(id: JSONValue?, _ response: Response) -> String {
        var out = "{"
        if let id { out += "\"id\":" + serialize(id) + "," }
        out += "\"decision\":\(PolicyIO.quote(response.decision == .allow ? "allow" : "deny")),"
        out += "\"reasons\":[" + response.reasons.map(PolicyIO.quote).joined(separator: ",") + "],"
        out += "\"errors\":[" + response.errors.map {
            "{\"policy\":\(PolicyIO.quote($0.policyID)),\"message\":\(PolicyIO.quote($0.error.message))}"
        }.joined(separator: ",") + "]}"
        return out
    }

    static func errorJSON(id: JSONValue?, _ message: String) -> String {
        var out = "{"
        if let id { out += "\"id\":" + serialize(id) + "," }
        return out + "\"error\":\(PolicyIO.quote(message))}"
    }

    static func serialize(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .number(let s): return s
        case .string(let s): return PolicyIO.quote(s)
        case .array(let a): return "[" + a.map(serialize).joined(separator: ",") + "]"
        case .object(let o): return "{" + o.map { PolicyIO.quote($0.key) + ":" + serialize($0.value) }.joined(separator: ",") + "}"
        }
    }
}
