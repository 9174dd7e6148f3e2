import Foundation
import MenshenTestSupport
import Testing
@testable import MenshenDevice

/// Matching against the advisories in Fixtures/osv (written for these tests).
/// Every expectation is read off the advisory text by hand: which interval a
/// version falls in, which ecosystem string applies.
@Suite("OSV advisories and matching")
struct OSVTests {
    static func database() throws -> AdvisoryDatabase { try AdvisoryDatabase.load(directory: Fixtures.osv) }

    static func scan(_ packages: [InstalledPackage], ecosystem: String = "Debian:12",
                     unknown: VulnerabilitySeverity = .high) throws -> VulnerabilityScan {
        try database().scan(packages, ecosystem: ecosystem, unknownSeverity: unknown)
    }

    static func ids(_ scan: VulnerabilityScan) -> [String] { scan.findings.map(\.advisoryID).sorted() }

    @Test("The fixture directory loads: ten advisories, the PyPI entry kept but not indexed")
    func loads() throws {
        let db = try Self.database()
        #expect(db.advisories.count == 10)
        #expect(db.unsupportedEntryCount == 1)
        let dsa = try #require(db.advisories.first { $0.id == "DSA-9001-1" })
        #expect(dsa.aliases == ["CVE-2099-1001"])
        #expect(dsa.modified == "2099-01-10T00:00:00Z")
        #expect(dsa.affected.map(\.ecosystem) == ["Debian:12", "Debian:11"])
        #expect(dsa.affected[0].ranges[0].events == [.introduced("0"), .fixed("3.0.11-1~deb12u2")])
    }

    @Test("A vulnerable source package is found through its binary package, with the fix and the CVSS severity")
    func sourcePackageMatch() throws {
        let libssl = InstalledPackage(name: "libssl3", version: "3.0.11-1~deb12u1", sourceName: "openssl")
        let scan = try Self.scan([libssl])
        let finding = try #require(scan.findings.first)
        #expect(scan.findings.count == 1)
        #expect(finding.advisoryID == "DSA-9001-1")
        #expect(finding.aliases == ["CVE-2099-1001"])
        #expect(finding.package == "libssl3")
        #expect(finding.advisoryPackage == "openssl")
        #expect(finding.installedVersion == "3.0.11-1~deb12u1")
        #expect(finding.fixedVersion == "3.0.11-1~deb12u2")
        // CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H is 9.8 (NVD), critical.
        #expect(finding.severity == .critical)
        #expect(!finding.severityAssumed)
        #expect(scan.maxSeverity == .critical)
        // The fixed version itself and anything later are clean.
        #expect(try Self.scan([InstalledPackage(name: "libssl3", version: "3.0.11-1~deb12u2", sourceName: "openssl")]).findings.isEmpty)
        #expect(try Self.scan([InstalledPackage(name: "openssl", version: "3.0.13-1~deb12u1")]).findings.isEmpty)
    }

    @Test("An advisory for Debian 11 does not apply to Debian 12, and the Debian 12 fix does not clear Debian 11")
    func releaseIsolation() throws {
        // 3.0.11-1~deb12u2 is Debian 12's fix; it is far above Debian 11's fix, so a clean result here
        // does not say the Debian 11 entry was consulted: the next cases pin that down.
        let onTwelve = try Self.scan([InstalledPackage(name: "openssl", version: "3.0.11-1~deb12u2")], ecosystem: "Debian:12")
        #expect(onTwelve.findings.isEmpty)
        let onEleven = try Self.scan([InstalledPackage(name: "openssl", version: "1.1.1n-0+deb11u5")], ecosystem: "Debian:11")
        #expect(Self.ids(onEleven) == ["DSA-9001-1"])
        #expect(onEleven.findings.first?.fixedVersion == "1.1.1w-0+deb11u1")
        // Debian 11's fix is lower than Debian 12's: a Debian 12 device at 1.1.1w is still vulnerable.
        let oldOnTwelve = try Self.scan([InstalledPackage(name: "openssl", version: "1.1.1w-0+deb11u1")], ecosystem: "Debian:12")
        #expect(oldOnTwelve.findings.first?.fixedVersion == "3.0.11-1~deb12u2")
        // A release with no entry at all.
        #expect(try Self.scan([InstalledPackage(name: "openssl", version: "1.0")], ecosystem: "Debian:10").findings.isEmpty)
    }

