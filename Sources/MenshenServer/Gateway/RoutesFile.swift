import Foundation
import MenshenCore
import MenshenStorage
import Synchronization
import Yams

/// The routes file (`gateway.routes_file`): the protected applications an
/// operator declares, each with its upstreams, classification and scenario,
/// and either short requirements (`require:`) that compile to a Cedar permit
/// or Cedar files of their own (`policies:`). The engine only ever sees Cedar:
/// the compiled text is what `menshen gateway routes --print-cedar` shows.
///
/// ```yaml
/// policies: [extra.cedar]          # optional Cedar files, relative to this file
/// network_zones:                   # optional; the first match names context.network.zone
///   - zone: branch
///     cidrs: [10.20.0.0/16]        # any other address is in zone "internet"
/// routes:
///   - id: wiki                     # Cedar Application::"wiki"; a–z 0–9 -
///     name: Wiki
///     host: wiki.bank.example      # the Host header (port ignored)
///     path_prefix: /               # default /
///     upstreams: ["http://10.0.0.5:8080", "http://10.0.0.6:8080"]   # fail-over order
///     classification: internal     # public | internal | confidential | restricted
///     scenario: ""                 # a guideline scenario id, optional
///     require:                     # optional; compiled to one permit
///       min_loa: 2
///       groups: [staff]            # any of these groups
///       device_compliant: true
///       business_hours: true       # Monday–Friday 08:00–18:00 in organisation.time_zone
///       read_only: false           # adds @obligation("read_only")
///       alert: ""                  # low | medium | high: adds @alert
/// ```
///
/// Limits: 1 MiB per routes file, 1,000 routes, 64 Cedar files of at most
/// 4 MiB each. Every problem is reported with the route it belongs to; a file
/// with any problem is refused as a whole (the running snapshot stays).
public enum RoutesFile {
    public struct Problem: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// What a routes file declares, ready for the gateway snapshot.
    public struct Contents: Sendable, Equatable {
        public var applications: [ApplicationRecord]
        /// Cedar documents: one per route with `require:`, then the listed files.
        public var documents: [CedarDocument]
        /// The Cedar files the document lists (read by ``RoutesFile/load(path:at:)``).
        public var policyFiles: [String] = []
        /// Network zones in order (the first whose blocks contain the client address names it).
        public var zones: [NetworkZone] = []
        public static let empty = Contents(applications: [], documents: [])
    }

    /// A named set of networks, e.g. `branch` → `10.20.0.0/16`; Cedar sees the name as `context.network.zone`.
    public struct NetworkZone: Sendable, Equatable {
        public var name: String
        public var networks: [CIDR]
    }

    /// The zone of an address not in any listed zone.
    public static let unlistedZone = "internet"

    public struct CedarDocument: Sendable, Equatable {
        public var name: String
        public var text: String
    }

    public static let maximumBytes = 1024 * 1024
    public static let maximumRoutes = 1000
    public static let maximumPolicyFiles = 64
    public static let maximumPolicyFileBytes = 4 * 1024 * 1024
    public static let classifications = ["public", "internal", "confidential", "restricted"]

    struct File: Decodable {
        var policies: [String]?
        var network_zones: [ZoneEntry]?
        var routes: [Entry]?
    }

    struct ZoneEntry: Decodable {
        var zone: String
        var cidrs: [String]
    }

    struct Entry: Decodable {
        var id: String
        var name: String?
        var host: String
        var path_prefix: String?
        var upstreams: [String]
        var classification: String
        var scenario: String?
        var require: Requirements?
    }

    struct Requirements: Decodable {
        var min_loa: Int?
        var groups: [String]?
        var device_compliant: Bool?
        var business_hours: Bool?
        var read_only: Bool?
        var alert: String?
    }

    /// Reads and checks the file and the Cedar files it lists (policies are
    /// validated later, with the store's, when the snapshot is built).
    public static func load(path: String, at now: Date) throws -> Contents {
        try load(path: path, at: now, cache: nil)
    }

    /// The last routes file ``load(path:at:cache:)`` parsed, with the bytes it was parsed from: the reload poll
    /// reads the files every interval, and parsing the YAML (Yams) again when not a byte changed was about 2 % of
    /// the gateway's background CPU under load.
    public final class ParseCache: Sendable {
        struct Entry: Sendable { var path: String; var file: Data; var contents: Contents }
        let last = Mutex<Entry?>(nil)
        public init() {}
        /// Files parsed, not taken from the cache (tests).
        let parses = Atomic<Int>(0)
        public var parseCount: Int { parses.load(ordering: .relaxed) }
    }

