/// A package installed on a device, as its posture report lists it.
///
/// OSV's Debian and Ubuntu records name **source** packages and their
/// versions; a device lists binary packages. When the agent reports the
/// source (`dpkg-query -f '${source:Package} ${source:Version}'`) matching
/// uses it; otherwise the binary name and version are used, which is right
/// for the many packages whose binary and source share a name.
public struct InstalledPackage: Sendable, Hashable, Codable {
    public var name: String
    public var version: String
    public var sourceName: String?
    public var sourceVersion: String?

    public init(name: String, version: String, sourceName: String? = nil, sourceVersion: String? = nil) {
        self.name = name; self.version = version; self.sourceName = sourceName; self.sourceVersion = sourceVersion
    }

    enum CodingKeys: String, CodingKey {
        case name, version
        case sourceName = "source_name"
        case sourceVersion = "source_version"
    }

    /// The name and version advisories are matched against.
    var matchName: String { sourceName ?? name }
    var matchVersion: String { sourceVersion ?? version }
}

/// One advisory that affects one installed package.
public struct VulnerabilityFinding: Sendable, Hashable, Codable {
    public var advisoryID: String
    public var aliases: [String]
    /// The installed (binary) package.
    public var package: String
    public var installedVersion: String
    /// The package name the advisory names (the source package when known).
    public var advisoryPackage: String
    /// The lowest fixed version above the installed one, nil when no fix is published.
    public var fixedVersion: String?
    public var severity: VulnerabilitySeverity
    /// True when the advisory gives no severity we can read and the scan's
    /// `unknownSeverity` was used instead.
    public var severityAssumed: Bool

    public init(advisoryID: String, aliases: [String], package: String, installedVersion: String, advisoryPackage: String,
                fixedVersion: String?, severity: VulnerabilitySeverity, severityAssumed: Bool) {
        self.advisoryID = advisoryID; self.aliases = aliases; self.package = package; self.installedVersion = installedVersion
        self.advisoryPackage = advisoryPackage; self.fixedVersion = fixedVersion; self.severity = severity; self.severityAssumed = severityAssumed
    }
}

/// The outcome of matching one device's packages.
public struct VulnerabilityScan: Sendable, Hashable {
    /// Sorted by severity (highest first), then package, then advisory id.
    public var findings: [VulnerabilityFinding]
    /// Packages whose version is not a version of the device's ecosystem, so
    /// they could not be evaluated. Callers should treat them as a finding of
    /// their own (fail closed), not as clean.
    public var unevaluated: [InstalledPackage]
    /// Whether the device's ecosystem has a version order we implement; when
    /// false nothing was evaluated and every package is in ``unevaluated``.
    public var ecosystemSupported: Bool

    /// The highest severity found, `.none` when there are no findings.
    public var maxSeverity: VulnerabilitySeverity { findings.map(\.severity).max() ?? VulnerabilitySeverity.none }
}

/// A set of OSV advisories, indexed by ecosystem and package, ready to match
/// installed packages. Build one with ``load(directory:limits:)`` (from a
/// local directory; no network) or ``init(advisories:)``. Immutable: reload
/// by building a new one and swapping it in.
public struct AdvisoryDatabase: Sendable {
    public let advisories: [OSVAdvisory]
    /// `affected` entries in ecosystems whose versions we do not order (npm,
    /// PyPI, Alpine, …): loaded, never matched.
    public let unsupportedEntryCount: Int
    private let index: [Key: [Entry]]

    private struct Key: Hashable {
        var ecosystem: String
        var name: String
    }

    /// A version bound in a prepared range.
    private enum Bound: Comparable {
        case beforeAll // introduced "0"
        case version(DebianVersion)
        case afterAll // limit "*"
    }

    private struct Event {
        enum Kind: Int { case introduced = 0, lastAffected = 1, fixed = 2, limit = 3 }
        var kind: Kind
        var bound: Bound
    }

