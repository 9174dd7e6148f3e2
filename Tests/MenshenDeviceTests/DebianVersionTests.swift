import Foundation
import MenshenTestSupport
import Testing
@testable import MenshenDevice

@Suite("Debian version order")
struct DebianVersionTests {
    // MARK: Generated versions, valid by construction (Debian Policy §5.6.12)

    struct Parts {
        var epoch: String?
        var upstream: String
        var revision: String?
        var text: String {
            (epoch.map { $0 + ":" } ?? "") + upstream + (revision.map { "-" + $0 } ?? "")
        }
    }

    static func pick<T>(_ items: [T], _ g: inout SeededGenerator) -> T {
        items[Int.random(in: 0..<items.count, using: &g)]
    }

    static func digits(_ g: inout SeededGenerator) -> String {
        switch Int.random(in: 0..<10, using: &g) {
        case 0: return "0" + String(Int.random(in: 0..<10, using: &g))
        case 1: return String((0..<Int.random(in: 20...40, using: &g)).map { _ in pick(Array("0123456789"), &g) })
        default: return String(Int.random(in: 0..<20, using: &g))
        }
    }

    static func tail(_ g: inout SeededGenerator, allowHyphen: Bool) -> String {
        var s = ""
        for _ in 0..<Int.random(in: 0...5, using: &g) {
            switch Int.random(in: 0..<9, using: &g) {
            case 0, 1: s += "." + digits(&g)
            case 2: s += "~" + pick(["rc", "beta", "", "~", "pre"], &g) + digits(&g)
            case 3: s += "+" + pick(["dfsg", "deb12u", "b", "really", "ds"], &g)
            case 4: s += pick(["a", "b", "z", "A", "Z", "p"], &g)
            case 5: s += digits(&g)
            case 6: s += allowHyphen ? "-" + digits(&g) : "." + digits(&g)
            case 7: s += pick([".", "+", "~"], &g)
            default: s += pick(["ubuntu", "deb", "bpo", "build"], &g) + digits(&g)
            }
        }
        return s
    }

    static func randomParts(_ g: inout SeededGenerator) -> Parts {
        let hasRevision = Bool.random(using: &g)
        let epoch: String? = Int.random(in: 0..<10, using: &g) < 6 ? nil : pick(["0", "1", "2", "10", "01", "2147483647"], &g)
        let upstream = String(Int.random(in: 0..<12, using: &g)) + tail(&g, allowHyphen: hasRevision)
        var revision: String? = nil
        if hasRevision {
            revision = pick(["", "0", "1", "2", "10", "0."], &g) + tail(&g, allowHyphen: false)
            if revision == "" { revision = "1" }
        }
        return Parts(epoch: epoch, upstream: upstream, revision: revision)
    }

    /// A close neighbour of `p`, so that many pairs differ only in a detail.
    static func mutate(_ p: Parts, _ g: inout SeededGenerator) -> Parts {
        var q = p
        switch Int.random(in: 0..<11, using: &g) {
        case 0: q.upstream += "~" + pick(["rc1", "", "~", "1"], &g)
        case 1: q.upstream += "+" + pick(["dfsg", "b1", "1", ""], &g)
        case 2: q.upstream += ".0"
        case 3: q.revision = q.revision == nil ? pick(["0", "1", "1~bpo1", "0.1"], &g) : nil
        case 4: q.revision = (q.revision ?? "1") + pick([".1", "~1", "+b1", "a", "0"], &g)
        case 5: q.epoch = q.epoch == nil ? pick(["0", "1"], &g) : nil
        case 6: q.upstream = q.upstream.replacingOccurrences(of: ".", with: ".0")
        case 7: q.upstream += pick(["a", "A", "z", "."], &g)
        case 8:
            // Bump or lower one digit.
            var chars = Array(q.upstream)
            if let index = chars.indices.filter({ chars[$0].isNumber }).randomElement(using: &g) {
                chars[index] = pick(Array("0123456789"), &g)
            }
            q.upstream = String(chars)
        case 9: q.upstream = "0" + q.upstream
        default: q = randomParts(&g)
        }
        return q
    }