    /// As ``load(path:at:)``; with a cache, a routes file whose bytes are those it last parsed is not parsed again
    /// (the Cedar files it lists are read again every time: their text is part of the result).
    public static func load(path: String, at now: Date, cache: ParseCache?) throws -> Contents {
        let data = try read(path, limit: maximumBytes)
        var contents: Contents
        if let cached = cache?.last.withLock({ $0 }), cached.path == path, cached.file == data {
            contents = cached.contents
        } else {
            contents = try parse(String(decoding: data, as: UTF8.self), name: path, at: now)
            cache?.parses.add(1, ordering: .relaxed)
            cache?.last.withLock { $0 = ParseCache.Entry(path: path, file: data, contents: contents) }
        }
        let base = (path as NSString).deletingLastPathComponent
        for file in contents.policyFiles {
            let full = file.hasPrefix("/") ? file : (base as NSString).appendingPathComponent(file)
            let text = String(decoding: try read(full, limit: maximumPolicyFileBytes), as: UTF8.self)
            contents.documents.append(CedarDocument(name: file, text: text))
        }
        return contents
    }

    static func read(_ path: String, limit: Int) throws -> Data {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw Problem(description: "\(path): cannot read the file") }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: limit + 1)) ?? Data()
        guard data.count <= limit else { throw Problem(description: "\(path): larger than \(limit) bytes") }
        guard String(validating: data, as: UTF8.self) != nil else { throw Problem(description: "\(path): not valid UTF-8") }
        return data
    }

    static func decode(_ text: String, name: String) throws -> File {
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch { throw Problem(description: "\(name): \(error)") }
        // Decodable ignores unknown keys; a misspelt requirement must not silently weaken a route.
        var unknown: [String] = []
        func check(_ n: Node?, _ allowed: Set<String>, _ at: String) {
            guard let map = n?.mapping else { return }
            for key in map.keys {
                guard let k = key.string, !allowed.contains(k) else { continue }
                unknown.append("\(name):\(key.mark?.line ?? 0): unknown key '\(k)' in \(at)")
            }
        }
        check(node, ["policies", "network_zones", "routes"], "the top level")
        for zone in node?.mapping?["network_zones"]?.sequence ?? [] { check(zone, ["zone", "cidrs"], "a network zone") }
        for route in node?.mapping?["routes"]?.sequence ?? [] {
            check(route, ["id", "name", "host", "path_prefix", "upstreams", "classification", "scenario", "require"], "a route")
            check(route.mapping?["require"], ["min_loa", "groups", "device_compliant", "business_hours", "read_only", "alert"], "require")
        }
        guard unknown.isEmpty else { throw Problem(description: unknown.joined(separator: "\n")) }
        guard let node else { return File() }
        do { return try YAMLDecoder().decode(File.self, from: node) } catch {
            throw Problem(description: "\(name): \(error)")
        }
    }

    /// Checks a routes document and compiles its requirements (no file access).
    public static func parse(_ text: String, name: String, at now: Date) throws -> Contents {
        guard text.utf8.count <= maximumBytes else { throw Problem(description: "\(name): larger than \(maximumBytes) bytes") }
        let file = try decode(text, name: name)
        // An empty or truncated file must not silently mean "no applications": say it explicitly.
        guard let entries = file.routes else { throw Problem(description: "\(name): no routes: key (write routes: [] for none)") }
        guard entries.count <= maximumRoutes else { throw Problem(description: "\(name): more than \(maximumRoutes) routes") }
        let policyFiles = file.policies ?? []
        guard policyFiles.count <= maximumPolicyFiles else { throw Problem(description: "\(name): more than \(maximumPolicyFiles) policy files") }
        var problems: [String] = []
        var seenIDs = Set<String>(), seenPlaces = Set<String>()
        var applications: [ApplicationRecord] = []
        var documents: [CedarDocument] = []
        for (n, e) in entries.enumerated() {
            var routeProblems: [String] = []
            func fail(_ message: String) { routeProblems.append("\(name): route \(e.id.isEmpty ? "#\(n + 1)" : e.id): \(message)") }
            if e.id.range(of: "^[a-z0-9][a-z0-9-]{0,63}$", options: .regularExpression) == nil { fail("id must be 1–64 of a–z 0–9 - (starting with a letter or digit)") }
            if !seenIDs.insert(e.id).inserted { fail("duplicate id") }
            let host = e.host.lowercased()
            if host.range(of: "^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$", options: .regularExpression) == nil && host != "localhost" {
                fail("host must be a DNS name without port or scheme")
            }
            let prefix = e.path_prefix ?? "/"
            if !isCleanPrefix(prefix) { fail("path_prefix must start with / and have no empty, . or .. segments, % or ?") }
            if !seenPlaces.insert("\(host) \(prefix.hasSuffix("/") && prefix != "/" ? String(prefix.dropLast()) : prefix)").inserted {
                fail("another route already has host \(host) and path_prefix \(prefix)")
            }
            if e.upstreams.isEmpty || e.upstreams.count > 16 { fail("upstreams must list 1–16 URLs") }
            for u in e.upstreams where RouteTable.upstream(of: u) == nil {
                fail("upstream \(u) is not an http:// or https:// URL with a host (no path, query or credentials)")
            }
            if !classifications.contains(e.classification) { fail("classification must be one of \(classifications.joined(separator: ", "))") }
            if let s = e.scenario, !s.isEmpty, s.range(of: "^[A-Za-z0-9._-]{1,64}$", options: .regularExpression) == nil {
                fail("scenario must be 1–64 of A–Z a–z 0–9 . _ -")
            }
            if let name = e.name, name.count > 200 { fail("name is longer than 200 characters") }
            var policy: String?
            if let r = e.require {
                switch compile(routeID: e.id, r) {
                case .success(let text): policy = text
                case .failure(let problem): fail(problem.description)
                }
            }
            if !routeProblems.isEmpty {
                problems += routeProblems
                continue
            }
            applications.append(ApplicationRecord(id: ApplicationID(e.id), displayName: e.name ?? e.id, host: host, pathPrefix: prefix,
                                                  upstreams: e.upstreams, classification: e.classification,
                                                  scenario: (e.scenario?.isEmpty ?? true) ? nil : e.scenario, updatedAt: now))
            if let policy { documents.append(CedarDocument(name: "\(name) route \(e.id)", text: policy)) }
        }
        var zones: [NetworkZone] = []
        for z in file.network_zones ?? [] {
            if z.zone.range(of: "^[a-z0-9][a-z0-9_-]{0,63}$", options: .regularExpression) == nil {
                problems.append("\(name): network zone \(z.zone): the name must be 1–64 of a–z 0–9 _ -"); continue
            }
            if zones.contains(where: { $0.name == z.zone }) { problems.append("\(name): network zone \(z.zone): listed twice"); continue }
            let bad = z.cidrs.filter { CIDR($0) == nil }
            if z.cidrs.isEmpty || z.cidrs.count > 1000 || !bad.isEmpty {
                problems.append("\(name): network zone \(z.zone): cidrs must list 1–1000 CIDR blocks\(bad.isEmpty ? "" : " (not CIDR: \(bad.joined(separator: ", ")))")")
                continue
            }
            zones.append(NetworkZone(name: z.zone, networks: z.cidrs.compactMap(CIDR.init)))
        }
        guard problems.isEmpty else { throw Problem(description: problems.joined(separator: "\n")) }
        return Contents(applications: applications, documents: documents, policyFiles: policyFiles, zones: zones)
    }

    static func isCleanPrefix(_ p: String) -> Bool {
        guard p.hasPrefix("/"), p.count <= 1024, !p.contains("%"), !p.contains("?"), !p.contains("#"), !p.contains("\\") else { return false }
        if p == "/" { return true }
        let trimmed = p.hasSuffix("/") ? String(p.dropLast()) : p
        let segments = trimmed.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        return segments.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." && $0.allSatisfy { c in c.isASCII && !c.isWhitespace && !c.isNewline } }
    }

    /// The Cedar permit a route's requirements stand for.
    static func compile(routeID: String, _ r: Requirements) -> Result<String, Problem> {
        var conditions: [String] = []
        guard r.min_loa != nil || r.groups != nil || r.device_compliant != nil || r.business_hours != nil || r.read_only != nil || r.alert != nil
        else { return .failure(Problem(description: "require states nothing (leave it out to add no permit; every signed-in user would be let in)")) }
        if let loa = r.min_loa {
            guard (1...4).contains(loa) else { return .failure(Problem(description: "require.min_loa must be 1–4")) }
            conditions.append("context.session.loa >= \(loa)")
        }
        if let groups = r.groups {
            guard !groups.isEmpty, groups.count <= 64 else { return .failure(Problem(description: "require.groups must list 1–64 groups")) }
            for g in groups where g.range(of: "^[A-Za-z0-9._@-]{1,128}$", options: .regularExpression) == nil {
                return .failure(Problem(description: "require.groups: \(g) is not a group id (A–Z a–z 0–9 . _ @ -)"))
            }
            conditions.append("(" + groups.map { "principal in Group::\"\($0)\"" }.joined(separator: " || ") + ")")
        }
        if r.device_compliant == true { conditions.append("context.device.compliant") }
        if r.business_hours == true {
            conditions.append("context.time.weekday <= 5 && context.time.hour >= 8 && context.time.hour < 18")
        }
        var annotations = ["@id(\"route:\(routeID)\")"]
        if r.read_only == true { annotations.append("@obligation(\"read_only\")") }
        if let alert = r.alert, !alert.isEmpty {
            guard ["low", "medium", "high"].contains(alert) else { return .failure(Problem(description: "require.alert must be low, medium or high")) }
            annotations.append("@alert(\"\(alert)\")")
        }
        var text = annotations.joined(separator: "\n") + "\npermit (principal, action, resource == Application::\"\(routeID)\")"
        if !conditions.isEmpty { text += "\nwhen { " + conditions.joined(separator: " && ") + " }" }
        return .success(text + ";\n")
    }
}
