import Crypto
import Foundation
import MenshenCore
import Testing
@testable import MenshenDevice

/// The Linux posture collector on fixture trees written here (never copied
/// from a machine), and once on this machine, signed and verified like the
/// server does.
@Suite("Linux posture collector")
struct LinuxPostureCollectorTests {
    /// Writes `files` (relative path → content) under a new temporary root.
    static func tree(_ files: [String: String]) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("posture-\(UUID().uuidString)")
        for (relative, content) in files {
            let url = root.appendingPathComponent(relative)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: url, atomically: true, encoding: .utf8)
        }
        return root
    }

    static let status = """
        Package: libssl3
        Status: install ok installed
        Priority: optional
        Source: openssl
        Version: 3.0.15-1~deb12u1
        Description: Secure Sockets Layer toolkit
         multi-line description with Package: fake
         Version: 9.9

        Package: bash
        Status: install ok installed
        Version: 5.2.15-2+b2
        Source: bash (5.2.15-2)

        Package: removed-thing
        Status: deinstall ok config-files
        Version: 1.0-1

        Package: coreutils
        Status: install ok installed
        Version: 9.1-1

        """

    @Test("a Debian tree: OS and point release, kernel, installed packages with their sources, LUKS under LVM, nftables, ClamAV")
    func debianTree() throws {
        let root = try Self.tree([
            "etc/os-release": "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
            "etc/debian_version": "12.7\n",
            "proc/sys/kernel/osrelease": "6.1.0-25-amd64\n",
            "var/lib/dpkg/status": Self.status,
            "proc/mounts": "sysfs /sys sysfs rw 0 0\n/dev/mapper/vg-root / ext4 rw,relatime 0 0\n/dev/sda1 /boot ext4 rw 0 0\n",
            "sys/block/dm-1/dm/name": "vg-root\n",
            "sys/block/dm-1/dm/uuid": "LVM-abcdef\n",
            "sys/block/dm-1/slaves/dm-0": "",
            "sys/block/dm-0/dm/name": "sda3_crypt\n",
            "sys/block/dm-0/dm/uuid": "CRYPT-LUKS2-0123456789abcdef-sda3_crypt\n",
            "etc/nftables.conf": "table inet filter {\n chain input {\n  type filter hook input priority 0; policy drop;\n }\n}\n",
            "etc/systemd/system/sysinit.target.wants/nftables.service": "",
            "proc/4242/comm": "clamd\n",
            "proc/1/comm": "systemd\n",
            "var/lib/clamav/daily.cld": "",
        ])
        defer { try? FileManager.default.removeItem(at: root) }
        let now = Date().addingTimeInterval(3600)
        let c = try LinuxPostureCollector(root: root.path).collect(now: now)
        #expect(c.os == PostureReport.OperatingSystem(name: "Debian", version: "12.7", packageEcosystem: "Debian:12"))
        #expect(c.kernel == "6.1.0-25-amd64")
        #expect(c.packages == [
            InstalledPackage(name: "libssl3", version: "3.0.15-1~deb12u1", sourceName: "openssl", sourceVersion: "3.0.15-1~deb12u1"),
            InstalledPackage(name: "bash", version: "5.2.15-2+b2", sourceName: "bash", sourceVersion: "5.2.15-2"),
            InstalledPackage(name: "coreutils", version: "9.1-1"),
        ], "installed only; continuation lines are not fields")
        #expect(c.diskEncryption, "root on LVM on LUKS")
        #expect(c.firewall)
        #expect(c.edr?.product == "ClamAV" && c.edr?.running == true && (3500...3700).contains(c.edr?.signatureAgeSeconds ?? -1))
        #expect(c.screenLock == false && c.pendingSecurityUpdates == 0)
    }

    @Test("an Ubuntu tree without encryption, firewall or EDR; pending security updates from update-notifier")
    func ubuntuTree() throws {
        let root = try Self.tree([
            "etc/os-release": "NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\n",
            "proc/sys/kernel/osrelease": "5.15.0-100-generic\n",
            "proc/mounts": "/dev/sda2 / ext4 rw 0 0\n",
            "proc/net/ip_tables_names": "",
            "etc/nftables.conf": "table inet filter { chain input { type filter hook input priority 0; } }\n",   // not enabled
            "var/lib/update-notifier/updates-available": "\n12 updates can be applied immediately.\n3 of these updates are standard security updates.\n",
        ])
        defer { try? FileManager.default.removeItem(at: root) }
        let c = try LinuxPostureCollector(root: root.path).collect()
        #expect(c.os == PostureReport.OperatingSystem(name: "Ubuntu", version: "22.04", packageEcosystem: "Ubuntu:22.04"))
        #expect(!c.diskEncryption && !c.firewall && c.edr == nil && c.packages.isEmpty)
        #expect(c.pendingSecurityUpdates == 3)
    }

    @Test("bad input: no os-release is an error; an oversized status file and too many packages are refused; over-long fields are skipped")
    func badInput() throws {
        let none = try Self.tree(["proc/mounts": ""])
        defer { try? FileManager.default.removeItem(at: none) }
        #expect(throws: PostureCollectionError.self) { try LinuxPostureCollector(root: none.path).collect() }

        let many = (0..<30).map { "Package: p\($0)\nStatus: install ok installed\nVersion: 1.\($0)\n" }.joined(separator: "\n")
        let long = "Package: \(String(repeating: "x", count: 300))\nStatus: install ok installed\nVersion: 1\n\nPackage: ok\nStatus: install ok installed\nVersion: 2\n"
        let root = try Self.tree(["etc/os-release": "ID=debian\nVERSION_ID=12\n", "var/lib/dpkg/status": many])
        defer { try? FileManager.default.removeItem(at: root) }
        var limits = PostureLimits()
        limits.maxPackages = 20
        #expect(throws: PostureCollectionError.self) { try LinuxPostureCollector(root: root.path, limits: limits).collect() }
        try long.write(to: root.appendingPathComponent("var/lib/dpkg/status"), atomically: true, encoding: .utf8)
        #expect(try LinuxPostureCollector(root: root.path).collect().packages.map(\.name) == ["ok"])
        // A status file of garbage gives no packages, not a crash.
        try String(repeating: "\u{0}:::\n\n", count: 1000).write(to: root.appendingPathComponent("var/lib/dpkg/status"), atomically: true, encoding: .utf8)
        #expect(try LinuxPostureCollector(root: root.path).collect().packages.isEmpty)
    }

    @Test("on this machine: a report the server's verifier accepts")
    func thisMachine() async throws {
        let collected = try LinuxPostureCollector().collect()
        let now = Date()
        let ca = try DeviceCA.create(name: DeviceCAName(commonName: "Menshen Device CA"), now: now.addingTimeInterval(-60),
                                     keyEncryptionKey: Array(repeating: 7, count: 32)).ca
        let key = P256.Signing.PrivateKey()
        let device = DeviceID("d-00000000000000aa")
        let issued = try ca.issue(csr: try DeviceCATests.csrDER(key), for: device, now: now)
        guard case .accepted(let certificate) = await ca.verifier().verify(issued.der, at: now) else { Issue.record("certificate refused"); return }
        let nonces = InMemoryPostureNonces(timeToLive: 600, random: SystemRandomSource())
        let nonce = await nonces.issue(for: device, at: now)
        let bytes = try collected.report(deviceID: device, nonce: nonce, collectedAt: now).jsonBytes()
        let envelope = try PostureEnvelope.sign(reportBytes: bytes, with: key)
        let verdict = try await PostureVerifier().verify(try UnverifiedPostureReport.parse(envelope: envelope), certificate: certificate,
                                                         nonces: nonces, now: now)
        guard case .verified(let posture) = verdict else { Issue.record("refused: \(verdict)"); return }
        #expect(posture.report.kernel == (try String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines))
        print("this machine: \(collected.os.name) \(collected.os.version), kernel \(collected.kernel), \(collected.packages.count) packages, "
              + "disk encryption \(collected.diskEncryption), firewall \(collected.firewall), EDR \(collected.edr?.product ?? "none")")
    }
}