    private struct Entry {
        var advisory: Int
        /// ECOSYSTEM ranges, events sorted (limits kept apart).
        var ranges: [(events: [Event], limits: [Bound])]
        var versions: [DebianVersion]
        var fixes: [DebianVersion]
        /// The highest severity the advisory states for this package, nil when unknown.
        var severity: VulnerabilitySeverity?
    }

    /// Indexes `advisories`. Throws for a duplicate id or for a version that
    /// does not parse in an ecosystem we order (``OSVAdvisory/decode(_:path:limits:)``
    /// already checks the latter for decoded files).
    public init(advisories: [OSVAdvisory]) throws(OSVError) {
        var seen: Set<String> = []
        var index: [Key: [Entry]] = [:]
        var unsupported = 0
        for (a, advisory) in advisories.enumerated() {
            guard seen.insert(advisory.id).inserted else {
                throw OSVError(.duplicateAdvisoryID, path: advisory.id, "the id \(advisory.id) appears twice")
            }
            if advisory.withdrawn != nil { continue }
            for (i, affected) in advisory.affected.enumerated() {
                guard VersionScheme(ecosystem: affected.ecosystem) == .debian else {
                    unsupported += 1
                    continue
                }
                let entry = try Self.prepare(affected, advisory: advisory, number: a, where: "\(advisory.id) affected[\(i)]")
                index[Key(ecosystem: affected.ecosystem, name: affected.name), default: []].append(entry)
            }
        }
        self.advisories = advisories
        self.index = index
        self.unsupportedEntryCount = unsupported
    }

    private static func prepare(_ affected: OSVAffected, advisory: OSVAdvisory, number: Int, where field: String) throws(OSVError) -> Entry {
        func parse(_ text: String) throws(OSVError) -> DebianVersion {
            do { return try DebianVersion(text) } catch {
                throw OSVError(.invalidVersion, path: advisory.id, "\(field): \(error.description)")
            }
        }
        var ranges: [(events: [Event], limits: [Bound])] = []
        var fixes: [DebianVersion] = []
        for range in affected.ranges where range.type == "ECOSYSTEM" {
            var events: [Event] = []
            var limits: [Bound] = []
            for event in range.events {
                switch event {
                case .introduced(let v):
                    events.append(Event(kind: .introduced, bound: v == "0" ? .beforeAll : .version(try parse(v))))
                case .fixed(let v):
                    let version = try parse(v)
                    fixes.append(version)
                    events.append(Event(kind: .fixed, bound: .version(version)))
                case .lastAffected(let v):
                    events.append(Event(kind: .lastAffected, bound: .version(try parse(v))))
                case .limit(let v):
                    limits.append(v == "*" ? .afterAll : .version(try parse(v)))
                }
            }
            // Sorted timeline; at one version an introduction comes first, so
            // "introduced X, fixed X" is empty and "introduced X, last_affected X" is {X}.
            events.sort { ($0.bound, $0.kind.rawValue) < ($1.bound, $1.kind.rawValue) }
            ranges.append((events, limits))
        }
        var versions: [DebianVersion] = []
        for text in affected.versions { versions.append(try parse(text)) }
        let scores = affected.severity + advisory.severity
        var known: [VulnerabilitySeverity] = scores.compactMap(Self.severity(of:))
        for word in [affected.urgency, affected.databaseSeverity, advisory.databaseSeverity].compactMap({ $0 }) {
            if let s = VulnerabilitySeverity(qualitative: word) { known.append(s) }
        }
        return Entry(advisory: number, ranges: ranges, versions: versions, fixes: fixes.sorted(), severity: known.max())
    }

    /// The severity a `severity[]` score states: CVSS v3 vectors are scored,
    /// Ubuntu priorities read as words. CVSS v2 and v4 are not scored here
    /// (nil: unknown).
    static func severity(of score: OSVSeverityScore) -> VulnerabilitySeverity? {
        switch score.type {
        case "CVSS_V3": return CVSS3.baseScore(score.score).flatMap { VulnerabilitySeverity(cvssScore: $0) }
        case "Ubuntu": return VulnerabilitySeverity(qualitative: score.score)
        default: return nil
        }
    }

