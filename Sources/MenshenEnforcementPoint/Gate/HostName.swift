/// The one spelling of a request's host that the enforcement point decides on and forwards.
public enum HostName {
    /// `host[:port]` with the trailing dot of an absolute domain name removed (`app.example.` →
    /// `app.example`, `app.example.:8443` → `app.example:8443`).
    ///
    /// `app.example.` and `app.example` name the same host (RFC 1034 §3.1), so without this a request
    /// sent to the absolute form found no route (404) while nginx, which drops the dot itself, matched it.
    /// The reverse proxy decides on the name without the dot and forwards that name (`Host`,
    /// `X-Forwarded-Host`), so the application is asked about the host the policy decided on. Forward-auth
    /// does not use it: there the front proxy picks the backend, and the host it describes is decided on
    /// exactly as described.
    /// Only one dot is removed and only after a label: `app..`, a lone `.` and IP literals in brackets
    /// are left as they are (and match no route).
    public static func withoutTrailingDot(_ authority: String) -> String {
        let utf8 = authority.utf8
        guard let first = utf8.first, first != UInt8(ascii: "[") else { return authority }
        let hostEnd = utf8.firstIndex(of: UInt8(ascii: ":")) ?? utf8.endIndex
        guard hostEnd != utf8.startIndex else { return authority }
        let dot = utf8.index(before: hostEnd)
        guard utf8[dot] == UInt8(ascii: "."), dot != utf8.startIndex,
              utf8[utf8.index(before: dot)] != UInt8(ascii: ".")
        else { return authority }
        return String(authority[..<dot]) + String(authority[hostEnd...])
    }
}
