import Foundation
import MenshenTestSupport
import Testing
@testable import MenshenIdentity

@Suite("TOTP enrolment")
struct TOTPEnrollmentTests {
    let start = Date(timeIntervalSince1970: 1_750_000_000)

    func begin() throws -> TOTPEnrollment {
        var generator = SeededGenerator(seed: 2026)
        return try TOTPEnrollment.begin(issuer: "臺灣銀行", accountName: "alice", at: start, using: &generator)
    }

    @Test("Enrolment is confirmed by the first valid code and the code cannot be used again to sign in")
    func confirmThenReplay() throws {
        let enrollment = try begin()
        #expect(enrollment.secret.bytes.count == 20)
        #expect(try enrollment.qrCode().version <= 10)
        let now = start.addingTimeInterval(40)
        let code = try #require(TOTPVerifier().code(secret: enrollment.secret, at: now))
        guard case .confirmed(let credential) = enrollment.confirm(code: code, at: now) else {
            Issue.record("not confirmed"); return
        }
        #expect(credential.verify(code: code, at: now) == .rejected(.replay))
        let later = now.addingTimeInterval(30)
        let next = try #require(TOTPVerifier().code(secret: enrollment.secret, at: later))
        guard case .accepted(let updated) = credential.verify(code: next, at: later) else {
            Issue.record("next code refused"); return
        }
        #expect(updated.lastAcceptedCounter == UInt64(later.timeIntervalSince1970) / 30)
        #expect(updated.verify(code: next, at: later) == .rejected(.replay))
    }

    @Test("A wrong code is rejected and an expired enrolment says so")
    func wrongAndExpired() throws {
        let enrollment = try begin()
        let wrong = TOTPVerifier().code(secret: enrollment.secret, at: start) == "000000" ? "111111" : "000000"
        #expect(enrollment.confirm(code: wrong, at: start) == .rejected(.invalidCode))
        let late = start.addingTimeInterval(601)
        let code = try #require(TOTPVerifier().code(secret: enrollment.secret, at: late))
        #expect(enrollment.confirm(code: code, at: late) == .expired)
    }
}