    @Test("Several introduced/fixed pairs: inside either interval is affected, between and after is not",
          arguments: [
            ("7.49.0-1", nil), ("7.50.0-1", "7.52.1-5"), ("7.51.0-1", "7.52.1-5"), ("7.52.1-5", nil), ("7.60.0-1", nil),
            ("7.79.9-9", nil), ("7.80.0-1", "7.88.1-10+deb12u5"), ("7.88.1-10+deb12u4", "7.88.1-10+deb12u5"),
            ("7.88.1-10+deb12u5", nil), ("7.88.1-10+deb12u12", nil), ("8.0.0-1", nil),
          ] as [(String, String?)])
    func multipleIntervals(version: String, fixed: String?) throws {
        let scan = try Self.scan([InstalledPackage(name: "curl", version: version)])
        if let fixed {
            #expect(Self.ids(scan) == ["DEBIAN-CVE-2099-1002"], "\(version)")
            #expect(scan.findings.first?.fixedVersion == fixed)
            #expect(scan.findings.first?.severity == .medium) // urgency "medium"
        } else {
            #expect(scan.findings.isEmpty, "\(version)")
        }
    }

    @Test("last_affected includes that version and nothing after it; there is no fixed version to offer")
    func lastAffected() throws {
        let at = try Self.scan([InstalledPackage(name: "sudo", version: "1.9.13p3-1+deb12u1")])
        #expect(Self.ids(at) == ["DEBIAN-CVE-2099-1003"])
        #expect(at.findings.first?.fixedVersion == nil)
        #expect(at.findings.first?.severity == .high)
        #expect(Self.ids(try Self.scan([InstalledPackage(name: "sudo", version: "1.9.5p2-3")])) == ["DEBIAN-CVE-2099-1003"])
        #expect(try Self.scan([InstalledPackage(name: "sudo", version: "1.9.13p3-1+deb12u2")]).findings.isEmpty)
        #expect(try Self.scan([InstalledPackage(name: "sudo", version: "1.9.13p3-1+deb12u1.1")]).findings.isEmpty)
    }

