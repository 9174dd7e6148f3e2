import Crypto
import Foundation
import MenshenTestSupport
import X509
import _CryptoExtras
@testable import MenshenIdentity

/// A throwaway attestation CA and one attestation certificate (packed §8.2.1).
struct TestAttestationCA {
    let caKey = P256.Signing.PrivateKey()
    let leafKey = P256.Signing.PrivateKey()
    let caCertificate: Certificate
    let leafCertificate: Certificate
    let leafDER: [UInt8]

    /// - Parameters: overrides to produce certificates that break one requirement.
    init(aaguid: [UInt8], organizationalUnit: String = "Authenticator Attestation", leafIsCA: Bool = false, aaguidInCertificate: [UInt8]? = nil) throws {
        let notBefore = Date(timeIntervalSince1970: 1_700_000_000)
        let notAfter = notBefore.addingTimeInterval(86_400 * 3650)
        let caName = try DistinguishedName {
            CountryName("TW")
            OrganizationName("Menshen Test")
            CommonName("Menshen Test Attestation Root")
        }
        caCertificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey), notValidBefore: notBefore, notValidAfter: notAfter,
            issuer: caName, subject: caName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil)) },
            issuerPrivateKey: .init(caKey))
        let leafName = try DistinguishedName {
            CountryName("TW")
            OrganizationName("Menshen Test Authenticators")
            OrganizationalUnitName(organizationalUnit)
            CommonName("Menshen Soft Key")
        }
        let extensionAAGUID = aaguidInCertificate ?? aaguid
        leafCertificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(leafKey.publicKey), notValidBefore: notBefore, notValidAfter: notAfter,
            issuer: caName, subject: leafName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                if leafIsCA {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                } else {
                    Critical(BasicConstraints.notCertificateAuthority)
                }
                Certificate.Extension(oid: [1, 3, 6, 1, 4, 1, 45724, 1, 1, 4], critical: false, value: [0x04, 0x10] + extensionAAGUID)
            },
            issuerPrivateKey: .init(caKey))
        leafDER = try leafCertificate.serializeAsPEM().derBytes
    }
}

/// A software authenticator that produces registration and assertion
/// responses byte-for-byte as a browser would hand them to the RP.
struct SoftwareAuthenticator {
    enum Kind: String, CaseIterable { case p256, ed25519, rsa }
    enum Attestation { case none, packedSelf, packedX5C(TestAttestationCA) }

    enum PrivateKey {
        case p256(P256.Signing.PrivateKey)
        case ed25519(Curve25519.Signing.PrivateKey)
        case rsa(_RSA.Signing.PrivateKey)
    }

    static let up: UInt8 = 0x01, uv: UInt8 = 0x04, be: UInt8 = 0x08, bs: UInt8 = 0x10, at: UInt8 = 0x40, ed: UInt8 = 0x80

    let kind: Kind
    let key: PrivateKey
    let credentialID: [UInt8]
    let aaguid: [UInt8]
    var signCount: UInt32 = 0
    /// Announce an RFC 9864 fully-specified alg (-9, -19) instead of -7/-8.
    var algorithmOverride: Int?

    init(kind: Kind, seed: UInt64 = 1) throws {
        self.kind = kind
        var generator = SeededGenerator(seed: seed)
        credentialID = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        aaguid = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        switch kind {
        case .p256: key = .p256(P256.Signing.PrivateKey())
        case .ed25519: key = .ed25519(Curve25519.Signing.PrivateKey())
        case .rsa: key = .rsa(try _RSA.Signing.PrivateKey(keySize: .bits2048))
        }
    }

    var algorithm: Int {
        if let algorithmOverride { return algorithmOverride }
        switch kind {
        case .p256: return -7
        case .ed25519: return -8
        case .rsa: return -257
        }
    }

    func coseKey() throws -> [UInt8] {
        let i = TestCBOR.int
        switch key {
        case .p256(let k):
            let raw = Array(k.publicKey.x963Representation)  // 04 ‖ x ‖ y
            return TestCBOR.encode(TestCBOR.map([(i(1), i(2)), (i(3), i(algorithm)), (i(-1), i(1)),
                                                 (i(-2), .bytes(Array(raw[1..<33]))), (i(-3), .bytes(Array(raw[33..<65])))]))
        case .ed25519(let k):
            return TestCBOR.encode(TestCBOR.map([(i(1), i(1)), (i(3), i(algorithm)), (i(-1), i(6)), (i(-2), .bytes(Array(k.publicKey.rawRepresentation)))]))
        case .rsa(let k):
            let primitives = try k.publicKey.getKeyPrimitives()
            return TestCBOR.encode(TestCBOR.map([(i(1), i(3)), (i(3), i(-257)),
                                                 (i(-1), .bytes(Array(primitives.modulus))), (i(-2), .bytes(Array(primitives.publicExponent)))]))
        }
    }

