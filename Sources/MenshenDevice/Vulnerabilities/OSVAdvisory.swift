import Foundation

/// One advisory in the OSV format (https://ossf.github.io/osv-schema/), the
/// fields Menshen uses. Unknown fields are ignored; fields OSV leaves to each
/// database (`ecosystem_specific`, `database_specific`) are read leniently
/// (only the severity words Debian, Ubuntu and GitHub put there).
public struct OSVAdvisory: Sendable, Hashable {
    public var id: String
    /// RFC 3339 text as given (OSV requires it; Debian's converter has omitted it).
    public var modified: String?
    /// When present the advisory was withdrawn and never matches.
    public var withdrawn: String?
    public var aliases: [String]
    /// The one-line summary, cut to ``OSVLoadLimits/maxSummaryCharacters``.
    public var summary: String?
    public var severity: [OSVSeverityScore]
    /// `database_specific.severity` when it is a string (GitHub: `MODERATE`, …).
    public var databaseSeverity: String?
    public var affected: [OSVAffected]

    public init(id: String, modified: String? = nil, withdrawn: String? = nil, aliases: [String] = [], summary: String? = nil,
                severity: [OSVSeverityScore] = [], databaseSeverity: String? = nil, affected: [OSVAffected]) {
        self.id = id; self.modified = modified; self.withdrawn = withdrawn; self.aliases = aliases; self.summary = summary
        self.severity = severity; self.databaseSeverity = databaseSeverity; self.affected = affected
    }
}

/// `severity[]`: a scoring method and its score (a CVSS vector or a word).
public struct OSVSeverityScore: Sendable, Hashable, Decodable {
    public var type: String
    public var score: String
    public init(type: String, score: String) { self.type = type; self.score = score }
}

/// `affected[]`: one package and the versions of it that are affected.
public struct OSVAffected: Sendable, Hashable {
    public var ecosystem: String
    public var name: String
    public var ranges: [OSVRange]
    public var versions: [String]
    public var severity: [OSVSeverityScore]
    /// `ecosystem_specific.urgency` (Debian: `low`, `medium`, `high`, `unimportant`, `not yet assigned`, …).
    public var urgency: String?
    /// `database_specific.severity` when it is a string.
    public var databaseSeverity: String?

    public init(ecosystem: String, name: String, ranges: [OSVRange] = [], versions: [String] = [], severity: [OSVSeverityScore] = [],
                urgency: String? = nil, databaseSeverity: String? = nil) {
        self.ecosystem = ecosystem; self.name = name; self.ranges = ranges; self.versions = versions; self.severity = severity
        self.urgency = urgency; self.databaseSeverity = databaseSeverity
    }
}

/// `affected[].ranges[]`.
public struct OSVRange: Sendable, Hashable {
    /// `ECOSYSTEM`, `SEMVER` or `GIT`. Only `ECOSYSTEM` ranges are evaluated.
    public var type: String
    public var events: [OSVEvent]
    public init(type: String, events: [OSVEvent]) { self.type = type; self.events = events }
}

/// One event of a range's timeline.
public enum OSVEvent: Sendable, Hashable {
    /// `"0"` means "before every version".
    case introduced(String)
    case fixed(String)
    case lastAffected(String)
    /// `"*"` means no limit.
    case limit(String)

    public var version: String {
        switch self {
        case .introduced(let v), .fixed(let v), .lastAffected(let v), .limit(let v): v
        }
    }
}

/// Limits on advisory input. Anything over a limit is an ``OSVError`` for
/// the whole load, never a partial result.
public struct OSVLoadLimits: Sendable, Hashable {
    /// Largest advisory file, in bytes. Debian's files are a few KB; kernel
    /// advisories with long `versions` lists reach a few hundred KB.
    public var maxFileBytes: Int
    /// Most `.json` files in one load (the whole Debian feed is ~100 000).
    public var maxFiles: Int
    /// Most bytes read in one load, all files together.
    public var maxTotalBytes: Int
    /// Deepest subdirectory below the directory given (0: no subdirectories).
    public var maxDirectoryDepth: Int
    /// Deepest JSON nesting in one file (an OSV record needs 5).
    public var maxJSONDepth: Int
    /// Most `affected` entries, ranges per entry, events per range, versions
    /// per entry, aliases or severity scores: one bound for every list.
    public var maxListLength: Int
    /// Longest id, ecosystem, package name, version, alias or score, in bytes.
    public var maxStringBytes: Int
    /// Summaries longer than this are cut (they are for display only).
    public var maxSummaryCharacters: Int