    static func generatedPairs(count: Int, seed: UInt64) -> [(String, String)] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            let a = randomParts(&g)
            let b = Int.random(in: 0..<4, using: &g) == 0 ? randomParts(&g) : mutate(a, &g)
            return Bool.random(using: &g) ? (a.text, b.text) : (b.text, a.text)
        }
    }

    static let handPicked: [(String, String)] = [
        ("1.0~rc1", "1.0"), ("1:0.9", "2.0"), ("1.0-1", "1.0-1.1"), ("1.0+dfsg", "1.0"), ("1.0+dfsg-1", "1.0-1"),
        ("1.0", "1.0-0"), ("1.0", "1.00"), ("0:1.0", "1.0"), ("1.0~~", "1.0~"), ("1.0~", "1.0"), ("1.0~~a", "1.0~"),
        ("1.0a", "1.0"), ("1.0a", "1.0+"), ("1.0.", "1.0a"), ("1.0-1~bpo1", "1.0-1"), ("2.36.1-8+deb11u1", "2.36.1-8"),
        ("1.2.3-1ubuntu1", "1.2.3-1"), ("1.0", "1.0.0"), ("1.01", "1.1"), ("1.001", "1.1"), ("10", "9"),
        ("1.123456789012345678901234567890", "1.123456789012345678901234567891"),
        ("99999999999999999999999999999999999999", "100000000000000000000000000000000000000"),
        ("1.0000000000000000000000000000000000001", "1.1"), ("2147483647:1", "2147483646:9"),
        ("1.0-1", "1.0-01"), ("1.0-a", "1.0-1"), ("1.0-1+b1", "1.0-1.1"), ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12"),
        ("1:2.3", "1:2.3~"), ("3.0.11-1~deb12u2", "3.0.11-1"), ("1.0-1-1", "1.0-1"), ("1.0-1-1", "1.0-2"),
        ("1.a", "1.A"), ("1.Z", "1.a"), ("1+", "1."), ("1~a", "1~A"), ("0", "0~"), ("0", "0.0"),
    ]

    /// dpkg's verdict ("lt", "eq" or "gt") for each pair, in one shell process.
    static func dpkgVerdicts(_ pairs: [(String, String)]) throws -> [String] {
        let script = #"""
        while read -r a b; do
          if dpkg --compare-versions "$a" lt "$b"; then echo lt
          elif dpkg --compare-versions "$a" eq "$b"; then echo eq
          else echo gt; fi
        done
        """#
        let input = pairs.map { "\($0.0) \($0.1)\n" }.joined()
        let output = try Oracle.run(["sh", "-c", script], stdin: Data(input.utf8))
        #expect(output.status == 0, "\(output.stderr)")
        // dpkg warns on stderr about syntax it merely tolerates; our generated versions must not trigger that.
        #expect(!output.stderr.contains("bad syntax"), "\(output.stderr)")
        return output.stdout.split(separator: "\n").map(String.init)
    }

    static func verdict(_ a: String, _ b: String) throws -> String {
        let c = DebianVersion.compare(try DebianVersion(a), try DebianVersion(b))
        return c < 0 ? "lt" : c == 0 ? "eq" : "gt"
    }

    @Test("Generated pairs and hand-picked edge cases order exactly as dpkg --compare-versions orders them")
    func agreesWithDpkg() throws {
        if let message = Oracle.missing("dpkg") {
            if Oracle.isCI { Issue.record(Comment(rawValue: message)) }
            return
        }
        let pairs = Self.handPicked + Self.generatedPairs(count: 400, seed: 6) + Self.generatedPairs(count: 100, seed: 0xdeb1a)
        let expected = try Self.dpkgVerdicts(pairs)
        try #require(expected.count == pairs.count)
        var verdictCounts: [String: Int] = [:]
        for (pair, dpkg) in zip(pairs, expected) {
            let ours = try Self.verdict(pair.0, pair.1)
            #expect(ours == dpkg, "\(pair.0) vs \(pair.1): dpkg says \(dpkg), we say \(ours)")
            // The reverse comparison must be the mirror image.
            let mirrored = ["lt": "gt", "gt": "lt", "eq": "eq"][dpkg]
            #expect(try Self.verdict(pair.1, pair.0) == mirrored, "\(pair.1) vs \(pair.0)")
            verdictCounts[dpkg, default: 0] += 1
        }
        // The generator must exercise all three outcomes, or the cross-check proves little.
        #expect(verdictCounts["lt", default: 0] > 50 && verdictCounts["gt", default: 0] > 50 && verdictCounts["eq", default: 0] > 5,
                "\(verdictCounts)")
    }

    @Test("The orderings the issue names hold")
    func namedOrderings() throws {
        func v(_ s: String) throws -> DebianVersion { try DebianVersion(s) }
        #expect(try v("1.0~rc1") < v("1.0"))        // tilde sorts before the end
        #expect(try v("1:0.9") > v("2.0"))          // the epoch wins
        #expect(try v("1.0-1") < v("1.0-1.1"))      // revision compared by the same algorithm
        #expect(try v("1.0+dfsg") > v("1.0"))       // a non-letter after the end sorts later
        #expect(try v("1.0") == v("1.0-0"))         // absent revision is revision 0
        #expect(try v("1.0") == v("0:1.0"))         // absent epoch is epoch 0
        #expect(try v("1.0-1").revision == "1")
        #expect(try v("1.0").revision == "")
        #expect(try v("2:1.0-1-2").upstreamVersion == "1.0-1")  // the last hyphen starts the revision
        #expect(try v("2:1.0-1-2").epoch == 2)
    }

    @Test("Versions the order calls equal are equal and hash alike; description keeps the text")
    func equalityAndHashing() throws {
        let equalGroup = try ["1.0", "1.00", "0:1.0", "00:1.0", "1.0-0", "1.000-00"].map { try DebianVersion($0) }
        #expect(Set(equalGroup).count == 1)
        #expect(equalGroup.map(\.description) == ["1.0", "1.00", "0:1.0", "00:1.0", "1.0-0", "1.000-00"])
        let distinct = try ["1.0", "1.0.0", "1.0~", "1.0a", "1:1.0", "1.0-1"].map { try DebianVersion($0) }
        #expect(Set(distinct).count == distinct.count)
    }

    @Test("A digit run far longer than any integer type is compared without overflow")
    func hugeDigitRuns() throws {
        let long = String(repeating: "9", count: 200)
        let a = try DebianVersion("1." + long)
        let b = try DebianVersion("1.1" + String(repeating: "0", count: 200))
        #expect(a < b)
        #expect(try DebianVersion("1.000" + long) == a)
    }

    @Test("Strings that are not Debian versions are refused with the reason",
          arguments: [
            ("", DebianVersionError.Code.empty), (":1.0", .emptyEpoch), ("a:1.0", .epochNotNumber), ("-1:1.0", .epochNotNumber),
            ("2147483648:1.0", .epochTooBig), ("99999999999999999999999:1", .epochTooBig), ("1:", .emptyUpstreamVersion),
            ("-1", .emptyUpstreamVersion), ("1.0-", .emptyRevision), ("a1.0", .upstreamMustStartWithDigit),
            ("~1", .upstreamMustStartWithDigit), ("1.0_1", .invalidCharacterInUpstreamVersion), ("1 0", .invalidCharacterInUpstreamVersion),
            ("1:2:3", .invalidCharacterInUpstreamVersion), ("1.0-1_1", .invalidCharacterInRevision), ("1.0-1:1", .epochNotNumber),
            ("1.0-a-", .emptyRevision), ("1.0é", .nonASCII), (String(repeating: "1", count: 257), .tooLong), (" 1.0", .upstreamMustStartWithDigit),
            ("1.0\n", .invalidCharacterInUpstreamVersion),
          ])
    func invalid(text: String, code: DebianVersionError.Code) {
        #expect(throws: DebianVersionError(code)) { try DebianVersion(text) }
        #expect(!DebianVersion.isValid(text))
    }

    @Test("The invalid strings are also ones dpkg flags as bad syntax (error or warning)")
    func invalidAgreesWithDpkg() throws {
        if let message = Oracle.missing("dpkg") {
            if Oracle.isCI { Issue.record(Comment(rawValue: message)) }
            return
        }
        // Policy-invalid strings dpkg still knows: each draws "bad syntax" from dpkg.
        for text in [":1.0", "a:1.0", "2147483648:1.0", "1.0-", "a1.0", "1.0_1", "1.0-1_1", "1:"] {
            let output = try Oracle.run(["dpkg", "--compare-versions", text, "eq", "1"])
            #expect(output.stderr.contains("bad syntax"), "\(text): \(output.stderr)")
            #expect(!DebianVersion.isValid(text), "\(text)")
        }
    }
}
