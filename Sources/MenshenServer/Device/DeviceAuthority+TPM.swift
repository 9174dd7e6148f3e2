import Crypto
import Foundation
import MenshenCore
import MenshenDevice
import MenshenStorage
import X509

/// An enrolment refused for a reason the agent must hear (TPM evidence, a token
/// that demands it, a failed activation): a stable code and a message. Each
/// refusal also leaves a Device Inventory Info (5001) failure event.
public struct DeviceEnrolmentRefusal: Error, CustomStringConvertible, Equatable {
    public let code: String
    public let description: String
    public init(code: String, _ description: String) { self.code = code; self.description = description }
}

/// Hardware-bound enrolment (FSC principle 2.1: unique identification such as
/// a TPM), evidence-based in two steps:
///
/// 1. ``enrolTPM(token:csr:platform:evidence:source:)``: the CSR, the TPM's
///    EK certificate and the device key's `TPMT_PUBLIC` are checked
///    (``TPMEvidenceVerifier``: the EK chains to `device.tpm_ca_file`, the key
///    cannot leave its TPM, its point is the CSR's key); the token is taken; a
///    random secret is wrapped with `TPM2_MakeCredential` (in software) for the
///    EK and the key's Name, and kept, hashed, as short-lived flow state;
/// 2. ``activateTPM(challenge:secret:source:)``: the agent returns the secret
///    `TPM2_ActivateCredential` released, which only a TPM holding both that EK
///    and a key with that Name can do; then the certificate is issued and the
///    device recorded `hardware_bound`, with the EK certificate's fingerprint
///    in its enrolment event.
///
/// A refusal at step 1 stores nothing and leaves the token usable; a wrong
/// secret at step 2 ends the challenge and puts the token back as it was.
extension DeviceAuthority {
    public static let tpmChallengeKind = "device-tpm-challenge"
    /// How long an agent has to activate the credential.
    public static let tpmChallengeLifetime: TimeInterval = 300

    /// Step 1's answer: what `tpm2_activatecredential` needs.
    public struct TPMChallenge: Sendable {
        public let challenge: String
        public let credential: TPMMadeCredential
        public let expiresAt: Date
    }

    /// The challenge as flow state: the token's state to restore, the request and the secret's hash.
    struct TPMChallengeState: Codable {
        var tokenIDHash: String
        var tokenData: String
        var tokenUser: String?
        var tokenCreatedAt: Date
        var tokenExpiresAt: Date
        var csr: String
        var platform: String
        var secretSHA256: String
        var ekFingerprint: String
        var ekCurve: String
    }

