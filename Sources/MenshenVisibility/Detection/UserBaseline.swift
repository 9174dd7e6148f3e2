import Foundation
import MenshenCore

/// Tunables of the engine, its baselines and its Swift detectors. Each default
/// is stated on its property.
public struct DetectionConfiguration: Sendable {
    /// The institution's time zone: business hours, usual hours and days are counted in it. Default Asia/Taipei.
    public var timeZone: TimeZone = TimeZone(identifier: "Asia/Taipei") ?? TimeZone(secondsFromGMT: 8 * 3600) ?? .gmt
    /// Business hours, `[start, end)` in whole hours. Default 08–19.
    public var businessHours: Range<Int> = 8..<19
    /// Business days, 1 = Sunday … 7 = Saturday (Foundation's numbering). Default Monday–Friday.
    public var businessDays: Set<Int> = [2, 3, 4, 5, 6]
    /// Role ids that make an access privileged. Default `admin`, `security-admin`, `dba`, `operator-admin`.
    public var privilegedRoles: Set<String> = ["admin", "security-admin", "dba", "operator-admin"]
    /// Resource classifications that make an access privileged. Default `restricted`.
    public var privilegedClassifications: Set<String> = ["restricted"]
    /// Most users with a baseline (least recently active evicted first). Default 50,000.
    public var maxUsers = 50_000
    /// Most groups per correlation rule (least recently updated evicted first). Default 10,000.
    public var maxGroupsPerCorrelation = 10_000
    /// A single-event rule fires at most once per rule, user and source within this time. Default 10 minutes.
    public var singleEventSuppression: TimeInterval = 600
    /// Days of inactivity after which a sign-in is a dormant account waking. Default 45.
    public var dormantDays = 45
    /// Activities with a known country before "new country" is judged. Default 5.
    public var minimumSignInsForPlaces = 5
    /// Activities (sign-ins and allowed accesses) before "unusual hour" is judged. Default 20.
    public var minimumActivitiesForHours = 20
    /// Days of volume history before a volume is judged abnormal. Default 7.
    public var minimumVolumeDays = 7
    /// Download volume never judged abnormal below this (units: reads + 10 × exports per day). Default 200.
    public var minimumAbnormalVolume = 200
    /// Speed above which two sign-ins are impossible travel, km/h. Default 900.
    public var impossibleSpeedKmh = 900.0
    /// Credential stuffing: window, failures, distinct users, distinct sources and failure ratio. Default 10 min, 30, 20, 5, 0.8.
    public var stuffingWindow: TimeInterval = 600
    public var stuffingFailures = 30
    public var stuffingUsers = 20
    public var stuffingSources = 5
    public var stuffingFailureRatio = 0.8

    public init() {}

    /// Hour of day (0–23) and weekday (1 = Sunday) of `date` in ``timeZone``.
    func hourAndWeekday(_ date: Date) -> (hour: Int, weekday: Int) {
        // From the zone's offset at that instant (as dayIndex does), not a Calendar per event: 1970-01-01 was a
        // Thursday (weekday 5, Sunday being 1).
        let local = (date.timeIntervalSince1970 + Double(timeZone.secondsFromGMT(for: date))).rounded(.down)
        let days = Int((local / 86_400).rounded(.down))
        let hour = Int(local - Double(days) * 86_400) / 3600
        let weekday = ((days + 4) % 7 + 7) % 7 + 1
        return (hour, weekday)
    }

    /// Days since 1970-01-01 in ``timeZone``.
    func dayIndex(_ date: Date) -> Int {
        let local = date.timeIntervalSince1970 + Double(timeZone.secondsFromGMT(for: date))
        return Int((local / 86_400).rounded(.down))
    }
}