    /// Matches `packages` of a device whose OSV ecosystem is `ecosystem`
    /// (`Debian:12`). An advisory applies when its ecosystem is exactly the
    /// device's or is the device's without the release (`Debian` applies to
    /// every Debian release; `Debian:11` does not apply to `Debian:12`, nor
    /// `Ubuntu` to Debian), its package name is the package's (source) name,
    /// and the version is listed in `versions` or lies in an `ECOSYSTEM` range
    /// (OSV "Evaluation" algorithm, with `limit`s).
    ///
    /// - Parameter unknownSeverity: the severity given to a finding whose
    ///   advisory states none we can read (Debian's "not yet assigned").
    ///   High by default, so an unknown never passes as harmless.
    public func scan(_ packages: [InstalledPackage], ecosystem: String, unknownSeverity: VulnerabilitySeverity = .high) -> VulnerabilityScan {
        guard VersionScheme(ecosystem: ecosystem) == .debian else {
            return VulnerabilityScan(findings: [], unevaluated: packages, ecosystemSupported: false)
        }
        var ecosystems = [ecosystem]
        if let base = ecosystem.split(separator: ":", maxSplits: 1).first.map(String.init), base != ecosystem { ecosystems.append(base) }

        var merged: [String: VulnerabilityFinding] = [:] // key: advisory id + NUL + package
        var order: [String] = []
        var unevaluated: [InstalledPackage] = []
        for package in packages {
            guard let version = try? DebianVersion(package.matchVersion) else {
                unevaluated.append(package)
                continue
            }
            for eco in ecosystems {
                for entry in index[Key(ecosystem: eco, name: package.matchName)] ?? [] {
                    guard Self.affects(entry, version) else { continue }
                    let advisory = advisories[entry.advisory]
                    let fixed = entry.fixes.first { $0 > version }
                    let finding = VulnerabilityFinding(
                        advisoryID: advisory.id, aliases: advisory.aliases, package: package.name, installedVersion: package.version,
                        advisoryPackage: package.matchName, fixedVersion: fixed?.description,
                        severity: entry.severity ?? unknownSeverity, severityAssumed: entry.severity == nil)
                    let key = advisory.id + "\u{0}" + package.name
                    if let earlier = merged[key] {
                        merged[key] = Self.merge(earlier, finding)
                    } else {
                        merged[key] = finding
                        order.append(key)
                    }
                }
            }
        }
        let findings = order.compactMap { merged[$0] }.sorted {
            ($1.severity.rawValue, $0.package, $0.advisoryID) < ($0.severity.rawValue, $1.package, $1.advisoryID)
        }
        return VulnerabilityScan(findings: findings, unevaluated: unevaluated, ecosystemSupported: true)
    }

    /// Two entries of one advisory for one package (several `affected` items,
    /// or `Debian` and `Debian:12`): the higher severity; the package is
    /// fixed only when both are, so the higher fix, or none if either has none.
    private static func merge(_ a: VulnerabilityFinding, _ b: VulnerabilityFinding) -> VulnerabilityFinding {
        var out = a
        if b.severity > a.severity || (b.severity == a.severity && !b.severityAssumed) {
            out.severity = b.severity
            out.severityAssumed = b.severityAssumed
        }
        if let fa = a.fixedVersion, let fb = b.fixedVersion, let va = try? DebianVersion(fa), let vb = try? DebianVersion(fb) {
            out.fixedVersion = va >= vb ? fa : fb
        } else {
            out.fixedVersion = nil
        }
        return out
    }

    private static func affects(_ entry: Entry, _ v: DebianVersion) -> Bool {
        if entry.versions.contains(v) { return true }
        let bound = Bound.version(v)
        for range in entry.ranges {
            if !range.limits.isEmpty, !range.limits.contains(where: { bound < $0 }) { continue }
            var vulnerable = false
            for event in range.events {
                switch event.kind {
                case .introduced where bound >= event.bound: vulnerable = true
                case .fixed where bound >= event.bound: vulnerable = false
                case .lastAffected where bound > event.bound: vulnerable = false
                default: break
                }
            }
            if vulnerable { return true }
        }
        return false
    }
}
