/// # MenshenIdentity
///
/// The identity pillar's pure building blocks (FSC zero-trust guideline, identity
/// principles 1.1 multi-factor authentication and 1.2 phishing-resistant MFA):
/// TOTP (RFC 6238), WebAuthn relying-party verification, password hashing and
/// policy (NIST SP 800-63B), single-use recovery codes, and the level of
/// assurance a sign-in reached (ISO/IEC 29115 / NIST AAL / RFC 8176 `amr`).
///
/// **This module does no I/O.** No HTTP, no database, no clock, no system
/// randomness inside a verifier: time arrives as a `Date` parameter and
/// randomness through an injected `RandomNumberGenerator`. Every verifier is a
/// function from values to a value (a verdict); it throws only for faults, and
/// "wrong code" or "bad signature" are verdicts, not exceptions. The caller
/// (the web layer) stores state such as the last accepted TOTP counter, the
/// WebAuthn sign count and the remaining recovery-code hashes.
///
/// SMS and e-mail one-time codes are deliberately absent (principle 1.2).
///
/// ## Hand-written parts, and why
/// - **CBOR decoder** (`CBOR/`): WebAuthn's attestation objects and COSE keys
///   are attacker-controlled CBOR. No package available to us decodes the
///   CTAP2 canonical subset strictly (definite lengths, shortest forms, no
///   duplicate keys) with limits on size, depth and item count, so we do.
/// - **QR encoder** (`QR/`): byte mode, error correction M, versions 1–20,
///   enough for an `otpauth://` URI; the output is a module matrix and a
///   script-free SVG, so enrolment pages keep a strict CSP.
/// - **WebAuthn verification** (`Authenticators/WebAuthn/`): the ceremony
///   checks of W3C WebAuthn L2/L3 §7, written against the spec; the
///   cryptography itself is swift-crypto and swift-certificates.
/// - **Base32** (RFC 4648, no padding) for TOTP secrets.
///
/// ## Public API for the web layer
/// - TOTP: `TOTPEnrollment.begin(issuer:accountName:at:using:)` → show
///   `qrCode().svg()` / `keyURI.uri` → `confirm(code:at:)` → store the
///   `TOTPCredential`; at sign-in `TOTPCredential.verify(code:at:)` and store
///   the `updated` credential (replay protection lives in its counter).
///   Lower level: `TOTPVerifier`, `HOTP`, `TOTPSecret`, `Base32`, `OTPAuthURI`.
/// - QR: `QRCode(text:)`, `.modules`/`.isDark(x:y:)`, `.svg()`.
/// - Passwords: `PasswordPolicy.withMultiFactor` / `.singleFactor`
///   `.problems(password:userName:)`; `PasswordHasher(cost:)` `.hash(_:)` /
///   `.verify(_:against:)` → `PasswordVerification`.
/// - Recovery codes: `RecoveryCodes.generate(count:using:)` → show codes once,
///   store `RecoveryCodeSet`; `RecoveryCodeSet.redeem(_:)` → store `remaining`.
/// - WebAuthn: `RelyingPartyConfiguration`; `RegistrationVerifier.verify(_:expectedChallenge:)`
///   → `Result<VerifiedCredential, WebAuthnError>` (store `StoredCredential(_:userHandle:)`);
///   optional `UnverifiedAttestationChain.validate(roots:at:)`;
///   `AuthenticationVerifier.verify(_:expectedChallenge:credential:allowCredentials:)`
///   → `Result<VerifiedAssertion, WebAuthnError>` (store `newSignCount`, `backupState`).
///   The caller generates challenges (≥ 16 random bytes, single use) and
///   checks that a new credential id is not registered yet.
/// - Assurance: `AssuranceEvaluator.evaluate(factors:enrolmentLevel:)` →
///   `AssuranceOutcome` (LoA, AAL, `amr`, EAP `acr`).
/// - CBOR: `CBORDecoder` (strict, limited) for any other CTAP2 input.
///
/// Everything cryptographic (HMAC, SHA-2, ECDSA, Ed25519, RSA, bcrypt, X.509)
/// comes from swift-crypto, swift-certificates and HummingbirdBcrypt.
public enum MenshenIdentity {}
