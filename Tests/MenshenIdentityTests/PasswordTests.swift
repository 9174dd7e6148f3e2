import Crypto
import Testing
@testable import MenshenIdentity

@Suite("Passwords")
struct PasswordTests {
    let hasher = PasswordHasher(cost: 4)

    @Test("A hash verifies the same password and not another")
    func roundTrip() {
        let hash = hasher.hash("correct horse battery staple")
        #expect(hash.hasPrefix("bcrypt-sha256$$2"))
        #expect(hasher.verify("correct horse battery staple", against: hash) == .match)
        #expect(hasher.verify("correct horse battery stapler", against: hash) == .mismatch)
        #expect(hasher.hash("x1") != hasher.hash("x1"), "salted")
    }

    @Test("Passwords are NFKC-normalised before hashing")
    func normalisation() {
        // Full-width letters and a composed/decomposed é are the same password after NFKC.
        let hash = hasher.hash("ｐａｓｓｗｏｒｄ-caf\u{E9}-台北")
        #expect(hasher.verify("password-cafe\u{301}-台北", against: hash).isMatch)
    }

    @Test("Long Chinese passwords beyond bcrypt's 72 bytes are fully significant")
    func longPasswords() {
        let base = String(repeating: "我愛台灣", count: 16)  // 64 code points, 192 UTF-8 bytes
        let hash = hasher.hash(base + "甲")
        #expect(hasher.verify(base + "甲", against: hash).isMatch)
        #expect(!hasher.verify(base + "乙", against: hash).isMatch)
    }

    @Test("Malformed stored hashes are a mismatch, not a crash")
    func malformedHashes() {
        for stored in ["", "bcrypt-sha256$", "bcrypt-sha256$$2b$04$short", "$2b$04$" + String(repeating: "a", count: 53), "plain"] {
            #expect(hasher.verify("anything", against: stored) == .mismatch)
        }
    }

    @Test("A peppered hash verifies only with the same pepper")
    func pepper() {
        let key = SymmetricKey(data: Array(repeating: UInt8(7), count: 32))
        let peppered = PasswordHasher(cost: 4, pepper: key)
        let hash = peppered.hash("a strong enough passphrase")
        #expect(hash.hasPrefix("bcrypt-hmac-sha256$$2"))
        #expect(peppered.verify("a strong enough passphrase", against: hash) == .match)
        #expect(hasher.verify("a strong enough passphrase", against: hash) == .mismatch)
        #expect(PasswordHasher(cost: 4, pepper: SymmetricKey(data: Array(repeating: UInt8(8), count: 32))).verify("a strong enough passphrase", against: hash) == .mismatch)
        #expect(peppered.verify("a strong enough passphrase", against: hasher.hash("a strong enough passphrase")) == .mismatch)
    }

    @Test("A hash with a lower cost than configured asks for a re-hash")
    func rehash() {
        let old = PasswordHasher(cost: 4).hash("a strong enough passphrase")
        #expect(PasswordHasher(cost: 5).verify("a strong enough passphrase", against: old) == .matchNeedsRehash)
    }

    @Test("Length rules follow SP 800-63B for MFA and single-factor use")
    func lengthRules() {
        #expect(PasswordPolicy.withMultiFactor.problems(password: "Zx9!kq2") == [.tooShort(minimum: 8)])
        #expect(PasswordPolicy.withMultiFactor.problems(password: "Zx9!kq2m").isEmpty)
        #expect(PasswordPolicy.singleFactor.problems(password: "Zx9!kq2mTT") == [.tooShort(minimum: 15)])
        #expect(PasswordPolicy.singleFactor.problems(password: "tea kettle on the moon").isEmpty)
        // Code points, not bytes: eight Chinese characters are eight characters.
        #expect(PasswordPolicy.withMultiFactor.problems(password: "山高水長風清月明").isEmpty)
        #expect(PasswordPolicy.withMultiFactor.problems(password: String(repeating: "k", count: 63) + "j").isEmpty)
        #expect(PasswordPolicy.withMultiFactor.problems(password: String(repeating: "kj", count: 65)) == [.tooLong(maximum: 128)])
        #expect(PasswordPolicy(minimumLength: 4, maximumLength: 10).maximumLength == 64)
    }

    @Test("No composition rules: a long lowercase passphrase is fine")
    func noCompositionRules() {
        #expect(PasswordPolicy.withMultiFactor.problems(password: "lanternfishharbour").isEmpty)
    }

    @Test("Common passwords are refused, whatever the case or width")
    func blocklist() {
        #expect(PasswordBlocklist.all.count >= 300)
        for common in ["password", "Password1", "woaini1314", "qwe123456", "12345678", "1qaz2wsx", "iloveyou", "88888888",
                       "ＰＡＳＳＷＯＲＤ", "qwertyuiop", "taiwan2024", "zzzzzzzzz", "p@ssw0rd123", "0987654321"] {
            #expect(PasswordPolicy.withMultiFactor.problems(password: common).contains(.commonPassword), "\(common)")
        }
    }

    @Test("Passwords containing the user name are refused")
    func userName() {
        #expect(PasswordPolicy.withMultiFactor.problems(password: "xx-Alice.Chen-42", userName: "alice.chen") == [.containsUserName])
        #expect(PasswordPolicy.withMultiFactor.problems(password: "ab-mountain-river", userName: "ab").isEmpty)
        #expect(PasswordPolicy.withMultiFactor.problems(password: "menshen-bank-x9", otherContext: ["Menshen"]) == [.containsUserName])
    }
}
