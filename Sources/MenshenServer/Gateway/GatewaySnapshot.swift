import Crypto
import Foundation
import MenshenCore
import MenshenEnforcementPoint
import MenshenPolicyEngine
import MenshenStorage
import Synchronization

/// The protected applications as routes: host (port ignored, case-insensitive)
/// and the longest matching path prefix on a segment boundary. Immutable.
public struct RouteTable: Sendable {
    public let applications: [ApplicationRecord]
    /// Lower-cased host → that host's routes by path prefix (built once per snapshot). For a repeated
    /// prefix on one host, the first listed application is kept.
    private let byHost: [String: [PathKey: Route]]

    /// One application as matched: its prefix without a trailing `/`, and its upstreams parsed once.
    struct Route: Sendable {
        let application: ApplicationRecord
        /// Empty for a route on the whole host (`/`).
        let prefix: String
        let upstreams: [Upstream]
    }

    /// A path prefix compared and hashed as bytes (not by Unicode canonical equivalence, as `String`
    /// is): the upstream receives exactly these bytes. Holds a `Substring` so a request's candidate
    /// prefixes are looked up without copying.
    struct PathKey: Hashable, Sendable {
        let text: Substring
        init(_ text: Substring) { self.text = text }
        static func == (a: PathKey, b: PathKey) -> Bool { a.text.utf8.elementsEqual(b.text.utf8) }
        func hash(into hasher: inout Hasher) {
            if text.utf8.withContiguousStorageIfAvailable({ hasher.combine(bytes: UnsafeRawBufferPointer($0)) }) == nil {
                let bytes = Array(text.utf8)
                bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
            }
        }
    }

    public init(_ applications: [ApplicationRecord] = []) {
        self.applications = applications
        var byHost: [String: [PathKey: Route]] = [:]
        for app in applications {
            let prefix = app.pathPrefix == "/" || app.pathPrefix.isEmpty ? ""
                : app.pathPrefix.hasSuffix("/") ? String(app.pathPrefix.dropLast()) : app.pathPrefix
            let key = PathKey(Substring(prefix))
            // The first listed wins for equal prefixes.
            if byHost[app.host.lowercased()]?[key] != nil { continue }
            byHost[app.host.lowercased(), default: [:]][key] = Route(application: app, prefix: prefix, upstreams: Self.upstreams(of: app))
        }
        self.byHost = byHost
    }

    public func match(host rawHost: String, path: String) -> ApplicationRecord? { route(host: rawHost, path: path)?.application }

    /// The route for a request: host (port ignored, case-insensitive), then the longest path prefix on a
    /// segment boundary. A prefix matches on a segment boundary exactly when it is the whole path or the
    /// part before one of its `/`s, so those candidates are looked up, longest first (as many look-ups as
    /// the path has segments, however many routes there are).
    func route(host rawHost: String, path: String) -> Route? {
        guard path.utf8.first == UInt8(ascii: "/"), let routes = byHost[Self.hostOnly(rawHost)] else { return nil }
        let utf8 = path.utf8
        var end = utf8.endIndex
        while true {
            if let route = routes[PathKey(path[..<end])] { return route }
            guard end > utf8.startIndex, let slash = utf8[..<end].lastIndex(of: UInt8(ascii: "/")) else { return nil }
            end = slash
        }
    }

    /// The host of a `Host` value as the table keys it: lower-cased, without the port. Compared exactly
    /// otherwise: the reverse proxy has already taken the trailing dot of an absolute name off (and forwards
    /// the name without it), while a forward-auth caller chooses its backend by its own rules, so the host it
    /// describes is decided on as it is (`app.example.` matches no route there: refused).
    static func hostOnly(_ header: String) -> String {
        // An ASCII value (every Host the reverse proxy accepts, every authority forward-auth accepts) is cut and
        // lower-cased as bytes: this runs for every request. Anything else takes the `Character` reading, which
        // `GatewayParsingTests.hostOnly` holds the byte reading to.
        let bytes = header.utf8
        guard bytes.allSatisfy({ $0 < 0x80 }) else { return hostOnlyCharacters(header) }
        if bytes.first == UInt8(ascii: "[") {
            return HeaderRules.lowercased(String(header[..<(bytes.firstIndex(of: UInt8(ascii: "]")) ?? bytes.endIndex)])) + "]"
        }
        return HeaderRules.lowercased(String(header[..<(bytes.firstIndex(of: UInt8(ascii: ":")) ?? bytes.endIndex)]))
    }

    static func hostOnlyCharacters(_ header: String) -> String {
        let h = header.lowercased()
        if h.hasPrefix("[") { return String(h.prefix { $0 != "]" }) + "]" }
        return String(h.prefix { $0 != ":" })
    }

    /// The upstreams of an application, in fail-over order (the request path is forwarded unchanged).
    static func upstreams(of app: ApplicationRecord) -> [Upstream] { app.upstreams.compactMap(upstream(of:)) }