    public init(maxFileBytes: Int = 4 << 20, maxFiles: Int = 250_000, maxTotalBytes: Int = 2 << 30, maxDirectoryDepth: Int = 6,
                maxJSONDepth: Int = 32, maxListLength: Int = 100_000, maxStringBytes: Int = 1024, maxSummaryCharacters: Int = 512) {
        self.maxFileBytes = maxFileBytes; self.maxFiles = maxFiles; self.maxTotalBytes = maxTotalBytes
        self.maxDirectoryDepth = maxDirectoryDepth; self.maxJSONDepth = maxJSONDepth; self.maxListLength = maxListLength
        self.maxStringBytes = maxStringBytes; self.maxSummaryCharacters = maxSummaryCharacters
    }
}

// MARK: - Decoding one file

extension OSVAdvisory {
    /// Decodes and validates one OSV record. `path` names the input in errors.
    ///
    /// Checked beyond JSON types: `id`, `ecosystem` and `name` are non-empty;
    /// every event has exactly one of `introduced`, `fixed`, `last_affected`,
    /// `limit`; a range has at least one `introduced` and not both `fixed`
    /// and `last_affected` (OSV §affected[].ranges[].events); string and list
    /// limits. Versions in ecosystems whose order we implement (Debian,
    /// Ubuntu) must parse as Debian versions (`introduced: "0"` and
    /// `limit: "*"` are the schema's special values).
    public static func decode(_ bytes: [UInt8], path: String, limits: OSVLoadLimits = OSVLoadLimits()) throws(OSVError) -> OSVAdvisory {
        guard bytes.count <= limits.maxFileBytes else {
            throw OSVError(.fileTooLarge, path: path, "\(bytes.count) bytes, at most \(limits.maxFileBytes)")
        }
        let depth = JSONShape.depth(of: bytes)
        guard depth <= limits.maxJSONDepth else {
            throw OSVError(.jsonTooDeep, path: path, "nesting depth \(depth), at most \(limits.maxJSONDepth)")
        }
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: Data(bytes))
        } catch let error as DecodingError {
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty {
                throw OSVError(.malformedJSON, path: path, "not a JSON object: \(context.debugDescription)")
            }
            throw OSVError(.invalidAdvisory, path: path, JSONShape.describe(error))
        } catch {
            throw OSVError(.malformedJSON, path: path, "\(error)")
        }
        return try wire.validated(path: path, limits: limits)
    }
}

/// The JSON shape, decoded with Codable and then validated into the public types.
private struct Wire: Decodable {
    var id: String
    var modified: String?
    var withdrawn: String?
    var aliases: [String]?
    var summary: String?
    var severity: [OSVSeverityScore]?
    var database_specific: Lenient?
    var affected: [Affected]?

    struct Affected: Decodable {
        var package: Package
        var ranges: [Range]?
        var versions: [String]?
        var severity: [OSVSeverityScore]?
        var ecosystem_specific: Lenient?
        var database_specific: Lenient?
    }
    struct Package: Decodable {
        var ecosystem: String
        var name: String
    }
    struct Range: Decodable {
        var type: String
        var events: [[String: String]]
    }
    /// A free-form object: only `severity` and `urgency` are read, and only when they are strings.
    struct Lenient: Decodable {
        var severity: String?
        var urgency: String?
        enum Keys: String, CodingKey { case severity, urgency }
        init(from decoder: any Decoder) throws {
            let c = try? decoder.container(keyedBy: Keys.self)
            severity = (try? c?.decodeIfPresent(String.self, forKey: .severity)) ?? nil
            urgency = (try? c?.decodeIfPresent(String.self, forKey: .urgency)) ?? nil
        }
    }

