/// The Cedar schema of Menshen's entity model. Every policy an operator loads
/// is validated against it in strict mode, so a typo in an attribute name is
/// refused at load time instead of silently never matching.
public enum MenshenSchema {
    public static let text = """
        // Directory: users belong to groups and hold roles.
        entity Group;
        entity Role = {
          "tier": String,              // standard | sensitive | privileged
        };
        entity User in [Group, Role] = {
          "kind": String,              // internal | vendor | partner
          "disabled": Bool,
        };
        // Protected applications (routes of the enforcement point).
        entity Application = {
          "classification": String,    // e.g. public | internal | confidential | restricted
          "scenario": String,          // guideline high-risk scenario id, or ""
        };

        type Session = {
          "loa": Long,                 // ISO/IEC 29115 level of assurance, 1-4
          "amr": Set<String>,          // RFC 8176 authentication methods
          "factor_age_seconds": Long,  // since the most recent factor was proven
          "age_seconds": Long,         // since sign-in
        };
        type Device = {
          "known": Bool,               // a device identity was presented and verified
          "enrolled": Bool,
          "managed": Bool,
          "compliant": Bool,
          "hardware_bound": Bool,
          "external": Bool,
          "posture_age_seconds": Long,
          "max_vulnerability_severity": Long,   // 0 none, 1 low, 2 medium, 3 high, 4 critical
          "owned_by_principal": Bool,  // the device's recorded owner is the signed-in user (false: shared, or someone else's)
        };
        type Time = {
          "now": datetime,
          "hour": Long,                // 0-23 in the institution's time zone
          "weekday": Long,             // 1 Monday … 7 Sunday
        };
        type Network = {
          "ip": ipaddr,
          "zone": String,              // from configured CIDRs, e.g. branch | hq | vendor-jump | internet
          "country": String,           // ISO 3166 alpha-2, "" when unknown
        };
        type HTTPRequest = {
          "method": String,
          "path": String,
        };
        type Risk = {
          "score": Long,               // 0-100 from detections and behaviour
        };
        type Grant = {
          "active": Bool,              // a just-in-time grant covers this application now
        };
        type RequestContext = {
          "session": Session,
          "device": Device,
          "time": Time,
          "network": Network,
          "request": HTTPRequest,
          "risk": Risk,
          "grant": Grant,
        };

        // read: safe methods (GET, HEAD, OPTIONS); write: every other method; export: bulk download.
        action read, write, export appliesTo {
          principal: [User],
          resource: [Application],
          context: RequestContext,
        };
        """
}
