import Crypto
import Foundation
import MenshenCore
import MenshenTestSupport
import Testing
@testable import MenshenDevice

/// Signed posture reports: the envelope, the trust boundary and its refusals.
@Suite("Posture reports")
struct PostureTests {
    static let now = Date(timeIntervalSince1970: 1_900_000_000)
    static let device = DeviceID("laptop-0042")

    /// A CA, a device key with its verified certificate, and a nonce store.
    struct Fixture {
        let ca: DeviceCA
        let key: P256.Signing.PrivateKey
        let certificate: VerifiedDeviceCertificate
        let nonces: InMemoryPostureNonces

        init(device: DeviceID = PostureTests.device, key: P256.Signing.PrivateKey = P256.Signing.PrivateKey()) async throws {
            ca = try DeviceCA.create(name: DeviceCAName(commonName: "Menshen Device CA"), now: PostureTests.now.addingTimeInterval(-86_400),
                                     keyEncryptionKey: Array(repeating: 7, count: 32), random: SeededRandom(seed: 11)).ca
            self.key = key
            let issued = try ca.issue(csr: try DeviceCATests.csrDER(key), for: device, now: PostureTests.now.addingTimeInterval(-3600))
            guard case .accepted(let verified) = await ca.verifier().verify(issued.der, at: PostureTests.now) else {
                throw PostureReportError(.invalidField, "fixture certificate refused")
            }
            certificate = verified
            nonces = InMemoryPostureNonces(timeToLive: 600, random: SeededRandom(seed: 12))
        }

        func verify(_ envelope: [UInt8], at time: Date = PostureTests.now) async throws -> PostureVerdict {
            try await PostureVerifier().verify(try UnverifiedPostureReport.parse(envelope: envelope), certificate: certificate, nonces: nonces, now: time)
        }
    }

    static func report(nonce: String, device: DeviceID = device, collectedAt: Date = now.addingTimeInterval(-30),
                       packages: [InstalledPackage] = [InstalledPackage(name: "libssl3", version: "3.0.11-1~deb12u2", sourceName: "openssl")])
        -> PostureReport {
        PostureReport(deviceID: device, nonce: nonce, collectedAt: collectedAt,
                      os: .init(name: "Debian", version: "12.5", packageEcosystem: "Debian:12"), kernel: "6.1.0-18-amd64",
                      pendingSecurityUpdates: 0, diskEncryption: true, firewall: true, screenLock: true,
                      edr: .init(product: "ClamAV", running: true, signatureAgeSeconds: 5400), packages: packages)
    }

