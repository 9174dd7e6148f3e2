import Foundation
import MenshenIdentity
import MenshenTestSupport
import Testing

/// The FuzzWebAuthn target's body on every CI run: random bytes and mutations
/// of valid registrations for each parser. It must return for every input
/// (a crash fails the whole test process), and valid input must still verify.
@Suite("Untrusted WebAuthn input (the fuzz entry point)")
struct UntrustedInputTests {
    @Test("random and mutated inputs to every parser return without crashing", arguments: SoftwareAuthenticator.Kind.allCases)
    func mutations(kind: SoftwareAuthenticator.Kind) throws {
        let authenticator = try SoftwareAuthenticator(kind: kind)
        let registration = try authenticator.register(rpID: "localhost", origin: "http://localhost:8080", challenge: Array(repeating: 7, count: 32))
        let verified = RegistrationVerifier(configuration: RelyingPartyConfiguration(rpID: "localhost", allowedOrigins: ["http://localhost:8080"]))
            .verify(registration, expectedChallenge: Array(repeating: 7, count: 32))
        guard case .success(let credential) = verified else { Issue.record("the unmutated registration must verify: \(verified)"); return }
        let seeds: [[UInt8]] = [registration.attestationObject, credential.publicKeyCOSE, registration.clientDataJSON,
                                Array(registration.attestationObject.suffix(from: 20))]
        var generator = SeededGenerator(seed: 0x5EED_0000 + UInt64(kind.rawValue.count))
        var exercised = 0
        for round in 0..<3000 {
            var input = seeds[round % seeds.count]
            switch round % 4 {
            case 0:   // flip bytes
                for _ in 0..<Int.random(in: 1...8, using: &generator) where !input.isEmpty {
                    input[Int.random(in: 0..<input.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
                }
            case 1:   // truncate
                input = Array(input.prefix(Int.random(in: 0...input.count, using: &generator)))
            case 2:   // insert
                let at = Int.random(in: 0...input.count, using: &generator)
                input.insert(contentsOf: (0..<Int.random(in: 1...16, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }, at: at)
            default:  // pure noise
                input = (0..<Int.random(in: 0...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            }
            for selector in UInt8(0)..<6 {
                UntrustedInputExercise.webAuthn([selector] + input)
                exercised += 1
            }
        }
        // Deep nesting and huge declared lengths must be refused by the limits, not the stack.
        UntrustedInputExercise.webAuthn([0] + Array(repeating: 0x81, count: 100_000))
        UntrustedInputExercise.webAuthn([0, 0x5B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(exercised == 18_000)
    }
}
