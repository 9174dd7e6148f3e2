import Foundation
import MenshenStorage

/// Turns a stored OCSF event into the syslog message a SIEM receives: an
/// RFC 5424 header (the event's time, a syslog severity from OCSF
/// `severity_id`, MSGID = the OCSF `class_uid`) with, optionally, one
/// structured-data element naming the event (`seq`, `id`, `class`, `hash`),
/// and as MSG either CEF (``CEFRecord``) or the stored OCSF JSON unchanged.
///
/// Pure: no I/O and no clock. A payload that is not a JSON object within
/// ``EventLimits`` still yields a message (CEF from the stored columns alone,
/// JSON as a small stub), so a bad event can never stop the export.
public struct SyslogEventFormatter: Sendable {
    /// What MSG carries.
    public enum Body: String, Sendable, CaseIterable {
        /// ArcSight CEF, mapped from the OCSF fields (see ``cef(_:)``).
        case cef
        /// The OCSF JSON as stored (the same bytes the hash chain covers).
        case json
    }

    public var body: Body
    /// RFC 5424 facility (default 13, log audit).
    public var facility: Int
    public var hostname: String
    public var appName: String
    public var procID: String
    /// The SD-ID of the structured-data element, or nil for none (`-`). Default `menshen@32473`
    /// (32473 is IANA's documentation enterprise number; Menshen has none of its own).
    public var structuredDataID: String?
    /// CEF device vendor, product and version.
    public var vendor: String
    public var product: String
    public var productVersion: String
    /// Largest SYSLOG-MSG in bytes (without the frame's length prefix), 2048…262144; RFC 5425 receivers must take 2048 and should take 8192.
    public var maxMessageBytes: Int

    /// Per-key caps (bytes, before escaping) for CEF extension values; the rest get ``defaultValueBytes``.
    public static let valueBytes: [String: Int] = ["msg": 1023, "reason": 1023, "request": 1023, "suser": 255, "duser": 255, "cs2": 128]
    public static let defaultValueBytes = 512
    public static let messageBytesRange = 2048...262_144

    public init(body: Body = .cef, facility: Int = 13, hostname: String, appName: String = "menshen", procID: String = "-",
                structuredDataID: String? = "menshen@32473", vendor: String = "Menshen", product: String = "Menshen",
                productVersion: String, maxMessageBytes: Int = 8192) {
        self.body = body; self.facility = facility; self.hostname = hostname; self.appName = appName; self.procID = procID
        self.structuredDataID = structuredDataID; self.vendor = vendor; self.product = product; self.productVersion = productVersion
        self.maxMessageBytes = min(max(maxMessageBytes, Self.messageBytesRange.lowerBound), Self.messageBytesRange.upperBound)
    }

    /// The SYSLOG-MSG for one stored event, at most ``maxMessageBytes`` bytes.
    public func message(_ stored: StoredEvent) -> SyslogMessage {
        let e = stored.event
        var sd: SyslogMessage.StructuredData?
        if let id = structuredDataID {
            sd = .init(id: id, parameters: [("seq", String(stored.sequence)), ("id", e.id.uuidString.lowercased()),
                                            ("class", String(e.classUID)), ("hash", stored.hash)])
        }
        var m = SyslogMessage(facility: facility, severity: Self.syslogSeverity(ocsf: e.severityID),
                              timeMillis: StoreCoding.millis(e.time), hostname: hostname, appName: appName, procID: procID,
                              msgID: String(e.classUID), structuredData: sd, message: [])
        let room = max(0, maxMessageBytes - m.headerBytes.count)
        switch body {
        case .cef:
            m.message = Array(cef(stored).text(maxBytes: room).utf8)
        case .json:
            let bytes = Array(e.payloadJSON.utf8)
            m.message = bytes.count <= room ? bytes : Array(jsonStub(stored).utf8.prefix(room))
        }
        return m
    }

    /// The octet-counted frame of ``message(_:)``.
    public func frame(_ stored: StoredEvent) -> [UInt8] { SyslogMessage.octetCountedFrame(message(stored).bytes) }

