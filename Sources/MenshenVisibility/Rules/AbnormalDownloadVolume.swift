import Foundation

/// T1530 Data from Cloud Storage / T1567 Exfiltration Over Web Service: a
/// user's download volume today far above their baseline. Volume is counted
/// in requests (an allowed read counts 1, an allowed export 10), because our
/// decision events carry no byte counts. Fires when today's volume exceeds
/// max(``DetectionConfiguration/minimumAbnormalVolume``, mean + 3 σ, 3 × mean)
/// of the user's completed days, once at least
/// ``DetectionConfiguration/minimumVolumeDays`` days are known; once per user per day.
/// Swift, because it compares with the user's own history.
public struct AbnormalDownloadVolumeDetector: BehaviourDetector {
    public let metadata = BuiltInRules.metadata(
        id: "e1035cc1-5a65-4ac8-8407-366a9c58ff41", title: "Abnormal download volume for a user", level: .high,
        tags: ["attack.collection", "attack.t1530", "attack.exfiltration", "attack.t1567"],
        description: "A user's reads and exports today far above their daily baseline.")

    private var firedDay: [String: Int] = [:]

    public init() {}

    public mutating func observe(_ e: DetectionEvent, baselines: BaselineBook, configuration c: DetectionConfiguration) -> [DetectionFinding] {
        let units = downloadUnits(e)
        guard units > 0, let user = e.userName, let b = baselines[user] else { return [] }
        let day = c.dayIndex(e.time)
        guard firedDay[user] != day else { return [] }
        var rolled = b
        rolled.roll(to: day)
        let stats = rolled.volumeStatistics
        guard stats.days >= c.minimumVolumeDays else { return [] }
        let today = rolled.currentVolume + units
        let limit = max(Double(c.minimumAbnormalVolume), stats.mean + 3 * stats.deviation, 3 * stats.mean)
        guard Double(today) > limit else { return [] }
        if firedDay.count >= 10_000 { firedDay = firedDay.filter { $0.value == day } }
        firedDay[user] = day
        return [DetectionFinding(
            metadata: metadata, user: user, sourceIP: e.sourceIP, groupBy: ["volume": String(today), "limit": String(Int(limit))],
            evidence: [e.id], firstTime: e.time, lastTime: e.time,
            message: "\(metadata.title): \(user) reached \(today) today (reads + 10 × exports); usual \(Int(stats.mean.rounded())) "
                + "± \(Int(stats.deviation.rounded())) over \(stats.days) days, limit \(Int(limit))")]
    }
}
