import Foundation

/// T1078 Valid Accounts: impossible travel, or a country new for the user.
///
/// Reads the place from OCSF `src_endpoint.location` (`country`, `lat`,
/// `long`), else the decision's `unmapped.decision.context.country`. Fires on
/// a successful sign-in or an allowed access when
/// - both this place and the user's last place have coordinates and the
///   speed between them exceeds ``DetectionConfiguration/impossibleSpeedKmh``
///   over more than 500 km (high); or
/// - without coordinates, the country differs from the last place's and less
///   than an hour has passed (high); or
/// - the country was never seen for the user, once the user has
///   ``DetectionConfiguration/minimumSignInsForPlaces`` activities with a country (medium).
/// Swift, because it compares an event with the user's history.
public struct ImpossibleTravelDetector: BehaviourDetector {
    public let metadata = BuiltInRules.metadata(
        id: "1710ce38-c659-497a-b81f-8e8177383472", title: "Impossible travel or new country for a user", level: .high,
        tags: ["attack.initial-access", "attack.persistence", "attack.privilege-escalation", "attack.defense-evasion", "attack.t1078"],
        description: "A sign-in from a place the user cannot have reached since the last one, or from a country never seen for the user.")

    public init() {}

    public mutating func observe(_ e: DetectionEvent, baselines: BaselineBook, configuration c: DetectionConfiguration) -> [DetectionFinding] {
        guard e.isSuccessfulSignIn || e.isAllowedAccess, let user = e.userName, let b = baselines[user] else { return [] }
        let here = e.place
        guard here.country != nil || here.hasCoordinates else { return [] }
        if let last = b.lastPlace, e.time >= last.time {
            let hours = e.time.timeIntervalSince(last.time) / 3600
            if let la1 = last.latitude, let lo1 = last.longitude, let la2 = here.latitude, let lo2 = here.longitude {
                let km = Self.distanceKm(la1, lo1, la2, lo2)
                let speed = hours > 0 ? km / hours : .infinity
                if km > 500, speed > c.impossibleSpeedKmh {
                    return [finding(e, user: user, level: .high, first: last.time,
                                    text: "\(Int(km)) km from \(last.country ?? "the last place") to \(here.country ?? "here") in \(Self.duration(hours)) (\(speed.isFinite ? "\(Int(speed)) km/h" : "no time"))")]
                }
            } else if let was = last.country, let now = here.country, was != now, hours < 1 {
                return [finding(e, user: user, level: .high, first: last.time, text: "from \(was) to \(now) in \(Self.duration(hours))")]
            }
        }
        if let country = here.country, b.activitiesWithCountry >= c.minimumSignInsForPlaces, b.countries[country] == nil {
            let known = b.countries.keys.sorted().joined(separator: ", ")
            return [finding(e, user: user, level: .medium, first: e.time, text: "first activity from \(country) (known: \(known))")]
        }
        return []
    }

    private func finding(_ e: DetectionEvent, user: String, level: SigmaLevel, first: Date, text: String) -> DetectionFinding {
        var m = metadata
        m.level = level
        return DetectionFinding(metadata: m, user: user, sourceIP: e.sourceIP, evidence: [e.id], firstTime: first, lastTime: e.time,
                                message: "\(m.title): \(user) \(text)")
    }

    static func duration(_ hours: Double) -> String {
        hours < 1 ? "\(Int((hours * 60).rounded())) minutes" : String(format: "%.1f hours", hours)
    }

    /// Great-circle distance (haversine, mean Earth radius 6371 km).
    static func distanceKm(_ lat1: Double, _ lon1: Double, _ lat2: Double, _ lon2: Double) -> Double {
        let r = Double.pi / 180
        let dLat = (lat2 - lat1) * r, dLon = (lon2 - lon1) * r
        let a = pow(sin(dLat / 2), 2) + cos(lat1 * r) * cos(lat2 * r) * pow(sin(dLon / 2), 2)
        return 2 * 6371 * asin(min(1, a.squareRoot()))
    }
}
