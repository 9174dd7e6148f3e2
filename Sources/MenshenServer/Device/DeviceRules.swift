import Crypto
import Foundation
import Logging
import MenshenDevice
import ServiceLifecycle
import Synchronization
import Yams

/// What the device pillar judges devices by (principle 2.2): the compliance
/// baselines per device class (`device.compliance_file`) and the OSV advisory
/// database (`device.advisories_dir`). One immutable snapshot, swapped whole
/// on reload, read once per posture report and per certificate check.
public struct DeviceRules: Sendable {
    public let compliance: CompliancePolicy
    /// nil: no advisory database is configured, so packages are not scanned
    /// (a reporting device's vulnerability severity then counts as critical).
    public let advisories: AdvisoryDatabase?

    public init(compliance: CompliancePolicy, advisories: AdvisoryDatabase?) {
        self.compliance = compliance; self.advisories = advisories
    }
}

/// The current ``DeviceRules``, shared by the enrolment and posture service
/// (``DeviceAuthority``) and the gateway (``DeviceBinding``); replaced whole
/// by ``DeviceRulesLoader/reloadIfChanged(_:)``.
public final class DeviceRulesState: Sendable {
    private let box: Mutex<DeviceRules>

    public init(_ rules: DeviceRules) { box = Mutex(rules) }

    public var current: DeviceRules { box.withLock { $0 } }

    func replace(_ rules: DeviceRules) { box.withLock { $0 = rules } }
}

/// Loads the device rules from their files and reloads them when the files
/// change. A change is noticed by a signature of what was read: the SHA-256 of
/// the compliance file's bytes and, for the advisory directory, every entry's
/// path, size and modification time (cheap to take every reload interval even
/// for osv.dev's tens of thousands of Debian records, which are only parsed when
/// the signature moved). A new set that does not load is refused with the
/// precise problem (file, field) and the running set stays (fail safe: a typo
/// must neither drop a control nor forget known vulnerabilities).
public final class DeviceRulesLoader: Sendable {
    public enum Outcome: Sendable, Equatable {
        case unchanged
        case reloaded
        case refused(String)
    }

    public let complianceFile: String
    public let advisoriesDirectory: String
    /// The signature of what the running rules were loaded from, and of the last refused attempt.
    private let signatures = Mutex<(loaded: String, refused: String)>(("", ""))

    /// Largest compliance file read.
    static let maxComplianceFileBytes = 1 << 20

    /// - Parameters:
    ///   - complianceFile: empty for the built-in baselines (``DeviceComplianceDefaults``).
    ///   - advisoriesDirectory: empty for no advisory database.
    public init(complianceFile: String, advisoriesDirectory: String) {
        self.complianceFile = complianceFile; self.advisoriesDirectory = advisoriesDirectory
    }

    /// Loads the rules (at start: a problem stops the start, like the routes file).
    public func load() throws -> DeviceRules {
        let signature = self.signature()
        let rules = try read()
        signatures.withLock { $0 = (signature, "") }
        return rules
    }

    /// Reloads into `state` when the files changed since the last load; a set that does not load is refused
    /// (reported once per distinct change) and `state` keeps the running rules.
    public func reloadIfChanged(_ state: DeviceRulesState) -> Outcome {
        let signature = self.signature()
        let (loaded, refused) = signatures.withLock { $0 }
        guard signature != loaded, signature != refused else { return .unchanged }
        do {
            let rules = try read()
            state.replace(rules)
            signatures.withLock { $0 = (signature, "") }
            return .reloaded
        } catch {
            signatures.withLock { $0.refused = signature }
            return .refused("\(error)")
        }
    }

    func read() throws -> DeviceRules {
        let compliance = try Self.compliance(file: complianceFile)
        var advisories: AdvisoryDatabase?
        if !advisoriesDirectory.isEmpty {
            do { advisories = try AdvisoryDatabase.load(directory: advisoriesDirectory) } catch {
                throw DeviceAuthorityError("device.advisories_dir \(advisoriesDirectory): \(error.description)")
            }
        }
        return DeviceRules(compliance: compliance, advisories: advisories)
    }

    /// `device.compliance_file`, or ``DeviceComplianceDefaults`` when empty. Every problem is reported with the file name.
    static func compliance(file path: String) throws -> CompliancePolicy {
        guard !path.isEmpty else { return try DeviceComplianceDefaults.policy() }
        guard let data = FileManager.default.contents(atPath: path) else { throw DeviceAuthorityError("device.compliance_file \(path): cannot read it") }
        guard data.count <= maxComplianceFileBytes else { throw DeviceAuthorityError("device.compliance_file \(path): larger than 1 MiB") }
        do { return try YAMLDecoder().decode(CompliancePolicy.self, from: data) } catch {
            throw DeviceAuthorityError("device.compliance_file \(path): \(error)")
        }
    }

    /// What the rules would be read from now. Unreadable parts enter the signature as such, so a file
    /// that comes back is noticed; the bounds are the advisory loader's, so a walk never runs away.
    func signature() -> String {
        var hash = SHA256()
        if !complianceFile.isEmpty {
            if let handle = FileHandle(forReadingAtPath: complianceFile) {
                let data = (try? handle.read(upToCount: Self.maxComplianceFileBytes + 1)) ?? Data()
                try? handle.close()
                hash.update(data: Data("compliance:\(data.count):".utf8))
                hash.update(data: data)
            } else {
                hash.update(data: Data("compliance:unreadable".utf8))
            }
        }
        if !advisoriesDirectory.isEmpty {
            var entries = 0
            Self.walk(advisoriesDirectory, depth: 0, limits: OSVLoadLimits(), entries: &entries) { line in hash.update(data: Data(line.utf8)) }
        }
        return hash.finalize().map { String(format: "%02x", $0) }.joined()
    }

    private static func walk(_ directory: String, depth: Int, limits: OSVLoadLimits, entries: inout Int, _ add: (String) -> Void) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            add("unreadable \(directory)\n")
            return
        }
        for name in names.sorted() where !name.hasPrefix(".") {
            entries += 1
            guard entries <= limits.maxFiles * 2 else { add("too many\n"); return }
            let path = (directory as NSString).appendingPathComponent(name)
            let attributes = (try? FileManager.default.attributesOfItem(atPath: path)) ?? [:]
            let type = attributes[.type] as? FileAttributeType
            let size = (attributes[.size] as? NSNumber)?.int64Value ?? -1
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? -1
            add("\(path)\u{0}\(type?.rawValue ?? "?")\u{0}\(size)\u{0}\(modified)\n")
            if type == .typeDirectory, depth < limits.maxDirectoryDepth {
                walk(path, depth: depth + 1, limits: limits, entries: &entries, add)
            }
        }
    }
}

/// Reloads the device rules every `reloadInterval` (the gateway's), and makes
/// the gateway forget what it remembered about device certificates when they
/// changed (a class's posture age limit may have moved).
struct DeviceRulesService: Service {
    let state: DeviceRulesState
    let loader: DeviceRulesLoader
    let binding: DeviceBinding?
    let reloadInterval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: reloadInterval)
                switch loader.reloadIfChanged(state) {
                case .unchanged: break
                case .reloaded:
                    binding?.removeAll()
                    let rules = state.current
                    logger.notice("device rules reloaded", metadata: [
                        "classes": "\(rules.compliance.classes.count)", "advisories": "\(rules.advisories?.advisories.count ?? 0)"])
                case .refused(let why):
                    logger.error("device rules change refused; the running rules stay", metadata: ["problems": "\(why)"])
                }
            }
        }
    }
}
