import Foundation
import MenshenTestSupport
import Testing
@testable import MenshenAssessment

/// The signed evidence pack: it round-trips, and any change to it — one byte
/// anywhere, another key, a file added, removed or moved, a cut or an
/// appendix — fails verification with the check that caught it. The ustar
/// reader refuses hostile archives.
@Suite("Evidence pack: strict ustar, signed manifest, every byte covered")
struct EvidencePackTests {
    static let now = Date(timeIntervalSince1970: 1_795_000_000)
    static let key = try! EvidencePackSigningKey(rawRepresentation: Array(repeating: 7, count: 32))
    static let otherKey = try! EvidencePackSigningKey(rawRepresentation: Array(repeating: 9, count: 32))

    /// A complete assessment, cut down to one principle so the pack stays small.
    static func assessment(full: Bool = false) -> Assessment {
        var a = AssessmentBuilder().build(AssessmentBuilder.Input(
            id: "3f1d7c1e-0000-4000-8000-000000000001", generatedAt: now, windowStart: now.addingTimeInterval(-30 * 86_400),
            organisation: "Demo Bank", producer: "menshen (test)", evaluations: [:], routes: [], attestations: [], previous: nil))
        if !full {
            a.principles = Array(a.principles.prefix(1)); a.pillars = Array(a.pillars.prefix(1))
            a.roadmap = []; a.scenarios = []
        }
        return a
    }

    static func attestation(_ id: String, files: [String: [UInt8]], expires: Date = now.addingTimeInterval(86_400)) -> EvidencePack.AttestedEvidence {
        let a = Attestation(id: id, principleID: "4.4", statement: "Penetration test by an external firm", attestedBy: "ciso@bank.example",
                            attestedAt: now.addingTimeInterval(-86_400), expiresAt: expires,
                            files: files.keys.sorted().map { n in
                                Attestation.EvidenceFile(name: n, sha256: EvidencePack.sha256Hex(files[n]!), size: files[n]!.count)
                            })
        return EvidencePack.AttestedEvidence(attestation: a, files: files)
    }

    /// Every kind of file a pack holds, each small.
    static func contents(evidence: [UInt8] = Array("pentest summary".utf8)) -> EvidencePack.Contents {
        EvidencePack.Contents(
            assessment: assessment(), reportHTML: "<!doctype html><title>r</title>",
            attestations: [attestation("att-1", files: ["report.pdf": evidence])],
            policies: [EvidencePackPolicy(id: "baseline", version: 2, author: "admin", comment: "", createdAt: now,
                                          text: "permit(principal, action, resource);\n")],
            routesFilePolicies: [EvidencePackRoutesFilePolicy(document: "routes.yaml route wiki",
                                                              text: "permit(principal, action, resource == Application::\"wiki\");\n")],
            auditCheckpoint: EvidencePackAuditCheckpoint(sequence: 20, eventID: "e1", chainHash: String(repeating: "a", count: 64), time: now,
                                                         keyID: "ed25519:0123456789abcdef", signature: "c2ln", publicKey: nil))
    }

    static func pack(_ c: EvidencePack.Contents = contents()) throws -> EvidencePack.Built { try EvidencePack.build(c, key: key) }

    static func failed(_ v: EvidencePack.Verification) -> [String] { v.checks.filter { !$0.passed }.map(\.name) }

