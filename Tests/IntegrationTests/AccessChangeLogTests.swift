@testable import MenshenServer
import MenshenStorage
import Testing

/// The gateway's shared log of whose access changed (what lets a session's remembered facts stand through changes to
/// other users' access): it answers only for ranges it has read completely, and "concerned" for anything else.
@Suite("Access change log")
struct AccessChangeLogTests {
    static func read(after: Int64, through: Int64, _ users: [String?], complete: Bool = true) -> AccessChanges {
        AccessChanges(after: after, through: through,
                      changes: users.enumerated().map { .init(generation: after + 1 + Int64($0.offset), userID: $0.element) }, complete: complete)
    }

    @Test("answers for ranges read completely: a change to the user, or one that may concern anyone, concerns; nothing is assumed outside")
    func answers() {
        var log = AccessChangeLog()
        #expect(log.unconcerned("amy", after: 0, through: 0) == nil, "nothing read yet")
        log.merge(Self.read(after: 10, through: 15, ["amy", "bob", nil, "bob", "amy"]))
        #expect(log.unconcerned("carol", after: 10, through: 12) == true)
        #expect(log.unconcerned("bob", after: 10, through: 12) == false)
        #expect(log.unconcerned("amy", after: 11, through: 12) == true)
        #expect(log.unconcerned("carol", after: 10, through: 13) == false, "generation 13 may concern anyone")
        #expect(log.unconcerned("carol", after: 13, through: 15) == true)
        #expect(log.unconcerned("amy", after: 13, through: 15) == false)
        #expect(log.unconcerned("carol", after: 15, through: 15) == true)
        #expect(log.unconcerned("carol", after: 9, through: 12) == false, "generation 10 was never read")
        #expect(log.unconcerned("carol", after: 14, through: 16) == nil, "not read that far")
    }

    @Test("an overlapping read adds only newer changes; a read after a gap, or an incomplete one, starts afresh; an older read changes nothing")
    func merges() {
        var log = AccessChangeLog()
        log.merge(Self.read(after: 10, through: 12, ["amy", "bob"]))
        log.merge(Self.read(after: 11, through: 14, ["bob", "dan", "erin"]))
        #expect(log.unconcerned("carol", after: 10, through: 14) == true)
        #expect(log.unconcerned("dan", after: 12, through: 14) == false)
        #expect(log.unconcerned("amy", after: 11, through: 14) == true, "amy's change 11 is not repeated past its place")
        log.merge(Self.read(after: 12, through: 13, [nil]))   // older than what is known: ignored
        #expect(log.unconcerned("carol", after: 12, through: 14) == true)

        log.merge(Self.read(after: 20, through: 22, ["amy", "amy"]))   // 15…20 were never read
        #expect(log.through == 22 && log.floor == 20)
        #expect(log.unconcerned("carol", after: 14, through: 22) == false)
        #expect(log.unconcerned("carol", after: 20, through: 22) == true)

        log.merge(Self.read(after: 22, through: 30, ["bob"], complete: false))   // the store no longer keeps them all
        #expect(log.through == 30 && log.floor == 30)
        #expect(log.unconcerned("carol", after: 22, through: 30) == false)
        #expect(log.unconcerned("carol", after: 30, through: 30) == true)

        // A read reaching further back than the log (a session remembered before the log's start) replaces it.
        log.merge(Self.read(after: 25, through: 31, ["amy", nil, "amy", "amy", "amy", "bob"]))
        #expect(log.floor == 25 && log.through == 31)
        #expect(log.unconcerned("carol", after: 25, through: 27) == false, "generation 27 may concern anyone")
        #expect(log.unconcerned("carol", after: 27, through: 31) == true)
        #expect(log.unconcerned("bob", after: 27, through: 31) == false)
    }

    @Test("keeps the last AccessChanges.kept changes: older ranges are no longer vouched for")
    func bounded() {
        var log = AccessChangeLog()
        let n = AccessChanges.kept + 5
        log.merge(Self.read(after: 0, through: Int64(n), Array(repeating: "bob", count: n)))
        #expect(log.floor == 5 && log.through == Int64(n))
        #expect(log.unconcerned("amy", after: 4, through: Int64(n)) == false)
        #expect(log.unconcerned("amy", after: 5, through: Int64(n)) == true)
    }
}
