import Testing
@testable import MenshenIdentity

@Suite("Assurance")
struct AssuranceTests {
    @Test("A password alone is LoA1 and AAL1 with amr pwd")
    func passwordOnly() {
        let outcome = AssuranceEvaluator.evaluate(factors: [.password])
        #expect(outcome.levelOfAssurance == .loa1)
        #expect(outcome.authenticatorAssuranceLevel == .aal1)
        #expect(outcome.amr == [.pwd])
        #expect(!outcome.phishingResistant)
    }

    @Test("A one-time code alone is a replay-protected single factor, LoA2")
    func otpOnly() {
        #expect(AssuranceEvaluator.evaluate(factors: [.totp]).levelOfAssurance == .loa2)
        #expect(AssuranceEvaluator.evaluate(factors: [.recoveryCode]).amr == [.otp])
    }

    @Test("Password plus TOTP is LoA3 and AAL2 with mfa, pwd and otp")
    func passwordAndTOTP() {
        let outcome = AssuranceEvaluator.evaluate(factors: [.password, .totp])
        #expect(outcome.levelOfAssurance == .loa3)
        #expect(outcome.authenticatorAssuranceLevel == .aal2)
        #expect(outcome.amr == [.mfa, .otp, .pwd])
        #expect(outcome.eapACR == nil)
    }

    @Test("A device-bound key with user verification is LoA4, AAL3 and phrh when enrolment allows")
    func hardwareKeyWithUV() {
        let outcome = AssuranceEvaluator.evaluate(factors: [.webAuthn(userVerified: true, backupEligible: false)], enrolmentLevel: .loa4)
        #expect(outcome.levelOfAssurance == .loa4)
        #expect(outcome.authenticatorAssuranceLevel == .aal3)
        #expect(outcome.amr == [.hwk, .mfa, .user])
        #expect(outcome.eapACR == "phrh")
        #expect(outcome.phishingResistant)
    }

    @Test("The enrolment phase caps the LoA but not the AAL")
    func enrolmentCap() {
        let outcome = AssuranceEvaluator.evaluate(factors: [.webAuthn(userVerified: true, backupEligible: false)], enrolmentLevel: .loa2)
        #expect(outcome.levelOfAssurance == .loa2)
        #expect(outcome.authenticatorAssuranceLevel == .aal3)
    }

    @Test("A synced passkey with user verification is LoA3, AAL2 and phr")
    func syncedPasskey() {
        let outcome = AssuranceEvaluator.evaluate(factors: [.webAuthn(userVerified: true, backupEligible: true)], enrolmentLevel: .loa4)
        #expect(outcome.levelOfAssurance == .loa3)
        #expect(outcome.amr == [.mfa, .swk, .user])
        #expect(outcome.eapACR == "phr")
    }

    @Test("A security key without UV is single factor, but with a password it reaches LoA4")
    func securityKeyWithoutUV() {
        #expect(AssuranceEvaluator.evaluate(factors: [.webAuthn(userVerified: false, backupEligible: false)], enrolmentLevel: .loa4).levelOfAssurance == .loa2)
        let outcome = AssuranceEvaluator.evaluate(factors: [.password, .webAuthn(userVerified: false, backupEligible: false)], enrolmentLevel: .loa4)
        #expect(outcome.levelOfAssurance == .loa4)
        #expect(outcome.amr == [.hwk, .mfa, .pwd, .user])
    }

    @Test("No verified factor means no level (acr 0)")
    func nothing() {
        let outcome = AssuranceEvaluator.evaluate(factors: [])
        #expect(outcome.levelOfAssurance == nil)
        #expect(outcome.authenticatorAssuranceLevel == nil)
        #expect(outcome.amr.isEmpty)
    }

    @Test("The LoA to AAL mapping follows the standards table")
    func mapping() {
        #expect(LevelOfAssurance.allCases.map(\.approximateAAL) == [.aal1, .aal1, .aal2, .aal3])
    }
}