    /// The CEF record of an event. Header: class id = OCSF `type_uid` (else `class_uid`), name = `class_name` /
    /// `activity_name` (else "OCSF class N"), severity from `severity_id`. Extension, in this order:
    /// `rt` (event time, epoch ms), `externalId` (event id), `cat` (OCSF category/class), `act` (`activity_name`,
    /// or allowed/denied from `action_id`), `outcome` (`status`, or success/failure from `status_id`),
    /// `src`, `spt` (`src_endpoint.ip`/`port`), `suser`, `suid` (`actor.user` else `user`), `requestMethod`,
    /// `request` (`http_request`), `reason` (`status_detail`), `cn1` = sequence (label `menshenSequence`),
    /// `cs1` = OCSF class uid (label `ocsfClassUid`), `cs2` = chain hash (label `menshenEventHash`), `msg` (`message`).
    public func cef(_ stored: StoredEvent) -> CEFRecord {
        let e = stored.event
        let p: EventValue? = (try? EventValue.parse(e.payloadJSON)).flatMap { $0.objectValue == nil ? nil : $0 }
        func s(_ path: String) -> String? {
            guard let p, let f = try? FieldPath(path), let v = f.first(in: p)?.scalarText, !v.isEmpty else { return nil }
            return v
        }
        let classUID = p.flatMap { _ in s("class_uid") } ?? String(e.classUID)
        let typeUID = s("type_uid") ?? classUID
        let className = s("class_name") ?? Self.className(e.classUID)
        let activity = s("activity_name")
        let name = [className, activity].compactMap { $0 }.joined(separator: ": ")
        var ext: [(String, String?)] = [
            ("rt", String(StoreCoding.millis(e.time))),
            ("externalId", s("metadata.uid") ?? e.id.uuidString.lowercased()),
            ("cat", s("category_name") ?? className),
            ("act", activity ?? s("action") ?? s("action_id").flatMap(Self.action)),
            ("outcome", s("status") ?? s("status_id").flatMap(Self.outcome)),
            ("src", s("src_endpoint.ip")),
            ("spt", s("src_endpoint.port")),
            ("suser", s("actor.user.name") ?? s("user.name") ?? e.userID?.rawValue),
            ("suid", s("actor.user.uid") ?? s("user.uid")),
            ("requestMethod", s("http_request.http_method")),
            ("request", s("http_request.url.hostname").map { $0 + (s("http_request.url.path") ?? "") }),
            ("reason", s("status_detail")),
            ("cn1Label", "menshenSequence"), ("cn1", String(stored.sequence)),
            ("cs1Label", "ocsfClassUid"), ("cs1", classUID),
            ("cs2Label", "menshenEventHash"), ("cs2", stored.hash),
            ("msg", s("message") ?? s("finding_info.title")),
        ]
        ext = ext.filter { $0.1 != nil }
        // Header fields hold no line breaks: they are flattened here, so the record is exactly what goes on the wire.
        func header(_ text: String, _ max: Int) -> String { CEFRecord.flatten(CEFRecord.cut(text, maxBytes: max)) }
        return CEFRecord(vendor: header(vendor, 63), product: header(product, 63), version: header(productVersion, 31),
                         classID: header(typeUID, 31), name: header(name.isEmpty ? "OCSF class \(e.classUID)" : name, 512),
                         severity: Self.cefSeverity(ocsf: e.severityID),
                         extensions: ext.map { k, v in (key: k, value: CEFRecord.cut(v ?? "", maxBytes: Self.valueBytes[k] ?? Self.defaultValueBytes)) })
    }

    /// Stands in for an OCSF JSON document too large for one message: still JSON, still names the event.
    func jsonStub(_ stored: StoredEvent) -> String {
        let e = stored.event
        return #"{"menshen_truncated":true,"reason":"event larger than export.syslog.max_message_bytes","#
            + #""sequence":\#(stored.sequence),"uid":"\#(e.id.uuidString.lowercased())","class_uid":\#(e.classUID),"#
            + #""severity_id":\#(e.severityID),"time":\#(StoreCoding.millis(e.time)),"hash":"\#(stored.hash)","bytes":\#(e.payloadJSON.utf8.count)}"#
    }

    /// OCSF `severity_id` → RFC 5424 severity: 1 Informational → 6, 2 Low → 5, 3 Medium → 4, 4 High → 3,
    /// 5 Critical → 2, 6 Fatal → 1; 0 Unknown and 99 Other → 5 (notice).
    public static func syslogSeverity(ocsf: Int) -> Int {
        switch ocsf { case 1: 6; case 2: 5; case 3: 4; case 4: 3; case 5: 2; case 6: 1; default: 5 }
    }

    /// OCSF `severity_id` → CEF 0–10 (bands 0–3 Low, 4–6 Medium, 7–8 High, 9–10 Very-High):
    /// 1 → 1, 2 → 3, 3 → 5, 4 → 7, 5 → 9, 6 → 10; 0 Unknown and 99 Other → 5.
    public static func cefSeverity(ocsf: Int) -> Int {
        switch ocsf { case 1: 1; case 2: 3; case 3: 5; case 4: 7; case 5: 9; case 6: 10; default: 5 }
    }

    static func className(_ uid: Int) -> String {
        switch uid {
        case 3001: "Account Change"
        case 3002: "Authentication"
        case 3003: "Authorize Session"
        case 6001: "Web Resources Activity"
        case 2004: "Detection Finding"
        default: "OCSF class \(uid)"
        }
    }

    static func action(_ id: String) -> String? { id == "1" ? "Allowed" : id == "2" ? "Denied" : nil }
    static func outcome(_ id: String) -> String? { id == "1" ? "Success" : id == "2" ? "Failure" : nil }
}
