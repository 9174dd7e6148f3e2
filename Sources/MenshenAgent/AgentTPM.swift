import Crypto
import Foundation
import MenshenDevice

/// The agent's TPM 2.0 side, through tpm2-tools run as subprocesses (TCTI from
/// `--tcti` or `TPM2TOOLS_TCTI`, e.g. `device:/dev/tpmrm0` or `swtpm:port=2321`):
///
/// - the device key: an ECC P-256 ECDSA signing key under the owner
///   hierarchy's ECC primary (re-derived from the TPM's seed each time, never
///   stored), with `fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign`:
///   it is generated inside the TPM and cannot be duplicated out of it. The key
///   directory keeps only `device.tpm.pub` (its public area) and
///   `device.tpm.priv` (its private area encrypted by the TPM's storage key,
///   useless anywhere else);
/// - signing: `tpm2_sign` over a SHA-256 digest (the CSR, each posture report);
/// - the endorsement key (EK) and its certificate from NV (TCG EK Credential
///   Profile: ECC P-256 at 0x01c0000a, ECC P-384 at 0x01c00016), the EK itself
///   re-created from the standard template with `tpm2_createek`;
/// - `tpm2_activatecredential` with the EK's policy (PolicySecret on the
///   endorsement hierarchy, ORed with PolicyC for the high-range templates).
///
/// Without a resource manager each object a tool loads stays in the TPM's few
/// slots, so every operation flushes transient objects before and after.
struct AgentTPM {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static let publicFile = "device.tpm.pub", privateFile = "device.tpm.priv"
    static let keyAttributes = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign"
    /// The EK certificate NV indices and `tpm2_createek -G` names, P-256 first.
    static let endorsementKinds: [(index: String, algorithm: String)] = [("0x01c0000a", "ecc"), ("0x01c00016", "ecc384")]
    /// TCG EK Credential Profile 2.5 §B.6: PolicyA (PolicySecret(TPM_RH_ENDORSEMENT)) and PolicyC per name algorithm.
    static let policyA: [String: String] = [
        "sha256": "837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa",
        "sha384": "8bbf2266537c171cb56e403c4dc1d4b64f432611dc386e6f532050c3278c930e143e8bb1133824ccb431053871c6db53",
    ]
    static let policyC: [String: String] = [
        "sha256": "3767e2edd43ff45a3a7e1eaefcef78643dca964632e7aad82c673a30d8633fde",
        "sha384": "d6032ce61f2fb3c240eb3cf6a33237ef2b6a16f4293c22b455e261cffd217ad5b4947c2d73e63005eed2dc2b3593d165",
    ]

    let tcti: String
    let keyDir: String
    /// Scratch files (saved contexts, digests); removed by ``close()``.
    let work: URL

