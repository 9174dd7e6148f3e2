import Foundation
import MenshenCore

/// Collects a Linux device's posture from its files (principle 2.2), for
/// `menshen agent report` without `--posture`. Every path is read under
/// ``root`` (`/` on a device; a fixture tree in tests), so nothing here runs a
/// program or needs privileges:
///
/// - OS: `etc/os-release` (`ID`, `VERSION_ID`); Debian's point release from
///   `etc/debian_version`; the OSV ecosystem `Debian:<major>` or
///   `Ubuntu:<VERSION_ID>` when the OS has one;
/// - kernel: `proc/sys/kernel/osrelease` (what `uname -r` prints);
/// - packages: the dpkg status file `var/lib/dpkg/status`, installed packages
///   only, with their source package and version when they differ;
/// - pending security updates: Ubuntu's `var/lib/update-notifier/updates-available`
///   when present, else 0 (Debian keeps no cheap count; see the note below);
/// - firewall: loaded iptables tables (`proc/net/ip_tables_names`,
///   `ip6_tables_names`) or nftables enabled at boot with an input hook in
///   `etc/nftables.conf`;
/// - disk encryption: the root file system's device is, or sits on, a
///   dm-crypt mapping (`sys/block/dm-*/dm/uuid` starting with `CRYPT-`);
/// - EDR: ClamAV when `clamd` runs (`proc/*/comm`), its signature age from
///   `var/lib/clamav/daily.{cld,cvd}`; otherwise none;
/// - screen lock: not knowable from files, reported false (a control the
///   agent cannot see counts as off, as ``PostureReport`` says).
///
/// Note: a pending-update count of 0 on Debian means "not measured"; a
/// baseline that limits pending updates is only meaningful on Ubuntu until the
/// agent reads apt's lists.
///
/// Bounded: every file is read up to a limit, the status file to
/// ``maxStatusBytes`` with at most ``PostureLimits/maxPackages`` packages and
/// ``PostureLimits/maxStringBytes`` per name or version (longer entries are
/// skipped), `/proc` to ``maxProcesses`` entries, so a hostile or corrupt file
/// cannot exhaust the agent. Written by hand: no package reads these formats.
public struct LinuxPostureCollector: Sendable {
    public let root: String
    public let limits: PostureLimits
    public static let maxStatusBytes = 64 << 20
    static let maxSmallFileBytes = 64 * 1024
    static let maxProcesses = 65_536

    public init(root: String = "/", limits: PostureLimits = PostureLimits()) {
        self.root = root; self.limits = limits
    }

    /// What was measured; ``report(deviceID:nonce:collectedAt:)`` wraps it for signing.
    public struct Collected: Sendable, Hashable {
        public var os: PostureReport.OperatingSystem
        public var kernel: String
        public var pendingSecurityUpdates: Int
        public var diskEncryption: Bool
        public var firewall: Bool
        public var screenLock: Bool
        public var edr: PostureReport.EDR?
        public var packages: [InstalledPackage]

        public func report(deviceID: DeviceID, nonce: String, collectedAt: Date) -> PostureReport {
            PostureReport(deviceID: deviceID, nonce: nonce, collectedAt: collectedAt, os: os, kernel: kernel,
                          pendingSecurityUpdates: pendingSecurityUpdates, diskEncryption: diskEncryption, firewall: firewall,
                          screenLock: screenLock, edr: edr, packages: packages)
        }
    }

    public func collect(now: Date = Date()) throws -> Collected {
        Collected(os: try operatingSystem(), kernel: clip(read("proc/sys/kernel/osrelease")?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"),
                  pendingSecurityUpdates: pendingSecurityUpdates(), diskEncryption: diskEncryption(), firewall: firewall(),
                  screenLock: false, edr: edr(now: now), packages: try packages())
    }

    // MARK: Parts

    func operatingSystem() throws -> PostureReport.OperatingSystem {
        guard let text = read("etc/os-release") ?? read("usr/lib/os-release") else {
            throw PostureCollectionError("\(path("etc/os-release")): cannot read it")
        }
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let eq = line.firstIndex(of: "="), !line.hasPrefix("#") else { continue }
            var value = String(line[line.index(after: eq)...])
            if value.count >= 2, let q = value.first, q == "\"" || q == "'", value.last == q { value = String(value.dropFirst().dropLast()) }
            fields[String(line[..<eq])] = value
        }
        let id = fields["ID"]?.lowercased() ?? ""
        let versionID = fields["VERSION_ID"] ?? ""
        switch id {
        case "debian":
            let point = read("etc/debian_version")?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            let version = point.first?.isNumber == true ? point : versionID
            let major = version.split(separator: ".").first.map(String.init) ?? ""
            return .init(name: "Debian", version: clip(version.isEmpty ? "unknown" : version),
                         packageEcosystem: major.isEmpty || !major.allSatisfy(\.isNumber) ? nil : "Debian:" + major)
        case "ubuntu":
            return .init(name: "Ubuntu", version: clip(versionID), packageEcosystem: versionID.isEmpty ? nil : "Ubuntu:" + clip(versionID))
        default:
            return .init(name: clip(fields["NAME"] ?? (id.isEmpty ? "Linux" : id)), version: clip(versionID.isEmpty ? "unknown" : versionID))
        }
    }