/// What is usual for one user, learned from the events seen: the hours they
/// are active, the countries and network prefixes (/24 for IPv4, /48 for IPv6)
/// they sign in from, their daily download volume, and when they were last
/// active. Bounded: at most 64 countries and 256 prefixes (oldest dropped)
/// and 28 days of volume.
public struct UserBaseline: Sendable, Equatable {
    public var firstSeen: Date
    /// Last successful sign-in or allowed access.
    public var lastSeen: Date
    /// Activities per hour of day in the institution's time zone.
    public var hourCounts: [Int] = Array(repeating: 0, count: 24)
    public var countries: [String: Date] = [:]
    public var prefixes: [String: Date] = [:]
    public var successfulSignIns = 0
    /// Activities (sign-ins and allowed accesses) that named a country.
    public var activitiesWithCountry = 0
    /// Completed days' volumes, oldest first (at most 28), and today's running volume.
    public var dailyVolumes: [Int] = []
    public var currentDay: Int
    public var currentVolume = 0
    /// Last sign-in place with coordinates or a country.
    public var lastPlace: Place?

    public struct Place: Sendable, Equatable {
        public var time: Date
        public var country: String?
        public var latitude: Double?
        public var longitude: Double?
    }

    static let maxCountries = 64, maxPrefixes = 256, maxDays = 28

    init(at time: Date, day: Int) { firstSeen = time; lastSeen = time; currentDay = day }

    public var activities: Int { hourCounts.reduce(0, +) }

    /// Whether `hour` is one of the user's usual hours (at least 5 % of their activity), once enough is known.
    public func isUsualHour(_ hour: Int, minimum: Int) -> Bool? {
        let total = activities
        guard total >= minimum, (0..<24).contains(hour) else { return nil }
        return Double(hourCounts[hour]) >= 0.05 * Double(total)
    }

    /// Mean and standard deviation of completed days' volumes.
    public var volumeStatistics: (mean: Double, deviation: Double, days: Int) {
        guard !dailyVolumes.isEmpty else { return (0, 0, 0) }
        let n = Double(dailyVolumes.count)
        let mean = Double(dailyVolumes.reduce(0, +)) / n
        let variance = dailyVolumes.reduce(0.0) { $0 + pow(Double($1) - mean, 2) } / n
        return (mean, variance.squareRoot(), dailyVolumes.count)
    }

    /// Moves the volume counter to `day`, filling days without activity with 0.
    mutating func roll(to day: Int) {
        guard day > currentDay else { return }
        dailyVolumes.append(currentVolume)
        for _ in 0..<min(Self.maxDays, day - currentDay - 1) { dailyVolumes.append(0) }
        if dailyVolumes.count > Self.maxDays { dailyVolumes.removeFirst(dailyVolumes.count - Self.maxDays) }
        currentDay = day
        currentVolume = 0
    }

    /// The IPv4 /24 or IPv6 /48 prefix of an address (text), or `nil`.
    public static func prefix(of ip: String) -> String? {
        if let quick = quickIPv4Prefix(ip) { return quick }
        guard CIDR.isAddress(ip) else { return nil }
        if ip.utf8.contains(UInt8(ascii: ":")) { return CIDR(ip + "/48")?.description }
        return CIDR(ip + "/24")?.description
    }

    /// The /24 of a plain dotted-quad IPv4 address (four decimal octets, no
    /// leading zeros), without building a ``CIDR``: every event with a source
    /// asks. Anything else returns `nil` and takes the general route above.
    static func quickIPv4Prefix(_ ip: String) -> String? {
        var octets = 0, value = 0, digits = 0, thirdDotEnd = ip.utf8.startIndex
        var index = ip.utf8.startIndex
        for b in ip.utf8 {
            defer { index = ip.utf8.index(after: index) }
            if b == UInt8(ascii: ".") {
                guard digits > 0, octets < 3 else { return nil }
                octets += 1; value = 0; digits = 0
                if octets == 3 { thirdDotEnd = index }
                continue
            }
            guard b >= 0x30, b <= 0x39, !(digits == 1 && value == 0) else { return nil }
            value = value * 10 + Int(b - 0x30); digits += 1
            guard value <= 255 else { return nil }
        }
        guard octets == 3, digits > 0 else { return nil }
        return String(ip[..<thirdDotEnd]) + ".0/24"
    }
}

