import ArgumentParser
import Foundation
import MenshenCedar

/// `menshen policy bench DIR`: engine-only timing of `Authorizer.isAuthorized`.
struct PolicyBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the authorizer on benchmark inputs (engine only, per decision).",
        discussion: """
            DIR holds policies_N.cedar files and schema.cedarschema, entities.json and requests.json (a JSON \
            array of requests with principal, action, resource and context), as in shared/bench/cedar. \
            Everything is parsed beforehand (policies, schema, entities with the schema, every request, the \
            policy index); only Authorizer.isAuthorized is timed, per decision, after one warm-up round. \
            Build with -c release for meaningful numbers.
            """
    )

    @Argument(help: ArgumentHelp("Benchmark directory.", valueName: "dir"))
    var dir: String

    @Option(name: .long, help: "Timed rounds over all requests.")
    var rounds: Int = 3

    @Flag(name: .long, help: "One JSON object per policy set: policies, median_us, p99_us, decisions_per_s.")
    var json = false

    @Flag(name: .long, help: "Evaluate every policy (full scan) instead of using the policy index.")
    var noIndex = false

    func validate() throws {
        guard (1...10_000).contains(rounds) else { throw ValidationError("--rounds must be between 1 and 10000") }
    }

    func run() throws {
        do {
            let sets = try policyFiles()
            guard !sets.isEmpty else { throw PolicyCLIError("\(dir): no policies_N.cedar files") }
            let schemaPath = path("schema.cedarschema")
            let schema = try PolicyIO.parseSchema(try PolicyIO.readText(schemaPath, what: "schema"), format: "cedar", file: schemaPath)
            let entitiesPath = path("entities.json")
            let entities: Entities
            do { entities = try EntityJSON.entities(try PolicyIO.readText(entitiesPath, what: "entities"), hints: schema) } catch let e as CedarError {
                throw PolicyCLIError(PolicyIO.located(entitiesPath, e))
            }
            let requests = try loadRequests(schema: schema)
            guard !requests.isEmpty else { throw PolicyCLIError("\(path("requests.json")): no requests") }
            if !json {
                print("\(entities.count) entities, \(requests.count) requests, \(rounds) round(s), \(noIndex ? "full scan" : "policy index")")
            }
            for (n, file) in sets {
                let set = try PolicyIO.parsePolicies(try PolicyIO.readText(file, what: "policy"), file: file)
                let index = PolicyIndex(set)
                let scan = noIndex
                func decide(_ r: Request) -> Decision {
                    scan ? Authorizer.isAuthorized(r, policies: set, entities: entities).decision
                        : Authorizer.isAuthorized(r, index: index, entities: entities).decision
                }
                var allows = 0
                for r in requests where decide(r) == .allow { allows += 1 }  // warm-up
                var samples: [Int64] = []
                samples.reserveCapacity(requests.count * rounds)
                let clock = ContinuousClock()
                var total: Int64 = 0
                for _ in 0..<rounds {
                    for r in requests {
                        let t0 = clock.now
                        let d = decide(r)
                        let ns = nanoseconds(clock.now - t0)
                        withExtendedLifetime(d) {}
                        samples.append(ns)
                        total += ns
                    }
                }
                samples.sort()
                let median = Double(samples[samples.count / 2]) / 1000
                let p99 = Double(samples[min(samples.count - 1, (samples.count * 99) / 100)]) / 1000
                let perSecond = total > 0 ? Double(samples.count) / (Double(total) / 1e9) : 0
                let rate = Double(allows) / Double(requests.count) * 100
                if json {
                    print("{\"policies\":\(n),\"median_us\":\(fmt(median)),\"p99_us\":\(fmt(p99)),\"decisions_per_s\":\(Int(perSecond.rounded()))}")
                } else {
                    print("policies \(n): median \(fmt(median)) µs, p99 \(fmt(p99)) µs, \(Int(perSecond.rounded())) decisions/s (allow rate \(fmt(rate))%)")
                }
            }
        } catch let e as PolicyCLIError {
            printError(e.description)
            throw ExitCode(1)
        }
    }

    private func path(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }

    private func fmt(_ x: Double) -> String { String(format: "%.2f", x) }

    private func nanoseconds(_ d: Duration) -> Int64 {
        let c = d.components
        return c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
    }

    /// `policies_N.cedar` files sorted by N.
    private func policyFiles() throws(PolicyCLIError) -> [(Int, String)] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: dir) } catch {
            throw PolicyCLIError("\(dir): cannot list directory")
        }
        return names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("policies_"), name.hasSuffix(".cedar") else { return nil }
            guard let n = Int(name.dropFirst("policies_".count).dropLast(".cedar".count)) else { return nil }
            return (n, path(name))
        }.sorted { $0.0 < $1.0 }
    }

    private func loadRequests(schema: Schema) throws(PolicyCLIError) -> [Request] {
        let file = path("requests.json")
        let text = try PolicyIO.readText(file, what: "requests")
        do {
            guard let items = try JSONValue.parse(text).arrayValue else { throw PolicyCLIError("\(file): expected a JSON array of requests") }
            var out: [Request] = []
            for (i, r) in items.enumerated() {
                guard let p = r["principal"], let a = r["action"], let res = r["resource"] else {
                    throw PolicyCLIError("\(file): request \(i) lacks principal, action or resource")
                }
                let action = try EntityJSON.entityUID(a)
                let ctx = try EntityJSON.context(r["context"] ?? .object([]), action: action, hints: schema)
                out.append(Request(principal: try EntityJSON.entityUID(p), action: action, resource: try EntityJSON.entityUID(res), context: ctx))
            }
            return out
        } catch let e as PolicyCLIError {
            throw e
        } catch let e as CedarError {
            throw PolicyCLIError(PolicyIO.located(file, e))
        } catch {
            throw PolicyCLIError("\(file): \(error)")
        }
    }
}