    /// Installed packages from the dpkg status file (none when there is none: not a dpkg system).
    func packages() throws -> [InstalledPackage] {
        guard let handle = FileHandle(forReadingAtPath: path("var/lib/dpkg/status")) else { return [] }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: Self.maxStatusBytes + 1)) ?? Data()
        guard data.count <= Self.maxStatusBytes else {
            throw PostureCollectionError("\(path("var/lib/dpkg/status")): larger than \(Self.maxStatusBytes) bytes")
        }
        var packages: [InstalledPackage] = []
        var fields: [Substring: Substring] = [:]
        func flush() throws {
            defer { fields.removeAll(keepingCapacity: true) }
            guard let name = fields["Package"], let version = fields["Version"],
                  fields["Status"]?.hasSuffix(" installed") == true else { return }
            var sourceName: String?, sourceVersion: String?
            if let source = fields["Source"] {
                // "Source: name" or "Source: name (version)".
                let parts = source.split(separator: " ", maxSplits: 1)
                sourceName = parts.first.map(String.init)
                if parts.count == 2, parts[1].hasPrefix("("), parts[1].hasSuffix(")") { sourceVersion = String(parts[1].dropFirst().dropLast()) }
            }
            let strings = [String(name), String(version), sourceName ?? "", sourceVersion ?? ""]
            guard strings.allSatisfy({ $0.utf8.count <= limits.maxStringBytes }) else { return }
            guard packages.count < limits.maxPackages else {
                throw PostureCollectionError("more than \(limits.maxPackages) installed packages")
            }
            let sourceDiffers = sourceName != nil && (sourceName != String(name) || sourceVersion != nil)
            packages.append(InstalledPackage(name: String(name), version: String(version),
                                             sourceName: sourceDiffers ? sourceName : nil,
                                             sourceVersion: sourceDiffers ? (sourceVersion ?? String(version)) : nil))
        }
        let text = String(decoding: data, as: UTF8.self)
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty { try flush(); continue }
            guard let first = line.first, first != " ", first != "\t", let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon]
            guard key == "Package" || key == "Version" || key == "Status" || key == "Source" else { continue }
            fields[key] = line[line.index(after: colon)...].drop { $0 == " " }
        }
        try flush()
        return packages
    }

    func pendingSecurityUpdates() -> Int {
        // "12 updates can be applied immediately.\n3 of these updates are standard security updates."
        guard let text = read("var/lib/update-notifier/updates-available") else { return 0 }
        for line in text.split(whereSeparator: \.isNewline) where line.contains("security update") {
            if let number = line.split(separator: " ").first.flatMap({ Int($0) }), number >= 0 { return number }
        }
        return 0
    }

    func firewall() -> Bool {
        for file in ["proc/net/ip_tables_names", "proc/net/ip6_tables_names"] {
            if let text = read(file), !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return true }
        }
        let enabled = FileManager.default.fileExists(atPath: path("etc/systemd/system/sysinit.target.wants/nftables.service"))
            || FileManager.default.fileExists(atPath: path("etc/systemd/system/multi-user.target.wants/nftables.service"))
        guard enabled, let conf = read("etc/nftables.conf") else { return false }
        return conf.contains("hook input")
    }

    /// The root file system is on dm-crypt: its device (`/dev/mapper/NAME` or `/dev/dm-N`) is a CRYPT- mapping or sits on one.
    func diskEncryption() -> Bool {
        guard let mounts = read("proc/mounts") else { return false }
        var device: String?
        for line in mounts.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: " ")
            if parts.count >= 2, parts[1] == "/" { device = String(parts[0]) }
        }
        guard let device else { return false }
        let blocks = (try? FileManager.default.contentsOfDirectory(atPath: path("sys/block"))) ?? []
        var dm: String?
        if device.hasPrefix("/dev/dm-") { dm = String(device.dropFirst("/dev/".count)) }
        else if device.hasPrefix("/dev/mapper/") {
            let name = String(device.dropFirst("/dev/mapper/".count))
            dm = blocks.first { $0.hasPrefix("dm-") && read("sys/block/\($0)/dm/name")?.trimmingCharacters(in: .whitespacesAndNewlines) == name }
        }
        guard let dm else { return false }
        return isCrypt(dm, depth: 0)
    }

    private func isCrypt(_ dm: String, depth: Int) -> Bool {
        guard depth < 4, dm.hasPrefix("dm-"), !dm.contains("/") else { return false }
        if read("sys/block/\(dm)/dm/uuid")?.hasPrefix("CRYPT-") == true { return true }
        let slaves = (try? FileManager.default.contentsOfDirectory(atPath: path("sys/block/\(dm)/slaves"))) ?? []
        return slaves.prefix(16).contains { isCrypt($0, depth: depth + 1) }
    }

    func edr(now: Date) -> PostureReport.EDR? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: path("proc"))) ?? []
        var running = false
        for entry in entries.prefix(Self.maxProcesses) where entry.first?.isNumber == true {
            if read("proc/\(entry)/comm")?.trimmingCharacters(in: .whitespacesAndNewlines) == "clamd" { running = true; break }
        }
        let signatures = ["var/lib/clamav/daily.cld", "var/lib/clamav/daily.cvd"].compactMap {
            (try? FileManager.default.attributesOfItem(atPath: path($0)))?[.modificationDate] as? Date
        }.max()
        guard running || signatures != nil else { return nil }
        let age = signatures.map { max(0, now.timeIntervalSince($0)) } ?? Double(Int32.max)
        return PostureReport.EDR(product: "ClamAV", running: running, signatureAgeSeconds: age >= Double(Int32.max) ? Int(Int32.max) : Int(age))
    }

    // MARK: Files

    func path(_ relative: String) -> String { (root as NSString).appendingPathComponent(relative) }

    /// A small file's text, nil when unreadable or larger than 64 KiB.
    func read(_ relative: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path(relative)) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: Self.maxSmallFileBytes + 1), data.count <= Self.maxSmallFileBytes else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    func clip(_ text: String) -> String {
        var out = text
        while out.utf8.count > limits.maxStringBytes { out.removeLast() }
        return out
    }
}
