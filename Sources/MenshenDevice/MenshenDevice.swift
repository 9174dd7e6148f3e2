/// # MenshenDevice
///
/// The device pillar's pure core (FSC zero-trust guideline, device principles
/// 2.1 inventory and unique identification, 2.2 compliance and vulnerability
/// management, 2.3 external devices, 2.4 device attributes in every
/// authorization decision):
///
/// - **Attestation/** — the device CA: a CA whose private key is sealed at
///   rest (AES-256-GCM under the caller's key-encryption key, bound to the CA
///   certificate), short-lived client certificates issued from verified
///   PKCS#10 requests, renewal for the same key, revocation by serial in a
///   value the caller stores, and the verifier the gateway runs on a
///   presented client certificate (a device id, or a precise refusal).
/// - **Posture/** — signed posture reports: the report format, its envelope,
///   the trust boundary `UnverifiedPostureReport` → `VerifiedPosture`
///   (signature by the device key, device id, freshness, single-use nonce
///   through the caller's `PostureNonceStore`).
/// - **Vulnerabilities/** — OSV advisories loaded from a local directory and
///   matched against installed packages, with severities as ordinals.
/// - **Versions/** — the Debian version order.
/// - **Compliance/** — per-class baselines (managed, BYOD, vendor), their
///   evaluation with machine-readable reasons, and the policy engine's
///   `AccessRequest.Device` attributes.
///
/// **No I/O** except ``AdvisoryDatabase/load(directory:limits:)``, which reads
/// the directory its caller names. No storage, no network, no clock: time is
/// a parameter; randomness comes from an injected `RandomSource` (except key
/// generation inside swift-crypto). Verifiers return verdicts (`.accepted`,
/// `.refused(reason)`); errors are for malformed input and faults.
///
/// ## Written by hand, and why
/// None of the packages available to us (swift-crypto, swift-certificates,
/// swift-asn1, Foundation) does these, so they are written here from their
/// specifications:
/// - **Debian version order** (`DebianVersion`, Debian Policy §5.6.12),
///   checked against `dpkg --compare-versions` in the tests.
/// - **OSV parsing and matching** (`OSVAdvisory`, `AdvisoryDatabase`), from the
///   OSV schema 1.6 and its evaluation pseudocode, including Debian's and
///   Ubuntu's severity conventions, and the **CVSS v3 base score** (`CVSS3`)
///   to turn `severity[]` vectors into ratings.
/// - **The posture report format** (`PostureReport`, `PostureEnvelope`) —
///   Menshen's own wire format; the cryptography in it is swift-crypto's.
/// - **OS version order** for non-Debian systems (dotted numbers).
/// - **TPM 2.0 attestation** (`Attestation/TPM/`): `TPMT_PUBLIC` parsing and
///   the TPM Name (Part 2), KDFa/KDFe and `TPM2_MakeCredential` for ECC
///   endorsement keys (Part 1 §11.4.10, §24), checked against swtpm's
///   `TPM2_ActivateCredential`; AES-CFB, HMAC, ECDH and the hashes are swift-crypto's.
///
/// Everything cryptographic — ECDSA, AES-GCM, SHA-256, X.509 building,
/// parsing and RFC 5280 path validation, PKCS#10 — is swift-crypto and
/// swift-certificates.
public enum MenshenDevice {}