    @Test("Epochs and tildes decide the bind9 cases",
          arguments: [
            ("1:9.18.19-1~deb12u1", true), ("1:9.18.24-1~deb12u1", true), ("1:9.18.24-1", false), ("1:9.18.24-1+b1", false),
            ("9.99.99-1", true), // no epoch is epoch 0, below 1:anything
            ("2:9.0-1", false), ("1:9.18.24-0.1", true), ("1:9.18.24", true),
          ])
    func epochsAndTildes(version: String, affected: Bool) throws {
        let scan = try Self.scan([InstalledPackage(name: "bind9", version: version)])
        #expect(Self.ids(scan) == (affected ? ["DSA-9004-1"] : []), "\(version)")
        if affected { #expect(scan.findings.first?.severity == .high) } // database_specific.severity HIGH
    }

    @Test("An advisory for plain \"Debian\" applies to every release; an unknown urgency takes the caller's default")
    func releaselessEcosystemAndUnknownSeverity() throws {
        let zlib = InstalledPackage(name: "zlib1g", version: "1:1.2.13.dfsg-1", sourceName: "zlib")
        for release in ["Debian:11", "Debian:12", "Debian:13"] {
            let scan = try Self.scan([zlib], ecosystem: release)
            #expect(Self.ids(scan) == ["DEBIAN-CVE-2099-1005"], "\(release)")
            #expect(scan.findings.first?.severity == .high)
            #expect(scan.findings.first?.severityAssumed == true)
        }
        #expect(try Self.scan([zlib], unknown: .medium).findings.first?.severity == .medium)
        // Ubuntu is another ecosystem even though its versions are Debian versions.
        #expect(try Self.scan([zlib], ecosystem: "Ubuntu:22.04:LTS").findings.isEmpty)
    }

    @Test("Ubuntu advisories match Ubuntu devices only")
    func ubuntu() throws {
        let curl = InstalledPackage(name: "curl", version: "7.81.0-1ubuntu1.15")
        let ubuntu = try Self.scan([curl], ecosystem: "Ubuntu:22.04:LTS")
        #expect(Self.ids(ubuntu) == ["UBUNTU-CVE-2099-1009"])
        #expect(ubuntu.findings.first?.severity == .low) // severity type Ubuntu, "low"
        // The same version on Debian 12 falls inside Debian's second curl interval, and only that advisory.
        #expect(Self.ids(try Self.scan([curl], ecosystem: "Debian:12")) == ["DEBIAN-CVE-2099-1002"])
        #expect(try Self.scan([curl], ecosystem: "Ubuntu:24.04:LTS").findings.isEmpty)
    }

    @Test("Withdrawn advisories, enumerated versions and limit events")
    func withdrawnVersionsAndLimits() throws {
        #expect(try Self.scan([InstalledPackage(name: "bash", version: "5.2.15-2")]).findings.isEmpty)
        let xz = try Self.scan([InstalledPackage(name: "xz-utils", version: "5.6.1-1")])
        #expect(Self.ids(xz) == ["DEBIAN-CVE-2099-1007"])
        #expect(xz.findings.first?.severity == .critical)
        // Listed versions compare by Debian equality, so 5.6.1-01 is 5.6.1-1; 5.6.1-1.0 and a binNMU are not.
        #expect(Self.ids(try Self.scan([InstalledPackage(name: "xz-utils", version: "5.6.1-01")])) == ["DEBIAN-CVE-2099-1007"])
        #expect(try Self.scan([InstalledPackage(name: "xz-utils", version: "5.6.1-1.0")]).findings.isEmpty)
        #expect(try Self.scan([InstalledPackage(name: "xz-utils", version: "5.6.1-1+b1")]).findings.isEmpty)
        #expect(try Self.scan([InstalledPackage(name: "xz-utils", version: "5.4.1-0.2")]).findings.isEmpty)
        // Below the limit affected (low, from "low**"), at and above it not.
        let tar = try Self.scan([InstalledPackage(name: "tar", version: "1.34+dfsg-1")])
        #expect(Self.ids(tar) == ["DEBIAN-CVE-2099-1008"])
        #expect(tar.findings.first?.severity == .low)
        #expect(tar.findings.first?.fixedVersion == nil)
        #expect(try Self.scan([InstalledPackage(name: "tar", version: "1.34+dfsg-1.2")]).findings.isEmpty)
        #expect(try Self.scan([InstalledPackage(name: "tar", version: "1.35+dfsg-3")]).findings.isEmpty)
    }

    @Test("A whole device: findings sorted by severity, unreadable versions reported as not evaluated")
    func wholeDevice() throws {
        let packages = [
            InstalledPackage(name: "curl", version: "7.88.1-10+deb12u4"),
            InstalledPackage(name: "libssl3", version: "3.0.11-1~deb12u1", sourceName: "openssl"),
            InstalledPackage(name: "openssl", version: "3.0.11-1~deb12u1"),
            InstalledPackage(name: "tar", version: "1.34+dfsg-1"),
            InstalledPackage(name: "vim", version: "2:9.0.1378-2"),
            InstalledPackage(name: "broken", version: "not a version"),
        ]
        let scan = try Self.scan(packages)
        #expect(scan.findings.map(\.package) == ["libssl3", "openssl", "curl", "tar"])
        #expect(scan.findings.map(\.severity) == [.critical, .critical, .medium, .low])
        #expect(scan.unevaluated.map(\.name) == ["broken"])
        #expect(scan.maxSeverity == .critical)
        #expect(try Self.scan([InstalledPackage(name: "vim", version: "2:9.0.1378-2")]).maxSeverity == VulnerabilitySeverity.none)
    }

    @Test("A device ecosystem without a version order evaluates nothing rather than reporting clean")
    func unsupportedDeviceEcosystem() throws {
        let scan = try Self.scan([InstalledPackage(name: "curl", version: "1.0")], ecosystem: "Alpine:v3.19")
        #expect(!scan.ecosystemSupported)
        #expect(scan.unevaluated.count == 1)
    }

    @Test("Published CVSS v3 base scores", arguments: [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0), // CVE-2021-44228
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5),  // CVE-2014-0160
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),  // CVE-2021-3156
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),  // CVE-2022-22965
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),  // typical reflected XSS, e.g. CVE-2020-11022
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.1),  // CVE-2024-6387
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0), // CVE-2017-5638, a v3.0 vector
        ("CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H", 8.6),  // CVE-2019-5736
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:N", 0.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N/E:P/RL:O", 7.5), // temporal metrics ignored
    ])
    func cvss(vector: String, score: Double) {
        #expect(CVSS3.baseScore(vector) == score)
    }

    @Test("Malformed CVSS vectors have no score", arguments: [
        "", "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:2.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H", "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/",
    ])
    func cvssMalformed(vector: String) {
        #expect(CVSS3.baseScore(vector) == nil)
    }

    @Test("Qualitative severity words", arguments: [
        ("unimportant", VulnerabilitySeverity.none), ("LOW", .low), ("low**", .low), ("Moderate", .medium),
        ("medium", .medium), ("HIGH", .high), ("critical", .critical), ("negligible", VulnerabilitySeverity.none),
        ("not yet assigned", nil), ("end-of-life", nil), ("untriaged", nil), ("", nil),
    ] as [(String, VulnerabilitySeverity?)])
    func qualitative(word: String, severity: VulnerabilitySeverity?) {
        #expect(VulnerabilitySeverity(qualitative: word) == severity)
    }
}

