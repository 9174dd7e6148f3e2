import Crypto
import Foundation
import MenshenCore
import MenshenDevice
import Testing
import X509

/// TPM 2.0 attestation against a real TPM (swtpm): the credential Menshen makes
/// in software must be released by `TPM2_ActivateCredential` in the TPM (the
/// only oracle that matters), and only for the key it was made for; the
/// evidence checks accept the TPM's real EK certificate and key and refuse the
/// rest with their reasons.
@Suite("TPM attestation against swtpm (MakeCredential, EK certificate, key attributes)")
struct TPMAttestationTests {
    static let attributes = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign"

    static func publicArea(_ path: String) throws -> TPMECCPublicArea {
        try TPMECCPublicArea.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))), sized: true)
    }

    @Test("a credential made in software is activated by the TPM for the key's Name (P-384 and P-256 EKs), and not for another key")
    func makeCredentialActivates() async throws {
        guard let tpm = try await Harness.offPool({ try SoftwareTPM.start() }) else { return }
        defer { tpm.stop() }
        // The TPM work runs off the cooperative pool; its findings are checked here, in the test's own context.
        let failures = try await Harness.offPool { try Self.credentialOracle(tpm) }
        #expect(failures.isEmpty, "\(failures)")
    }

    /// What went wrong, one line each (empty when the TPM behaved as expected).
    static func credentialOracle(_ tpm: SoftwareTPM) throws -> [String] {
        var failures: [String] = []
        func check(_ ok: Bool, _ what: String) { if !ok { failures.append(what) } }
        let p: (String) -> String = { tpm.dir.appendingPathComponent($0).path }
        try tpm.must("tpm2_createprimary", ["-Q", "-C", "o", "-g", "sha256", "-G", "ecc256", "-c", p("primary.ctx")])
        try tpm.must("tpm2_create", ["-Q", "-C", p("primary.ctx"), "-G", "ecc256:ecdsa-sha256", "-a", attributes, "-u", p("key.pub"), "-r", p("key.priv")])
        try tpm.must("tpm2_create", ["-Q", "-C", p("primary.ctx"), "-G", "ecc256:ecdsa-sha256", "-a", attributes, "-u", p("other.pub"), "-r", p("other.priv")])
        try tpm.must("tpm2_load", ["-Q", "-C", p("primary.ctx"), "-u", p("key.pub"), "-r", p("key.priv"), "-c", p("key.ctx"), "-n", p("key.name")])
        try tpm.must("tpm2_flushcontext", ["-t"])
        let key = try publicArea(p("key.pub")), other = try publicArea(p("other.pub"))
        check(key.deviceKeyRefusal == nil, "the TPM's key is accepted as a device key: \(key.deviceKeyRefusal ?? "")")
        check(key.name == Array(try Data(contentsOf: URL(fileURLWithPath: p("key.name")))), "our Name is the TPM's")

        for (algorithm, hash) in [("ecc384", "sha384"), ("ecc", "sha256")] {
            try tpm.must("tpm2_createek", ["-G", algorithm, "-c", p("ek.ctx"), "-u", p("ek.pub")])
            try tpm.must("tpm2_flushcontext", ["-t"])
            let ekArea = try publicArea(p("ek.pub"))
            guard let ekPoint = ekArea.x963, let ek = TPMEndorsementKey(x963: ekPoint) else {
                failures.append("\(algorithm): the EK is not an ECC key we read")
                continue
            }
            let secret = SystemRandomSource().bytes(32)
            func activate(_ file: [UInt8]) throws -> (released: [UInt8]?, err: String) {
                try Data(file).write(to: URL(fileURLWithPath: p("cred.bin")))
                try? FileManager.default.removeItem(atPath: p("secret.bin"))
                try tpm.must("tpm2_startauthsession", ["-Q", "--policy-session", "-g", hash, "-S", p("session.ctx")])
                try tpm.must("tpm2_policysecret", ["-Q", "-S", p("session.ctx"), "-c", "e"])
                if hash == "sha384" {   // the H-3 template's PolicyB = PolicyOR(PolicyA, PolicyC)
                    try Data(hex: "8bbf2266537c171cb56e403c4dc1d4b64f432611dc386e6f532050c3278c930e143e8bb1133824ccb431053871c6db53").write(to: URL(fileURLWithPath: p("pa.bin")))
                    try Data(hex: "d6032ce61f2fb3c240eb3cf6a33237ef2b6a16f4293c22b455e261cffd217ad5b4947c2d73e63005eed2dc2b3593d165").write(to: URL(fileURLWithPath: p("pc.bin")))
                    try tpm.must("tpm2_policyor", ["-Q", "-S", p("session.ctx"), "-l", "sha384:\(p("pa.bin")),\(p("pc.bin"))"])
                }
                let r = try tpm.tool("tpm2_activatecredential", ["-Q", "-c", p("key.ctx"), "-C", p("ek.ctx"), "-i", p("cred.bin"), "-o", p("secret.bin"),
                                                                 "-P", "session:\(p("session.ctx"))"])
                try? tpm.tool("tpm2_flushcontext", [p("session.ctx")])
                try? tpm.tool("tpm2_flushcontext", ["-t"])
                return (r.status == 0 ? FileManager.default.contents(atPath: p("secret.bin")).map { Array($0) } : nil, r.err)
            }
            let made = try TPMCredentialMaker.make(credential: secret, objectName: key.name, for: ek, random: SystemRandomSource())
            let good = try activate(made.tpm2ToolsFile)
            check(good.released == secret, "\(algorithm): the TPM releases the credential: \(good.err)")
            let forOther = try TPMCredentialMaker.make(credential: secret, objectName: other.name, for: ek, random: SystemRandomSource())
            let refused = try activate(forOther.tpm2ToolsFile)
            check(refused.released == nil, "\(algorithm): a credential made for another key's Name is not released")
            var tampered = made.tpm2ToolsFile
            tampered[12] ^= 0x01   // a bit of the integrity HMAC
            check(try activate(tampered).released == nil, "\(algorithm): a tampered credential is not released")
        }
        return failures
    }

    @Test("the TPM's EK certificate and key are accepted; an untrusted EK CA, a key without fixedTPM or with decrypt, another key and malformed input are refused")
    func evidenceChecks() async throws {
        guard let tpm = try await Harness.offPool({ try SoftwareTPM.start() }) else { return }
        defer { tpm.stop() }
        let p: @Sendable (String) -> String = { tpm.dir.appendingPathComponent($0).path }
        try await Harness.offPool {
            try tpm.must("tpm2_nvread", ["-Q", "0x01c00016", "-o", p("ek.der")])
            try tpm.must("tpm2_createprimary", ["-Q", "-C", "o", "-g", "sha256", "-G", "ecc256", "-c", p("primary.ctx")])
            try tpm.must("tpm2_create", ["-Q", "-C", p("primary.ctx"), "-G", "ecc256:ecdsa-sha256", "-a", Self.attributes, "-u", p("key.pub"), "-r", p("key.priv")])
            try tpm.must("tpm2_create", ["-Q", "-C", p("primary.ctx"), "-G", "ecc256:ecdsa-sha256", "-a", "sensitivedataorigin|userwithauth|sign",
                                         "-u", p("movable.pub"), "-r", p("movable.priv")])
            try tpm.must("tpm2_create", ["-Q", "-C", p("primary.ctx"), "-G", "ecc256", "-a", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign|decrypt",
                                         "-u", p("decrypt.pub"), "-r", p("decrypt.priv")])
            try tpm.must("tpm2_flushcontext", ["-t"])
            let other = try SoftwareTPM.shell("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes", "-days", "1",
                                                                   "-keyout", p("other-ca.key"), "-out", p("other-ca.pem"), "-subj", "/CN=Not a TPM maker"])
            guard other.status == 0 else { throw Harness.HarnessError(other.err) }
        }
        // The EK certificate as the TPM holds it (the NV index may be larger than the DER).
        let nv = Array(try Data(contentsOf: URL(fileURLWithPath: p("ek.der"))))
        let ekDER = Array(try Certificate(derEncoded: nv).serializedDER())
        let bundle = try String(contentsOfFile: tpm.rootCA, encoding: .utf8) + (try String(contentsOfFile: tpm.issuerCA, encoding: .utf8))
        let trusted = TPMEvidenceVerifier(anchors: try TPMTrustAnchors(pemBundle: bundle))
        let key = try Self.publicArea(p("key.pub"))
        let requestKey = Certificate.PublicKey(try P256.Signing.PublicKey(x963Representation: try #require(key.x963)))
        let now = Date()

        let verdict = await trusted.check(UnverifiedTPMEvidence(ekCertificateDER: ekDER, keyPublic: key.bytes), requestKey: requestKey, at: now)
        guard case .checked(let checked) = verdict else {
            Issue.record("the TPM's own evidence must be accepted: \(verdict)")
            return
        }
        #expect(checked.ekCertificateFingerprint == SHA256.hash(data: ekDER).map { String(format: "%02x", $0) }.joined())
        #expect(checked.endorsementKey.curveName == "P-384")
        #expect(checked.keyName == key.name)

        func refusal(_ verifier: TPMEvidenceVerifier, ek: [UInt8] = ekDER, keyPublic: [UInt8], requestKey: Certificate.PublicKey) async -> String {
            switch await verifier.check(UnverifiedTPMEvidence(ekCertificateDER: ek, keyPublic: keyPublic), requestKey: requestKey, at: now) {
            case .checked: return "checked"
            case .refused(let r): return r.code
            }
        }
        // Another CA, and a bundle with only the intermediate (no root): no trust.
        let otherCA = TPMEvidenceVerifier(anchors: try TPMTrustAnchors(pemBundle: try String(contentsOfFile: p("other-ca.pem"), encoding: .utf8)))
        #expect(await refusal(otherCA, keyPublic: key.bytes, requestKey: requestKey) == "untrusted_ek_certificate")
        #expect(throws: TPMError.self) { try TPMTrustAnchors(pemBundle: try String(contentsOfFile: tpm.issuerCA, encoding: .utf8)) }
        // Keys the TPM made that could leave it or that decrypt.
        for (file, why) in [("movable.pub", "without fixedTPM"), ("decrypt.pub", "with decrypt")] {
            let area = try Self.publicArea(p(file))
            let k = Certificate.PublicKey(try P256.Signing.PublicKey(x963Representation: try #require(area.x963)))
            #expect(await refusal(trusted, keyPublic: area.bytes, requestKey: k) == "key_attributes", "a key \(why)")
        }
        // The TPM key is not the request's key.
        let software = Certificate.PublicKey(P256.Signing.PrivateKey().publicKey)
        #expect(await refusal(trusted, keyPublic: key.bytes, requestKey: software) == "key_mismatch")
        // Malformed: truncated, trailing byte, oversized, not a certificate.
        #expect(await refusal(trusted, keyPublic: Array(key.bytes.dropLast()), requestKey: requestKey) == "malformed_key_public")
        #expect(await refusal(trusted, keyPublic: key.bytes + [0], requestKey: requestKey) == "malformed_key_public")
        #expect(await refusal(trusted, keyPublic: [UInt8](repeating: 0, count: 5000), requestKey: requestKey) == "malformed_key_public")
        #expect(await refusal(trusted, ek: Array(ekDER.prefix(100)), keyPublic: key.bytes, requestKey: requestKey) == "malformed_ek_certificate")
        #expect(await refusal(trusted, ek: [], keyPublic: key.bytes, requestKey: requestKey) == "malformed_ek_certificate")
    }
}

extension Data {
    init(hex: String) {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex, let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) {
            bytes.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        self.init(bytes)
    }
}