    /// An `http://host[:port]` or `https://host[:port]` URL (an optional `/` path only).
    static func upstream(of text: String) -> Upstream? {
        guard let url = URLComponents(string: text), let host = url.host, !host.isEmpty,
              let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              url.user == nil, url.password == nil, url.query == nil, url.fragment == nil, url.path.isEmpty || url.path == "/"
        else { return nil }
        return Upstream(host: host, port: url.port ?? (scheme == "https" ? 443 : 80), tls: scheme == "https")
    }
}

/// What the gateway decides with: the routes and the validated policies,
/// swapped together so no request sees routes of one version and policies of another.
public struct GatewaySnapshot: Sendable {
    public let routes: RouteTable
    public let decisionPoint: PolicyDecisionPoint
    /// Hash of everything the snapshot was built from (see ``GatewayLoader/fingerprint()``).
    public let fingerprint: String
    public let generation: Int
    /// Network zones from the routes file, in match order.
    public let zones: [RoutesFile.NetworkZone]

    public init(routes: RouteTable, decisionPoint: PolicyDecisionPoint, fingerprint: String = "", generation: Int = 1,
                zones: [RoutesFile.NetworkZone] = []) {
        self.routes = routes; self.decisionPoint = decisionPoint; self.fingerprint = fingerprint; self.generation = generation
        self.zones = zones
    }

    /// The zone of a client address: the first listed zone containing it, else ``RoutesFile/unlistedZone``.
    public func zone(of address: String) -> String {
        zones.first { $0.networks.contains { $0.contains(address) } }?.name ?? RoutesFile.unlistedZone
    }
}

/// The current ``GatewaySnapshot``; readers take it once per request.
public final class GatewayState: Sendable {
    private let current: Mutex<GatewaySnapshot>
    public init(_ snapshot: GatewaySnapshot) { current = Mutex(snapshot) }
    public var snapshot: GatewaySnapshot { current.withLock { $0 } }
    public func replace(_ snapshot: GatewaySnapshot) { current.withLock { $0 = snapshot } }

    /// Installs `snapshot` only if the current one is still generation `base` (two reloads racing:
    /// the one that read older sources must not win). Returns whether it was installed.
    func replace(_ snapshot: GatewaySnapshot, ifStill base: Int) -> Bool {
        current.withLock { c in
            guard c.generation == base else { return false }
            c = snapshot
            return true
        }
    }
}

/// Builds snapshots from the store (applications and policies an
/// administrator saved) and the routes file, and reloads when either changed.
/// A source that does not load or validate is refused whole and the running
/// snapshot stays (fail safe: never an empty or half policy set).
public struct GatewayLoader: Sendable {
    public enum Outcome: Sendable, Equatable {
        case unchanged
        case reloaded(generation: Int)
        case refused(String)
        /// The sources could not be read (the store failed or timed out): nothing was judged, the running snapshot
        /// stays, and reading again later may well succeed.
        case unavailable(String)
    }

    public let store: any MenshenStore
    /// The routes file, or nil when routes come only from the store.
    public let routesFile: String?
    public let clock: any WallClock

    /// How long a changed routes file must stay the same before it is loaded.
    public static let settleTime: Duration = .milliseconds(200)

    /// Called between building a snapshot and swapping it in (tests: another reload in between).
    let beforeReplace: (@Sendable () async -> Void)?
    /// Called before the sources are read; what it throws is what the read throws (tests: a store that fails).
    let beforeRead: (@Sendable () async throws -> Void)?

    /// The routes file as last parsed: the reload poll reads it every interval, parses it only when it changed.
    let routesCache = RoutesFile.ParseCache()

    public init(store: any MenshenStore, routesFile: String?, clock: any WallClock) {
        self.init(store: store, routesFile: routesFile, clock: clock, beforeReplace: nil)
    }

    init(store: any MenshenStore, routesFile: String?, clock: any WallClock, beforeReplace: (@Sendable () async -> Void)?,
         beforeRead: (@Sendable () async throws -> Void)? = nil) {
        self.store = store; self.routesFile = routesFile?.isEmpty == true ? nil : routesFile; self.clock = clock
        self.beforeReplace = beforeReplace; self.beforeRead = beforeRead
    }

    struct Sources {
        var applications: [ApplicationRecord]
        var policies: [PolicyVersionRecord]
        var file: RoutesFile.Contents
        var fingerprint: String
    }

