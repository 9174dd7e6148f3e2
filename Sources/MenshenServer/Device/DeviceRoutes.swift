import Foundation
import HTTPTypes
import Hummingbird
import MenshenCore
import MenshenDevice
import MenshenStorage

/// The agent's HTTP API on the portal listener (JSON; no cookies, so no CSRF
/// surface — a request is authorized by its enrolment token or by the device
/// certificate and the signature of its report):
///
/// - `POST /device/enrol` `{"token", "csr" (PEM), "platform"}` → 201
///   `{"device_id", "certificate", "ca_certificate"}` (PEM);
/// - with TPM evidence, `"tpm": {"ek_certificate", "key_public"}` (base64) → 202
///   `{"challenge", "credential_blob", "encrypted_secret"}` (base64 `TPM2B_ID_OBJECT`
///   and `TPM2B_ENCRYPTED_SECRET`), then `POST /device/enrol/activate`
///   `{"challenge", "secret"}` → 201 as above, the device hardware-bound
///   (``DeviceAuthority/enrolTPM(token:csr:platform:evidence:source:)``);
///   refused evidence, a hardware-bound token without evidence and a wrong
///   secret → 403 with the refusal code;
/// - `GET /device/status/{serial}` → `{"statement", "signature", "status"}`:
///   the certificate's status (`good`, `revoked`, `expired`; 404 `unknown`) as a
///   JSON statement signed by the device CA (base64 DER ECDSA over its bytes);
/// - `POST /device/posture/nonce` `{"device_id"}` → `{"nonce"}`; 429 with
///   `Retry-After` beyond ``DeviceNonceLimiter``'s bounds (per address, per device);
/// - `POST /device/posture` with the signed envelope as body and the device
///   certificate (base64 DER) in `X-Menshen-Device-Certificate` → 200
///   `{"compliant", "reasons"}`, or 422 `{"error": "refused", "code"}`.
///
/// - `POST /device/renew` `{"csr" (PEM), "signature" (base64url, by the current
///   key over the CSR, see ``DeviceRenewal``)}` with the current certificate in
///   `X-Menshen-Device-Certificate` → 200 `{"device_id", "certificate",
///   "ca_certificate", "not_after"}`; the current certificate is revoked
///   (superseded); 422 `{"error": "refused", "code"}` for a revoked, foreign or
///   expired certificate or a bad signature.
///
/// Malformed input is a 400 problem+json naming the problem; bodies over the
/// limits are 413; nothing is stored for either.
public enum DeviceRoutes {
    public static let certificateHeader = "X-Menshen-Device-Certificate"
    static let maxEnrolmentBytes = 64 * 1024
    static let certificateField = HTTPField.Name(certificateHeader)

    struct EnrolBody: Decodable { let token: String; let csr: String; let platform: String?; let tpm: TPMBody? }
    /// TPM evidence: the EK certificate (base64 DER) and the device key's `TPMT_PUBLIC` (base64).
    struct TPMBody: Decodable { let ek_certificate: String; let key_public: String }
    struct ActivateBody: Decodable { let challenge: String; let secret: String }
    struct NonceBody: Decodable { let device_id: String }
    struct RenewBody: Decodable { let csr: String; let signature: String }

