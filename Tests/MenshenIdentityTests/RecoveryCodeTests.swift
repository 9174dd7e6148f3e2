import MenshenTestSupport
import Testing
@testable import MenshenIdentity

@Suite("Recovery codes")
struct RecoveryCodeTests {
    @Test("Ten grouped codes are generated from the unambiguous alphabet")
    func generation() {
        var generator = SeededGenerator(seed: 99)
        let (codes, stored) = RecoveryCodes.generate(using: &generator)
        #expect(codes.count == 10)
        #expect(Set(codes).count == 10)
        #expect(stored.remaining == 10)
        for code in codes {
            #expect(code.count == 11)
            #expect(Array(code)[5] == "-")
            #expect(code.allSatisfy { $0 == "-" || RecoveryCodes.alphabet.contains($0) })
            #expect(!code.contains("i") && !code.contains("l") && !code.contains("o") && !code.contains("u"))
        }
        var same = SeededGenerator(seed: 99)
        #expect(RecoveryCodes.generate(using: &same).codes == codes, "deterministic with an injected generator")
    }

    @Test("A code is accepted once and then consumed")
    func singleUse() throws {
        var generator = SeededGenerator(seed: 5)
        let (codes, stored) = RecoveryCodes.generate(count: 3, using: &generator)
        guard case .accepted(let remaining) = stored.redeem(codes[1]) else {
            Issue.record("valid code refused"); return
        }
        #expect(remaining.remaining == 2)
        #expect(remaining.redeem(codes[1]) == .rejected)
        #expect(remaining.redeem(codes[0]) != .rejected)
    }

    @Test("Input is forgiving about case, spacing and look-alike letters")
    func forgivingInput() {
        let stored = RecoveryCodeSet(hashes: [RecoveryCodes.hash(of: "01abc-defgh") ?? []])
        for input in ["01abc-defgh", "01ABCDEFGH", " ol abc defgh ", "OIABC-DEFGH"] {
            #expect(stored.redeem(input) != .rejected, "\(input)")
        }
        for input in ["01abc-defg", "01abc-defghj", "01abc-defgu", ""] {
            #expect(stored.redeem(input) == .rejected, "\(input)")
        }
    }

    @Test("Only hashes are stored")
    func onlyHashes() {
        var generator = SeededGenerator(seed: 8)
        let (codes, stored) = RecoveryCodes.generate(using: &generator)
        #expect(stored.hashes.allSatisfy { $0.count == 32 })
        let plain = codes.map { Array($0.utf8) }
        #expect(stored.hashes.allSatisfy { !plain.contains($0) })
    }
}
