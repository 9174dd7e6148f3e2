import Foundation

/// T1110.004 Credential Stuffing: many users failing from many sources with a
/// high failure ratio, across the whole service, within a window (default:
/// 30 failed password sign-ins, 20 distinct user names, 5 distinct sources,
/// at least 80 % of sign-ins failing, within 10 minutes). Swift, because a
/// Sigma correlation counts one thing per group and this needs three counts
/// and a ratio. Bounded: at most 20,000 sign-ins held; fires at most once per window.
public struct CredentialStuffingDetector: BehaviourDetector {
    public let metadata = BuiltInRules.metadata(
        id: "5b7ee4b4-210a-4a9e-8f9f-abc741e7cf8d", title: "Credential stuffing across many accounts", level: .high,
        tags: ["attack.credential-access", "attack.t1110.004"],
        description: "Many user names failing their password from many sources with a high failure ratio.")

    struct Attempt: Sendable { var time: Date; var user: String; var ip: String; var failed: Bool; var id: String }
    private var attempts: [Attempt] = []
    private var quietUntil: Date = .distantPast
    static let maxAttempts = 20_000

    public init() {}

    public mutating func observe(_ e: DetectionEvent, baselines: BaselineBook, configuration c: DetectionConfiguration) -> [DetectionFinding] {
        let passwordFailure = e.isFailedSignIn && e.values(Self.factorPath).contains("pwd")
        guard passwordFailure || e.isSuccessfulSignIn else { return [] }
        attempts.append(Attempt(time: e.time, user: e.userName ?? "", ip: e.sourceIP ?? "", failed: passwordFailure, id: e.id))
        let horizon = e.time.addingTimeInterval(-c.stuffingWindow)
        if let firstInside = attempts.firstIndex(where: { $0.time >= horizon }), firstInside > 0 { attempts.removeFirst(firstInside) }
        if attempts.count > Self.maxAttempts { attempts.removeFirst(attempts.count - Self.maxAttempts) }
        guard passwordFailure, e.time >= quietUntil else { return [] }
        let failures = attempts.filter(\.failed)
        guard failures.count >= c.stuffingFailures else { return [] }
        let users = Set(failures.map(\.user)).count
        let sources = Set(failures.map(\.ip).filter { !$0.isEmpty }).count
        let ratio = Double(failures.count) / Double(attempts.count)
        guard users >= c.stuffingUsers, sources >= c.stuffingSources, ratio >= c.stuffingFailureRatio else { return [] }
        quietUntil = e.time.addingTimeInterval(c.stuffingWindow)
        let first = failures.first?.time ?? e.time
        let evidence = failures.suffix(32).map(\.id)
        attempts.removeAll()
        return [DetectionFinding(
            metadata: metadata, user: nil, sourceIP: nil,
            groupBy: ["failures": String(failures.count), "users": String(users), "sources": String(sources)],
            evidence: evidence, firstTime: first, lastTime: e.time,
            message: "\(metadata.title): \(failures.count) failed passwords for \(users) user names from \(sources) sources, "
                + "\(Int((ratio * 100).rounded())) % of sign-ins failing, within \(Int(c.stuffingWindow / 60)) minutes")]
    }

    public var fieldsRead: [FieldPath] { [Self.factorPath] }

    static let factorPath: FieldPath = {
        // A literal path: parsing it cannot fail.
        (try? FieldPath("auth_factors.factor_type")) ?? FieldPath.unchecked(["auth_factors", "factor_type"])
    }()
}