/// Where an event says its source is: OCSF `src_endpoint.location`
/// (`country`, `lat`, `long`), else the decision's `unmapped.decision.context.country`.
/// Our producers do not fill `src_endpoint.location` yet, and fill the
/// decision's country with an empty string.
struct EventPlace {
    var country: String?
    var latitude: Double?
    var longitude: Double?

    /// From the event's members (``DetectionEvent`` reads them once, at parse).
    init(country location: EventValue?, latitude lat: EventValue?, longitude long: EventValue?, decisionCountry: EventValue?) {
        let c = location?.stringValue ?? decisionCountry?.stringValue
        country = (c?.isEmpty ?? true) ? nil : c?.uppercased()
        latitude = lat?.numberValue
        longitude = long?.numberValue
        if let la = latitude, let lo = longitude, !(abs(la) <= 90 && abs(lo) <= 180) { latitude = nil; longitude = nil }
    }

    var hasCoordinates: Bool { latitude != nil && longitude != nil }
}

/// The volume an event adds to the user's day: an allowed read (6001 activity 2)
/// counts 1, an allowed export (activity 7, a bulk download) counts 10. Our
/// decision events carry no byte counts, so volume is measured in requests.
func downloadUnits(_ e: DetectionEvent) -> Int {
    guard e.isAllowedAccess else { return 0 }
    switch e.activityID { case 2: return 1; case 7: return 10; default: return 0 }
}

/// Every user's baseline, bounded to ``DetectionConfiguration/maxUsers``.
public struct BaselineBook: Sendable {
    public private(set) var users: [String: UserBaseline] = [:]
    let configuration: DetectionConfiguration

    init(configuration: DetectionConfiguration) { self.configuration = configuration }

    public subscript(user: String) -> UserBaseline? { users[user] }

    /// Learns from one event (after the detectors have judged it against the baseline as it was).
    mutating func learn(_ e: DetectionEvent) {
        guard let user = e.userName else { return }
        let active = e.isSuccessfulSignIn || e.isAllowedAccess
        guard active else { return }
        let day = configuration.dayIndex(e.time)
        if users[user] == nil {
            if users.count >= configuration.maxUsers { evict() }
            users[user] = UserBaseline(at: e.time, day: day)
        }
        guard var b = users[user] else { return }
        b.roll(to: day)
        b.lastSeen = max(b.lastSeen, e.time)
        b.hourCounts[configuration.hourAndWeekday(e.time).hour] += 1
        b.currentVolume += downloadUnits(e)
        if let p = e.sourcePrefix {
            b.prefixes[p] = e.time
            if b.prefixes.count > UserBaseline.maxPrefixes, let old = b.prefixes.min(by: { $0.value < $1.value }) { b.prefixes.removeValue(forKey: old.key) }
        }
        let place = e.place
        if let c = place.country {
            b.countries[c] = e.time
            if b.countries.count > UserBaseline.maxCountries, let old = b.countries.min(by: { $0.value < $1.value }) { b.countries.removeValue(forKey: old.key) }
        }
        if e.isSuccessfulSignIn { b.successfulSignIns += 1 }
        if place.country != nil { b.activitiesWithCountry += 1 }
        if place.country != nil || place.hasCoordinates {
            b.lastPlace = .init(time: e.time, country: place.country, latitude: place.latitude, longitude: place.longitude)
        }
        users[user] = b
    }

    /// Seeds a user's last activity from history the engine did not see (e.g. the store's last sign-in).
    mutating func seed(user: String, lastSeen: Date) {
        if users[user] == nil {
            if users.count >= configuration.maxUsers { evict() }
            users[user] = UserBaseline(at: lastSeen, day: configuration.dayIndex(lastSeen))
        }
        users[user]?.lastSeen = lastSeen
    }

    private mutating func evict() {
        let n = max(1, users.count / 10)
        for (k, _) in users.sorted(by: { $0.value.lastSeen < $1.value.lastSeen }).prefix(n) { users.removeValue(forKey: k) }
    }
}
