import Foundation
import MenshenCore
import MenshenIdentity
import MenshenPolicyAdministrator
import MenshenStorage
import MenshenStorageSQLite

/// A service over a fresh store, with a clock the test moves.
struct World {
    let store: any MenshenStore
    let clock: FixedClock
    let sessions: SessionManager
    let identity: IdentityService
    let directory: URL?

    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)

    /// `sqlite: true` runs on a real SQLite file (the embedded default).
    static func make(sqlite: Bool = false, settings: SessionSettings = SessionSettings(),
                     throttle: SignInThrottle.Settings = .init()) throws -> World {
        var directory: URL?
        let store: any MenshenStore
        if sqlite {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pa-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            store = try SQLiteStore(path: dir.appendingPathComponent("m.sqlite").path)
            directory = dir
        } else {
            store = InMemoryStore()
        }
        let clock = FixedClock(t0)
        let sessions = SessionManager(store: store, clock: clock, random: SystemRandomSource(), settings: settings)
        let rp = RelyingPartyConfiguration(rpID: "localhost", allowedOrigins: ["http://localhost:8080"])
        let identity = IdentityService(store: store, clock: clock, random: SystemRandomSource(),
                                       settings: IdentitySettings(issuer: "Menshen Bank", relyingParty: rp,
                                                                  secretBox: try SecretBox(keyBytes: SystemRandomSource().bytes(32)), bcryptCost: 4),
                                       sessions: sessions, throttle: SignInThrottle(settings: throttle))
        return World(store: store, clock: clock, sessions: sessions, identity: identity, directory: directory)
    }

    func cleanup() async {
        try? await store.close()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    @discardableResult
    func addUser(_ id: UserID, password: String? = "correct horse battery staple", disabled: Bool = false) async throws -> UserRecord {
        let user = UserRecord(id: id, displayName: "User \(id)", kind: .internal, disabled: disabled, createdAt: Self.t0)
        try await store.createUser(user)
        if let password {
            let problems = try await identity.setPassword(user: user, password: password, actor: "test")
            precondition(problems.isEmpty, "\(problems)")
        }
        return user
    }

    /// Events of one OCSF class, decoded.
    func events(class uid: Int) async throws -> [[String: Any]] {
        try await store.events(after: 0, limit: 10_000).filter { $0.event.classUID == uid }.map {
            try JSONSerialization.jsonObject(with: Data($0.event.payloadJSON.utf8)) as! [String: Any]
        }
    }
}

/// The TOTP code of a stored secret at a time (what an authenticator app shows).
func totpCode(uri: String, at date: Date) throws -> String {
    let components = URLComponents(string: uri)!
    let secret = try TOTPSecret(base32: components.queryItems!.first { $0.name == "secret" }!.value!)
    return TOTPVerifier().code(secret: secret, at: date)!
}