    @Test("a pack round-trips: it verifies with the signer's key, lists every file, and report.json is the assessment")
    func roundTrip() throws {
        let built = try Self.pack()
        let v = EvidencePack.verify(built.archive, trustedKeys: [Self.key.publicKey])
        #expect(v.valid, "\(v.failures)")
        #expect(v.checks.map(\.name) == ["archive", "canonical", "manifest", "files", "signature", "report"])
        #expect(v.verifiedBy == Self.key.publicKey && v.statedSigner == Self.key.publicKey.fingerprint)
        let (entries, mtime) = try UstarArchive.read(built.archive)
        #expect(mtime == 1_795_000_000)
        #expect(entries.map(\.path) == [
            "attestations.json", "attestations/att-1/report.pdf", "audit-checkpoint.json", "manifest.json", "manifest.sig",
            "policies.json", "policies/routes-file/1.cedar", "policies/store/baseline.cedar", "report.html", "report.json",
        ])
        let byPath = Dictionary(uniqueKeysWithValues: entries.map { ($0.path, $0.bytes) })
        #expect(byPath["attestations/att-1/report.pdf"] == Array("pentest summary".utf8))
        #expect(byPath["policies/store/baseline.cedar"] == Array("permit(principal, action, resource);\n".utf8))
        let report = try EvidencePack.jsonDecoder().decode(Assessment.self, from: Data(byPath["report.json"]!))
        #expect(report == Self.assessment())
        let manifest = try EvidencePack.jsonDecoder().decode(EvidencePackManifest.self, from: Data(byPath["manifest.json"]!))
        #expect(manifest == built.manifest && manifest.files.count == 8)
        // policies.json names each document's source: the store's policy with its version, the routes file's by its name.
        let index = try #require(try JSONSerialization.jsonObject(with: Data(byPath["policies.json"]!)) as? [[String: Any]])
        #expect(index.map { $0["source"] as? String } == ["store", "routes-file"])
        #expect(index.map { $0["path"] as? String } == ["policies/store/baseline.cedar", "policies/routes-file/1.cedar"])
        #expect(index[0]["version"] as? Int == 2 && index[1]["document"] as? String == "routes.yaml route wiki")
        #expect(byPath["policies/routes-file/1.cedar"] == Array("permit(principal, action, resource == Application::\"wiki\");\n".utf8))
        #expect(EvidencePack.sha256Hex(byPath["manifest.json"]!) == built.manifestSHA256)
        // Deterministic: the same contents and key give the same bytes.
        #expect(try Self.pack().archive == built.archive)
    }

    @Test("changing any one byte of a complete pack — header, content, padding, trailer — fails verification")
    func everyByte() throws {
        let archive = try Self.pack().archive
        #expect(archive.count <= 16 * 1024, "keep the pack small: \(archive.count) bytes")
        var passed: [Int] = []
        var caughtBy: [String: Int] = [:]
        let masks: [UInt8] = [0x01, 0x80, 0xFF, 0x20]   // a different change per position: low bit, high bit, all bits, case
        for i in archive.indices {
            var copy = archive
            copy[i] ^= masks[i % masks.count]
            let v = EvidencePack.verify(copy, trustedKeys: [Self.key.publicKey])
            if v.valid { passed.append(i) } else { caughtBy[Self.failed(v).first ?? "?", default: 0] += 1 }
        }
        #expect(passed.isEmpty, "flipped bytes at \(passed.prefix(20)) still verify")
        // Every kind of check catches some change (the test exercises them all).
        #expect(Set(caughtBy.keys).isSuperset(of: ["archive", "signature", "files"]), "\(caughtBy)")
    }

    @Test("in a large pack with a 2 MiB evidence file, a sample of changed bytes all fail verification")
    func largePack() throws {
        var rng = SeededGenerator(seed: 42)
        var big = [UInt8](repeating: 0, count: 2 << 20)
        big.withUnsafeMutableBytes { raw in
            for i in stride(from: 0, to: raw.count, by: 8) { raw.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self) }
        }
        let archive = try Self.pack(Self.contents(evidence: big)).archive
        #expect(EvidencePack.verify(archive, trustedKeys: [Self.key.publicKey]).valid)
        var positions = Set((0..<48).map { _ in Int(rng.next() % UInt64(archive.count)) })
        positions.formUnion([0, 100, 124, 148, 512, archive.count - 1, archive.count - 1024, archive.count / 2])
        for i in positions.sorted() {
            var copy = archive
            copy[i] ^= 0x20
            #expect(!EvidencePack.verify(copy, trustedKeys: [Self.key.publicKey]).valid, "byte \(i)")
        }
    }

    @Test("a pack signed by another key fails; the key inside the pack is never trusted on its own")
    func wrongKey() throws {
        let built = try Self.pack()
        let v = EvidencePack.verify(built.archive, trustedKeys: [Self.otherKey.publicKey])
        #expect(!v.valid && Self.failed(v) == ["signature"])
        #expect(v.statedSigner == Self.key.publicKey.fingerprint && v.verifiedBy == nil)
        #expect(!EvidencePack.verify(built.archive, trustedKeys: []).valid)
        // A forger re-signs with their own key and names it in the manifest: still refused with the deployment's key.
        let forged = try EvidencePack.build(Self.contents(), key: Self.otherKey)
        #expect(!EvidencePack.verify(forged.archive, trustedKeys: [Self.key.publicKey]).valid)
        #expect(EvidencePack.verify(forged.archive, trustedKeys: [Self.key.publicKey, Self.otherKey.publicKey]).valid)
    }

    /// The entries of the reference pack, for re-assembly.
    static func entries() throws -> [UstarArchive.Entry] { try UstarArchive.read(Self.pack().archive).entries }

    @Test("an extra file, a missing file or a changed file, even in a canonical archive, is named")
    func extraMissingChanged() throws {
        let entries = try Self.entries()
        var extra = entries
        extra.append(.init(path: "attestations/att-1/extra.txt", bytes: Array("x".utf8)))
        let v1 = EvidencePack.verify(try UstarArchive.write(extra, mtime: 1_795_000_000), trustedKeys: [Self.key.publicKey])
        #expect(Self.failed(v1) == ["files"] && v1.failures[0].contains("attestations/att-1/extra.txt: not listed"))

        let missing = entries.filter { $0.path != "policies/store/baseline.cedar" }
        let v2 = EvidencePack.verify(try UstarArchive.write(missing, mtime: 1_795_000_000), trustedKeys: [Self.key.publicKey])
        #expect(Self.failed(v2) == ["files"] && v2.failures[0].contains("policies/store/baseline.cedar: listed but missing"))

        let noSig = entries.filter { $0.path != "manifest.sig" }
        #expect(Self.failed(EvidencePack.verify(try UstarArchive.write(noSig, mtime: 1_795_000_000), trustedKeys: [Self.key.publicKey])) == ["signature"])

        var changed = entries
        if let i = changed.firstIndex(where: { $0.path == "report.html" }) { changed[i].bytes = Array("<p>edited</p>".utf8) }
        let v3 = EvidencePack.verify(try UstarArchive.write(changed, mtime: 1_795_000_000), trustedKeys: [Self.key.publicKey])
        #expect(Self.failed(v3) == ["files"] && v3.failures[0].contains("report.html"))

        // Another mtime: canonical, signed, every file intact, but not the assessment's time.
        let v4 = EvidencePack.verify(try UstarArchive.write(entries, mtime: 1_795_000_001), trustedKeys: [Self.key.publicKey])
        #expect(Self.failed(v4) == ["report"])
    }

    /// Writes entries in the given order (the writer sorts, so headers are assembled here).
    static func unsorted(_ entries: [UstarArchive.Entry], mtime: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        for e in entries {
            out += try UstarArchive.header(path: e.path, size: e.bytes.count, mtime: mtime)
            out += e.bytes + [UInt8](repeating: 0, count: UstarArchive.padded(e.bytes.count) - e.bytes.count)
        }
        return out + [UInt8](repeating: 0, count: 1024)
    }

    @Test("reordered entries, a truncated pack and trailing garbage fail")
    func structure() throws {
        let built = try Self.pack()
        let entries = try Self.entries()
        let reordered = try Self.unsorted(entries.reversed(), mtime: 1_795_000_000)
        #expect(try UstarArchive.read(reordered).entries.count == entries.count)   // a valid tar, but not the canonical one
        let v = EvidencePack.verify(reordered, trustedKeys: [Self.key.publicKey])
        #expect(Self.failed(v) == ["canonical"] && v.failures[0].contains("out of path order"))

        for cut in [built.archive.count - 512, built.archive.count - 1024, built.archive.count / 2, 512, 100, 0] {
            let v = EvidencePack.verify(Array(built.archive.prefix(cut)), trustedKeys: [Self.key.publicKey])
            #expect(Self.failed(v) == ["archive"], "cut at \(cut)")
        }
        for garbage in [[UInt8](repeating: 0, count: 512), [UInt8](repeating: 0x41, count: 512), [1]] {
            let v = EvidencePack.verify(built.archive + garbage, trustedKeys: [Self.key.publicKey])
            #expect(Self.failed(v) == ["archive"])
        }
        #expect(throws: AssessmentError.evidencePack("archive: 512 bytes after the end-of-archive marker")) {
            try UstarArchive.read(built.archive + [UInt8](repeating: 0, count: 512))
        }
    }

    @Test("the reader refuses hostile names: parent directories, absolute, duplicates, control characters; and other entry types")
    func hostileNames() throws {
        func archive(_ paths: [String]) throws -> [UInt8] {
            try Self.unsorted(paths.map { .init(path: $0, bytes: Array("x".utf8)) }, mtime: 0)
        }
        /// A header written as a hostile tool would: any name, checksum fixed up.
        func raw(name: String, type: UInt8 = UInt8(ascii: "0")) throws -> [UInt8] {
            var h = try UstarArchive.header(path: "placeholder", size: 1, mtime: 0)
            for i in 0..<100 { h[i] = 0 }
            for (i, b) in name.utf8.prefix(100).enumerated() { h[i] = b }
            h[156] = type
            for i in 148..<156 { h[i] = UInt8(ascii: " ") }
            let sum = String(h.reduce(0) { $0 + Int($1) }, radix: 8)
            let field = Array((String(repeating: "0", count: 6 - sum.count) + sum).utf8) + [0, UInt8(ascii: " ")]
            for (i, b) in field.enumerated() { h[148 + i] = b }
            return h + [UInt8(ascii: "x")] + [UInt8](repeating: 0, count: 511) + [UInt8](repeating: 0, count: 1024)
        }
        for (name, message) in [("../x", "'..' in path"), ("a/../../etc/passwd", "'..' in path"), ("/etc/passwd", "absolute path"),
                                ("a//b", "empty path component"), ("./a", "'.' in path"), ("a/\u{1}b", "control character"),
                                ("dir/", "empty path component")] {
            #expect(throws: AssessmentError.self) { try UstarArchive.read(try raw(name: name)) }
            do { _ = try UstarArchive.read(try raw(name: name)) } catch {
                #expect("\(error)".contains(message), "\(name): \(error)")
            }
            #expect(throws: AssessmentError.self) { try UstarArchive.write([.init(path: name, bytes: [])], mtime: 0) }
        }
        // Duplicates: refused by the reader and the writer.
        do { _ = try UstarArchive.read(try archive(["a.txt", "a.txt"])); Issue.record("duplicate accepted") } catch {
            #expect("\(error)".contains("duplicate path a.txt"))
        }
        #expect(throws: AssessmentError.self) { try UstarArchive.write([.init(path: "a", bytes: []), .init(path: "a", bytes: [1])], mtime: 0) }
        // Symbolic links, hard links, directories, pax headers: regular files only.
        for type in ["1", "2", "5", "x", "g", "L"] {
            do { _ = try UstarArchive.read(try raw(name: "link", type: UInt8(ascii: Unicode.Scalar(type)!))); Issue.record("type \(type) accepted") } catch {
                #expect("\(error)".contains("regular files only"), "\(error)")
            }
        }
        // The hostile-tool header itself is readable when the name is fine.
        #expect(try UstarArchive.read(try raw(name: "fine.txt")).entries.map(\.path) == ["fine.txt"])
    }

    @Test("the reader's limits: entry count, entry size and total size")
    func limits() throws {
        let entries = (0..<5).map { UstarArchive.Entry(path: "f\($0)", bytes: [UInt8](repeating: 1, count: 1000)) }
        let archive = try UstarArchive.write(entries, mtime: 0)
        #expect(try UstarArchive.read(archive, limits: .init(maxEntries: 5, maxEntryBytes: 1000, maxTotalBytes: 5000)).entries.count == 5)
        for (limits, message) in [(UstarArchive.Limits(maxEntries: 4), "more than 4 entries"),
                                  (UstarArchive.Limits(maxEntryBytes: 999), "over the 999-byte limit"),
                                  (UstarArchive.Limits(maxTotalBytes: 4999), "more than 4999 bytes")] {
            do { _ = try UstarArchive.read(archive, limits: limits); Issue.record("\(message): accepted") } catch {
                #expect("\(error)".contains(message), "\(error)")
            }
            #expect(!EvidencePack.verify(archive, trustedKeys: [Self.key.publicKey], limits: limits).valid)
        }
    }

    @Test("long paths use the ustar prefix field and round-trip; a path no split fits is refused")
    func longPaths() throws {
        let long = String(repeating: "d", count: 120) + "/" + String(repeating: "f", count: 90)
        let archive = try UstarArchive.write([.init(path: long, bytes: [1, 2, 3])], mtime: 5)
        #expect(try UstarArchive.read(archive).entries == [.init(path: long, bytes: [1, 2, 3])])
        #expect(throws: AssessmentError.self) { try UstarArchive.write([.init(path: String(repeating: "f", count: 101), bytes: [])], mtime: 0) }
        // A zh-TW file name (UTF-8) is kept byte for byte.
        let zh = "attestations/a/滲透測試報告.pdf"
        #expect(try UstarArchive.read(try UstarArchive.write([.init(path: zh, bytes: [])], mtime: 0)).entries[0].path == zh)
    }

    @Test("bad input when building: an evidence file missing, altered or unlisted, or an unsafe name, is refused")
    func buildRefuses() throws {
        var c = Self.contents()
        c.attestations[0].files = [:]
        #expect(throws: AssessmentError.attestation("att-1: evidence file report.pdf is missing (unreadable or never stored)")) {
            try EvidencePack.build(c, key: Self.key)
        }
        c = Self.contents()
        c.attestations[0].files["report.pdf"] = Array("tampered summary".utf8)
        #expect(throws: AssessmentError.attestation("att-1: evidence file report.pdf does not match its recorded size and SHA-256")) {
            try EvidencePack.build(c, key: Self.key)
        }
        c = Self.contents()
        c.attestations[0].files["other.txt"] = [1]
        #expect(throws: AssessmentError.self) { try EvidencePack.build(c, key: Self.key) }
        for bad in ["../x", "a/b", "", "..", "."] {
            c = Self.contents()
            c.attestations = [Self.attestation("att-1", files: [bad: [1]])]
            #expect(throws: AssessmentError.self, "\(bad)") { try EvidencePack.build(c, key: Self.key) }
            c = Self.contents()
            c.attestations[0].attestation.id = bad
            #expect(throws: AssessmentError.self, "\(bad)") { try EvidencePack.build(c, key: Self.key) }
        }
    }

    @Test("an expired attestation is packed and shown as expired; no checkpoint is stated as null")
    func expiredAndNoCheckpoint() throws {
        var c = Self.contents()
        c.attestations = [Self.attestation("old", files: ["a.txt": [1]], expires: Self.now.addingTimeInterval(-1))]
        c.auditCheckpoint = nil
        let built = try EvidencePack.build(c, key: Self.key)
        #expect(EvidencePack.verify(built.archive, trustedKeys: [Self.key.publicKey]).valid)
        let byPath = Dictionary(uniqueKeysWithValues: try UstarArchive.read(built.archive).entries.map { ($0.path, $0.bytes) })
        let attested = try EvidencePack.jsonDecoder().decode([EvidencePackAttestation].self, from: Data(byPath["attestations.json"]!))
        #expect(attested.map(\.state) == [.expired] && attested[0].paths == ["attestations/old/a.txt"])
        #expect(String(decoding: byPath["audit-checkpoint.json"]!, as: UTF8.self).contains(#""checkpoint" : null"#))
    }

    @Test("a full 36-principle pack verifies")
    func fullAssessment() throws {
        var c = Self.contents()
        c.assessment = Self.assessment(full: true)
        let built = try EvidencePack.build(c, key: Self.key)
        let v = EvidencePack.verify(built.archive, trustedKeys: [Self.key.publicKey])
        #expect(v.valid && v.checks.last?.detail.contains("36 principles") == true, "\(v.checks)")
    }
}

