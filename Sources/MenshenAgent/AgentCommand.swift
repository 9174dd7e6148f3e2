import ArgumentParser
import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MenshenCore
import MenshenDevice
import X509

/// `menshen agent …`: the device side of enrolment and posture (FSC principles
/// 2.1, 2.2). The device key is a P-256 key made here (swift-crypto) and kept in
/// `--key-dir` (mode 0600); it never leaves the device: the server gets a CSR
/// and signed reports. With `--tpm` the key is made and kept in the TPM 2.0
/// (``AgentTPM``) and the enrolment proves it (EK certificate, the key's public
/// area, `TPM2_ActivateCredential`), so the device is recorded hardware-bound.
///
/// Files in the key directory: `device.key` (PKCS#8 PEM, 0600) — or, with a
/// TPM, `device.tpm.pub` and `device.tpm.priv` (the TPM-encrypted key blob) —,
/// `device.pem` (the certificate), `ca.pem` (the device CA), `device.json`
/// (device id, server, key store and TCTI).
public struct AgentCommand: AsyncParsableCommand {
    public init() {}
    public static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "The device agent: enrol this device, send signed posture reports. 裝置代理程式：登錄與回報。",
        subcommands: [Enrol.self, Report.self, Renew.self])

    struct State: Codable {
        var deviceID: String
        var server: String
        /// `tpm` when the key is in a TPM; absent for a software key.
        var keyStore: String?
        var tcti: String?
        enum CodingKeys: String, CodingKey { case server, tcti; case deviceID = "device_id"; case keyStore = "key_store" }
    }

    /// The portal's base URL: https, or http only to a loopback address (tokens and reports must not cross a network in clear).
    static func baseURL(_ text: String) throws -> URL {
        guard text.utf8.count <= 2048, let url = URL(string: text.hasSuffix("/") ? String(text.dropLast()) : text),
              let scheme = url.scheme?.lowercased(), let host = url.host?.lowercased() else {
            throw ValidationError("--server must be a URL such as https://access.bank.example")
        }
        let loopback = host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
        guard scheme == "https" || (scheme == "http" && loopback) else {
            throw ValidationError("--server must use https (http only to a loopback address)")
        }
        return url
    }

    /// One POST; returns the status and at most 1 MiB of the body.
    static func post(_ url: URL, body: Data, headers: [String: String]) async throws -> (Int, Data) {
        var request = URLRequest(url: url, timeoutInterval: 30)
        request.httpMethod = "POST"
        request.httpBody = body
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data.prefix(1 << 20))
    }

    static func write(_ text: String, to path: String, mode: Int) throws {
        let fm = FileManager.default
        _ = fm.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: mode])
        try fm.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    static func detail(_ data: Data) -> String {
        String(decoding: data.prefix(500), as: UTF8.self).replacingOccurrences(of: "\n", with: " ")
    }

    public struct Enrol: AsyncParsableCommand {
        public init() {}
        public static let configuration = CommandConfiguration(
            abstract: "Enrol this device with a one-time token: make the device key and a CSR, store the certificate.")
        @Option(help: "The portal's URL (https; http only to a loopback address).") var server: String
        @Option(help: "The one-time enrolment token (menshen device enrol-token).") var token: String
        @Option(help: "Directory for the key and certificate (created, mode 0700).") var keyDir: String
        @Flag(help: "Make and keep the key in the TPM 2.0 (tpm2-tools) and prove it, so the device is recorded hardware-bound.") var tpm = false
        @Option(help: "The TPM's TCTI for tpm2-tools with --tpm (default: $TPM2TOOLS_TCTI), e.g. device:/dev/tpmrm0.") var tcti: String?

        public func run() async throws {
            if tpm { return try await enrolWithTPM() }
            let base = try AgentCommand.baseURL(server)
            let fm = FileManager.default
            let keyPath = (keyDir as NSString).appendingPathComponent("device.key")
            guard !fm.fileExists(atPath: keyPath) else { throw ValidationError("\(keyPath) exists: this directory already holds an enrolled device") }
            try fm.createDirectory(atPath: keyDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let key = P256.Signing.PrivateKey()
            let csr = try CertificateSigningRequest(version: .v1, subject: try DistinguishedName { CommonName("menshen-agent") },
                                                    privateKey: Certificate.PrivateKey(key), attributes: CertificateSigningRequest.Attributes(),
                                                    signatureAlgorithm: .ecdsaWithSHA256)
            let body = try JSONSerialization.data(withJSONObject: ["token": token, "csr": try csr.serializeAsPEM().pemString, "platform": "linux"])
            let (status, data) = try await AgentCommand.post(base.appendingPathComponent("device/enrol"), body: body, headers: [:])
            guard status == 201, let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let deviceID = object["device_id"] as? String, let certificate = object["certificate"] as? String,
                  let ca = object["ca_certificate"] as? String, DeviceID.validated(deviceID) != nil,
                  (try? Certificate(pemEncoded: certificate))?.publicKey == Certificate.PublicKey(key.publicKey)
            else {
                FileHandle.standardError.write(Data("menshen: error: enrolment refused (HTTP \(status)): \(AgentCommand.detail(data))\n".utf8))
                throw ExitCode(1)
            }
            try AgentCommand.write(key.pemRepresentation, to: keyPath, mode: 0o600)
            try AgentCommand.write(certificate, to: (keyDir as NSString).appendingPathComponent("device.pem"), mode: 0o644)
            try AgentCommand.write(ca, to: (keyDir as NSString).appendingPathComponent("ca.pem"), mode: 0o644)
            let state = String(decoding: try JSONEncoder().encode(State(deviceID: deviceID, server: base.absoluteString)), as: UTF8.self)
            try AgentCommand.write(state, to: (keyDir as NSString).appendingPathComponent("device.json"), mode: 0o644)
            print("enrolled device \(deviceID)")
        }

        /// The TPM enrolment: key in the TPM, CSR signed there, evidence, credential activation.
        func enrolWithTPM() async throws {
            let base = try AgentCommand.baseURL(server)
            let fm = FileManager.default
            guard !fm.fileExists(atPath: (keyDir as NSString).appendingPathComponent("device.json")),
                  !fm.fileExists(atPath: (keyDir as NSString).appendingPathComponent(AgentTPM.publicFile)) else {
                throw ValidationError("\(keyDir) already holds an enrolled device")
            }
            try fm.createDirectory(atPath: keyDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let device = try AgentTPM(tcti: tcti, keyDir: keyDir)
            defer { device.close() }
            func fail(_ message: String) -> ExitCode {
                FileHandle.standardError.write(Data("menshen: error: \(message)\n".utf8))
                return ExitCode(1)
            }
            let keyPublic: TPMECCPublicArea, endorsement: AgentTPM.Endorsement, csr: CertificateSigningRequest
            do {
                keyPublic = try device.createKey()
                guard let point = keyPublic.x963 else { throw AgentTPM.Failure(description: "the TPM made a key that is not P-256") }
                let publicKey = try P256.Signing.PublicKey(x963Representation: point)
                endorsement = try device.endorsement()
                csr = try ExternalSignerCSR.make(publicKey: publicKey, subject: try DistinguishedName { CommonName("menshen-agent") },
                                                 signDigest: { try device.sign(digest: $0) })
            } catch {
                throw fail("TPM: \(error)")
            }
            let body = try JSONSerialization.data(withJSONObject: [
                "token": token, "csr": try csr.serializeAsPEM().pemString, "platform": "linux",
                "tpm": ["ek_certificate": Data(endorsement.certificateDER).base64EncodedString(),
                        "key_public": Data(keyPublic.bytes).base64EncodedString()],
            ] as [String: Any])
            let (status, data) = try await AgentCommand.post(base.appendingPathComponent("device/enrol"), body: body, headers: [:])
            guard status == 202, let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let challenge = object["challenge"] as? String,
                  let blob = (object["credential_blob"] as? String).flatMap({ Data(base64Encoded: $0) }),
                  let secretBlob = (object["encrypted_secret"] as? String).flatMap({ Data(base64Encoded: $0) }),
                  blob.count <= 1024, secretBlob.count <= 1024 else {
                throw fail("enrolment refused (HTTP \(status)): \(AgentCommand.detail(data))")
            }
            let file = [0xBA, 0xDC, 0xC0, 0xDE, 0, 0, 0, 1] + Array(blob) + Array(secretBlob)
            let secret: [UInt8]
            do { secret = try device.activate(credentialFile: file, endorsement: endorsement) } catch {
                throw fail("TPM: the credential did not activate: \(error)")
            }
            let activation = try JSONSerialization.data(withJSONObject: ["challenge": challenge, "secret": Data(secret).base64EncodedString()])
            let (status2, data2) = try await AgentCommand.post(base.appendingPathComponent("device/enrol/activate"), body: activation, headers: [:])
            guard status2 == 201, let result = try? JSONSerialization.jsonObject(with: data2) as? [String: Any],
                  let deviceID = result["device_id"] as? String, let certificate = result["certificate"] as? String,
                  let ca = result["ca_certificate"] as? String, DeviceID.validated(deviceID) != nil,
                  (try? Certificate(pemEncoded: certificate))?.publicKey == csr.publicKey
            else {
                throw fail("activation refused (HTTP \(status2)): \(AgentCommand.detail(data2))")
            }
            try AgentCommand.write(certificate, to: (keyDir as NSString).appendingPathComponent("device.pem"), mode: 0o644)
            try AgentCommand.write(ca, to: (keyDir as NSString).appendingPathComponent("ca.pem"), mode: 0o644)
            let state = String(decoding: try JSONEncoder().encode(State(deviceID: deviceID, server: base.absoluteString, keyStore: "tpm",
                                                                        tcti: device.tcti)), as: UTF8.self)
            try AgentCommand.write(state, to: (keyDir as NSString).appendingPathComponent("device.json"), mode: 0o644)
            print("enrolled device \(deviceID) (hardware-bound: key in the TPM)")
        }
    }

    public struct Report: AsyncParsableCommand {
        public init() {}
        public static let configuration = CommandConfiguration(
            abstract: "Send a signed posture report: fetch a nonce, sign the posture with the device key, print the verdict.",
            discussion: "Exit status: 0 compliant, 3 non-compliant, 1 refused or failed.")
        @Option(help: "The portal's URL (default: the one enrolled with).") var server: String?
        @Option(help: "The enrolled key directory.") var keyDir: String
        @Option(help: "Posture JSON (os, kernel, pending_security_updates, disk_encryption, firewall, screen_lock, edr, packages); without it this machine is measured.")
        var posture: String?

        public func run() async throws {
            let dir = keyDir as NSString
            guard let stateData = FileManager.default.contents(atPath: dir.appendingPathComponent("device.json")),
                  let state = try? JSONDecoder().decode(State.self, from: stateData),
                  let certText = try? String(contentsOfFile: dir.appendingPathComponent("device.pem"), encoding: .utf8),
                  (try? Certificate(pemEncoded: certText)) != nil else {
                throw ValidationError("\(keyDir) holds no enrolled device (menshen agent enrol first)")
            }
            // The report is signed where the key is: in the TPM (tpm2_sign), or with the software key.
            let sign: ([UInt8]) throws -> [UInt8]
            if state.keyStore == "tpm" {
                let device = try AgentTPM(tcti: state.tcti, keyDir: keyDir)
                sign = { bytes in
                    defer { device.close() }
                    return try device.sign(digest: Array(SHA256.hash(data: bytes)))
                }
            } else {
                guard let keyText = try? String(contentsOfFile: dir.appendingPathComponent("device.key"), encoding: .utf8) else {
                    throw ValidationError("\(keyDir) holds no device key")
                }
                let key = try P256.Signing.PrivateKey(pemRepresentation: keyText)
                sign = { bytes in Array(try key.signature(for: bytes).derRepresentation) }
            }
            let base = try AgentCommand.baseURL(server ?? state.server)
            let limit = PostureLimits().maxReportBytes
            var fields: [String: Any]
            if let posture {
                guard let raw = FileManager.default.contents(atPath: posture), raw.count <= limit,
                      let object = try? JSONSerialization.jsonObject(with: raw) as? [String: Any] else {
                    throw ValidationError("\(posture): not a JSON object of at most \(limit) bytes")
                }
                fields = object
            } else {   // No file: measure this machine (LinuxPostureCollector).
                let collected = try LinuxPostureCollector().collect().report(deviceID: DeviceID(state.deviceID), nonce: "", collectedAt: Date())
                fields = (try JSONSerialization.jsonObject(with: Data(try collected.jsonBytes())) as? [String: Any]) ?? [:]
            }

            let (nonceStatus, nonceData) = try await AgentCommand.post(
                base.appendingPathComponent("device/posture/nonce"), body: try JSONSerialization.data(withJSONObject: ["device_id": state.deviceID]), headers: [:])
            guard nonceStatus == 200, let nonce = (try? JSONSerialization.jsonObject(with: nonceData) as? [String: Any])?["nonce"] as? String else {
                FileHandle.standardError.write(Data("menshen: error: no nonce (HTTP \(nonceStatus)): \(AgentCommand.detail(nonceData))\n".utf8))
                throw ExitCode(1)
            }
            fields["format"] = PostureReport.currentFormat
            fields["device_id"] = state.deviceID
            fields["nonce"] = nonce
            fields["collected_at"] = ISO8601DateFormatter().string(from: Date())
            let reportBytes = Array(try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]))
            let envelopeValue = PostureEnvelope(report: Base64URL.encode(reportBytes), signature: Base64URL.encode(try sign(reportBytes)))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let envelope = Array(try encoder.encode(envelopeValue))
            // The certificate's DER in base64 is the body of its PEM.
            let certificateBase64 = certText.split(whereSeparator: \.isNewline).filter { !$0.hasPrefix("-----") }.joined()
            let (status, data) = try await AgentCommand.post(base.appendingPathComponent("device/posture"), body: Data(envelope),
                                                             headers: ["X-Menshen-Device-Certificate": certificateBase64])
            guard status == 200, let verdict = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let compliant = verdict["compliant"] as? Bool else {
                FileHandle.standardError.write(Data("menshen: error: report refused (HTTP \(status)): \(AgentCommand.detail(data))\n".utf8))
                throw ExitCode(1)
            }
            let reasons = (verdict["reasons"] as? [String]) ?? []
            print(compliant ? "compliant" : "non-compliant: \(reasons.joined(separator: ", "))")
            if !compliant { throw ExitCode(3) }
        }
    }

    public struct Renew: AsyncParsableCommand {
        public init() {}
        public static let configuration = CommandConfiguration(
            abstract: "Renew the device certificate before it expires (same key, or --new-key); the server revokes the old one. 更新裝置憑證。",
            discussion: "Run it well before the certificate's end (they live 24 h), e.g. every 8 hours. Exit status: 0 renewed, 1 refused or failed.")
        @Option(help: "The portal's URL (default: the one enrolled with).") var server: String?
        @Option(help: "The enrolled key directory.") var keyDir: String
        @Flag(help: "Make a new device key; the current key signs the request.") var newKey = false

        public func run() async throws {
            let dir = keyDir as NSString
            let keyPath = dir.appendingPathComponent("device.key"), certPath = dir.appendingPathComponent("device.pem")
            if let stateData = FileManager.default.contents(atPath: dir.appendingPathComponent("device.json")),
               let state = try? JSONDecoder().decode(State.self, from: stateData), state.keyStore == "tpm" {
                throw ValidationError("\(keyDir): the device key is in the TPM; renewing a TPM-held certificate is not built yet (enrol again with a new token)")
            }
            guard let stateData = FileManager.default.contents(atPath: dir.appendingPathComponent("device.json")),
                  let state = try? JSONDecoder().decode(State.self, from: stateData),
                  let keyText = try? String(contentsOfFile: keyPath, encoding: .utf8),
                  let certText = try? String(contentsOfFile: certPath, encoding: .utf8),
                  (try? Certificate(pemEncoded: certText)) != nil else {
                throw ValidationError("\(keyDir) holds no enrolled device (menshen agent enrol first)")
            }
            let key = try P256.Signing.PrivateKey(pemRepresentation: keyText)
            let base = try AgentCommand.baseURL(server ?? state.server)
            let next = newKey ? P256.Signing.PrivateKey() : key
            let csr = try CertificateSigningRequest(version: .v1, subject: try DistinguishedName { CommonName("menshen-agent") },
                                                    privateKey: Certificate.PrivateKey(next), attributes: CertificateSigningRequest.Attributes(),
                                                    signatureAlgorithm: .ecdsaWithSHA256)
            let csrPEM = try csr.serializeAsPEM().pemString
            let signature = try DeviceRenewal.sign(csr: Array(csrPEM.utf8), with: key)
            let body = try JSONSerialization.data(withJSONObject: ["csr": csrPEM, "signature": Base64URL.encode(signature)])
            let certificateBase64 = certText.split(whereSeparator: \.isNewline).filter { !$0.hasPrefix("-----") }.joined()
            let (status, data) = try await AgentCommand.post(base.appendingPathComponent("device/renew"), body: body,
                                                             headers: ["X-Menshen-Device-Certificate": certificateBase64])
            guard status == 200, let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let certificate = object["certificate"] as? String, object["device_id"] as? String == state.deviceID,
                  let issued = try? Certificate(pemEncoded: certificate), issued.publicKey == Certificate.PublicKey(next.publicKey)
            else {
                FileHandle.standardError.write(Data("menshen: error: renewal refused (HTTP \(status)): \(AgentCommand.detail(data))\n".utf8))
                throw ExitCode(1)
            }
            // The key first: a new certificate without its key would be useless, the old key with the old
            // certificate at least still names the device (the server has revoked that certificate).
            if newKey { try AgentCommand.write(next.pemRepresentation, to: keyPath, mode: 0o600) }
            try AgentCommand.write(certificate, to: certPath, mode: 0o644)
            print("renewed device \(state.deviceID): certificate valid until \(ISO8601DateFormatter().string(from: issued.notValidAfter))"
                  + (newKey ? " (new key)" : ""))
        }
    }
}
