import Foundation
import MenshenCore
import MenshenPolicyEngine
@testable import MenshenServer
import MenshenStorage
import Logging
import Synchronization
import Testing

/// The routes file: routes with requirements compile to Cedar the engine
/// validates; bad files are refused whole with every problem named; reloads
/// swap atomically and a refused change leaves the running snapshot alone.
@Suite("Routes file")
struct RoutesFileTests {
    static let now = Date(timeIntervalSince1970: 1_795_000_000)

    static let sample = """
        routes:
          - id: wiki
            name: Wiki
            host: Wiki.Bank.Example
            path_prefix: /
            upstreams: ["http://10.0.0.5:8080", "http://10.0.0.6:8080"]
            classification: internal
            require:
              min_loa: 2
              groups: [staff, contractors]
          - id: payments
            host: wiki.bank.example
            path_prefix: /payments/
            upstreams: ["https://pay.internal"]
            classification: restricted
            scenario: S3
            require:
              min_loa: 3
              groups: [payments]
              business_hours: true
              read_only: true
              alert: medium
          - id: status
            host: status.bank.example
            upstreams: ["http://10.0.0.9"]
            classification: public
        """

    static func request(_ app: String, user: String = "amy", groups: [String], loa: Int, method: String = "GET",
                        hour: Int = 10, weekday: Int = 2) -> AccessRequest {
        // 2026-11-16 is a Monday; Asia/Taipei is UTC+8 with no daylight saving.
        let monday = Date(timeIntervalSince1970: 1_794_758_400)   // 2026-11-16 00:00 Asia/Taipei, a Monday
        let time = monday.addingTimeInterval(Double((weekday - 1) * 86_400 + hour * 3600))
        return AccessRequest(principal: .init(id: user, groups: groups), session: .init(levelOfAssurance: loa, amr: ["pwd"], factorAgeSeconds: 0, ageSeconds: 0),
                             device: nil, context: .init(time: time, timeZone: "Asia/Taipei", sourceIP: "10.1.1.1", networkZone: "", method: method, path: "/"),
                             resource: .init(applicationID: app, classification: "internal"))
    }

    @Test("routes become applications; requirements compile to Cedar that validates and decides as written")
    func compile() throws {
        let contents = try RoutesFile.parse(Self.sample, name: "routes.yaml", at: Self.now)
        #expect(contents.applications.map(\.id.rawValue) == ["wiki", "payments", "status"])
        #expect(contents.applications[0].host == "wiki.bank.example", "hosts are matched case-insensitively")
        #expect(contents.applications[1].scenario == "S3" && contents.applications[2].pathPrefix == "/")
        #expect(contents.documents.count == 2, "a route without requirements adds no permit (default deny)")
        let payments = try #require(contents.documents.last?.text)
        #expect(payments.contains("@alert(\"medium\")") && payments.contains("@obligation(\"read_only\")"))
        let pdp = try PolicyDecisionPoint(documents: contents.documents.map { (name: $0.name, text: $0.text) })

        #expect(pdp.decide(Self.request("wiki", groups: ["contractors"], loa: 2)).effect == .allow)
        #expect(pdp.decide(Self.request("wiki", groups: ["staff"], loa: 1)).effect != .allow, "min_loa")
        #expect(pdp.decide(Self.request("wiki", groups: ["visitors"], loa: 4)).effect == .deny, "groups")
        let pay = pdp.decide(Self.request("payments", groups: ["payments"], loa: 3))
        #expect(pay.effect == .allow && pay.determiningPolicies == ["route:payments"])
        #expect(pay.obligations.contains(.readOnly) && pay.obligations.contains(.alert(.medium)))
        #expect(pdp.decide(Self.request("payments", groups: ["payments"], loa: 3, hour: 19)).effect == .deny, "after 18:00")
        #expect(pdp.decide(Self.request("payments", groups: ["payments"], loa: 3, hour: 7)).effect == .deny, "before 08:00")
        #expect(pdp.decide(Self.request("payments", groups: ["payments"], loa: 3, weekday: 6)).effect == .deny, "Saturday")
        #expect(pdp.decide(Self.request("status", groups: ["staff"], loa: 4)).effect == .deny)
    }