    func sign(_ data: [UInt8]) throws -> [UInt8] {
        switch key {
        case .p256(let k): return Array(try k.signature(for: data).derRepresentation)
        case .ed25519(let k): return Array(try k.signature(for: data))
        case .rsa(let k): return Array(try k.signature(for: data, padding: .insecurePKCS1v1_5).rawRepresentation)
        }
    }

    static func clientData(type: String, challenge: [UInt8], origin: String, crossOrigin: Bool = false, extra: String = "") -> [UInt8] {
        Array(("{\"type\":\"\(type)\",\"challenge\":\"\(Base64URL.encode(challenge))\",\"origin\":\"\(origin)\",\"crossOrigin\":\(crossOrigin)" + extra + "}").utf8)
    }

    func authenticatorData(rpID: String, flags: UInt8, signCount: UInt32, attested: Bool) throws -> [UInt8] {
        var data = Array(SHA256.hash(data: Array(rpID.utf8)))
        data.append(flags | (attested ? Self.at : 0))
        data += [UInt8(signCount >> 24), UInt8((signCount >> 16) & 0xFF), UInt8((signCount >> 8) & 0xFF), UInt8(signCount & 0xFF)]
        if attested {
            data += aaguid
            data += [UInt8(credentialID.count >> 8), UInt8(credentialID.count & 0xFF)]
            data += credentialID
            data += try coseKey()
        }
        return data
    }

    /// `navigator.credentials.create()`.
    func register(rpID: String = "bank.example.tw", origin: String = "https://login.bank.example.tw", challenge: [UInt8],
                  attestation: Attestation = .none, flags: UInt8 = up | uv, type: String = "webauthn.create",
                  clientDataExtra: String = "", attestationAlgorithm: Int? = nil) throws -> RegistrationResponse {
        let clientDataJSON = Self.clientData(type: type, challenge: challenge, origin: origin, extra: clientDataExtra)
        let authData = try authenticatorData(rpID: rpID, flags: flags, signCount: signCount, attested: true)
        let signed = authData + Array(SHA256.hash(data: clientDataJSON))
        let statement: CBORValue
        let format: String
        switch attestation {
        case .none:
            format = "none"
            statement = .map([])
        case .packedSelf:
            format = "packed"
            statement = TestCBOR.map([(.text("alg"), TestCBOR.int(attestationAlgorithm ?? algorithm)), (.text("sig"), .bytes(try sign(signed)))])
        case .packedX5C(let ca):
            format = "packed"
            let signature = Array(try ca.leafKey.signature(for: signed).derRepresentation)
            statement = TestCBOR.map([(.text("alg"), TestCBOR.int(-7)), (.text("sig"), .bytes(signature)), (.text("x5c"), .array([.bytes(ca.leafDER)]))])
        }
        // CTAP2 canonical order: "fmt" < "attStmt" < "authData".
        let object = TestCBOR.map([(.text("fmt"), .text(format)), (.text("attStmt"), statement), (.text("authData"), .bytes(authData))])
        return RegistrationResponse(credentialID: credentialID, clientDataJSON: clientDataJSON, attestationObject: TestCBOR.encode(object),
                                    transports: ["usb", "nfc"])
    }

    /// `navigator.credentials.get()`; increments the counter by one first unless `counter` is given.
    mutating func assert(rpID: String = "bank.example.tw", origin: String = "https://login.bank.example.tw", challenge: [UInt8],
                         flags: UInt8 = up | uv, type: String = "webauthn.get", counter: UInt32? = nil,
                         userHandle: [UInt8]? = Array("user-1".utf8), crossOrigin: Bool = false) throws -> AuthenticationResponse {
        signCount = counter ?? (signCount + 1)
        let clientDataJSON = Self.clientData(type: type, challenge: challenge, origin: origin, crossOrigin: crossOrigin)
        let authData = try authenticatorData(rpID: rpID, flags: flags, signCount: signCount, attested: false)
        let signature = try sign(authData + Array(SHA256.hash(data: clientDataJSON)))
        return AuthenticationResponse(credentialID: credentialID, clientDataJSON: clientDataJSON, authenticatorData: authData,
                                      signature: signature, userHandle: userHandle)
    }
}
