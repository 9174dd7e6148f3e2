/// One factor that was verified during a sign-in.
public enum SignInFactor: Sendable, Hashable {
    /// A memorised secret (knowledge).
    case password
    /// A TOTP code (possession; replay-protected by `TOTPVerifier`).
    case totp
    /// A single-use recovery code (a look-up secret; possession).
    case recoveryCode
    /// A WebAuthn assertion. `userVerified` is the UV flag (a PIN or biometric
    /// unlocked the key: a second factor); `backupEligible` is BE — a
    /// backup-eligible (syncable) passkey is a software key (`swk`), a
    /// device-bound one is treated as hardware-bound (`hwk`).
    case webAuthn(userVerified: Bool, backupEligible: Bool)
}

/// The assurance reached by a sign-in, for the session, the policy engine
/// (Cedar context) and OIDC `acr`/`amr` claims.
public struct AssuranceOutcome: Sendable, Hashable {
    /// nil when nothing was verified (OIDC acr "0": below LoA1).
    public let levelOfAssurance: LevelOfAssurance?
    /// NIST AAL of the authentication alone (not capped by enrolment).
    public let authenticatorAssuranceLevel: AuthenticatorAssuranceLevel?
    /// RFC 8176 values, sorted.
    public let amr: [AuthenticationMethodReference]
    /// True when a WebAuthn factor (origin-bound, phishing-resistant) was used.
    public let phishingResistant: Bool
    /// OpenID EAP ACR value: "phrh" (phishing-resistant, hardware key), "phr"
    /// (phishing-resistant), or nil.
    public let eapACR: String?
}

/// Maps verified factors to ISO/IEC 29115 LoA, NIST AAL and `amr`
/// (standards.md §7), as a pure function.
///
/// Rules:
/// - factor groups: knowledge = password; possession = TOTP, recovery code,
///   WebAuthn key; a WebAuthn key with UV adds a second factor (the PIN or
///   biometric that unlocked it);
/// - password alone → LoA1/AAL1; one possession factor alone (TOTP, recovery
///   code, WebAuthn without UV) → LoA2/AAL1 (replay-protected single factor);
/// - two distinct factors → LoA3/AAL2;
/// - a hardware-bound WebAuthn key (`hwk`) plus a second factor (UV or
///   password) → LoA4/AAL3;
/// - the LoA is capped by `enrolmentLevel`, the lowest level reached in the
///   enrolment and credential-management phases (ISO/IEC 29115: the overall
///   LoA is the lowest of the phases). LoA4 needs in-person proofing and
///   controlled issuance, which only the caller knows.
public enum AssuranceEvaluator {
    public static func evaluate(factors: [SignInFactor], enrolmentLevel: LevelOfAssurance = .loa3) -> AssuranceOutcome {
        var amr = Set<AuthenticationMethodReference>()
        var knowledge = false
        var possession = false
        var unlockedKey = false
        var hardwareKey = false
        var phishingResistant = false
        for factor in factors {
            switch factor {
            case .password:
                knowledge = true
                amr.insert(.pwd)
            case .totp, .recoveryCode:
                // RFC 8176 has no look-up-secret value; a recovery code is a one-time password.
                possession = true
                amr.insert(.otp)
            case .webAuthn(let userVerified, let backupEligible):
                possession = true
                phishingResistant = true
                amr.insert(.user)
                if backupEligible {
                    amr.insert(.swk)
                } else {
                    amr.insert(.hwk)
                    hardwareKey = true
                }
                if userVerified { unlockedKey = true }
            }
        }
        let multiFactor = (knowledge && possession) || unlockedKey
        if multiFactor { amr.insert(.mfa) }

        let authenticationLevel: LevelOfAssurance?
        if hardwareKey && multiFactor {
            authenticationLevel = .loa4
        } else if multiFactor {
            authenticationLevel = .loa3
        } else if possession {
            authenticationLevel = .loa2
        } else if knowledge {
            authenticationLevel = .loa1
        } else {
            authenticationLevel = nil
        }
        let aal = authenticationLevel?.approximateAAL
        let loa = authenticationLevel.map { min($0, enrolmentLevel) }
        let acr: String?
        if phishingResistant && hardwareKey && multiFactor {
            acr = "phrh"
        } else if phishingResistant && multiFactor {
            acr = "phr"
        } else {
            acr = nil
        }
        return AssuranceOutcome(levelOfAssurance: loa, authenticatorAssuranceLevel: aal, amr: amr.sorted(),
                                phishingResistant: phishingResistant, eapACR: acr)
    }
}