    public static func register(on router: Router<PortalContext>, authority: DeviceAuthority) {
        router.post("/device/enrol") { request, context -> Response in
            guard let data = try await body(request, limit: maxEnrolmentBytes) else { return tooLarge(maxEnrolmentBytes) }
            guard let body = try? JSONDecoder().decode(EnrolBody.self, from: data) else {
                return problem(400, "bad_request", "the body must be JSON {\"token\", \"csr\", \"platform\"}")
            }
            do {
                if let tpm = body.tpm {
                    guard tpm.ek_certificate.utf8.count <= 16 * 1024, tpm.key_public.utf8.count <= 4096,
                          let ek = Data(base64Encoded: tpm.ek_certificate), let key = Data(base64Encoded: tpm.key_public) else {
                        return problem(400, "bad_request", "tpm: {\"ek_certificate\" (base64 DER), \"key_public\" (base64 TPMT_PUBLIC)}")
                    }
                    let challenge = try await authority.enrolTPM(token: body.token, csr: Array(body.csr.utf8), platform: body.platform ?? "",
                                                                 evidence: UnverifiedTPMEvidence(ekCertificateDER: Array(ek), keyPublic: Array(key)),
                                                                 source: context.sourceAddress)
                    return json(202, ["challenge": challenge.challenge,
                                      "credential_blob": Data(challenge.credential.credentialBlob).base64EncodedString(),
                                      "encrypted_secret": Data(challenge.credential.encryptedSecret).base64EncodedString()])
                }
                let enrolled = try await authority.enrol(token: body.token, csr: Array(body.csr.utf8), platform: body.platform ?? "",
                                                         source: context.sourceAddress)
                return json(201, ["device_id": enrolled.device.id.rawValue, "certificate": enrolled.certificate.pem,
                                  "ca_certificate": authority.ca.certificatePEM])
            } catch let error as DeviceAuthorityError {
                return problem(error.code == .invalidToken ? 403 : 400, error.code.rawValue, error.description)
            } catch let refusal as DeviceEnrolmentRefusal {
                return problem(403, refusal.code, refusal.description)
            }
        }
        // The second step of a TPM enrolment: the secret `tpm2_activatecredential` released.
        router.post("/device/enrol/activate") { request, context -> Response in
            guard let data = try await body(request, limit: 4096) else { return tooLarge(4096) }
            guard let body = try? JSONDecoder().decode(ActivateBody.self, from: data), body.secret.utf8.count <= 128,
                  let secret = Data(base64Encoded: body.secret) else {
                return problem(400, "bad_request", "the body must be JSON {\"challenge\", \"secret\" (base64)}")
            }
            do {
                let enrolled = try await authority.activateTPM(challenge: body.challenge, secret: Array(secret), source: context.sourceAddress)
                return json(201, ["device_id": enrolled.device.id.rawValue, "certificate": enrolled.certificate.pem,
                                  "ca_certificate": authority.ca.certificatePEM, "hardware_bound": true])
            } catch let error as DeviceAuthorityError {
                return problem(error.code == .invalidToken ? 403 : 400, error.code.rawValue, error.description)
            } catch let refusal as DeviceEnrolmentRefusal {
                return problem(403, refusal.code, refusal.description)
            }
        }
        router.post("/device/renew") { request, context -> Response in
            guard let data = try await body(request, limit: maxEnrolmentBytes) else { return tooLarge(maxEnrolmentBytes) }
            guard let der = certificate(request) else {
                return problem(400, "bad_request", "the current device certificate (base64 DER) must be in \(certificateHeader)")
            }
            guard let body = try? JSONDecoder().decode(RenewBody.self, from: data), body.signature.utf8.count <= 512,
                  let signature = Base64URL.decode(body.signature) else {
                return problem(400, "bad_request", "the body must be JSON {\"csr\", \"signature\" (base64url)}")
            }
            do {
                switch try await authority.renew(certificateDER: der, csr: Array(body.csr.utf8), signature: signature, source: context.sourceAddress) {
                case .renewed(let issued):
                    return json(200, ["device_id": issued.deviceID.rawValue, "certificate": issued.pem, "ca_certificate": authority.ca.certificatePEM,
                                      "not_after": ISO8601DateFormatter().string(from: issued.notValidAfter)])
                case .refused(let code):
                    return json(422, ["error": "refused", "code": code])
                }
            } catch let error as DeviceAuthorityError {
                return problem(400, error.code.rawValue, error.description)
            }
        }
        // Revocation status for relying parties (a signed statement, like an OCSP response; no CRL).
        router.get("/device/status/:serial") { _, context -> Response in
            let serial = context.parameters.get("serial") ?? ""
            do {
                let s = try await authority.certificateStatus(serial: serial)
                return json(s.status == "unknown" ? 404 : 200, [
                    "statement": String(decoding: s.statement, as: UTF8.self),
                    "signature": Data(s.signature).base64EncodedString(),
                    "signature_algorithm": "ecdsa-with-SHA256",
                    "status": s.status,
                ])
            } catch let error as DeviceAuthorityError {
                return problem(400, error.code.rawValue, error.description)
            }
        }
        router.post("/device/posture/nonce") { request, context -> Response in
            guard let data = try await body(request, limit: 4096) else { return tooLarge(4096) }
            guard let body = try? JSONDecoder().decode(NonceBody.self, from: data), let device = DeviceID.validated(body.device_id) else {
                return problem(400, "bad_request", "the body must be JSON {\"device_id\"}")
            }
            do {
                return json(200, ["nonce": try await authority.nonce(for: device, source: context.sourceAddress)])
            } catch let error as DeviceAuthorityError {
                guard error.code == .rateLimited else { return problem(404, error.code.rawValue, error.description) }
                var response = problem(429, error.code.rawValue, error.description)
                response.headers[.retryAfter] = String(error.retryAfter ?? 60)
                return response
            }
        }
        router.post("/device/posture") { request, context -> Response in
            let limit = PostureLimits().maxEnvelopeBytes
            guard let data = try await body(request, limit: limit) else { return tooLarge(limit) }
            guard let der = certificate(request) else {
                return problem(400, "bad_request", "the device certificate (base64 DER) must be in \(certificateHeader)")
            }
            do {
                switch try await authority.report(envelope: Array(data), certificateDER: der, source: context.sourceAddress) {
                case .evaluated(let compliant, let reasons):
                    return json(200, ["compliant": compliant, "reasons": reasons])
                case .refused(let code):
                    return json(422, ["error": "refused", "code": code])
                }
            } catch let error as DeviceAuthorityError {
                return problem(error.code == .conflict ? 409 : 400, error.code.rawValue, error.description)
            }
        }
    }

    /// The device certificate of `X-Menshen-Device-Certificate` (base64 DER, at most 32 KiB), nil when absent or not base64.
    static func certificate(_ request: Request) -> [UInt8]? {
        guard let name = certificateField, let header = request.headers[name], header.utf8.count <= 32 * 1024,
              let der = Data(base64Encoded: header) else { return nil }
        return Array(der)
    }

    /// The body, or nil when it is over `limit` bytes.
    static func body(_ request: Request, limit: Int) async throws -> Data? {
        guard let buffer = try? await request.body.collect(upTo: limit) else { return nil }
        return Data(buffer.getBytes(at: buffer.readerIndex, length: buffer.readableBytes) ?? [])
    }

    static func json(_ status: Int, _ object: [String: Any]) -> Response {
        let text = (try? EventJSON.encode(object)) ?? "{}"
        return Response(status: .init(code: status), headers: [.contentType: "application/json", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func problem(_ status: Int, _ code: String, _ detail: String) -> Response {
        let text = (try? EventJSON.encode(["type": "about:blank", "status": status, "title": code, "detail": String(detail.prefix(500))] as [String: Any])) ?? "{}"
        return Response(status: .init(code: status), headers: [.contentType: "application/problem+json", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func tooLarge(_ limit: Int) -> Response { problem(413, "too_large", "the body is larger than \(limit) bytes") }
}