    init(tcti: String?, keyDir: String) throws {
        guard let tcti = tcti ?? ProcessInfo.processInfo.environment["TPM2TOOLS_TCTI"], !tcti.isEmpty else {
            throw Failure(description: "no TPM: give --tcti (e.g. device:/dev/tpmrm0) or set TPM2TOOLS_TCTI")
        }
        self.tcti = tcti
        self.keyDir = keyDir
        work = FileManager.default.temporaryDirectory.appendingPathComponent("menshen-agent-tpm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    func close() { try? FileManager.default.removeItem(at: work) }

    func path(_ name: String) -> String { work.appendingPathComponent(name).path }
    var publicPath: String { (keyDir as NSString).appendingPathComponent(Self.publicFile) }
    var privatePath: String { (keyDir as NSString).appendingPathComponent(Self.privateFile) }

    /// Runs one tpm2-tools command; its stderr becomes the error.
    @discardableResult
    func run(_ tool: String, _ arguments: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["TPM2TOOLS_TCTI"] = tcti
        process.environment = environment
        // Output to files, not pipes: nothing can block on a full pipe.
        let outPath = path("stdout"), errPath = path("stderr")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath)), err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        defer { try? out.close(); try? err.close() }
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        let output = FileManager.default.contents(atPath: outPath) ?? Data()
        let errors = FileManager.default.contents(atPath: errPath) ?? Data()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: errors.prefix(2000), as: UTF8.self).split(whereSeparator: \.isNewline).suffix(3).joined(separator: " | ")
            throw Failure(description: "\(tool) failed (exit \(process.terminationStatus)): \(text)")
        }
        return output
    }

    func flush() { _ = try? run("tpm2_flushcontext", ["-t"]); _ = try? run("tpm2_flushcontext", ["-s"]) }

    private func primary() throws -> String {
        try run("tpm2_createprimary", ["-Q", "-C", "o", "-g", "sha256", "-G", "ecc256", "-c", path("primary.ctx")])
        return path("primary.ctx")
    }

    /// Creates the device key inside the TPM and keeps its public and (TPM-encrypted) private areas.
    func createKey() throws -> TPMECCPublicArea {
        flush()
        defer { flush() }
        let parent = try primary()
        try run("tpm2_create", ["-Q", "-C", parent, "-G", "ecc256:ecdsa-sha256", "-a", Self.keyAttributes, "-u", publicPath, "-r", privatePath])
        return try keyPublic()
    }

    func keyPublic() throws -> TPMECCPublicArea {
        guard let data = FileManager.default.contents(atPath: publicPath) else { throw Failure(description: "\(publicPath): missing") }
        return try TPMECCPublicArea.parse(Array(data), sized: true)
    }

    /// Loads the device key (the primary is re-derived) and returns its saved context.
    private func loadKey() throws -> String {
        let parent = try primary()
        try run("tpm2_load", ["-Q", "-C", parent, "-u", publicPath, "-r", privatePath, "-c", path("key.ctx")])
        _ = try? run("tpm2_flushcontext", ["-t"])
        return path("key.ctx")
    }

    /// An ECDSA P-256 signature (DER) by the TPM key over a SHA-256 digest.
    func sign(digest: [UInt8]) throws -> [UInt8] {
        flush()
        defer { flush() }
        let key = try loadKey()
        try Data(digest).write(to: URL(fileURLWithPath: path("digest.bin")))
        try run("tpm2_sign", ["-Q", "-c", key, "-g", "sha256", "-s", "ecdsa", "-f", "plain", "-d", "-o", path("signature.der"), path("digest.bin")])
        guard let signature = FileManager.default.contents(atPath: path("signature.der")) else { throw Failure(description: "tpm2_sign wrote no signature") }
        return Array(signature)
    }

    struct Endorsement {
        let certificateDER: [UInt8]
        let algorithm: String
        let publicArea: TPMECCPublicArea
    }

    /// The EK certificate from NV and the EK re-created from its template (its point must be the certificate's).
    func endorsement() throws -> Endorsement {
        flush()
        defer { flush() }
        for kind in Self.endorsementKinds {
            guard (try? run("tpm2_nvread", ["-Q", kind.index, "-o", path("ek.der")])) != nil,
                  let certificate = FileManager.default.contents(atPath: path("ek.der")) else { continue }
            try run("tpm2_createek", ["-G", kind.algorithm, "-c", path("ek.ctx"), "-u", path("ek.pub")])
            guard let ekPublic = FileManager.default.contents(atPath: path("ek.pub")) else { throw Failure(description: "tpm2_createek wrote no public area") }
            // The NV index may be sized larger than the certificate: keep only the DER's own length.
            let der = Array(certificate)
            return Endorsement(certificateDER: Self.derPrefix(der) ?? der, algorithm: kind.algorithm,
                               publicArea: try TPMECCPublicArea.parse(Array(ekPublic), sized: true))
        }
        throw Failure(description: "the TPM has no ECC endorsement key certificate (NV 0x01c0000a or 0x01c00016)")
    }

    /// The first DER element of `bytes` (a long-form SEQUENCE), or nil.
    static func derPrefix(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count >= 4, bytes[0] == 0x30 else { return nil }
        if bytes[1] < 0x80 { return Array(bytes.prefix(2 + Int(bytes[1]))) }
        let n = Int(bytes[1] & 0x7F)
        guard n >= 1, n <= 3, bytes.count >= 2 + n else { return nil }
        let length = bytes[2..<(2 + n)].reduce(0) { $0 << 8 | Int($1) }
        guard bytes.count >= 2 + n + length else { return nil }
        return Array(bytes.prefix(2 + n + length))
    }

    /// `tpm2_activatecredential`: the device key is the credentialed key, the EK the protector.
    func activate(credentialFile: [UInt8], endorsement: Endorsement) throws -> [UInt8] {
        flush()
        defer { flush() }
        let key = try loadKey()
        try run("tpm2_createek", ["-G", endorsement.algorithm, "-c", path("ek.ctx")])
        _ = try? run("tpm2_flushcontext", ["-t"])
        try Data(credentialFile).write(to: URL(fileURLWithPath: path("credential.bin")))
        let hash = endorsement.publicArea.nameAlg == 0x000C ? "sha384" : "sha256"
        try run("tpm2_startauthsession", ["-Q", "--policy-session", "-g", hash, "-S", path("session.ctx")])
        try run("tpm2_policysecret", ["-Q", "-S", path("session.ctx"), "-c", "e"])
        if let a = Self.policyA[hash], let c = Self.policyC[hash], let ab = Self.bytes(hex: a), let cb = Self.bytes(hex: c) {
            let zeros = [UInt8](repeating: 0, count: ab.count)
            let message = zeros + [0x00, 0x00, 0x01, 0x71] + ab + cb   // TPM_CC_PolicyOR
            let policyB = hash == "sha384" ? Array(SHA384.hash(data: message)) : Array(SHA256.hash(data: message))
            if endorsement.publicArea.authPolicy == policyB {
                try Data(ab).write(to: URL(fileURLWithPath: path("policyA.bin")))
                try Data(cb).write(to: URL(fileURLWithPath: path("policyC.bin")))
                try run("tpm2_policyor", ["-Q", "-S", path("session.ctx"), "-l", "\(hash):\(path("policyA.bin")),\(path("policyC.bin"))"])
            }
        }
        defer { _ = try? run("tpm2_flushcontext", [path("session.ctx")]) }
        try run("tpm2_activatecredential", ["-Q", "-c", key, "-C", path("ek.ctx"), "-i", path("credential.bin"), "-o", path("secret.bin"),
                                            "-P", "session:\(path("session.ctx"))"])
        guard let secret = FileManager.default.contents(atPath: path("secret.bin")) else { throw Failure(description: "no secret released") }
        return Array(secret)
    }

    static func bytes(hex: String) -> [UInt8]? {
        var out: [UInt8] = []
        var chars = Array(hex.utf8)[...]
        while chars.count >= 2 {
            guard let byte = UInt8(String(decoding: chars.prefix(2), as: UTF8.self), radix: 16) else { return nil }
            out.append(byte)
            chars = chars.dropFirst(2)
        }
        return chars.isEmpty ? out : nil
    }
}
