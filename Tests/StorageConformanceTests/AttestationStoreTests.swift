import Foundation
import MenshenCore
import MenshenStorage
import MenshenStorageSQLite
import Testing

/// Attestations and their evidence files (migration 13) on every backend: a
/// round trip with the files' bytes and the SHA-256 the store computed; one
/// transaction for the record and its files (a failing file insert leaves no
/// attestation); revocation stamped once and never a deletion; ordering and
/// the list bound; every limit refused with nothing stored.
@Suite("Attestation store")
struct AttestationStoreTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)

    static func record(_ id: String, principle: String = "4.4", at offset: TimeInterval = 0) -> AttestationRecord {
        AttestationRecord(id: id, principleID: principle, statement: "年度滲透測試完成，無未修補之高風險項目。Annual penetration test done.",
                          attestedBy: "CISO 王小明", attestedAt: t0.addingTimeInterval(offset), expiresAt: t0.addingTimeInterval(365 * 86400 + offset),
                          createdAt: t0.addingTimeInterval(offset + 60), createdBy: "cli:root")
    }

    static let pdf = AttestationFileContent(name: "pentest 2026.pdf", bytes: Data((0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }))
    static let sheet = AttestationFileContent(name: "弱點清單.xlsx", bytes: Data([0, 1, 2, 0xFF, 0, 0]))

    static func count(_ s: any MenshenStore) async throws -> Int { try await s.attestations(principleID: nil, limit: 10_000).count }

    @Test("create with two files, read back with metadata and bytes; list by principle, oldest first, bounded", arguments: Backend.available)
    func roundTrip(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            #expect(try await s.attestation(id: "a-1") == nil)
            let stored = try await s.createAttestation(Self.record("a-2", at: 10), files: [Self.pdf, Self.sheet])
            #expect(stored.files == [Self.pdf.info, Self.sheet.info])
            #expect(stored.files[0].sha256 == SecretHash.sha256Hex(bytes: Array(Self.pdf.bytes)) && stored.files[0].size == 70_000)
            var expected = Self.record("a-2", at: 10)
            expected.files = stored.files
            #expect(try await s.attestation(id: "a-2") == expected)
            #expect(try await s.attestationFile(attestationID: "a-2", name: "pentest 2026.pdf") == Self.pdf)
            #expect(try await s.attestationFile(attestationID: "a-2", name: "弱點清單.xlsx") == Self.sheet)
            #expect(try await s.attestationFile(attestationID: "a-2", name: "other.pdf") == nil)
            #expect(try await s.attestationFile(attestationID: "a-9", name: "pentest 2026.pdf") == nil)

            _ = try await s.createAttestation(Self.record("a-1"), files: [])
            _ = try await s.createAttestation(Self.record("a-3", principle: "4.5", at: 5), files: [Self.sheet])
            #expect(try await s.attestations(principleID: nil, limit: 10).map(\.id) == ["a-1", "a-3", "a-2"])
            #expect(try await s.attestations(principleID: "4.4", limit: 10).map(\.id) == ["a-1", "a-2"])
            #expect(try await s.attestations(principleID: "4.4", limit: 10).last?.files.map(\.name) == ["pentest 2026.pdf", "弱點清單.xlsx"])
            #expect(try await s.attestations(principleID: "4.5", limit: 10).first?.files == [Self.sheet.info])
            #expect(try await s.attestations(principleID: "5.4", limit: 10).isEmpty)
            #expect(try await s.attestations(principleID: nil, limit: 2).map(\.id) == ["a-1", "a-3"])
            #expect(try await s.attestations(principleID: nil, limit: -1).isEmpty)
            await #expect(throws: StoreError(.conflict, "")) { _ = try await s.createAttestation(Self.record("a-1"), files: [Self.pdf]) }
            #expect(try await s.attestation(id: "a-1")?.files == [], "the refused duplicate added no file")
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("a failing file insert leaves neither the attestation nor the files before it", arguments: Backend.available.filter { $0 != .memory })
    func oneTransaction(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            // The database itself refuses the third file (as a full disk or a lost connection would fail it).
            switch backend {
            case .sqlite:
                try await ChangeFeedTests.execute(backend, f, """
                    CREATE TRIGGER test_poison BEFORE INSERT ON attestation_files WHEN NEW.name = 'poison.bin'
                    BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END
                    """)
            default:
                try await ChangeFeedTests.execute(backend, f, """
                    CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN IF NEW.name = 'poison.bin' THEN RAISE EXCEPTION 'disk full (test)'; END IF; RETURN NEW; END $$
                    """)
                try await ChangeFeedTests.execute(backend, f, "CREATE TRIGGER test_poison BEFORE INSERT ON attestation_files FOR EACH ROW EXECUTE FUNCTION test_poison()")
            }
            let poison = AttestationFileContent(name: "poison.bin", bytes: Data("x".utf8))
            await #expect(throws: StoreError.self) { _ = try await f.store.createAttestation(Self.record("a-1"), files: [Self.pdf, Self.sheet, poison]) }
            #expect(try await f.store.attestation(id: "a-1") == nil)
            #expect(try await f.store.attestationFile(attestationID: "a-1", name: Self.pdf.name) == nil)
            #expect(try await Self.count(f.store) == 0)
            // The same id works afterwards: nothing was left behind.
            _ = try await f.store.createAttestation(Self.record("a-1"), files: [Self.pdf])
            #expect(try await f.store.attestation(id: "a-1")?.files == [Self.pdf.info])
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("revocation is stamped once (the first stays); the record and its files are kept", arguments: Backend.available)
    func revoke(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            _ = try await s.createAttestation(Self.record("a-1"), files: [Self.pdf])
            let at = Self.t0.addingTimeInterval(1000)
            #expect(try await s.revokeAttestation(id: "a-1", at: at, by: "cli:alice", reason: "報告撤回 report withdrawn"))
            #expect(try await !s.revokeAttestation(id: "a-1", at: at.addingTimeInterval(5), by: "cli:bob", reason: "again"))
            #expect(try await !s.revokeAttestation(id: "nope", at: at, by: "cli:bob", reason: "x"))
            let r = try #require(try await s.attestation(id: "a-1"))
            #expect(r.revokedAt == at && r.revokedBy == "cli:alice" && r.revocationReason == "報告撤回 report withdrawn")
            #expect(r.statement == Self.record("a-1").statement && r.files == [Self.pdf.info])
            #expect(try await s.attestationFile(attestationID: "a-1", name: Self.pdf.name) == Self.pdf)
            await #expect(throws: StoreError(.invalidInput, "")) { _ = try await s.revokeAttestation(id: "a-1", at: at, by: "", reason: "x") }
            await #expect(throws: StoreError(.invalidInput, "")) {
                _ = try await s.revokeAttestation(id: "a-1", at: at, by: "x", reason: String(repeating: "r", count: AttestationLimits.maxReasonLength + 1))
            }
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("the database refuses deleting attestations or files and any change but the first revocation", arguments: Backend.available.filter { $0 != .memory })
    func keptByTheDatabase(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            _ = try await f.store.createAttestation(Self.record("a-1"), files: [Self.pdf])
            for sql in ["DELETE FROM attestations", "DELETE FROM attestation_files", "UPDATE attestation_files SET content = x'00'",
                        "UPDATE attestations SET statement = 'nothing to see'", "UPDATE attestations SET expires_at = expires_at + 1",
                        "UPDATE attestations SET revoked_at = 1, statement = 'changed'"] {
                await #expect(throws: (any Error).self, "\(sql)") { try await ChangeFeedTests.execute(backend, f, sql) }
            }
            #expect(try await f.store.attestation(id: "a-1")?.revokedAt == nil)
            _ = try await f.store.revokeAttestation(id: "a-1", at: Self.t0, by: "cli:alice", reason: "withdrawn")
            await #expect(throws: (any Error).self) { try await ChangeFeedTests.execute(backend, f, "UPDATE attestations SET revoked_at = NULL") }
            let r = try #require(try await f.store.attestation(id: "a-1"))
            #expect(r.statement == Self.record("a-1").statement && r.revokedAt == Self.t0)
            #expect(try await f.store.attestationFile(attestationID: "a-1", name: Self.pdf.name) == Self.pdf)
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("every limit is refused with a message and nothing is stored", arguments: Backend.available)
    func limits(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            func refused(_ r: AttestationRecord, _ files: [AttestationFileContent] = [], _ what: String) async {
                await #expect(throws: StoreError(.invalidInput, ""), "\(what)") { _ = try await s.createAttestation(r, files: files) }
            }
            var r = Self.record("a-1")
            for bad in ["", "A-1", "a 1", "x'; DROP TABLE attestations; --", String(repeating: "a", count: 65)] {
                r.id = bad; await refused(r, [], "id \(bad)")
            }
            r = Self.record("a-1")
            for bad in ["", "4", "4.", ".4", "4.4.1", "x.6", "4.4; --", "4.4\n", "123456.78"] {
                r.principleID = bad; await refused(r, [], "principle \(bad)")
            }
            r = Self.record("a-1"); r.statement = String(repeating: "測", count: AttestationLimits.maxStatementLength + 1); await refused(r, [], "statement length")
            r = Self.record("a-1"); r.statement = "  \n "; await refused(r, [], "empty statement")
            r = Self.record("a-1"); r.statement = "ok\u{0}hidden"; await refused(r, [], "NUL in statement")
            r = Self.record("a-1"); r.attestedBy = "CISO\u{1B}[2J"; await refused(r, [], "escape in attested by")
            r = Self.record("a-1"); r.attestedBy = String(repeating: "王", count: 201); await refused(r, [], "long attested by")
            r = Self.record("a-1"); r.expiresAt = r.attestedAt; await refused(r, [], "expiry not after attestation")
            r = Self.record("a-1"); r.attestedAt = r.createdAt.addingTimeInterval(1); r.expiresAt = r.attestedAt.addingTimeInterval(10)
            await refused(r, [], "attested in the future")
            r = Self.record("a-1"); r.revokedAt = Self.t0; await refused(r, [], "revoked on creation")
            r = Self.record("a-1")
            for bad in ["", ".", "..", "../etc/passwd", "a/b.pdf", "a\\b.pdf", "report..pdf", "tab\there.pdf", "nl\n.pdf", "del\u{7F}.pdf",
                        String(repeating: "名", count: 67) + ".pdf"] {   // 67 × 3 + 4 = 205 bytes
                await refused(r, [AttestationFileContent(name: bad, bytes: Data([1]))], "file name \(bad.debugDescription)")
            }
            let one = AttestationFileContent(name: "a.pdf", bytes: Data([1]))
            await refused(r, [one, one], "the same name twice")
            await refused(r, (0...AttestationLimits.maxFiles).map { AttestationFileContent(name: "f\($0).pdf", bytes: Data([1])) }, "17 files")
            await refused(r, [AttestationFileContent(name: "big.bin", bytes: Data(count: AttestationLimits.maxFileBytes + 1))], "a file over 25 MiB")
            let quarter = Data(count: AttestationLimits.maxFileBytes)
            await refused(r, (0..<4).map { AttestationFileContent(name: "q\($0).bin", bytes: quarter) } + [one], "over 100 MiB in all")
            #expect(try await Self.count(s) == 0)

            // At the limits exactly: accepted.
            r = Self.record("a-ok"); r.statement = String(repeating: "測", count: AttestationLimits.maxStatementLength)
            r.attestedAt = r.createdAt
            let edge = AttestationFileContent(name: String(repeating: "名", count: 66) + ".p", bytes: Data(count: AttestationLimits.maxFileBytes))
            #expect(edge.name.utf8.count == 200)
            let stored = try await s.createAttestation(r, files: [edge] + (1..<AttestationLimits.maxFiles).map { AttestationFileContent(name: "f\($0)", bytes: Data([UInt8($0)])) })
            #expect(stored.files.count == 16 && stored.files[0].size == AttestationLimits.maxFileBytes)
            #expect(try await s.attestationFile(attestationID: "a-ok", name: edge.name)?.bytes.count == AttestationLimits.maxFileBytes)
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }
}