/// Bad advisory input: each problem is an error naming the file, and the load returns nothing.
@Suite("OSV loading refuses bad input")
struct OSVLoadingTests {
    static let good = #"{"id": "DSA-1-1", "affected": [{"package": {"ecosystem": "Debian:12", "name": "a"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-1"}]}]}]}"#

    /// A directory with one good advisory and `bad` as `bad.json`; loading must fail naming bad.json.
    static func expectRefused(_ bad: String, _ code: OSVError.Code, detail: String? = nil, limits: OSVLoadLimits = OSVLoadLimits()) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try dir.write("a-good.json", good)
        try dir.write("bad.json", bad)
        do {
            _ = try AdvisoryDatabase.load(directory: dir.url.path, limits: limits)
            Issue.record("loaded despite \(code)")
        } catch {
            #expect(error.code == code, "\(error)")
            #expect(error.path.hasSuffix("bad.json"), "\(error)")
            if let detail { #expect(error.detail.contains(detail), "\(error)") }
        }
        // Without the bad file the same directory loads.
        try FileManager.default.removeItem(atPath: dir.path("bad.json"))
        #expect(try AdvisoryDatabase.load(directory: dir.url.path, limits: limits).advisories.count == 1)
    }

    @Test("Malformed JSON") func malformedJSON() throws {
        try Self.expectRefused(String(Self.good.dropLast(3)), .malformedJSON)
        try Self.expectRefused("", .malformedJSON)
        try Self.expectRefused("[]", .invalidAdvisory)
        try Self.expectRefused("\u{FF}\u{FE}garbage", .malformedJSON)
    }

