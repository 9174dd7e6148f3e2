import Crypto
import Foundation
import MenshenTestSupport
import Testing
@testable import MenshenIdentity

@Suite("WebAuthn")
struct WebAuthnTests {
    static let origin = "https://login.bank.example.tw"
    static let configuration = RelyingPartyConfiguration(rpID: "bank.example.tw", allowedOrigins: [origin])
    static let challenge: [UInt8] = Array(0..<32)
    static let userHandle = Array("user-1".utf8)

    let registration = RegistrationVerifier(configuration: Self.configuration)
    let authentication = AuthenticationVerifier(configuration: Self.configuration)

    func expectRegistrationFailure(_ response: RegistrationResponse, _ code: WebAuthnError.Code, verifier: RegistrationVerifier? = nil,
                                   challenge: [UInt8] = Self.challenge, sourceLocation: SourceLocation = #_sourceLocation) {
        switch (verifier ?? registration).verify(response, expectedChallenge: challenge) {
        case .success: Issue.record("accepted; expected \(code)", sourceLocation: sourceLocation)
        case .failure(let error): #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        }
    }

    func register(_ authenticator: SoftwareAuthenticator, attestation: SoftwareAuthenticator.Attestation = .none) throws -> VerifiedCredential {
        try registration.verify(try authenticator.register(challenge: Self.challenge, attestation: attestation), expectedChallenge: Self.challenge).get()
    }

    // MARK: registration

    @Test("Registration with attestation none succeeds for ES256, EdDSA and RS256", arguments: SoftwareAuthenticator.Kind.allCases)
    func registerNone(kind: SoftwareAuthenticator.Kind) throws {
        let authenticator = try SoftwareAuthenticator(kind: kind)
        let credential = try register(authenticator)
        #expect(credential.credentialID == authenticator.credentialID)
        #expect(credential.algorithm.rawValue == authenticator.algorithm)
        #expect(credential.publicKeyCOSE == (try authenticator.coseKey()))
        #expect(credential.aaguid == authenticator.aaguid)
        #expect(credential.transports == ["usb", "nfc"])
        #expect(credential.userVerified)
        #expect(!credential.backupEligible && !credential.backupState)
        #expect(credential.attestation == .none)
    }

    @Test("Packed self attestation verifies with the credential key", arguments: SoftwareAuthenticator.Kind.allCases)
    func registerPackedSelf(kind: SoftwareAuthenticator.Kind) throws {
        let authenticator = try SoftwareAuthenticator(kind: kind)
        #expect(try register(authenticator, attestation: .packedSelf).attestation == .selfAttestation)
    }

    @Test("Packed self attestation with an alg different from the key's is refused")
    func packedSelfAlgMismatch() throws {
        let authenticator = try SoftwareAuthenticator(kind: .p256)
        expectRegistrationFailure(try authenticator.register(challenge: Self.challenge, attestation: .packedSelf, attestationAlgorithm: -8), .attestationAlgorithmMismatch)
    }

    @Test("Packed x5c attestation verifies with the certificate key and returns the unverified chain")
    func registerPackedX5C() throws {
        let authenticator = try SoftwareAuthenticator(kind: .p256)
        let ca = try TestAttestationCA(aaguid: authenticator.aaguid)
        let credential = try register(authenticator, attestation: .packedX5C(ca))
        guard case .basic(let chain) = credential.attestation else { Issue.record("not basic"); return }
        #expect(chain.certificates == [ca.leafCertificate])
        #expect(ca.leafCertificate.issuer == ca.caCertificate.subject)
    }

    @Test("Packed attestation certificates that break §8.2.1 are refused")
    func packedCertificateRequirements() throws {
        let authenticator = try SoftwareAuthenticator(kind: .p256)
        let wrongOU = try TestAttestationCA(aaguid: authenticator.aaguid, organizationalUnit: "Marketing")
        expectRegistrationFailure(try authenticator.register(challenge: Self.challenge, attestation: .packedX5C(wrongOU)), .invalidAttestationCertificate)
        let isCA = try TestAttestationCA(aaguid: authenticator.aaguid, leafIsCA: true)
        expectRegistrationFailure(try authenticator.register(challenge: Self.challenge, attestation: .packedX5C(isCA)), .invalidAttestationCertificate)
        let otherAAGUID = try TestAttestationCA(aaguid: authenticator.aaguid, aaguidInCertificate: Array(repeating: 0xAA, count: 16))
        expectRegistrationFailure(try authenticator.register(challenge: Self.challenge, attestation: .packedX5C(otherAAGUID)), .attestationAAGUIDMismatch)
    }

    @Test("A packed x5c signature by a different key is refused")
    func packedX5CBadSignature() throws {
        let authenticator = try SoftwareAuthenticator(kind: .p256)
        let ca = try TestAttestationCA(aaguid: authenticator.aaguid)
        let other = try TestAttestationCA(aaguid: authenticator.aaguid)
        var response = try authenticator.register(challenge: Self.challenge, attestation: .packedX5C(ca))
        let swapped = try authenticator.register(challenge: Self.challenge, attestation: .packedX5C(other))
        // Keep ca's signature, present other's certificate.
        let object = try CBORDecoder().decode(response.attestationObject)
        let otherObject = try CBORDecoder().decode(swapped.attestationObject)
        let statement = TestCBOR.map([(.text("alg"), TestCBOR.int(-7)), (.text("sig"), object[text: "attStmt"]?[text: "sig"] ?? .null),
                                      (.text("x5c"), otherObject[text: "attStmt"]?[text: "x5c"] ?? .null)])
        response.attestationObject = TestCBOR.encode(TestCBOR.map([(.text("fmt"), .text("packed")), (.text("attStmt"), statement),
                                                                  (.text("authData"), object[text: "authData"] ?? .null)]))
        expectRegistrationFailure(response, .badSignature)
    }

    @Test("Registration refuses the wrong type, challenge, origin, RP ID and cross-origin use")
    func registrationClientDataChecks() throws {
        let a = try SoftwareAuthenticator(kind: .p256)
        expectRegistrationFailure(try a.register(challenge: Self.challenge, type: "webauthn.get"), .wrongType)
        expectRegistrationFailure(try a.register(challenge: Array(repeating: 9, count: 32)), .challengeMismatch)
        expectRegistrationFailure(try a.register(origin: "https://login.bank.example.tw.evil.example", challenge: Self.challenge), .wrongOrigin)
        expectRegistrationFailure(try a.register(origin: "http://login.bank.example.tw", challenge: Self.challenge), .wrongOrigin)
        expectRegistrationFailure(try a.register(rpID: "evil.example", challenge: Self.challenge), .wrongRPID)
        expectRegistrationFailure(try a.register(challenge: Self.challenge, clientDataExtra: ",\"topOrigin\":\"https://evil.example\""), .wrongTopOrigin)
        var crossOrigin = try a.register(challenge: Self.challenge)
        crossOrigin.clientDataJSON = SoftwareAuthenticator.clientData(type: "webauthn.create", challenge: Self.challenge, origin: Self.origin, crossOrigin: true)
        expectRegistrationFailure(crossOrigin, .crossOriginNotAllowed)
    }

    @Test("Extra keys in clientDataJSON are ignored, as browsers add them")
    func clientDataExtraKeys() throws {
        let a = try SoftwareAuthenticator(kind: .p256)
        let response = try a.register(challenge: Self.challenge, clientDataExtra: ",\"other_keys_can_be_added_here\":\"do not compare clientDataJSON against a template\"")
        #expect(throws: Never.self) { try registration.verify(response, expectedChallenge: Self.challenge).get() }
    }

    @Test("Registration refuses missing UP, missing UV when required, and BS without BE")
    func registrationFlags() throws {
        let a = try SoftwareAuthenticator(kind: .p256)
        expectRegistrationFailure(try a.register(challenge: Self.challenge, flags: SoftwareAuthenticator.uv), .userPresenceMissing)
        expectRegistrationFailure(try a.register(challenge: Self.challenge, flags: SoftwareAuthenticator.up), .userVerificationMissing)
        expectRegistrationFailure(try a.register(challenge: Self.challenge, flags: SoftwareAuthenticator.up | SoftwareAuthenticator.uv | SoftwareAuthenticator.bs),
                                  .backupStateWithoutEligibility)
        var relaxed = Self.configuration
        relaxed.requireUserVerification = false
        let credential = try RegistrationVerifier(configuration: relaxed).verify(try a.register(challenge: Self.challenge, flags: SoftwareAuthenticator.up), expectedChallenge: Self.challenge).get()
        #expect(!credential.userVerified)
        let synced = try registration.verify(try a.register(challenge: Self.challenge, flags: 0x1D), expectedChallenge: Self.challenge).get()
        #expect(synced.backupEligible && synced.backupState)
    }

    @Test("Registration refuses algorithms and attestation kinds the RP did not offer")
    func registrationPolicy() throws {
        var onlyES256 = Self.configuration
        onlyES256.allowedAlgorithms = [.es256]
        expectRegistrationFailure(try SoftwareAuthenticator(kind: .rsa).register(challenge: Self.challenge), .algorithmNotAllowed,
                                  verifier: RegistrationVerifier(configuration: onlyES256))
        var attestedOnly = Self.configuration
        attestedOnly.acceptedAttestation = [.basic]
        expectRegistrationFailure(try SoftwareAuthenticator(kind: .p256).register(challenge: Self.challenge, attestation: .packedSelf), .attestationNotAllowed,
                                  verifier: RegistrationVerifier(configuration: attestedOnly))
    }

    @Test("Malformed attestation objects give specific errors, never a crash")
    func malformedAttestationObjects() throws {
        let a = try SoftwareAuthenticator(kind: .p256)
        var response = try a.register(challenge: Self.challenge)
        let good = response.attestationObject
        response.attestationObject = Array(good.prefix(good.count - 3))
        expectRegistrationFailure(response, .malformedCBOR)
        response.attestationObject = TestCBOR.encode(TestCBOR.map([(.text("fmt"), .text("none"))]))
        expectRegistrationFailure(response, .malformedAttestationObject)
        response.attestationObject = TestCBOR.encode(TestCBOR.map([(.text("fmt"), .text("tpm")), (.text("attStmt"), .map([])),
                                                                   (.text("authData"), (try CBORDecoder().decode(good))[text: "authData"] ?? .null)]))
        expectRegistrationFailure(response, .unsupportedAttestationFormat)
        response = try a.register(challenge: Self.challenge)
        response.credentialID = [1, 2, 3]
        expectRegistrationFailure(response, .credentialIDMismatch)
        response = try a.register(challenge: Self.challenge)
        response.clientDataJSON = Array("not json".utf8)
        expectRegistrationFailure(response, .malformedClientData)
        // Mutations of a valid object never trap.
        var generator = SeededGenerator(seed: 42)
        for _ in 0..<3000 {
            var mutated = try a.register(challenge: Self.challenge)
            let position = Int.random(in: 0..<mutated.attestationObject.count, using: &generator)
            mutated.attestationObject[position] = UInt8.random(in: 0...255, using: &generator)
            _ = registration.verify(mutated, expectedChallenge: Self.challenge)
        }
    }

    @Test("Authenticator data parsing reads flags, counter and attested credential data, and refuses trailing bytes")
    func authenticatorDataParsing() throws {
        let a = try SoftwareAuthenticator(kind: .ed25519)
        let bytes = try a.authenticatorData(rpID: "bank.example.tw", flags: 0x1D, signCount: 0x0102_0304, attested: true)
        let parsed = try AuthenticatorData(bytes: bytes)
        #expect(parsed.flags == [.userPresent, .userVerified, .backupEligible, .backupState, .attestedCredentialData])
        #expect(parsed.signCount == 0x0102_0304)
        #expect(parsed.attestedCredential?.credentialID == a.credentialID)
        #expect(throws: WebAuthnError(.malformedAuthenticatorData)) { try AuthenticatorData(bytes: bytes + [0]) }
        #expect(throws: WebAuthnError(.malformedAuthenticatorData)) { try AuthenticatorData(bytes: Array(bytes.prefix(36))) }
        var longID = Array(bytes.prefix(37)) + a.aaguid + [0x04, 0x00]
        longID += Array(repeating: 1, count: 1024)
        #expect(throws: WebAuthnError(.credentialIDTooLong)) { try AuthenticatorData(bytes: longID) }
        let withExtensions = try a.authenticatorData(rpID: "x", flags: 0x81, signCount: 1, attested: false) + TestCBOR.encode(TestCBOR.map([(.text("credProtect"), TestCBOR.int(2))]))
        #expect(try AuthenticatorData(bytes: withExtensions).extensions?[text: "credProtect"] == .unsigned(2))
    }

    @Test("COSE keys with wrong parameters or unsupported algorithms are refused")
    func coseKeys() throws {
        let i = TestCBOR.int
        #expect(throws: WebAuthnError(.unsupportedAlgorithm)) {
            try COSEPublicKey(bytes: TestCBOR.encode(TestCBOR.map([(i(1), i(2)), (i(3), i(-35))])))
        }
        #expect(throws: WebAuthnError(.malformedCOSEKey)) {
            try COSEPublicKey(bytes: TestCBOR.encode(TestCBOR.map([(i(1), i(2)), (i(3), i(-7)), (i(-1), i(1)),
                                                                  (i(-2), .bytes(Array(repeating: 1, count: 32))), (i(-3), .bytes(Array(repeating: 1, count: 32)))])))
        }
        #expect(throws: WebAuthnError(.malformedCOSEKey)) {
            try COSEPublicKey(bytes: TestCBOR.encode(TestCBOR.map([(i(1), i(2)), (i(3), i(-8)), (i(-1), i(6)), (i(-2), .bytes(Array(repeating: 1, count: 32)))])))
        }
        #expect(throws: WebAuthnError(.malformedCOSEKey)) {
            try COSEPublicKey(bytes: TestCBOR.encode(TestCBOR.map([(i(1), i(3)), (i(3), i(-257)), (i(-1), .bytes(Array(repeating: 0xC1, count: 128))), (i(-2), .bytes([1, 0, 1]))])))
        }
        #expect(throws: WebAuthnError(.malformedCBOR)) { try COSEPublicKey(bytes: [0xA1]) }
    }

    // MARK: authentication

    func storedCredential(_ authenticator: SoftwareAuthenticator) throws -> StoredCredential {
        StoredCredential(try register(authenticator), userHandle: Self.userHandle)
    }

    func expectAuthenticationFailure(_ response: AuthenticationResponse, _ stored: StoredCredential, _ code: WebAuthnError.Code,
                                     verifier: AuthenticationVerifier? = nil, allow: [[UInt8]]? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        switch (verifier ?? authentication).verify(response, expectedChallenge: Self.challenge, credential: stored, allowCredentials: allow) {
        case .success: Issue.record("accepted; expected \(code)", sourceLocation: sourceLocation)
        case .failure(let error): #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("An assertion verifies for each algorithm and returns the new counter", arguments: SoftwareAuthenticator.Kind.allCases)
    func assertionSucceeds(kind: SoftwareAuthenticator.Kind) throws {
        var a = try SoftwareAuthenticator(kind: kind)
        let stored = try storedCredential(a)
        let result = try authentication.verify(try a.assert(challenge: Self.challenge), expectedChallenge: Self.challenge, credential: stored,
                                               allowCredentials: [a.credentialID]).get()
        #expect(result.newSignCount == 1)
        #expect(result.signCount == .increased)
        #expect(result.userVerified)
    }

    @Test("Authentication refuses the wrong type, challenge, origin, RP ID, missing UP and UV")
    func assertionChecks() throws {
        var a = try SoftwareAuthenticator(kind: .p256)
        let stored = try storedCredential(a)
        expectAuthenticationFailure(try a.assert(challenge: Self.challenge, type: "webauthn.create"), stored, .wrongType)
        expectAuthenticationFailure(try a.assert(challenge: [1, 2, 3]), stored, .challengeMismatch)
        expectAuthenticationFailure(try a.assert(origin: "https://evil.example", challenge: Self.challenge), stored, .wrongOrigin)
        expectAuthenticationFailure(try a.assert(rpID: "evil.example", challenge: Self.challenge), stored, .wrongRPID)
        expectAuthenticationFailure(try a.assert(challenge: Self.challenge, flags: SoftwareAuthenticator.uv), stored, .userPresenceMissing)
        expectAuthenticationFailure(try a.assert(challenge: Self.challenge, flags: SoftwareAuthenticator.up), stored, .userVerificationMissing)
        expectAuthenticationFailure(try a.assert(challenge: Self.challenge, crossOrigin: true), stored, .crossOriginNotAllowed)
    }

    @Test("Authentication refuses a bad signature, a foreign credential and a wrong user handle")
    func assertionIdentity() throws {
        var a = try SoftwareAuthenticator(kind: .p256)
        let stored = try storedCredential(a)
        var response = try a.assert(challenge: Self.challenge)
        response.signature[response.signature.count - 1] ^= 1
        expectAuthenticationFailure(response, stored, .badSignature)
        var tampered = try a.assert(challenge: Self.challenge)
        tampered.authenticatorData[36] ^= 0x01  // counter changed after signing
        expectAuthenticationFailure(tampered, stored, .badSignature)
        expectAuthenticationFailure(try a.assert(challenge: Self.challenge), stored, .credentialNotAllowed, allow: [[9, 9]])
        expectAuthenticationFailure(try a.assert(challenge: Self.challenge, userHandle: Array("user-2".utf8)), stored, .userHandleMismatch)
        var b = try SoftwareAuthenticator(kind: .p256, seed: 2)
        expectAuthenticationFailure(try b.assert(challenge: Self.challenge), stored, .credentialIDMismatch)
    }

    @Test("A sign-count regression is refused by default and flagged when the policy says so")
    func signCountRegression() throws {
        var a = try SoftwareAuthenticator(kind: .p256)
        var stored = try storedCredential(a)
        stored.signCount = 4
        expectAuthenticationFailure(try a.assert(challenge: Self.challenge, counter: 3), stored, .signCountRegression)
        expectAuthenticationFailure(try a.assert(challenge: Self.challenge, counter: 4), stored, .signCountRegression)
        expectAuthenticationFailure(try a.assert(challenge: Self.challenge, counter: 0), stored, .signCountRegression)
        var flagging = Self.configuration
        flagging.signCountPolicy = .flag
        let result = try AuthenticationVerifier(configuration: flagging).verify(try a.assert(challenge: Self.challenge, counter: 3),
                                                                                expectedChallenge: Self.challenge, credential: stored).get()
        #expect(result.signCount == .regression(stored: 4, received: 3))
        stored.signCount = 0
        let zero = try authentication.verify(try a.assert(challenge: Self.challenge, counter: 0), expectedChallenge: Self.challenge, credential: stored).get()
        #expect(zero.signCount == .notSupported)
    }

    @Test("Backup flags must stay consistent with the stored credential")
    func backupFlags() throws {
        var a = try SoftwareAuthenticator(kind: .p256)
        let stored = try storedCredential(a)  // BE = false
        expectAuthenticationFailure(try a.assert(challenge: Self.challenge, flags: 0x15), stored, .backupStateWithoutEligibility)
        expectAuthenticationFailure(try a.assert(challenge: Self.challenge, flags: 0x0D), stored, .backupEligibilityChanged)
        var synced = stored
        synced.backupEligible = true
        let result = try authentication.verify(try a.assert(challenge: Self.challenge, flags: 0x1D), expectedChallenge: Self.challenge, credential: synced).get()
        #expect(result.backupState)
    }
}

@Suite("WebAuthn attestation trust")
struct AttestationTrustTests {
    @Test("A packed x5c chain is trusted only under its own root and within validity")
    func chainValidation() async throws {
        let authenticator = try SoftwareAuthenticator(kind: .p256)
        let ca = try TestAttestationCA(aaguid: authenticator.aaguid)
        let verifier = RegistrationVerifier(configuration: WebAuthnTests.configuration)
        let credential = try verifier.verify(try authenticator.register(challenge: WebAuthnTests.challenge, attestation: .packedX5C(ca)),
                                             expectedChallenge: WebAuthnTests.challenge).get()
        guard case .basic(let chain) = credential.attestation else { Issue.record("not basic"); return }
        let inValidity = Date(timeIntervalSince1970: 1_750_000_000)
        guard case .trusted(let trusted) = await chain.validate(roots: [ca.caCertificate], at: inValidity) else {
            Issue.record("own root refused"); return
        }
        #expect(trusted.certificates == [ca.leafCertificate])
        let stranger = try TestAttestationCA(aaguid: authenticator.aaguid)
        guard case .untrusted = await chain.validate(roots: [stranger.caCertificate], at: inValidity) else {
            Issue.record("foreign root accepted"); return
        }
        guard case .untrusted = await chain.validate(roots: [ca.caCertificate], at: Date(timeIntervalSince1970: 2_100_000_000)) else {
            Issue.record("expired chain accepted"); return
        }
    }
}

@Suite("WebAuthn extras")
struct WebAuthnExtraTests {
    @Test("RFC 9864 fully-specified ESP256 (-9) and Ed25519 (-19) keys register and sign in", arguments: [(SoftwareAuthenticator.Kind.p256, -9), (.ed25519, -19)])
    func fullySpecifiedAlgorithms(kind: SoftwareAuthenticator.Kind, alg: Int) throws {
        var a = try SoftwareAuthenticator(kind: kind)
        a.algorithmOverride = alg
        let registration = RegistrationVerifier(configuration: WebAuthnTests.configuration)
        let credential = try registration.verify(try a.register(challenge: WebAuthnTests.challenge, attestation: .packedSelf),
                                                 expectedChallenge: WebAuthnTests.challenge).get()
        #expect(credential.algorithm.rawValue == alg)
        let stored = StoredCredential(credential, userHandle: WebAuthnTests.userHandle)
        let assertion = try a.assert(challenge: WebAuthnTests.challenge)
        #expect(throws: Never.self) {
            try AuthenticationVerifier(configuration: WebAuthnTests.configuration).verify(assertion, expectedChallenge: WebAuthnTests.challenge, credential: stored).get()
        }
    }

    @Test("Any change to signed assertion bytes is rejected, and nothing traps")
    func assertionMutations() throws {
        var a = try SoftwareAuthenticator(kind: .p256)
        let registration = RegistrationVerifier(configuration: WebAuthnTests.configuration)
        let stored = StoredCredential(try registration.verify(try a.register(challenge: WebAuthnTests.challenge), expectedChallenge: WebAuthnTests.challenge).get(),
                                      userHandle: WebAuthnTests.userHandle)
        let verifier = AuthenticationVerifier(configuration: WebAuthnTests.configuration)
        var generator = SeededGenerator(seed: 1234)
        for round in 0..<1000 {
            var response = try a.assert(challenge: WebAuthnTests.challenge)
            if round % 2 == 0 {
                let position = Int.random(in: 0..<response.authenticatorData.count, using: &generator)
                response.authenticatorData[position] ^= UInt8.random(in: 1...255, using: &generator)
            } else {
                let position = Int.random(in: 0..<response.clientDataJSON.count, using: &generator)
                response.clientDataJSON[position] ^= UInt8.random(in: 1...255, using: &generator)
            }
            if case .success = verifier.verify(response, expectedChallenge: WebAuthnTests.challenge, credential: stored) {
                Issue.record("mutated assertion accepted in round \(round)")
            }
        }
    }

    @Test("Challenges are 32 injected random bytes in base64url")
    func challenges() {
        var generator = SeededGenerator(seed: 3)
        let challenge = WebAuthnChallenge.generate(using: &generator)
        #expect(challenge.bytes.count == 32)
        #expect(challenge.base64URL.count == 43)
        #expect(Base64URL.decode(challenge.base64URL) == challenge.bytes)
    }

    @Test("The QR SVG data URI is base64 SVG")
    func svgDataURI() throws {
        let code = try QRCode(text: "otpauth://totp/A:b?secret=JBSWY3DPEHPK3PXP")
        let uri = code.svgDataURI()
        #expect(uri.hasPrefix("data:image/svg+xml;base64,"))
        let payload = try #require(Data(base64Encoded: String(uri.dropFirst("data:image/svg+xml;base64,".count))))
        #expect(String(decoding: payload, as: UTF8.self) == code.svg())
    }
}
