/// One built-in Sigma rule file: its file name and YAML text.
public struct SigmaRuleFile: Sendable {
    public let name: String
    public let text: String
    public init(name: String, text: String) { self.name = name; self.text = text }
}

/// The registry of built-in detections: Sigma rule files where Sigma fits,
/// Swift detectors where it does not. Each lives in its own file in this
/// folder; adding one means one file, one test file and one line here.
public enum BuiltInRules {
    /// The built-in Sigma rule files.
    public static let sigmaFiles: [SigmaRuleFile] = [
        passwordGuessing,
        passwordSpraying,
        repeatedSecondFactorFailures,
        sessionTokenReuse,
        unmanagedDeviceAccess,
        mfaFactorRemovedAfterRiskySignIn,
    ]

    /// The built-in Sigma rules, loaded and checked.
    public static func ruleSet() throws(VisibilityError) -> SigmaRuleSet {
        try SigmaRuleSet.load(files: sigmaFiles.map { ($0.name, $0.text) })
    }

    /// The built-in Swift detectors, with empty state.
    public static func detectors() -> [any BehaviourDetector] {
        [
            CredentialStuffingDetector(),
            ImpossibleTravelDetector(),
            PrivilegedAccessOutsideHoursDetector(),
            AbnormalDownloadVolumeDetector(),
            DormantAccountDetector(),
        ]
    }

    static func metadata(id: String, title: String, level: SigmaLevel, tags: [String], description: String) -> RuleMetadata {
        RuleMetadata(file: "swift:\(title)", id: id, name: nil, title: title, status: .experimental, level: level, tags: tags,
                     description: description)
    }
}
