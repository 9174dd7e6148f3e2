import Foundation
import Testing

/// The demo's sample application behind the real enforcement point: every
/// request is decided from the session, end to end through sockets.
@Suite("Enforcement point in the demo", .serialized)
struct GatewayDemoTests {
    @Test("signed out → sign-in with the way back; signed in → deny pages where policy says no (no device, not a vendor); revocation at once")
    func endToEnd() async throws {
        let (demo, dir, data) = try await PortalIdentityTests.demoWithUser()
        defer { demo.kill(signal: SIGTERM); try? FileManager.default.removeItem(at: dir) }
        let gw = demo.gatewayURL
        #expect(gw.hasPrefix("http://localhost:"))
        let html = ["Accept": "text/html", "Accept-Language": "en"]

        let anonymous = try await PortalIdentityTests.http("GET", gw + "/maintenance/tasks", headers: html)
        #expect(anonymous.status == 302)
        let signin = try #require(anonymous.header("location").first)
        let back = gw + "/maintenance/tasks"
        #expect(signin == demo.portalURL + "/signin?return=" + (back.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? ""))

        // The portal honours the way back to the enforcement point after sign-in.
        let v = PortalIdentityTests.Visitor(demo.portalURL)
        let signedIn = try await v.post("/signin", [("user", "pat"), ("password", PortalIdentityTests.password), ("ret", back)])
        #expect(signedIn.status == 303 && signedIn.header("location") == [back])
        let cookie = try #require(v.cookies["__Host-menshen-session"])
        let withSession = ["Accept": "text/html", "Accept-Language": "en", "Cookie": "__Host-menshen-session=\(cookie)"]

        // The vendor-maintenance application: staff are not vendors, so even a stronger factor
        // would not help — a deny, not a step-up (step-up is offered only when it would allow;
        // PolicyGateTests shows the step-up redirect).
        let restricted = try await PortalIdentityTests.http("GET", back, headers: withSession)
        #expect(restricted.status == 403)

        // The branch portal needs a compliant device, which this client cannot show: deny page, no upstream.
        let denied = try await PortalIdentityTests.http("GET", gw + "/", headers: withSession)
        #expect(denied.status == 403 && denied.body.contains("Access denied") && denied.body.contains("Request id"))
        let api = try await PortalIdentityTests.http("GET", gw + "/", headers: ["Accept": "application/json", "Cookie": "__Host-menshen-session=\(cookie)"])
        #expect(api.status == 403 && api.header("content-type") == ["application/problem+json"])

        // A spoofed identity header changes nothing; an unknown host is not proxied.
        let spoofed = try await PortalIdentityTests.http("GET", gw + "/", headers: ["Accept": "text/html", "X-Menshen-User": "admin"])
        #expect(spoofed.status == 302)
        let other = try await PortalIdentityTests.http("GET", gw + "/", headers: ["Accept": "text/html", "Host": "intranet.example"])
        #expect(other.status == 404)

        // Revocation: disabling the user turns the next request into a sign-in redirect.
        #expect(try await Harness.runAsync(["user", "disable", "pat", "--data", data]).status == 0)
        let after = try await PortalIdentityTests.http("GET", gw + "/", headers: withSession)
        #expect(after.status == 302 && after.header("location").first?.contains("/signin?return=") == true)
    }
}