    @Test("every problem is reported with its route, and nothing is loaded")
    func refusals() {
        func problems(_ yaml: String) -> String {
            do { _ = try RoutesFile.parse(yaml, name: "r.yaml", at: Self.now); return "" } catch { return "\(error)" }
        }
        let route = { (extra: String) in "routes:\n  - id: a\n    host: a.example\n    upstreams: [\"http://10.0.0.1\"]\n    classification: internal\n" + extra }
        #expect(problems(route("")) == "")
        #expect(problems("routes:\n  - id: Bad_Id\n    host: a.example\n    upstreams: [\"http://x\"]\n    classification: internal\n").contains("route Bad_Id: id must be"))
        #expect(problems(route("    path_prefix: /a/../b\n")).contains("path_prefix"))
        #expect(problems(route("    path_prefix: /a%2fb\n")).contains("path_prefix"))
        #expect(problems(route("    require:\n      min_loa: 5\n")).contains("min_loa must be 1–4"))
        #expect(problems(route("    require:\n      groups: [\"staff\\\" || true\"]\n")).contains("is not a group id"), "no Cedar injection through group names")
        #expect(problems(route("    require:\n      alert: urgent\n")).contains("alert must be"))
        #expect(problems(route("    require:\n      min_lao: 2\n")) != "", "unknown keys in requirements are errors, not ignored")
        #expect(problems("routes:\n  - id: a\n    host: a.example\n    upstreams: [\"ftp://x\"]\n    classification: secret\n")
            .contains("upstream ftp://x") )
        #expect(problems("routes:\n  - id: a\n    host: a.example\n    upstreams: [\"http://u:p@x\"]\n    classification: internal\n").contains("credentials"))
        #expect(problems("routes:\n  - id: a\n    host: a.example:8080\n    upstreams: [\"http://x\"]\n    classification: internal\n").contains("host must be"))
        let twice = route("") + "  - id: a\n    host: a.example\n    upstreams: [\"http://x\"]\n    classification: internal\n"
        #expect(problems(twice).contains("duplicate id") && problems(twice).contains("already has host a.example"))
        #expect(problems("routes: [1, 2").contains("r.yaml"))
        #expect(problems("").contains("no routes: key"), "an empty file is not 'no applications'")
        #expect(problems("routes: []\n") == "")
        #expect(problems(route("    require: {}\n")).contains("require states nothing"))
        #expect(problems("network_zones:\n  - zone: Branch Office\n    cidrs: [10.0.0.0/8]\nroutes: []\n").contains("the name must be"))
        #expect(problems("network_zones:\n  - zone: branch\n    cidrs: [10.0.0.0/33, branch.example]\nroutes: []\n").contains("not CIDR: 10.0.0.0/33, branch.example"))
        #expect(problems("network_zones:\n  - zone: branch\n    cidr: [10.0.0.0/8]\nroutes: []\n").contains("unknown key 'cidr'"))
        let zoned = try? RoutesFile.parse("network_zones:\n  - zone: branch\n    cidrs: [10.20.0.0/16]\n  - zone: hq\n    cidrs: [10.0.0.0/8]\nroutes: []\n",
                                          name: "z.yaml", at: Self.now)
        #expect(zoned?.zones.map(\.name) == ["branch", "hq"])
        #expect(problems(String(repeating: "#", count: RoutesFile.maximumBytes + 1)).contains("larger than"))
    }

    @Test("reload: a changed file is swapped in whole; a broken one is refused and the running snapshot stays")
    func reload() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("routes.yaml").path
        try Self.sample.write(toFile: path, atomically: true, encoding: .utf8)
        let store = InMemoryStore()
        let loader = GatewayLoader(store: store, routesFile: path, clock: FixedClock(Self.now))
        let state = GatewayState(try await loader.load())
        #expect(state.snapshot.routes.applications.count == 3 && state.snapshot.generation == 1)
        #expect(await loader.reloadIfChanged(state) == .unchanged)

        // A Cedar file listed next to the routes, then a new route.
        try "forbid (principal, action == Action::\"write\", resource) when { context.session.loa < 4 };\n"
            .write(toFile: dir.appendingPathComponent("extra.cedar").path, atomically: true, encoding: .utf8)
        try ("policies: [extra.cedar]\n" + Self.sample + "\n  - id: chat\n    host: chat.bank.example\n    upstreams: [\"http://10.0.0.7\"]\n    classification: internal\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        #expect(await loader.reloadIfChanged(state) == .reloaded(generation: 2))
        #expect(state.snapshot.routes.match(host: "chat.bank.example:443", path: "/x")?.id == "chat")
        #expect(state.snapshot.decisionPoint.decide(Self.request("wiki", groups: ["staff"], loa: 3, method: "POST")).effect == .deny,
                "the listed Cedar file is in force")

        // Broken: a route problem, then a Cedar file that does not validate — each refused, generation 2 stays.
        try (Self.sample + "\n  - id: chat\n    host: chat.bank.example\n    upstreams: []\n    classification: internal\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        guard case .refused(let why) = await loader.reloadIfChanged(state) else { Issue.record("refused"); return }
        #expect(why.contains("route chat: upstreams must list 1–16 URLs"))
        try "policies: [extra.cedar]\n".appending(Self.sample).write(toFile: path, atomically: true, encoding: .utf8)
        try "permit (principal, action, resource) when { context.session.level >= 1 };\n"
            .write(toFile: dir.appendingPathComponent("extra.cedar").path, atomically: true, encoding: .utf8)
        guard case .refused(let cedar) = await loader.reloadIfChanged(state) else { Issue.record("refused"); return }
        #expect(cedar.contains("extra.cedar:1:"), "the problem names the file and line: \(cedar)")
        #expect(state.snapshot.generation == 2 && state.snapshot.routes.match(host: "chat.bank.example", path: "/") != nil)

        // An application id already in the store is a clash, not a silent override.
        try await store.putApplication(ApplicationRecord(id: "status", displayName: "s", host: "s.example", pathPrefix: "/", upstreams: ["http://x"],
                                                         classification: "public", scenario: nil, updatedAt: Self.now))
        try Self.sample.write(toFile: path, atomically: true, encoding: .utf8)
        guard case .refused(let clash) = await loader.reloadIfChanged(state) else { Issue.record("refused"); return }
        #expect(clash.contains("already defined in the store: status"))
        // …and so is a store application at the same host and path prefix under another id.
        _ = try await store.deleteApplication("status")
        try await store.putApplication(ApplicationRecord(id: "status-page", displayName: "s", host: "status.bank.example", pathPrefix: "/",
                                                         upstreams: ["http://x"], classification: "public", scenario: nil, updatedAt: Self.now))
        guard case .refused(let shadow) = await loader.reloadIfChanged(state) else { Issue.record("refused"); return }
        #expect(shadow.contains("host and path_prefix already used by an application in the store: status"))
    }

    @Test("the reload poll parses the routes file only when its bytes changed; a listed Cedar file's change is still seen")
    func parsedOnlyWhenChanged() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("routes.yaml").path
        let cedar = dir.appendingPathComponent("extra.cedar").path
        try "permit (principal, action, resource) when { context.session.loa >= 1 };\n".write(toFile: cedar, atomically: true, encoding: .utf8)
        try ("policies: [extra.cedar]\n" + Self.sample).write(toFile: path, atomically: true, encoding: .utf8)
        let loader = GatewayLoader(store: InMemoryStore(), routesFile: path, clock: FixedClock(Self.now))
        let state = GatewayState(try await loader.load())
        #expect(loader.routesCache.parseCount == 1)
        for _ in 0..<3 { #expect(await loader.reloadIfChanged(state) == .unchanged) }
        #expect(loader.routesCache.parseCount == 1, "an unchanged routes file is not parsed again")

        // Only the listed Cedar file changes: read again every time, so the change is taken without a parse.
        try "forbid (principal, action == Action::\"write\", resource) when { context.session.loa < 4 };\n"
            .write(toFile: cedar, atomically: true, encoding: .utf8)
        #expect(await loader.reloadIfChanged(state) == .reloaded(generation: 2))
        #expect(loader.routesCache.parseCount == 1)
        #expect(state.snapshot.decisionPoint.decide(Self.request("wiki", groups: ["staff"], loa: 3, method: "POST")).effect == .deny)

        // One byte of the routes file changes (the same length): parsed again and swapped in.
        let changed = ("policies: [extra.cedar]\n" + Self.sample).replacingOccurrences(of: "min_loa: 2", with: "min_loa: 3")
        try changed.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(await loader.reloadIfChanged(state) == .reloaded(generation: 3))
        #expect(loader.routesCache.parseCount == 2)
        #expect(state.snapshot.decisionPoint.decide(Self.request("wiki", groups: ["staff"], loa: 2)).effect == .deny, "min_loa 3 is in force")
        // A broken file is refused every time it is read (never cached), and the running snapshot stays.
        try (Self.sample + "\n  - id: chat\n    host: c.example\n    upstreams: []\n    classification: internal\n").write(toFile: path, atomically: true, encoding: .utf8)
        for _ in 0..<2 { guard case .refused = await loader.reloadIfChanged(state) else { Issue.record("refused"); return } }
        #expect(state.snapshot.generation == 3)
    }

    @Test("what a batch of store changes re-checks: every long-lived connection after an access change or a reload done here, only those presenting a device certificate after device changes alone, nothing after a configuration change loaded elsewhere")
    func sweepScope() {
        typealias W = ChangeWatcher
        #expect(W.sweep(after: [.access], reloadedHere: false) == .all)
        #expect(W.sweep(after: [.access, .device], reloadedHere: false) == .all)
        #expect(W.sweep(after: [.configuration, .device], reloadedHere: true) == .all)
        #expect(W.sweep(after: [.configuration], reloadedHere: true) == .all)
        #expect(W.sweep(after: [.device], reloadedHere: false) == .connectionsPresentingDevices)
        #expect(W.sweep(after: [.configuration, .device], reloadedHere: false) == .connectionsPresentingDevices)
        #expect(W.sweep(after: [.configuration], reloadedHere: false) == nil)
    }

    /// A store that answers with fixed access changes (what SQLite reads from `access_changes`).
    struct FixedAccessChanges: CommittedAccessGeneration {
        let read: AccessChanges?
        let now: Int64
        func committedGenerations() -> CommittedGenerations? { CommittedGenerations(access: now, device: 0) }
        func accessChanges(after generation: Int64) -> AccessChanges? { read }
    }

    @Test("whose connections an access sweep asks about: the users the changes concerned; everyone after a change that may concern anyone, changes not kept, a reload done here, a device change, or a store that does not say")
    func sweepUsers() {
        typealias W = ChangeWatcher
        func read(_ users: [String?], complete: Bool = true) -> FixedAccessChanges {
            FixedAccessChanges(read: AccessChanges(after: 10, through: 10 + Int64(users.count), changes: users.enumerated().map {
                .init(generation: 11 + Int64($0.offset), userID: $0.element) }, complete: complete), now: 10 + Int64(users.count))
        }
        let scoped = W.concernedUsers(after: [.access], reloadedHere: false, source: read(["amy", "bob", "amy"]), swept: 10)
        #expect(scoped.users == ["amy", "bob"] && scoped.swept == 13)
        #expect(W.concernedUsers(after: [.access, .configuration], reloadedHere: false, source: read(["amy"]), swept: 10).users == ["amy"])
        #expect(W.concernedUsers(after: [.access], reloadedHere: false, source: read([]), swept: 10).users == [], "already swept")
        for (change, reloaded, source) in [([StoreChange.access], false, read(["amy", nil])), ([.access], false, read(["amy"], complete: false)),
                                           ([.access, .configuration], true, read(["amy"])), ([.access, .device], false, read(["amy"]))] {
            let everyone = W.concernedUsers(after: Set(change), reloadedHere: reloaded, source: source, swept: 10)
            #expect(everyone.users == nil && everyone.swept == source.read?.through, "\(change) \(reloaded)")
        }
        let unsaid = W.concernedUsers(after: [.access], reloadedHere: false, source: FixedAccessChanges(read: nil, now: 42), swept: 10)
        #expect(unsaid.users == nil && unsaid.swept == 42, "a store that does not say: everyone, up to its committed generation")
        #expect(W.concernedUsers(after: [.access], reloadedHere: false, source: read(["amy"]), swept: nil).users == nil, "no baseline")
    }

    @Test("a change notification whose reload cannot read the store is tried again; a refused change is not")
    func notifiedReloadRetried() async throws {
        let store = InMemoryStore()
        let failures = Mutex(0), reads = Mutex(0)
        let loader = GatewayLoader(store: store, routesFile: nil, clock: FixedClock(Self.now), beforeReplace: nil, beforeRead: {
            reads.withLock { $0 += 1 }
            if failures.withLock({ f in defer { f = max(0, f - 1) }; return f > 0 }) { throw StoreError(.unavailable, "the database is restarting") }
        })
        let state = GatewayState(try await loader.load())
        let logger = Logger(label: "test")
        let delays: [Duration] = [.milliseconds(10), .milliseconds(10), .milliseconds(10)]

        // Two failed reads, then the store answers: the policy saved meanwhile is in force after the third read.
        _ = try await store.savePolicy("p", text: "permit (principal, action, resource);", author: "t", comment: "", at: Self.now)
        failures.withLock { $0 = 2 }
        reads.withLock { $0 = 0 }
        #expect(await ChangeWatcher.retry(loader, state, logger: logger, after: await loader.reloadIfChanged(state), delays: delays) == .reloaded(generation: 2))
        #expect(reads.withLock { $0 } == 3)
        #expect(state.snapshot.decisionPoint.policies.policies.count == 1)
        // Without the retries (the old behaviour) the first failure is the outcome.
        failures.withLock { $0 = 1 }
        guard case .unavailable(let why) = await loader.reloadIfChanged(state) else { Issue.record("unavailable"); return }
        #expect(why.contains("restarting"))

        // A store that stays down: every delay is used, then the outcome says so (the running snapshot stays).
        _ = try await store.savePolicy("q", text: "forbid (principal, action, resource);", author: "t", comment: "", at: Self.now)
        failures.withLock { $0 = 100 }
        reads.withLock { $0 = 0 }
        guard case .unavailable = await ChangeWatcher.retry(loader, state, logger: logger, after: await loader.reloadIfChanged(state), delays: delays) else { Issue.record("unavailable"); return }
        #expect(reads.withLock { $0 } == 4 && state.snapshot.generation == 2)

        // A refused change is not read again: the same sources would be refused again.
        failures.withLock { $0 = 0 }
        _ = try await store.savePolicy("q", text: "forbid (principal, action, resource) when { context.nonsense };", author: "t", comment: "", at: Self.now)
        reads.withLock { $0 = 0 }
        guard case .refused = await ChangeWatcher.retry(loader, state, logger: logger, after: await loader.reloadIfChanged(state), delays: delays) else { Issue.record("refused"); return }
        #expect(reads.withLock { $0 } == 1 && state.snapshot.generation == 2)
    }

    @Test("two reloads racing install one snapshot, not two generations of the same sources")
    func racingReloads() async throws {
        let store = InMemoryStore()
        let loader = GatewayLoader(store: store, routesFile: nil, clock: FixedClock(Self.now))
        let state = GatewayState(try await loader.load())
        _ = try await store.savePolicy("p", text: "permit (principal, action, resource);", author: "t", comment: "", at: Self.now)
        async let a = loader.reloadIfChanged(state)
        async let b = loader.reloadIfChanged(state)
        let outcomes = await [a, b]
        #expect(outcomes.filter { $0 == .reloaded(generation: 2) }.count == 1, "\(outcomes)")
        #expect(state.snapshot.generation == 2 && state.snapshot.decisionPoint.policies.policies.count == 1)
    }
}