    @Test("Schema violations name the field") func schema() throws {
        try Self.expectRefused(#"{"affected": []}"#, .invalidAdvisory, detail: "id: required field missing")
        try Self.expectRefused(#"{"id": 7}"#, .invalidAdvisory, detail: "id: expected a string")
        try Self.expectRefused(#"{"id": ""}"#, .invalidAdvisory, detail: "id: must not be empty")
        try Self.expectRefused(#"{"id": "X", "affected": [{"package": {"ecosystem": "Debian:12"}}]}"#, .invalidAdvisory,
                               detail: "affected[0].package.name: required field missing")
        try Self.expectRefused(#"{"id": "X", "affected": [{"package": {"ecosystem": "Debian:12", "name": "a"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0", "fixed": "1"}]}]}]}"#,
                               .invalidAdvisory, detail: "affected[0].ranges[0].events[0]")
        try Self.expectRefused(#"{"id": "X", "affected": [{"package": {"ecosystem": "Debian:12", "name": "a"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "1"}]}]}]}"#,
                               .invalidAdvisory, detail: "at least one introduced")
        try Self.expectRefused(#"{"id": "X", "affected": [{"package": {"ecosystem": "Debian:12", "name": "a"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2"}, {"last_affected": "1"}]}]}]}"#,
                               .invalidAdvisory, detail: "fixed and last_affected")
        try Self.expectRefused(#"{"id": "X", "affected": [{"package": {"ecosystem": "Debian:12", "name": "a"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": 0}]}]}]}"#,
                               .invalidAdvisory, detail: "expected a string")
        try Self.expectRefused(#"{"id": "X", "affected": [{"package": {"ecosystem": "Debian:12", "name": "a"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"patched": "1"}]}]}]}"#,
                               .invalidAdvisory, detail: "unknown event")
    }

    @Test("Versions that are not Debian versions in Debian and Ubuntu entries") func badVersions() throws {
        try Self.expectRefused(#"{"id": "X", "affected": [{"package": {"ecosystem": "Debian:12", "name": "a"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0_beta"}]}]}]}"#,
                               .invalidVersion, detail: "affected[0].ranges[0].events[1].fixed")
        try Self.expectRefused(#"{"id": "X", "affected": [{"package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "a"}, "versions": ["1.0", "x"]}]}"#,
                               .invalidVersion, detail: "affected[0].versions[1]")
        try Self.expectRefused(#"{"id": "X", "affected": [{"package": {"ecosystem": "Debian", "name": "a"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "*"}]}]}]}"#,
                               .invalidVersion)
    }

    @Test("Size, count, depth and string limits") func limits() throws {
        try Self.expectRefused(Self.good.replacingOccurrences(of: "DSA-1-1", with: "DSA-2-1") + String(repeating: " ", count: 600),
                               .fileTooLarge, limits: OSVLoadLimits(maxFileBytes: 600))
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        try Self.expectRefused(#"{"id": "X", "x": "# + deep + "}", .jsonTooDeep)
        // Brackets inside strings do not count as nesting.
        try Self.expectRefused(#"{"id": "X", "summary": "\#(deep)", "affected": 1}"#, .invalidAdvisory)
        try Self.expectRefused(#"{"id": "\#(String(repeating: "A", count: 2000))"}"#, .stringTooLong)
        try Self.expectRefused(#"{"id": "X", "aliases": ["a", "b", "c", "d"]}"#, .tooManyEntries, limits: OSVLoadLimits(maxListLength: 3))
        try Self.expectRefused(#"{"id": "DSA-1-1"}"#, .duplicateAdvisoryID, detail: "a-good.json")
    }

    @Test("Too many files, too deep a tree, symbolic links, not a directory") func directoryShape() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        for i in 0..<4 { try dir.write("f\(i).json", #"{"id": "ID-\#(i)"}"#) }
        #expect(try AdvisoryDatabase.load(directory: dir.url.path).advisories.count == 4)
        #expect(throws: OSVError(.tooManyFiles, path: "")) { try AdvisoryDatabase.load(directory: dir.url.path, limits: OSVLoadLimits(maxFiles: 3)) }
        #expect(throws: OSVError(.totalSizeTooLarge, path: "")) { try AdvisoryDatabase.load(directory: dir.url.path, limits: OSVLoadLimits(maxTotalBytes: 30)) }

        try dir.write("a/b/c/deep.json", #"{"id": "DEEP"}"#)
        #expect(try AdvisoryDatabase.load(directory: dir.url.path, limits: OSVLoadLimits(maxDirectoryDepth: 3)).advisories.count == 5)
        #expect(throws: OSVError(.directoryTooDeep, path: "")) { try AdvisoryDatabase.load(directory: dir.url.path, limits: OSVLoadLimits(maxDirectoryDepth: 2)) }

        // Other files and hidden entries are skipped.
        try dir.write("README.md", "not json")
        try dir.write(".hidden.json", "not json either")
        #expect(try AdvisoryDatabase.load(directory: dir.url.path).advisories.count == 5)

        try FileManager.default.createSymbolicLink(atPath: dir.path("link.json"), withDestinationPath: dir.path("f0.json"))
        do {
            _ = try AdvisoryDatabase.load(directory: dir.url.path)
            Issue.record("a symbolic link was followed")
        } catch {
            #expect(error.code == .notARegularFile)
            #expect(error.path.hasSuffix("link.json"))
        }
        #expect(throws: OSVError(.unreadable, path: "")) { try AdvisoryDatabase.load(directory: dir.path("f0.json")) }
        #expect(throws: OSVError(.unreadable, path: "")) { try AdvisoryDatabase.load(directory: dir.path("missing")) }
    }

    @Test("Hand-built advisories are validated too") func handBuilt() throws {
        let bad = OSVAdvisory(id: "X", affected: [OSVAffected(ecosystem: "Debian:12", name: "a", versions: ["not valid"])])
        #expect(throws: OSVError(.invalidVersion, path: "")) { try AdvisoryDatabase(advisories: [bad]) }
        let a = OSVAdvisory(id: "X", affected: [])
        #expect(throws: OSVError(.duplicateAdvisoryID, path: "")) { try AdvisoryDatabase(advisories: [a, a]) }
    }

    @Test("Random and truncated bytes never crash the decoder") func fuzz() throws {
        var g = SeededGenerator(seed: 0x05f)
        let sample = try String(contentsOfFile: Fixtures.osv + "/debian/DSA-9001-1.json", encoding: .utf8)
        let bytes = Array(sample.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
        for cut in stride(from: 0, to: bytes.count, by: 7) {
            #expect(throws: OSVError.self) { try OSVAdvisory.decode(Array(bytes[..<cut]), path: "cut") }
        }
        for _ in 0..<300 {
            var mutated = bytes
            for _ in 0..<Int.random(in: 1...4, using: &g) {
                mutated[Int.random(in: 0..<mutated.count, using: &g)] = UInt8.random(in: 0...255, using: &g)
            }
            _ = try? OSVAdvisory.decode(mutated, path: "mutated") // any outcome but a crash
            let random = (0..<Int.random(in: 0...200, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
            #expect(throws: OSVError.self) { try OSVAdvisory.decode(random, path: "random") }
        }
    }
}