    func validated(path: String, limits: OSVLoadLimits) throws(OSVError) -> OSVAdvisory {
        func string(_ value: String, _ field: String, nonEmpty: Bool = true) throws(OSVError) -> String {
            if nonEmpty, value.isEmpty { throw OSVError(.invalidAdvisory, path: path, "\(field): must not be empty") }
            guard value.utf8.count <= limits.maxStringBytes else {
                throw OSVError(.stringTooLong, path: path, "\(field): \(value.utf8.count) bytes, at most \(limits.maxStringBytes)")
            }
            return value
        }
        func list<T>(_ value: [T]?, _ field: String) throws(OSVError) -> [T] {
            let value = value ?? []
            guard value.count <= limits.maxListLength else {
                throw OSVError(.tooManyEntries, path: path, "\(field): \(value.count) entries, at most \(limits.maxListLength)")
            }
            return value
        }
        func scores(_ value: [OSVSeverityScore]?, _ field: String) throws(OSVError) -> [OSVSeverityScore] {
            var out: [OSVSeverityScore] = []
            for (i, s) in try list(value, field).enumerated() {
                out.append(OSVSeverityScore(type: try string(s.type, "\(field)[\(i)].type"), score: try string(s.score, "\(field)[\(i)].score")))
            }
            return out
        }

        let id = try string(self.id, "id")
        var aliases: [String] = []
        for (i, alias) in try list(self.aliases, "aliases").enumerated() { aliases.append(try string(alias, "aliases[\(i)]")) }
        var affected: [OSVAffected] = []
        for (a, entry) in try list(self.affected, "affected").enumerated() {
            let field = "affected[\(a)]"
            let ecosystem = try string(entry.package.ecosystem, "\(field).package.ecosystem")
            let name = try string(entry.package.name, "\(field).package.name")
            let ordered = VersionScheme(ecosystem: ecosystem) != nil
            func version(_ text: String, _ field: String, special: String? = nil) throws(OSVError) -> String {
                let text = try string(text, field)
                if ordered, text != special {
                    do { _ = try DebianVersion(text) } catch {
                        throw OSVError(.invalidVersion, path: path, "\(field): \(error.description)")
                    }
                }
                return text
            }
            var ranges: [OSVRange] = []
            for (r, range) in try list(entry.ranges, "\(field).ranges").enumerated() {
                let rangeField = "\(field).ranges[\(r)]"
                let type = try string(range.type, "\(rangeField).type")
                // Only ECOSYSTEM ranges carry ecosystem versions; SEMVER and GIT ranges are kept unparsed.
                let checkVersions = type == "ECOSYSTEM"
                var events: [OSVEvent] = []
                for (e, event) in try list(range.events, "\(rangeField).events").enumerated() {
                    let eventField = "\(rangeField).events[\(e)]"
                    guard event.count == 1, let only = event.first else {
                        throw OSVError(.invalidAdvisory, path: path,
                                       "\(eventField): an event has exactly one of introduced, fixed, last_affected, limit (found \(event.keys.sorted()))")
                    }
                    let (key, value) = (only.key, only.value)
                    let text = checkVersions
                        ? try version(value, "\(eventField).\(key)", special: key == "introduced" ? "0" : key == "limit" ? "*" : nil)
                        : try string(value, "\(eventField).\(key)")
                    switch key {
                    case "introduced": events.append(.introduced(text))
                    case "fixed": events.append(.fixed(text))
                    case "last_affected": events.append(.lastAffected(text))
                    case "limit": events.append(.limit(text))
                    default:
                        throw OSVError(.invalidAdvisory, path: path, "\(eventField): unknown event \"\(key)\"")
                    }
                }
                guard events.contains(where: { if case .introduced = $0 { true } else { false } }) else {
                    throw OSVError(.invalidAdvisory, path: path, "\(rangeField).events: needs at least one introduced event")
                }
                let hasFixed = events.contains { if case .fixed = $0 { true } else { false } }
                let hasLastAffected = events.contains { if case .lastAffected = $0 { true } else { false } }
                guard !(hasFixed && hasLastAffected) else {
                    throw OSVError(.invalidAdvisory, path: path, "\(rangeField).events: fixed and last_affected in one range")
                }
                ranges.append(OSVRange(type: type, events: events))
            }
            var versions: [String] = []
            for (v, text) in try list(entry.versions, "\(field).versions").enumerated() {
                versions.append(try version(text, "\(field).versions[\(v)]"))
            }
            affected.append(OSVAffected(
                ecosystem: ecosystem, name: name, ranges: ranges, versions: versions,
                severity: try scores(entry.severity, "\(field).severity"),
                urgency: entry.ecosystem_specific?.urgency.map { String($0.prefix(64)) },
                databaseSeverity: entry.database_specific?.severity.map { String($0.prefix(64)) }))
        }
        var modified: String? = nil, withdrawn: String? = nil
        if let m = self.modified { modified = try string(m, "modified") }
        if let w = self.withdrawn { withdrawn = try string(w, "withdrawn") }
        return OSVAdvisory(
            id: id, modified: modified, withdrawn: withdrawn,
            aliases: aliases, summary: summary.map { String($0.prefix(limits.maxSummaryCharacters)) },
            severity: try scores(severity, "severity"),
            databaseSeverity: database_specific?.severity.map { String($0.prefix(64)) },
            affected: affected)
    }
}

/// How versions of an ecosystem are ordered. Only Debian's order is
/// implemented; Ubuntu packages are Debian packages and use it too.
public enum VersionScheme: Sendable, Hashable {
    case debian

    /// The scheme for an OSV ecosystem string (`Debian`, `Debian:12`,
    /// `Ubuntu:22.04:LTS`), or nil when we do not order its versions.
    public init?(ecosystem: String) {
        let base = ecosystem.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ecosystem
        switch base {
        case "Debian", "Ubuntu": self = .debian
        default: return nil
        }
    }
}
