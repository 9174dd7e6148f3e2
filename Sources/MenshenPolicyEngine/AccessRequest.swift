import Foundation

/// Everything a decision is made from. Built by a transport adapter; all
/// fields are plain values so it can be logged as the decision's evidence.
public struct AccessRequest: Sendable, Equatable {
    public struct Principal: Sendable, Hashable {
        public var id: String
        public var kind: String
        public var disabled: Bool
        public var groups: [String]
        /// Role id and its risk tier (`standard`, `sensitive`, `privileged`).
        public var roles: [String: String]
        public init(id: String, kind: String = "internal", disabled: Bool = false, groups: [String] = [], roles: [String: String] = [:]) {
            self.id = id; self.kind = kind; self.disabled = disabled; self.groups = groups; self.roles = roles
        }
    }

    public struct Session: Sendable, Equatable {
        public var levelOfAssurance: Int
        public var amr: [String]
        public var factorAgeSeconds: Int
        public var ageSeconds: Int
        public init(levelOfAssurance: Int, amr: [String], factorAgeSeconds: Int, ageSeconds: Int) {
            self.levelOfAssurance = levelOfAssurance; self.amr = amr; self.factorAgeSeconds = factorAgeSeconds; self.ageSeconds = ageSeconds
        }
    }

    /// Device attributes; `nil` in ``AccessRequest/device`` means no device identity was presented.
    public struct Device: Sendable, Hashable {
        public var enrolled: Bool
        public var managed: Bool
        public var compliant: Bool
        public var hardwareBound: Bool
        public var external: Bool
        public var postureAgeSeconds: Int
        public var maxVulnerabilitySeverity: Int
        /// The device's recorded owner is the principal: a session cookie replayed from another enrolled device (or a
        /// shared device, which has no owner) does not count as the user's own device.
        public var ownedByPrincipal: Bool
        public init(enrolled: Bool, managed: Bool, compliant: Bool, hardwareBound: Bool, external: Bool,
                    postureAgeSeconds: Int, maxVulnerabilitySeverity: Int, ownedByPrincipal: Bool = false) {
            self.enrolled = enrolled; self.managed = managed; self.compliant = compliant; self.hardwareBound = hardwareBound
            self.external = external; self.postureAgeSeconds = postureAgeSeconds; self.maxVulnerabilitySeverity = maxVulnerabilitySeverity
            self.ownedByPrincipal = ownedByPrincipal
        }
    }

    public struct Context: Sendable, Equatable {
        public var time: Date
        /// IANA name of the institution's time zone (hour and weekday are computed in it).
        public var timeZone: String
        public var sourceIP: String
        public var networkZone: String
        public var country: String
        public var method: String
        public var path: String
        public var riskScore: Int
        public var grantActive: Bool
        public init(time: Date, timeZone: String = "Asia/Taipei", sourceIP: String, networkZone: String, country: String = "",
                    method: String, path: String, riskScore: Int = 0, grantActive: Bool = false) {
            self.time = time; self.timeZone = timeZone; self.sourceIP = sourceIP; self.networkZone = networkZone; self.country = country
            self.method = method; self.path = path; self.riskScore = riskScore; self.grantActive = grantActive
        }
    }

    public struct Resource: Sendable, Hashable {
        public var applicationID: String
        public var classification: String
        public var scenario: String
        public init(applicationID: String, classification: String, scenario: String = "") {
            self.applicationID = applicationID; self.classification = classification; self.scenario = scenario
        }
    }

    public var principal: Principal
    public var session: Session
    public var device: Device?
    public var context: Context
    public var resource: Resource
    /// `export` for bulk downloads; otherwise derived from the method.
    public var isExport: Bool

    public init(principal: Principal, session: Session, device: Device?, context: Context, resource: Resource, isExport: Bool = false) {
        self.principal = principal; self.session = session; self.device = device; self.context = context
        self.resource = resource; self.isExport = isExport
    }

    /// Methods that do not change state (RFC 9110 §9.2.1).
    public static let safeMethods: Set<String> = ["GET", "HEAD", "OPTIONS"]

    /// The Cedar action: `read`, `write` or `export`.
    public var action: String {
        if isExport { return "export" }
        return Self.safeMethods.contains(context.method.uppercased()) ? "read" : "write"
    }
}