    public func enrolTPM(token: String, csr: [UInt8], platform: String, evidence: UnverifiedTPMEvidence,
                         source: String?) async throws -> TPMChallenge {
        guard token.utf8.count >= 16, token.utf8.count <= 256 else { throw DeviceAuthorityError(.invalidToken, "the enrolment token is not valid") }
        guard let tpmAnchors else {
            try await events.enrolmentRefused(code: "tpm_not_configured", detail: "device.tpm_ca_file is not set", source: source)
            throw DeviceEnrolmentRefusal(code: "tpm_not_configured", "this server trusts no TPM manufacturer (device.tpm_ca_file); enrol without --tpm")
        }
        let requestKey: Certificate.PublicKey
        do { requestKey = try DeviceCA.requestedPublicKey(csr: csr) } catch { throw DeviceAuthorityError(.badCSR, "\(error)") }
        let now = clock.now()
        let checked: CheckedTPMEvidence
        switch await TPMEvidenceVerifier(anchors: tpmAnchors).check(evidence, requestKey: requestKey, at: now) {
        case .refused(let refusal):
            try await events.enrolmentRefused(code: refusal.code, detail: refusal.description, source: source)
            throw DeviceEnrolmentRefusal(code: refusal.code, refusal.description)
        case .checked(let c): checked = c
        }
        guard let state = try await store.takeFlowState(idHash: SecretHash.sha256Hex(token), kind: Self.tokenKind, at: now) else {
            throw DeviceAuthorityError(.invalidToken, "the enrolment token is unknown, used or expired")
        }
        let secret = random.bytes(32)
        let challenge = random.token(byteCount: 32)
        let made: TPMMadeCredential
        do { made = try TPMCredentialMaker.make(credential: secret, objectName: checked.keyName, for: checked.endorsementKey, random: random) } catch {
            try await store.createFlowState(state)
            throw error
        }
        let platform = String(platform.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" }.prefix(32))
        let kept = TPMChallengeState(tokenIDHash: state.idHash, tokenData: state.data, tokenUser: state.userID?.rawValue,
                                     tokenCreatedAt: state.createdAt, tokenExpiresAt: state.expiresAt,
                                     csr: Data(csr).base64EncodedString(), platform: platform,
                                     secretSHA256: SHA256.hash(data: secret).map { String(format: "%02x", $0) }.joined(),
                                     ekFingerprint: checked.ekCertificateFingerprint, ekCurve: checked.endorsementKey.curveName)
        let expiresAt = min(now.addingTimeInterval(Self.tpmChallengeLifetime), state.expiresAt)
        try await store.createFlowState(FlowStateRecord(idHash: SecretHash.sha256Hex(challenge), kind: Self.tpmChallengeKind, userID: state.userID,
                                                        data: String(decoding: try JSONEncoder().encode(kept), as: UTF8.self),
                                                        createdAt: now, expiresAt: expiresAt))
        return TPMChallenge(challenge: challenge, credential: made, expiresAt: expiresAt)
    }

    public func activateTPM(challenge: String, secret: [UInt8], source: String?) async throws -> Enrolled {
        guard challenge.utf8.count >= 16, challenge.utf8.count <= 256, secret.count <= 64 else {
            throw DeviceEnrolmentRefusal(code: "invalid_challenge", "the challenge is not valid")
        }
        let now = clock.now()
        guard let state = try await store.takeFlowState(idHash: SecretHash.sha256Hex(challenge), kind: Self.tpmChallengeKind, at: now),
              let kept = try? JSONDecoder().decode(TPMChallengeState.self, from: Data(state.data.utf8)) else {
            throw DeviceEnrolmentRefusal(code: "invalid_challenge", "the challenge is unknown, used or expired")
        }
        let expected = Array(kept.secretSHA256.utf8), got = Array(SHA256.hash(data: secret).map { String(format: "%02x", $0) }.joined().utf8)
        guard expected.count == got.count, zip(expected, got).reduce(UInt8(0), { $0 | ($1.0 ^ $1.1) }) == 0 else {
            // Put the token back as it was: a failed activation must not use it up.
            if kept.tokenExpiresAt > now {
                try await store.createFlowState(FlowStateRecord(idHash: kept.tokenIDHash, kind: Self.tokenKind, userID: kept.tokenUser.map { UserID($0) },
                                                                data: kept.tokenData, createdAt: kept.tokenCreatedAt, expiresAt: kept.tokenExpiresAt))
            }
            try await events.enrolmentRefused(code: "activation_failed", detail: "the secret does not match the credential (EK sha256:\(kept.ekFingerprint))",
                                              source: source)
            throw DeviceEnrolmentRefusal(code: "activation_failed", "the TPM did not release the credential: the key is not in the TPM of that endorsement key")
        }
        guard let grant = try? JSONDecoder().decode(TokenGrant.self, from: Data(kept.tokenData.utf8)),
              let deviceClass = StoreDeviceClass(rawValue: grant.deviceClass), let csr = Data(base64Encoded: kept.csr) else {
            throw DeviceAuthorityError(.invalidToken, "the enrolment token is unknown, used or expired")
        }
        let id = DeviceID("d-" + random.bytes(8).map { String(format: "%02x", $0) }.joined())
        let issued: IssuedDeviceCertificate
        do { issued = try ca.issue(csr: Array(csr), for: id, now: now, random: random) } catch { throw DeviceAuthorityError(.badCSR, "\(error)") }
        let record = DeviceRecord(id: id, ownerID: UserID(grant.user), displayName: grant.name, deviceClass: deviceClass,
                                  platform: kept.platform.isEmpty ? "unknown" : kept.platform, hardwareBound: true, enrolledAt: now)
        // One transaction: never a device without its certificate, or a certificate without its device.
        try await store.createDevice(record, certificate: DeviceCertificateRecord(
            serial: issued.serialNumber, deviceID: id, fingerprint: SHA256.hash(data: issued.der).map { String(format: "%02x", $0) }.joined(),
            publicKeyFingerprint: SHA256.hash(data: issued.certificate.publicKey.subjectPublicKeyInfoBytes).map { String(format: "%02x", $0) }.joined(),
            notBefore: issued.notValidBefore, notAfter: issued.notValidAfter))
        try await events.inventory(device: record, activity: 1, success: true,
                                   detail: "enrolled (\(grant.deviceClass)), hardware-bound: TPM EK \(kept.ekCurve) sha256:\(kept.ekFingerprint)",
                                   source: source, tpmEKFingerprint: kept.ekFingerprint)
        try await events.entityManagement(device: record, activity: 6, actor: grant.user, actorIsOperator: false,
                                          application: "menshen agent enrol --tpm (POST /device/enrol/activate)",
                                          comment: "one-time enrolment token, key in a TPM", source: source)
        return Enrolled(device: record, certificate: issued)
    }
}
