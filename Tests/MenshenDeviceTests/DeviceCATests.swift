import Crypto
import Foundation
import MenshenCore
import MenshenTestSupport
import SwiftASN1
import Testing
import X509
@testable import MenshenDevice

/// The device CA checked with openssl (requests, verification, the text of
/// issued certificates) and Python's `cryptography` (the sealed key format).
@Suite("Device CA")
struct DeviceCATests {
    static let kek: [UInt8] = Array(0..<32)
    static let now = Date(timeIntervalSince1970: 1_900_000_000) // 2030-03-17
    static let device = DeviceID("laptop-0042")
    static let name = DeviceCAName(commonName: "Menshen Device CA", organization: "Example Bank")

    static func makeCA(seed: UInt64 = 1, name: DeviceCAName = name, at time: Date = now) throws -> (ca: DeviceCA, sealed: SealedDeviceCA) {
        try DeviceCA.create(name: name, now: time, keyEncryptionKey: kek, random: SeededRandom(seed: seed))
    }

    static func skipWithoutOpenSSL() -> Bool {
        if let message = Oracle.missing("openssl") {
            if Oracle.isCI { Issue.record(Comment(rawValue: message)) }
            return true
        }
        return false
    }

    // MARK: Issuing from real CSRs

    @Test("A CSR from openssl req (P-256) gets a certificate openssl verifies for client auth, with the CA's subject, SAN, EKU and 24 h")
    func issueFromOpenSSLRequest() throws {
        if Self.skipWithoutOpenSSL() { return }
        let ssl = try OpenSSL()
        defer { ssl.cleanup() }
        try ssl.p256Key("device.key")
        let (ca, _) = try Self.makeCA()
        for der in [false, true] {
            let issued = try ca.issue(csr: try ssl.csr(key: "device.key", der: der), for: Self.device, now: Self.now, random: SeededRandom(seed: 9))
            try ssl.write("ca.pem", ca.certificatePEM)
            try ssl.write("leaf.pem", issued.pem)
            let at = String(Int(Self.now.timeIntervalSince1970) + 60)
            let verify = try ssl.run(["verify", "-attime", at, "-CAfile", "ca.pem", "-purpose", "sslclient", "leaf.pem"])
            #expect(verify.stdout.contains("leaf.pem: OK"), "\(verify.stdout)")
            // Not yet valid and expired as openssl sees it too.
            let early = try Oracle.run(["openssl", "verify", "-attime", String(Int(Self.now.timeIntervalSince1970) - 3600), "-CAfile", "ca.pem", "leaf.pem"], in: ssl.dir.url)
            #expect(early.status != 0 && (early.stdout + early.stderr).contains("not yet valid"))
            let late = try Oracle.run(["openssl", "verify", "-attime", String(Int(Self.now.timeIntervalSince1970) + 86_400 + 60), "-CAfile", "ca.pem", "leaf.pem"], in: ssl.dir.url)
            #expect(late.status != 0 && (late.stdout + late.stderr).contains("expired"))

            let text = try ssl.run(["x509", "-in", "leaf.pem", "-noout", "-text"]).stdout
            #expect(text.contains("TLS Web Client Authentication"))
            #expect(!text.contains("TLS Web Server Authentication"))
            #expect(text.contains("URI:urn:menshen:device:laptop-0042"))
            #expect(text.contains("Subject: O = Example Bank, CN = laptop-0042"))
            #expect(!text.contains("chosen-by-the-device") && !text.contains("Not The Bank"))
            #expect(text.contains("Issuer: O = Example Bank, CN = Menshen Device CA"))
            #expect(text.contains("CA:FALSE"))
            #expect(text.contains("Digital Signature"))
            #expect(text.contains("ecdsa-with-SHA256"))
            #expect(text.contains("X509v3 Authority Key Identifier"))
            // The device's own key is certified.
            let csrKey = try ssl.run(["pkey", "-in", "device.key", "-pubout"]).stdout
            let certKey = try ssl.run(["x509", "-in", "leaf.pem", "-noout", "-pubkey"]).stdout
            #expect(csrKey == certKey)
            // 24 hours after issue, valid from 5 minutes before it.
            let dates = try ssl.run(["x509", "-in", "leaf.pem", "-noout", "-startdate", "-enddate", "-dateopt", "iso_8601"]).stdout
            #expect(dates.contains("notBefore=2030-03-17 17:41:40Z"), "\(dates)")
            #expect(dates.contains("notAfter=2030-03-18 17:46:40Z"), "\(dates)")
            // The serial is 20 bytes and positive.
            let serial = try ssl.run(["x509", "-in", "leaf.pem", "-noout", "-serial"]).stdout
            let hex = serial.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "serial=", with: "")
            #expect(hex.count == 40 && hex.lowercased() == issued.serialNumber, "\(serial)")
            // The CA certificate is a CA for openssl.
            let caText = try ssl.run(["x509", "-in", "ca.pem", "-noout", "-text"]).stdout
            #expect(caText.contains("CA:TRUE, pathlen:0") && caText.contains("Certificate Sign"))
        }
    }

    @Test("Serial numbers differ between certificates and come from the injected randomness")
    func serials() throws {
        let key = P256.Signing.PrivateKey()
        let csr = try Self.csrDER(key)
        let (ca, _) = try Self.makeCA()
        let a = try ca.issue(csr: csr, for: Self.device, now: Self.now, random: SeededRandom(seed: 5))
        let b = try ca.issue(csr: csr, for: Self.device, now: Self.now, random: SeededRandom(seed: 6))
        let c = try ca.issue(csr: csr, for: Self.device, now: Self.now, random: SeededRandom(seed: 5))
        #expect(a.serialNumber != b.serialNumber)
        #expect(a.serialNumber == c.serialNumber)
        #expect(a.certificate.notValidAfter == Self.now.addingTimeInterval(86_400))
        let short = try ca.issue(csr: csr, for: Self.device, now: Self.now, validity: 3600)
        #expect(short.notValidAfter == Self.now.addingTimeInterval(3600))
    }

    /// A CSR built with swift-certificates, for tests that do not need openssl.
    static func csrDER(_ key: P256.Signing.PrivateKey, commonName: String = "any") throws -> [UInt8] {
        let csr = try CertificateSigningRequest(version: .v1, subject: try DistinguishedName { CommonName(commonName) },
                                                privateKey: Certificate.PrivateKey(key), attributes: CertificateSigningRequest.Attributes())
        var serializer = DER.Serializer()
        try serializer.serialize(csr)
        return serializer.serializedBytes
    }

    @Test("RSA and P-384 requests are refused: device keys are P-256")
    func refusesOtherKeyTypes() throws {
        if Self.skipWithoutOpenSSL() { return }
        let ssl = try OpenSSL()
        defer { ssl.cleanup() }
        try ssl.run(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.key"])
        try ssl.run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "p384.key"])
        let (ca, _) = try Self.makeCA()
        let rsaCSR = try ssl.csr(key: "rsa.key")
        do {
            _ = try ca.issue(csr: rsaCSR, for: Self.device, now: Self.now)
            Issue.record("an RSA request was issued")
        } catch {
            #expect(error.code == .unsupportedKeyAlgorithm)
            #expect(error.detail.contains("RSA"), "\(error)")
        }
        #expect(throws: DeviceCAError(.unsupportedKeyAlgorithm)) { try ca.issue(csr: try ssl.csr(key: "p384.key"), for: Self.device, now: Self.now) }
    }

    @Test("A request whose content was changed after signing is refused")
    func tamperedCSR() throws {
        if Self.skipWithoutOpenSSL() { return }
        let ssl = try OpenSSL()
        defer { ssl.cleanup() }
        try ssl.p256Key("device.key")
        var der = try ssl.csr(key: "device.key", subject: "/CN=laptop-0042", der: true)
        let (ca, _) = try Self.makeCA()
        #expect(try ca.issue(csr: der, for: Self.device, now: Self.now).deviceID == Self.device)
        // Change one character of the subject: the request still parses, its signature no longer matches.
        let needle = Array("laptop-0042".utf8)
        let at = try #require((0...(der.count - needle.count)).first { Array(der[$0..<($0 + needle.count)]) == needle })
        der[at + needle.count - 1] = UInt8(ascii: "3")
        #expect(throws: DeviceCAError(.csrSignatureInvalid)) { try ca.issue(csr: der, for: Self.device, now: Self.now) }
        // openssl agrees that the tampered request does not verify.
        try ssl.write("tampered.der", der)
        let check = try Oracle.run(["openssl", "req", "-in", "tampered.der", "-inform", "DER", "-verify", "-noout"], in: ssl.dir.url)
        #expect(check.status != 0 || (check.stdout + check.stderr).contains("verify failure"), "\(check)")
    }

    @Test("Empty, random, truncated and oversize request bytes are errors, never crashes")
    func malformedCSRs() throws {
        let (ca, _) = try Self.makeCA()
        let good = try Self.csrDER(P256.Signing.PrivateKey())
        #expect(throws: DeviceCAError(.malformedCSR)) { try ca.issue(csr: [], for: Self.device, now: Self.now) }
        #expect(throws: DeviceCAError(.csrTooLarge)) { try ca.issue(csr: [UInt8](repeating: 0x30, count: DeviceCA.maxCSRBytes + 1), for: Self.device, now: Self.now) }
        for cut in 1..<good.count {
            #expect(throws: DeviceCAError.self) { try ca.issue(csr: Array(good[..<cut]), for: Self.device, now: Self.now) }
        }
        var g = SeededGenerator(seed: 77)
        for _ in 0..<300 {
            let random = (0..<Int.random(in: 1...400, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
            #expect(throws: DeviceCAError.self) { try ca.issue(csr: random, for: Self.device, now: Self.now) }
            var mutated = good
            mutated[Int.random(in: 0..<mutated.count, using: &g)] ^= UInt8.random(in: 1...255, using: &g)
            _ = try? ca.issue(csr: mutated, for: Self.device, now: Self.now) // any outcome but a crash
        }
        let pemGarbage = Array("-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n".utf8)
        #expect(throws: DeviceCAError(.malformedCSR)) { try ca.issue(csr: pemGarbage, for: Self.device, now: Self.now) }
    }

    @Test("Bad device ids and validities are refused")
    func badArguments() throws {
        let (ca, _) = try Self.makeCA()
        let csr = try Self.csrDER(P256.Signing.PrivateKey())
        for id in ["", "-leading-dash", "has space", "slash/es", String(repeating: "a", count: 129), "ünïcode"] {
            #expect(throws: DeviceCAError(.invalidDeviceID), "\(id)") { try ca.issue(csr: csr, for: DeviceID(id), now: Self.now) }
        }
        for validity in [0, -1, DeviceCA.maxCertificateValidity + 1, .infinity, .nan] as [TimeInterval] {
            #expect(throws: DeviceCAError(.invalidValidity)) { try ca.issue(csr: csr, for: Self.device, now: Self.now, validity: validity) }
        }
        // A device certificate never outlives its CA.
        let caEnd = ca.certificate.notValidAfter
        let late = try ca.issue(csr: csr, for: Self.device, now: caEnd.addingTimeInterval(-3600))
        #expect(late.notValidAfter == caEnd)
        // Nor is one issued once the CA has expired, or before it existed.
        #expect(throws: DeviceCAError(.invalidValidity)) { try ca.issue(csr: csr, for: Self.device, now: caEnd) }
        #expect(throws: DeviceCAError(.invalidValidity)) { try ca.issue(csr: csr, for: Self.device, now: Self.now.addingTimeInterval(-3600)) }
    }

    // MARK: The sealed CA key

    @Test("The sealed CA reopens with its key-encryption key and issues what the original's verifier accepts")
    func sealAndReopen() async throws {
        let (ca, sealed) = try Self.makeCA()
        let json = try JSONEncoder().encode(sealed)
        let decoded = try JSONDecoder().decode(SealedDeviceCA.self, from: json)
        let reopened = try DeviceCA(sealed: decoded, keyEncryptionKey: Self.kek)
        #expect(reopened.certificate == ca.certificate)
        let issued = try reopened.issue(csr: try Self.csrDER(P256.Signing.PrivateKey()), for: Self.device, now: Self.now)
        guard case .accepted(let verified) = await ca.verifier().verify(issued.der, at: Self.now) else {
            Issue.record("a certificate from the reopened CA was refused")
            return
        }
        #expect(verified.deviceID == Self.device)
        #expect(String(decoding: json, as: UTF8.self).contains("\"sealed_private_key\""))
    }

    @Test("Wrong key-encryption key, altered blob, another CA's blob and bad sizes do not open")
    func sealRefusals() throws {
        let (_, sealed) = try Self.makeCA(seed: 1)
        let (_, other) = try Self.makeCA(seed: 2, name: DeviceCAName(commonName: "Second CA"))
        var wrongKEK = Self.kek
        wrongKEK[0] ^= 1
        #expect(throws: DeviceCAError(.sealedKeyDoesNotOpen)) { try DeviceCA(sealed: sealed, keyEncryptionKey: wrongKEK) }
        #expect(throws: DeviceCAError(.invalidKeyEncryptionKey)) { try DeviceCA(sealed: sealed, keyEncryptionKey: Array(Self.kek.prefix(16))) }
        #expect(throws: DeviceCAError(.invalidKeyEncryptionKey)) {
            try DeviceCA.create(name: Self.name, now: Self.now, keyEncryptionKey: [1, 2, 3])
        }
        // Both sealed under the same KEK, but the key is bound to its own certificate.
        var swapped = sealed
        swapped.sealedPrivateKey = other.sealedPrivateKey
        #expect(throws: DeviceCAError(.sealedKeyDoesNotOpen)) { try DeviceCA(sealed: swapped, keyEncryptionKey: Self.kek) }
        var blob = try #require(Data(base64Encoded: sealed.sealedPrivateKey))
        blob[20] ^= 0x01
        var altered = sealed
        altered.sealedPrivateKey = blob.base64EncodedString()
        #expect(throws: DeviceCAError(.sealedKeyDoesNotOpen)) { try DeviceCA(sealed: altered, keyEncryptionKey: Self.kek) }
        var notBase64 = sealed
        notBase64.sealedPrivateKey = "%%%"
        #expect(throws: DeviceCAError(.invalidSealedKey)) { try DeviceCA(sealed: notBase64, keyEncryptionKey: Self.kek) }
        var badFormat = sealed
        badFormat.format = 2
        #expect(throws: DeviceCAError(.invalidSealedKey)) { try DeviceCA(sealed: badFormat, keyEncryptionKey: Self.kek) }
        var badCertificate = sealed
        badCertificate.certificatePEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        #expect(throws: DeviceCAError(.invalidSealedKey)) { try DeviceCA(sealed: badCertificate, keyEncryptionKey: Self.kek) }
    }

    @Test("Python's cryptography opens the sealed key with the documented associated data, and it is the CA certificate's key")
    func sealedFormatWithPython() throws {
        if Self.skipWithoutOpenSSL() { return }
        guard (try? Oracle.run(["python3", "-c", "import cryptography"]).status) == 0 else {
            if Oracle.isCI { Issue.record("python3 with cryptography is not installed") } else { print("warning: python3 cryptography missing; skipped") }
            return
        }
        let (ca, sealed) = try Self.makeCA(seed: 3)
        let script = #"""
        import sys, json, base64, hashlib
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives import serialization
        from cryptography import x509
        doc = json.load(sys.stdin)
        cert = x509.load_pem_x509_certificate(doc["certificate_pem"].encode())
        der = cert.public_bytes(serialization.Encoding.DER)
        aad = ("menshen-device-ca-key/%d/%s/" % (doc["format"], doc["algorithm"])).encode() + hashlib.sha256(der).digest()
        blob = base64.b64decode(doc["sealed_private_key"])
        raw = AESGCM(bytes(range(32))).decrypt(blob[:12], blob[12:], aad)
        key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
        same = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == \
               cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        try:
            AESGCM(bytes(range(32))).decrypt(blob[:12], blob[12:], b"other")
            wrong_aad = "opened"
        except Exception:
            wrong_aad = "refused"
        print(len(raw), same, wrong_aad)
        """#
        let output = try Oracle.run(["python3", "-c", script], stdin: try JSONEncoder().encode(sealed))
        #expect(output.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "32 True refused", "\(output.stdout) \(output.stderr)")
        _ = ca
    }

    // MARK: Verifying presented certificates

    @Test("Our own certificate is accepted as PEM and DER; the fingerprint is openssl's SHA-256")
    func acceptsOwnCertificates() async throws {
        if Self.skipWithoutOpenSSL() { return }
        let ssl = try OpenSSL()
        defer { ssl.cleanup() }
        let (ca, _) = try Self.makeCA()
        let key = P256.Signing.PrivateKey()
        let issued = try ca.issue(csr: try Self.csrDER(key), for: Self.device, now: Self.now)
        let verifier = ca.verifier()
        for presented in [issued.der, Array(issued.pem.utf8)] {
            guard case .accepted(let verified) = await verifier.verify(presented, at: Self.now.addingTimeInterval(3600)) else {
                Issue.record("refused")
                continue
            }
            #expect(verified.deviceID == Self.device)
            #expect(verified.serialNumber == issued.serialNumber)
            #expect(verified.signingKey.rawRepresentation == key.publicKey.rawRepresentation)
            try ssl.write("leaf.pem", issued.pem)
            let fingerprint = try ssl.run(["x509", "-in", "leaf.pem", "-noout", "-fingerprint", "-sha256"]).stdout
            let expected = fingerprint.split(separator: "=").last.map { $0.replacingOccurrences(of: ":", with: "").lowercased() }?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(verified.fingerprint == expected)
        }
    }

    @Test("Not yet valid, expired and revoked certificates are refused with the reason")
    func timeAndRevocation() async throws {
        let (ca, _) = try Self.makeCA()
        let csr = try Self.csrDER(P256.Signing.PrivateKey())
        let issued = try ca.issue(csr: csr, for: Self.device, now: Self.now)
        let verifier = ca.verifier()
        #expect(await verifier.verify(issued.der, at: Self.now.addingTimeInterval(-301)) == .refused(.notYetValid(notValidBefore: issued.notValidBefore)))
        #expect(await verifier.verify(issued.der, at: Self.now.addingTimeInterval(-299)).isAccepted)
        #expect(await verifier.verify(issued.der, at: Self.now.addingTimeInterval(86_400)).isAccepted)
        #expect(await verifier.verify(issued.der, at: Self.now.addingTimeInterval(86_401)) == .refused(.expired(notValidAfter: issued.notValidAfter)))

        let other = try ca.issue(csr: csr, for: Self.device, now: Self.now)
        let revokedAt = Self.now.addingTimeInterval(60)
        let list = DeviceRevocationList().revoking(issued, at: revokedAt, reason: .keyCompromise)
        let revoking = ca.verifier(revocations: list)
        #expect(await revoking.verify(issued.der, at: Self.now.addingTimeInterval(120)) == .refused(.revoked(serialNumber: issued.serialNumber, revokedAt: revokedAt)))
        #expect(await revoking.verify(other.der, at: Self.now.addingTimeInterval(120)).isAccepted)
        #expect(list.entry(serialNumber: issued.serialNumber.uppercased())?.reason == .keyCompromise)
        #expect(list.entries(for: Self.device).count == 1)
        // Revoking twice keeps the first time; the entry is dropped once the certificate expired.
        #expect(list.revoking(issued, at: Self.now.addingTimeInterval(999)).entry(serialNumber: issued.serialNumber)?.revokedAt == revokedAt)
        #expect(list.pruned(at: issued.notValidAfter).entries.count == 1)
        #expect(list.pruned(at: issued.notValidAfter.addingTimeInterval(1)).entries.isEmpty)
        // The list survives its own encoding (the caller stores it).
        let stored = try JSONDecoder().decode(DeviceRevocationList.self, from: try JSONEncoder().encode(list))
        #expect(stored == list)
    }

    @Test("A certificate from another CA is refused, even one with the same device id")
    func otherCA() async throws {
        let (ca, _) = try Self.makeCA(seed: 1)
        let (second, _) = try Self.makeCA(seed: 2, name: DeviceCAName(commonName: "Another Device CA"))
        let (sameName, _) = try Self.makeCA(seed: 3) // same DN as ours, different key
        let csr = try Self.csrDER(P256.Signing.PrivateKey())
        let fromSecond = try second.issue(csr: csr, for: Self.device, now: Self.now)
        let fromSameName = try sameName.issue(csr: csr, for: Self.device, now: Self.now)
        #expect(await ca.verifier().verify(fromSecond.der, at: Self.now) == .refused(.otherCA))
        #expect(await ca.verifier().verify(fromSameName.der, at: Self.now) == .refused(.otherCA))
        // The CA certificate itself is not a device certificate.
        #expect(await ca.verifier().verify(ca.certificateDER, at: Self.now).refusalCode == "wrong_extended_key_usage")
    }

    @Test("Certificates made by an openssl CA: the verifier accepts a conforming one and names what is wrong with the others")
    func opensslIssuedLeaves() async throws {
        if Self.skipWithoutOpenSSL() { return }
        let ssl = try OpenSSL()
        defer { ssl.cleanup() }
        try ssl.write("ca.cnf", """
            [req]
            distinguished_name = dn
            x509_extensions = v3_ca
            prompt = no
            [dn]
            CN = Bank Device CA
            [v3_ca]
            basicConstraints = critical,CA:TRUE
            keyUsage = critical,keyCertSign,cRLSign
            subjectKeyIdentifier = hash
            """)
        let device = """
            basicConstraints = critical,CA:FALSE
            subjectKeyIdentifier = hash
            authorityKeyIdentifier = keyid
            """
        try ssl.write("leaf.cnf", """
            [good]
            \(device)
            keyUsage = critical,digitalSignature
            extendedKeyUsage = clientAuth
            subjectAltName = URI:urn:menshen:device:pos-terminal-7
            [server]
            \(device)
            keyUsage = critical,digitalSignature
            extendedKeyUsage = serverAuth
            subjectAltName = URI:urn:menshen:device:pos-terminal-7
            [noeku]
            \(device)
            keyUsage = critical,digitalSignature
            subjectAltName = URI:urn:menshen:device:pos-terminal-7
            [nosan]
            \(device)
            keyUsage = critical,digitalSignature
            extendedKeyUsage = clientAuth
            [twosan]
            \(device)
            keyUsage = critical,digitalSignature
            extendedKeyUsage = clientAuth
            subjectAltName = URI:urn:menshen:device:pos-terminal-7, URI:urn:menshen:device:pos-terminal-8
            [othersan]
            \(device)
            keyUsage = critical,digitalSignature
            extendedKeyUsage = clientAuth
            subjectAltName = URI:https://pos-terminal-7.example
            [keyenc]
            \(device)
            keyUsage = critical,keyEncipherment
            extendedKeyUsage = clientAuth
            subjectAltName = URI:urn:menshen:device:pos-terminal-7
            [critical]
            \(device)
            keyUsage = critical,digitalSignature
            extendedKeyUsage = clientAuth
            subjectAltName = URI:urn:menshen:device:pos-terminal-7
            1.3.6.1.4.1.99999.1 = critical,ASN1:NULL
            """)
        try ssl.p256Key("ca.key")
        try ssl.run(["req", "-x509", "-new", "-key", "ca.key", "-config", "ca.cnf", "-days", "2", "-out", "ca.pem"])
        try ssl.p256Key("device.key")
        _ = try ssl.csr(key: "device.key")
        try ssl.run(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.key"])
        _ = try ssl.csr(key: "rsa.key")
        func leaf(_ section: String, csr: String = "device.key.csr.pem") throws -> [UInt8] {
            try ssl.run(["x509", "-req", "-in", csr, "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "0x4d454e5348454e",
                         "-days", "1", "-extfile", "leaf.cnf", "-extensions", section, "-out", section + ".pem"])
            return try ssl.read(section + ".pem")
        }
        let ca = try Certificate(pemEncoded: String(decoding: try ssl.read("ca.pem"), as: UTF8.self))
        let verifier = DeviceCertificateVerifier(caCertificate: ca)
        // openssl starts validity at the current time (to the second), so these checks run a little after it.
        let now = Date().addingTimeInterval(120)
        guard case .accepted(let verified) = await verifier.verify(try leaf("good"), at: now) else {
            Issue.record("a conforming openssl-issued device certificate was refused")
            return
        }
        #expect(verified.deviceID == "pos-terminal-7")
        #expect(verified.serialNumber == "4d454e5348454e")
        #expect(await verifier.verify(try leaf("server"), at: now).refusalCode == "wrong_extended_key_usage")
        #expect(await verifier.verify(try leaf("noeku"), at: now).refusalCode == "wrong_extended_key_usage")
        #expect(await verifier.verify(try leaf("nosan"), at: now).refusalCode == "no_device_identity")
        #expect(await verifier.verify(try leaf("twosan"), at: now).refusalCode == "no_device_identity")
        #expect(await verifier.verify(try leaf("othersan"), at: now).refusalCode == "no_device_identity")
        #expect(await verifier.verify(try leaf("keyenc"), at: now).refusalCode == "wrong_key_usage")
        #expect(await verifier.verify(try leaf("good", csr: "rsa.key.csr.pem"), at: now).refusalCode == "unsupported_key_algorithm")
        // An unknown critical extension passes our own checks; RFC 5280 path validation refuses it.
        #expect(await verifier.verify(try leaf("critical"), at: now).refusalCode == "path_validation_failed")
        // Our CA does not accept the openssl CA's certificates, nor the reverse.
        let (ours, _) = try Self.makeCA(at: now)
        #expect(await ours.verifier().verify(try leaf("good"), at: now).refusalCode == "other_ca")
    }

    @Test("A certificate altered after signing is refused as a bad signature")
    func badSignature() async throws {
        let (ca, _) = try Self.makeCA()
        let issued = try ca.issue(csr: try Self.csrDER(P256.Signing.PrivateKey()), for: Self.device, now: Self.now)
        var der = issued.der
        let needle = Array("laptop-0042".utf8)
        let at = try #require((0...(der.count - needle.count)).first { Array(der[$0..<($0 + needle.count)]) == needle })
        der[at + needle.count - 1] = UInt8(ascii: "3")
        #expect(await ca.verifier().verify(der, at: Self.now) == .refused(.badSignature))
    }

    @Test("Malformed presented certificates are refused, never crash")
    func malformedCertificates() async throws {
        let (ca, _) = try Self.makeCA()
        let issued = try ca.issue(csr: try Self.csrDER(P256.Signing.PrivateKey()), for: Self.device, now: Self.now)
        let verifier = ca.verifier()
        #expect(await verifier.verify([], at: Self.now).refusalCode == "malformed")
        #expect(await verifier.verify([UInt8](repeating: 0x30, count: 20_000), at: Self.now).refusalCode == "malformed")
        for cut in stride(from: 1, to: issued.der.count, by: 3) {
            #expect(await verifier.verify(Array(issued.der[..<cut]), at: Self.now).refusalCode == "malformed")
        }
        var g = SeededGenerator(seed: 41)
        for _ in 0..<200 {
            var mutated = issued.der
            mutated[Int.random(in: 0..<mutated.count, using: &g)] ^= UInt8.random(in: 1...255, using: &g)
            let verdict = await verifier.verify(mutated, at: Self.now)
            #expect(!verdict.isAccepted)
        }
    }

    @Test("Renewal certifies the same key for the same device with a new serial; the old one can be revoked as superseded")
    func renewal() async throws {
        let (ca, _) = try Self.makeCA()
        let key = P256.Signing.PrivateKey()
        let first = try ca.issue(csr: try Self.csrDER(key), for: Self.device, now: Self.now)
        let later = Self.now.addingTimeInterval(20 * 3600)
        guard case .accepted(let verified) = await ca.verifier().verify(first.der, at: later) else {
            Issue.record("refused")
            return
        }
        let renewed = try ca.renew(verified, now: later)
        #expect(renewed.deviceID == Self.device)
        #expect(renewed.serialNumber != first.serialNumber)
        #expect(renewed.certificate.publicKey == first.certificate.publicKey)
        #expect(renewed.notValidAfter == later.addingTimeInterval(86_400))
        let list = DeviceRevocationList().revoking(first, at: later, reason: .superseded)
        #expect(await ca.verifier(revocations: list).verify(renewed.der, at: later.addingTimeInterval(10 * 3600)).isAccepted)
        #expect(await ca.verifier(revocations: list).verify(first.der, at: later).refusalCode == "revoked")
        // A certificate verified against another CA cannot be renewed here.
        let (other, _) = try Self.makeCA(seed: 8, name: DeviceCAName(commonName: "Other"))
        #expect(throws: DeviceCAError(.certificateFromAnotherCA)) { try other.renew(verified, now: later) }
    }
}

extension DeviceCertificateVerdict {
    var isAccepted: Bool { if case .accepted = self { true } else { false } }
    var refusalCode: String? { if case .refused(let reason) = self { reason.code } else { nil } }
}