    static func envelope(_ bytes: [UInt8], signature: [UInt8], alg: String = "ES256") -> [UInt8] {
        Array(#"{"alg":"\#(alg)","report":"\#(Base64URL.encode(bytes))","signature":"\#(Base64URL.encode(signature))"}"#.utf8)
    }

    @Test("A signed report with an outstanding nonce is verified; what it says is what was signed")
    func valid() async throws {
        let f = try await Fixture()
        let nonce = await f.nonces.issue(for: Self.device, at: Self.now.addingTimeInterval(-60))
        let report = Self.report(nonce: nonce)
        let envelope = try PostureEnvelope.sign(reportBytes: try report.jsonBytes(), with: f.key)
        guard case .verified(let posture) = try await f.verify(envelope) else {
            Issue.record("refused")
            return
        }
        #expect(posture.deviceID == Self.device)
        #expect(posture.receivedAt == Self.now)
        #expect(posture.certificateSerialNumber == f.certificate.serialNumber)
        #expect(posture.ageSeconds(at: Self.now) == 30)
        #expect(posture.report.os == report.os)
        #expect(posture.report.packages == report.packages)
        #expect(posture.report.edr == report.edr)
        #expect(abs(posture.collectedAt.timeIntervalSince(report.collectedAt)) < 0.001)
    }

    @Test("A report signed by openssl (DER, and the same signature as raw r‖s) over hand-written JSON bytes is verified")
    func signedByOpenSSL() async throws {
        if DeviceCATests.skipWithoutOpenSSL() { return }
        let ssl = try OpenSSL()
        defer { ssl.cleanup() }
        try ssl.p256Key("device.key")
        let pem = String(decoding: try ssl.read("device.key"), as: UTF8.self)
        let f = try await Fixture(key: try P256.Signing.PrivateKey(pemRepresentation: pem))
        for rawForm in [false, true] {
            let nonce = await f.nonces.issue(for: Self.device, at: Self.now)
            // Odd spacing and key order: the bytes are verified as received, never re-serialised.
            let json = """
                {  "packages": [], "nonce": "\(nonce)", "format": 1, "device_id": "laptop-0042",
                   "collected_at": "2030-03-17T17:46:00+00:00", "os": {"version": "12.5", "name": "Debian"},
                   "kernel": "6.1.0-18-amd64", "pending_security_updates": 2, "disk_encryption": true,
                   "firewall": false, "screen_lock": true, "edr": null, "unknown_field": "ignored" }
                """
            try ssl.write("report.json", json)
            try ssl.run(["dgst", "-sha256", "-sign", "device.key", "-out", "report.sig", "report.json"])
            var signature = try ssl.read("report.sig")
            if rawForm { signature = Array(try P256.Signing.ECDSASignature(derRepresentation: signature).rawRepresentation) }
            guard case .verified(let posture) = try await f.verify(Self.envelope(Array(json.utf8), signature: signature)) else {
                Issue.record("refused (raw form: \(rawForm))")
                continue
            }
            #expect(posture.report.firewall == false)
            #expect(posture.report.pendingSecurityUpdates == 2)
            #expect(posture.report.edr == nil)
            #expect(posture.report.os.packageEcosystem == nil)
            #expect(posture.ageSeconds(at: Self.now) == 40)
        }
    }

    @Test("One changed byte in the report, or in the signature, is a bad signature")
    func tampered() async throws {
        let f = try await Fixture()
        let nonce = await f.nonces.issue(for: Self.device, at: Self.now)
        var bytes = try Self.report(nonce: nonce).jsonBytes()
        let signature = Array(try f.key.signature(for: bytes).derRepresentation)
        let needle = Array(#""pending_security_updates":0"#.utf8)
        let at = try #require((0...(bytes.count - needle.count)).first { Array(bytes[$0..<($0 + needle.count)]) == needle })
        bytes[at + needle.count - 1] = UInt8(ascii: "7")
        #expect(try await f.verify(Self.envelope(bytes, signature: signature)) == .refused(.badSignature))
        var badSignature = signature
        badSignature[badSignature.count - 3] ^= 0x20
        let original = try Self.report(nonce: nonce).jsonBytes()
        #expect(try await f.verify(Self.envelope(original, signature: badSignature)) == .refused(.badSignature))
        // The forged attempts did not use up the nonce: the genuine report still goes through.
        #expect(try await f.verify(Self.envelope(original, signature: signature)).isVerified)
    }

    @Test("A report signed by a key other than the certificate's is refused")
    func wrongKey() async throws {
        let f = try await Fixture()
        let nonce = await f.nonces.issue(for: Self.device, at: Self.now)
        let envelope = try PostureEnvelope.sign(reportBytes: try Self.report(nonce: nonce).jsonBytes(), with: P256.Signing.PrivateKey())
        #expect(try await f.verify(envelope) == .refused(.badSignature))
    }

    @Test("A report naming another device than the certificate is refused")
    func deviceMismatch() async throws {
        let f = try await Fixture()
        let nonce = await f.nonces.issue(for: "laptop-0043", at: Self.now)
        let envelope = try PostureEnvelope.sign(reportBytes: try Self.report(nonce: nonce, device: "laptop-0043").jsonBytes(), with: f.key)
        #expect(try await f.verify(envelope) == .refused(.deviceMismatch(reported: "laptop-0043", certified: Self.device)))
    }

    @Test("Replayed, unknown, expired and other devices' nonces are refused")
    func nonces() async throws {
        let f = try await Fixture()
        let nonce = await f.nonces.issue(for: Self.device, at: Self.now)
        let envelope = try PostureEnvelope.sign(reportBytes: try Self.report(nonce: nonce).jsonBytes(), with: f.key)
        #expect(try await f.verify(envelope).isVerified)
        #expect(try await f.verify(envelope) == .refused(.nonce(.alreadyUsed)))
        #expect(try await f.verify(envelope).refusal?.code == "nonce_replayed")

        let unknown = try PostureEnvelope.sign(reportBytes: try Self.report(nonce: Base64URL.encode(Array(repeating: 1, count: 32))).jsonBytes(), with: f.key)
        #expect(try await f.verify(unknown) == .refused(.nonce(.unknown)))

        let theirs = await f.nonces.issue(for: "desktop-7", at: Self.now)
        let stolen = try PostureEnvelope.sign(reportBytes: try Self.report(nonce: theirs).jsonBytes(), with: f.key)
        #expect(try await f.verify(stolen) == .refused(.nonce(.otherDevice)))

        let old = await f.nonces.issue(for: Self.device, at: Self.now.addingTimeInterval(-700))
        let late = try PostureEnvelope.sign(reportBytes: try Self.report(nonce: old, collectedAt: Self.now.addingTimeInterval(-10)).jsonBytes(), with: f.key)
        #expect(try await f.verify(late) == .refused(.nonce(.expired)))
    }

    @Test("Stale reports and reports from the future are refused; the window's edges hold")
    func freshness() async throws {
        let f = try await Fixture()
        func attempt(collected offset: TimeInterval) async throws -> PostureVerdict {
            let nonce = await f.nonces.issue(for: Self.device, at: Self.now)
            return try await f.verify(try PostureEnvelope.sign(reportBytes: try Self.report(nonce: nonce, collectedAt: Self.now.addingTimeInterval(offset)).jsonBytes(), with: f.key))
        }
        #expect(try await attempt(collected: -601).refusal?.code == "stale")
        #expect(try await attempt(collected: -599).isVerified)
        #expect(try await attempt(collected: 301).refusal?.code == "from_the_future")
        #expect(try await attempt(collected: 299).isVerified)
        #expect(try await attempt(collected: -86_400 * 365 * 100).refusal?.code == "stale")
        // A certificate verified earlier that has expired since no longer vouches for reports.
        let expiry = f.certificate.notValidAfter
        let nonce = await f.nonces.issue(for: Self.device, at: expiry)
        let envelope = try PostureEnvelope.sign(reportBytes: try Self.report(nonce: nonce, collectedAt: expiry).jsonBytes(), with: f.key)
        #expect(try await f.verify(envelope, at: expiry.addingTimeInterval(1)) == .refused(.certificateExpired))
        #expect(try await f.verify(envelope, at: expiry).isVerified)
    }

    @Test("Oversize envelopes, reports, package lists and strings are refused before verification")
    func limits() throws {
        let nonce = Base64URL.encode(Array(repeating: 2, count: 32))
        let key = P256.Signing.PrivateKey()
        func parse(_ report: PostureReport, _ limits: PostureLimits = PostureLimits()) throws -> UnverifiedPostureReport {
            try UnverifiedPostureReport.parse(envelope: try PostureEnvelope.sign(reportBytes: try report.jsonBytes(), with: key), limits: limits)
        }
        let many = (0..<50).map { InstalledPackage(name: "pkg\($0)", version: "1.0-\($0)") }
        #expect(throws: PostureReportError(.tooManyPackages)) { try parse(Self.report(nonce: nonce, packages: many), PostureLimits(maxPackages: 49)) }
        #expect(try parse(Self.report(nonce: nonce, packages: many), PostureLimits(maxPackages: 50)).claimed.packages.count == 50)
        #expect(throws: PostureReportError(.tooLarge)) { try parse(Self.report(nonce: nonce, packages: many), PostureLimits(maxEnvelopeBytes: 1000)) }
        #expect(throws: PostureReportError(.tooLarge)) { try parse(Self.report(nonce: nonce, packages: many), PostureLimits(maxReportBytes: 1000)) }
        var long = Self.report(nonce: nonce)
        long.kernel = String(repeating: "k", count: 257)
        #expect(throws: PostureReportError(.stringTooLong)) { try parse(long) }
        var longPackage = Self.report(nonce: nonce)
        longPackage.packages = [InstalledPackage(name: "p", version: String(repeating: "1", count: 300))]
        #expect(throws: PostureReportError(.stringTooLong)) { try parse(longPackage) }
        // The default limits take a large real-world report.
        let desktop = (0..<5000).map { InstalledPackage(name: "package-\($0)", version: "1.\($0)-1+deb12u1", sourceName: "source-\($0 / 3)") }
        #expect(try parse(Self.report(nonce: nonce, packages: desktop)).claimed.packages.count == 5000)
    }

    @Test("Malformed envelopes and reports are errors with the field at fault")
    func malformed() throws {
        let key = P256.Signing.PrivateKey()
        let nonce = Base64URL.encode(Array(repeating: 3, count: 32))
        func signed(_ json: String) throws -> [UInt8] { try PostureEnvelope.sign(reportBytes: Array(json.utf8), with: key) }
        func expect(_ envelope: [UInt8], _ code: PostureReportError.Code, _ detail: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                _ = try UnverifiedPostureReport.parse(envelope: envelope)
                Issue.record("parsed", sourceLocation: sourceLocation)
            } catch {
                #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
                if let detail { #expect(error.detail.contains(detail), "\(error)", sourceLocation: sourceLocation) }
            }
        }
        let good = String(decoding: try Self.report(nonce: nonce).jsonBytes(), as: UTF8.self)
        expect(Array("not json".utf8), .malformedEnvelope)
        expect(Array("{}".utf8), .malformedEnvelope, "alg: required field missing")
        expect(Array(#"{"alg":"ES256","report":"e30","signature":7}"#.utf8), .malformedEnvelope, "signature: expected a string")
        expect(Self.envelope(Array(good.utf8), signature: [1, 2, 3], alg: "none"), .malformedEnvelope, "alg")
        expect(Array(#"{"alg":"ES256","report":"***","signature":"AAAA"}"#.utf8), .malformedEnvelope, "report: not base64url")
        expect(Array(#"{"alg":"ES256","report":"e30","signature":""}"#.utf8), .malformedEnvelope, "signature")
        expect(Array(#"{"alg":"ES256","report":"e30","signature":"AAAA","x":[[1]]}"#.utf8), .tooDeep)
        expect(try signed("{"), .malformedReport)
        expect(try signed("[]"), .malformedReport)
        expect(try signed(good.replacingOccurrences(of: #""firewall":true,"#, with: "")), .malformedReport, "firewall: required field missing")
        expect(try signed(good.replacingOccurrences(of: #""firewall":true"#, with: #""firewall":"yes""#)), .malformedReport, "firewall: expected true or false")
        expect(try signed(good.replacingOccurrences(of: #""format":1"#, with: #""format":2"#)), .unsupportedFormatVersion)
        expect(try signed(good.replacingOccurrences(of: nonce, with: "short")), .invalidField, "nonce")
        expect(try signed(good.replacingOccurrences(of: #""device_id":"laptop-0042""#, with: #""device_id":"../etc""#)), .invalidField, "device_id")
        expect(try signed(good.replacingOccurrences(of: "2030-03-17T17:46:10", with: "yesterday")), .malformedReport, "collected_at")
        expect(try signed(good.replacingOccurrences(of: #""pending_security_updates":0"#, with: #""pending_security_updates":-1"#)), .invalidField)
        expect(try signed(good.replacingOccurrences(of: #""signature_age_seconds":5400"#, with: #""signature_age_seconds":-5"#)), .invalidField)
        expect(try signed(good.replacingOccurrences(of: #""kernel":"6.1.0-18-amd64""#, with: #""kernel":"6.1\u0000""#)), .invalidField, "kernel")
        expect(try signed(good.replacingOccurrences(of: #""packages":["#, with: #""packages":[[[[[[[[["#)), .tooDeep)
    }

    @Test("Random and truncated envelopes never crash the parser")
    func fuzz() throws {
        let key = P256.Signing.PrivateKey()
        let envelope = try PostureEnvelope.sign(reportBytes: try Self.report(nonce: Base64URL.encode(Array(repeating: 4, count: 32))).jsonBytes(), with: key)
        for cut in stride(from: 0, to: envelope.count, by: 5) {
            #expect(throws: PostureReportError.self) { try UnverifiedPostureReport.parse(envelope: Array(envelope[..<cut])) }
        }
        var g = SeededGenerator(seed: 0xfeed)
        for _ in 0..<300 {
            var mutated = envelope
            mutated[Int.random(in: 0..<mutated.count, using: &g)] = UInt8.random(in: 0...255, using: &g)
            _ = try? UnverifiedPostureReport.parse(envelope: mutated)
            let random = (0..<Int.random(in: 0...300, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
            #expect(throws: PostureReportError.self) { try UnverifiedPostureReport.parse(envelope: random) }
        }
    }

    @Test("The in-memory nonce store redeems once, concurrently too, and forgets expired nonces")
    func nonceStore() async throws {
        let store = InMemoryPostureNonces(timeToLive: 60, random: SeededRandom(seed: 1))
        let nonce = await store.issue(for: Self.device, at: Self.now)
        #expect(nonce.count == 43)
        let outcomes = await withTaskGroup(of: PostureNonceRedemption.self) { group in
            for _ in 0..<20 { group.addTask { await store.redeem(nonce, for: Self.device, at: Self.now) } }
            var all: [PostureNonceRedemption] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        #expect(outcomes.filter { $0 == .redeemed }.count == 1)
        #expect(outcomes.filter { $0 == .alreadyUsed }.count == 19)
        let other = await store.issue(for: Self.device, at: Self.now)
        #expect(other != nonce)
        await store.prune(at: Self.now.addingTimeInterval(61))
        #expect(await store.redeem(other, for: Self.device, at: Self.now) == .unknown)
    }
}

extension PostureVerdict {
    var isVerified: Bool { if case .verified = self { true } else { false } }
    var refusal: PostureRefusal? { if case .refused(let r) = self { r } else { nil } }
}