    func readSources() async throws -> Sources {
        try await beforeRead?()
        let applications = try await store.listApplications()
        let policies = try await store.currentPolicies()
        let file = try routesFile.map { try RoutesFile.load(path: $0, at: clock.now(), cache: routesCache) } ?? .empty
        var hasher = SHA256()
        func add(_ s: String) { hasher.update(data: Data(s.utf8)); hasher.update(data: Data([0])) }
        for p in policies.sorted(by: { $0.policyID.rawValue < $1.policyID.rawValue }) { add(p.policyID.rawValue); add(String(p.version)); add(p.text) }
        for a in applications.sorted(by: { $0.id.rawValue < $1.id.rawValue }) {
            add(a.id.rawValue); add(a.host); add(a.pathPrefix); add(a.upstreams.joined(separator: " ")); add(a.classification); add(a.scenario ?? "")
        }
        for a in file.applications {
            add(a.id.rawValue); add(a.host); add(a.pathPrefix); add(a.upstreams.joined(separator: " ")); add(a.classification); add(a.scenario ?? "")
        }
        for d in file.documents { add(d.name); add(d.text) }
        for z in file.zones { add(z.name); add(z.networks.map(\.description).joined(separator: " ")) }
        return Sources(applications: applications, policies: policies, file: file,
                       fingerprint: hasher.finalize().map { String(format: "%02x", $0) }.joined())
    }

    /// A new snapshot; throws ``GatewayLoadError`` (routes) or `PolicyLoadError` (Cedar) with every problem.
    public func load(generation: Int = 1) async throws -> GatewaySnapshot {
        let sources: Sources
        do { sources = try await readSources() } catch let p as RoutesFile.Problem {
            throw GatewayLoadError(message: p.description)
        }
        return try build(sources, generation: generation)
    }

    func build(_ s: Sources, generation: Int) throws -> GatewaySnapshot {
        let storeIDs = Set(s.applications.map(\.id))
        let clashes = s.file.applications.filter { storeIDs.contains($0.id) }.map(\.id.rawValue)
        guard clashes.isEmpty else {
            throw GatewayLoadError(message: "\(routesFile ?? "routes file"): application ids already defined in the store: \(clashes.joined(separator: ", "))")
        }
        // The same place claimed by two sources would be decided by whichever sorts first: refuse instead.
        func place(_ a: ApplicationRecord) -> String {
            let p = a.pathPrefix.hasSuffix("/") && a.pathPrefix != "/" ? String(a.pathPrefix.dropLast()) : a.pathPrefix
            return a.host.lowercased() + " " + p
        }
        let storePlaces = Set(s.applications.map(place))
        let shadowed = s.file.applications.filter { storePlaces.contains(place($0)) }.map(\.id.rawValue)
        guard shadowed.isEmpty else {
            throw GatewayLoadError(message: "\(routesFile ?? "routes file"): host and path_prefix already used by an application in the store: \(shadowed.joined(separator: ", "))")
        }
        var documents = s.policies.map { (name: "\($0.policyID).cedar (v\($0.version))", text: $0.text) }
        documents += s.file.documents.map { (name: $0.name, text: $0.text) }
        let pdp = try PolicyDecisionPoint(documents: documents)   // PolicyLoadError names document, line and column
        return GatewaySnapshot(routes: RouteTable(s.applications + s.file.applications), decisionPoint: pdp,
                               fingerprint: s.fingerprint, generation: generation, zones: s.file.zones)
    }

    /// Rebuilds when the sources changed since `state`'s snapshot; a refused
    /// source leaves `state` as it was.
    ///
    /// Two reloads may run at once (the reload poll and a store notification). The one that swaps second loses
    /// (the swap is a compare-and-set on the generation) and looks again at once: otherwise a poll that read the
    /// sources before a policy change, and swapped after the notified reload read them, would leave the older
    /// sources running and the notification spent, until the next poll. A reload that finds the running snapshot
    /// already built from what it read returns `.unchanged`, so an older read never replaces a newer snapshot.
    public func reloadIfChanged(_ state: GatewayState) async -> Outcome {
        for _ in 0..<Self.maxAttempts {
            let current = state.snapshot
            do {
                let sources = try await readSources()
                guard sources.fingerprint != current.fingerprint else { return .unchanged }
                // A file caught half-written may still parse (a policy file cut before its forbids):
                // only a change that reads the same twice, a moment apart, is taken.
                if routesFile != nil {
                    try await Task.sleep(for: Self.settleTime)
                    guard try await readSources().fingerprint == sources.fingerprint else { return .unchanged }
                }
                let next = try build(sources, generation: current.generation + 1)
                await beforeReplace?()
                if state.replace(next, ifStill: current.generation) { return .reloaded(generation: next.generation) }
                // Another reload swapped meanwhile: compare again with what it installed.
            } catch let problem as RoutesFile.Problem {
                return .refused(problem.description)
            } catch let problem as GatewayLoadError {
                return .refused(problem.description)
            } catch let problem as PolicyLoadError {
                return .refused("\(problem)")
            } catch {
                // Not a judgement on the sources: the store (or the wait between two reads) failed.
                return .unavailable("\(error)")
            }
        }
        return .unchanged   // lost every race: reloads keep coming; the next check compares again
    }

    /// Reloads in a row that may lose the swap to another before one gives up.
    static let maxAttempts = 5
}

public struct GatewayLoadError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
