/// An ATT&CK tactic (`TA0006 Credential Access`).
public struct AttackTactic: Sendable, Hashable {
    public var uid: String
    public var name: String
    /// The Sigma tag spelling, e.g. `credential-access`.
    public var tag: String
}

/// An ATT&CK technique or sub-technique with the tactics it serves.
public struct AttackTechnique: Sendable, Hashable {
    /// `T1110.003`.
    public var uid: String
    /// `Password Spraying`.
    public var name: String
    /// For a sub-technique, its parent (`T1110 Brute Force`).
    public var parentUID: String?
    public var parentName: String?
    public var tactics: [AttackTactic]
}

/// The part of MITRE ATT&CK Enterprise (v18.1) our detections use: the
/// techniques a zero-trust gateway can see (standards.md §3). Tags naming a
/// technique outside this table still parse; the finding then carries the id
/// without a name.
public enum ATTACK {
    public static let tactics: [String: AttackTactic] = {
        let list = [
            AttackTactic(uid: "TA0001", name: "Initial Access", tag: "initial-access"),
            AttackTactic(uid: "TA0003", name: "Persistence", tag: "persistence"),
            AttackTactic(uid: "TA0004", name: "Privilege Escalation", tag: "privilege-escalation"),
            AttackTactic(uid: "TA0005", name: "Defense Evasion", tag: "defense-evasion"),
            AttackTactic(uid: "TA0006", name: "Credential Access", tag: "credential-access"),
            AttackTactic(uid: "TA0008", name: "Lateral Movement", tag: "lateral-movement"),
            AttackTactic(uid: "TA0009", name: "Collection", tag: "collection"),
            AttackTactic(uid: "TA0010", name: "Exfiltration", tag: "exfiltration"),
        ]
        return Dictionary(uniqueKeysWithValues: list.map { ($0.uid, $0) })
    }()

    /// Technique id → (name, tactic ids).
    static let table: [String: (name: String, tactics: [String])] = [
        "T1078": ("Valid Accounts", ["TA0001", "TA0003", "TA0004", "TA0005"]),
        "T1098": ("Account Manipulation", ["TA0003", "TA0004"]),
        "T1110": ("Brute Force", ["TA0006"]),
        "T1110.001": ("Password Guessing", ["TA0006"]),
        "T1110.003": ("Password Spraying", ["TA0006"]),
        "T1110.004": ("Credential Stuffing", ["TA0006"]),
        "T1133": ("External Remote Services", ["TA0001", "TA0003"]),
        "T1530": ("Data from Cloud Storage", ["TA0009"]),
        "T1539": ("Steal Web Session Cookie", ["TA0006"]),
        "T1550": ("Use Alternate Authentication Material", ["TA0005", "TA0008"]),
        "T1550.004": ("Web Session Cookie", ["TA0005", "TA0008"]),
        "T1556": ("Modify Authentication Process", ["TA0003", "TA0005", "TA0006"]),
        "T1556.006": ("Multi-Factor Authentication", ["TA0003", "TA0005", "TA0006"]),
        "T1567": ("Exfiltration Over Web Service", ["TA0010"]),
        "T1621": ("Multi-Factor Authentication Request Generation", ["TA0006"]),
    ]

    /// A technique by id (`T1110.003`, any case).
    public static func technique(_ rawID: String) -> AttackTechnique {
        let id = rawID.uppercased()
        let parent = id.split(separator: ".").first.map(String.init)
        let isSub = parent != id
        return AttackTechnique(
            uid: id, name: table[id]?.name ?? "",
            parentUID: isSub ? parent : nil, parentName: isSub ? parent.flatMap { table[$0]?.name } : nil,
            tactics: (table[id]?.tactics ?? []).compactMap { tactics[$0] })
    }

    /// The techniques in Sigma tags (`attack.t1110.003`). A rule's tactic tags
    /// (`attack.credential-access`), when present, narrow each technique's tactics to those tagged.
    public static func techniques(fromTags tags: [String]) -> [AttackTechnique] {
        var out: [AttackTechnique] = []
        var tagged: [AttackTactic] = []
        for tag in tags where tag.hasPrefix("attack.") {
            let rest = String(tag.dropFirst("attack.".count))
            if rest.first == "t", rest.dropFirst().first?.isNumber == true {
                out.append(technique(rest))
            } else if let tactic = tactics.values.first(where: { $0.tag == rest || $0.tag.replacingOccurrences(of: "-", with: "_") == rest }) {
                tagged.append(tactic)
            }
        }
        if !tagged.isEmpty {
            // The rule's tactic tags narrow each technique's tactics (or supply them for one the table lacks).
            for i in out.indices {
                let narrowed = out[i].tactics.filter { t in tagged.contains(t) }
                out[i].tactics = !narrowed.isEmpty ? narrowed : out[i].tactics.isEmpty ? tagged.sorted { $0.uid < $1.uid } : out[i].tactics
            }
        }
        return out
    }
}
