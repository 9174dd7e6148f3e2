import Foundation

/// An RFC 5424 syslog message and its RFC 6587/5425 octet-counted frame.
///
/// Written by hand: none of our dependencies formats syslog. Every header
/// field is made safe here rather than trusted: HOSTNAME, APP-NAME, PROCID
/// and MSGID keep only printable US-ASCII (others become `_`) and are cut to
/// 255/48/128/32 bytes (an empty field is the NILVALUE `-`); SD-PARAM values
/// escape `"`, `\` and `]`. The MSG is UTF-8 without a byte-order mark (a CEF
/// reader expects `CEF:` first), and may hold any bytes — octet counting
/// makes line breaks harmless.
public struct SyslogMessage: Sendable, Equatable {
    /// RFC 5424 facility 0–23 (13 = log audit, 10 = authpriv, 16–23 = local0–7).
    public var facility: Int
    /// RFC 5424 severity 0 (Emergency) – 7 (Debug).
    public var severity: Int
    /// Milliseconds since 1970, written as RFC 3339 UTC with three fractional digits.
    public var timeMillis: Int64
    public var hostname: String
    public var appName: String
    public var procID: String
    public var msgID: String
    /// One SD-ELEMENT (`[id name="value" …]`), or none (`-`).
    public var structuredData: StructuredData?
    /// The MSG part (UTF-8).
    public var message: [UInt8]

    /// One SD-ELEMENT. Names are SD-NAMEs (1–32 printable characters without `=`, SP, `]`, `"`); invalid characters become `_`.
    public struct StructuredData: Sendable, Equatable {
        public var id: String
        public var parameters: [(name: String, value: String)]
        public init(id: String, parameters: [(name: String, value: String)]) { self.id = id; self.parameters = parameters }
        public static func == (l: Self, r: Self) -> Bool {
            l.id == r.id && l.parameters.map(\.name) == r.parameters.map(\.name) && l.parameters.map(\.value) == r.parameters.map(\.value)
        }
    }

    public init(facility: Int, severity: Int, timeMillis: Int64, hostname: String, appName: String, procID: String,
                msgID: String, structuredData: StructuredData?, message: [UInt8]) {
        self.facility = facility; self.severity = severity; self.timeMillis = timeMillis; self.hostname = hostname
        self.appName = appName; self.procID = procID; self.msgID = msgID; self.structuredData = structuredData; self.message = message
    }

    /// The header and structured data, up to and including the space before MSG.
    public var headerBytes: [UInt8] {
        let pri = min(max(facility, 0), 23) * 8 + min(max(severity, 0), 7)
        var s = "<\(pri)>1 \(Self.timestamp(millis: timeMillis)) \(Self.headerField(hostname, max: 255)) "
        s += "\(Self.headerField(appName, max: 48)) \(Self.headerField(procID, max: 128)) \(Self.headerField(msgID, max: 32)) "
        if let sd = structuredData {
            s += "[" + Self.sdName(sd.id)
            for p in sd.parameters { s += " \(Self.sdName(p.name))=\"\(Self.sdValue(p.value))\"" }
            s += "]"
        } else {
            s += "-"
        }
        return Array((s + " ").utf8)
    }

    /// The whole SYSLOG-MSG.
    public var bytes: [UInt8] { headerBytes + message }

    /// The SYSLOG-FRAME for TCP and TLS: `MSG-LEN SP SYSLOG-MSG`, MSG-LEN in bytes (RFC 6587 §3.4.1, RFC 5425 §4.3).
    public static func octetCountedFrame(_ message: [UInt8]) -> [UInt8] {
        Array("\(message.count) ".utf8) + message
    }

    /// `2026-11-26T03:04:05.678Z` for milliseconds since 1970 (UTC, proleptic Gregorian; before 1970 clamps to 1970).
    public static func timestamp(millis: Int64) -> String {
        let ms = max(0, millis)
        let days = ms / 86_400_000, inDay = ms % 86_400_000
        // Civil date from days since 1970-01-01 (H. Hinnant's days_from_civil, inverted).
        let z = days + 719_468
        let era = z / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let frac = inDay % 1000
        let fracText = frac < 10 ? "00\(frac)" : frac < 100 ? "0\(frac)" : "\(frac)"
        return "\(y)-\(two(m))-\(two(d))T\(two(inDay / 3_600_000)):\(two(inDay / 60_000 % 60)):\(two(inDay / 1000 % 60)).\(fracText)Z"
    }

    /// A header field: printable US-ASCII (33–126) only, others replaced by `_`, cut to `max` bytes; empty → `-`.
    static func headerField(_ text: String, max: Int) -> String {
        let bytes = text.utf8.prefix(max).map { $0 >= 33 && $0 <= 126 ? $0 : UInt8(ascii: "_") }
        return bytes.isEmpty ? "-" : String(decoding: bytes, as: UTF8.self)
    }

    /// An SD-NAME: printable US-ASCII without `=`, SP, `]`, `"` (others `_`), 1–32 bytes.
    static func sdName(_ text: String) -> String {
        let bytes = text.utf8.prefix(32).map { b -> UInt8 in
            (b >= 33 && b <= 126 && b != UInt8(ascii: "=") && b != UInt8(ascii: "]") && b != UInt8(ascii: "\"")) ? b : UInt8(ascii: "_")
        }
        return bytes.isEmpty ? "_" : String(decoding: bytes, as: UTF8.self)
    }

    /// A PARAM-VALUE: UTF-8 with `"`, `\` and `]` escaped by a backslash.
    static func sdValue(_ text: String) -> String {
        var out = ""
        for c in text.unicodeScalars {
            if c == "\"" || c == "\\" || c == "]" { out.append("\\") }
            out.unicodeScalars.append(c)
        }
        return out
    }
}
