import Foundation
import MenshenPolicyEngine
import Testing

@Suite("Detection: access attempts from unmanaged devices (T1133)")
struct UnmanagedDeviceAccessTests {
    static let unmanaged = AccessRequest.Device(enrolled: true, managed: false, compliant: false, hardwareBound: false, external: true,
                                                postureAgeSeconds: 60, maxVulnerabilitySeverity: 0)
    static let managed = AccessRequest.Device(enrolled: true, managed: true, compliant: true, hardwareBound: true, external: false,
                                              postureAgeSeconds: 60, maxVulnerabilitySeverity: 0)

    @Test("a known unmanaged device, and no device on a confidential application, fire (denied attempts too)")
    func fires() async throws {
        var h = try Harness()
        await h.events.access("alice", from: "203.0.113.8", device: Self.unmanaged)
        await h.events.access("bob", from: "203.0.113.9", classification: "confidential", outcome: .deny)
        try await h.feed()
        let f = h.fired(RuleID.unmanagedDevice)
        #expect(f.map(\.user) == ["alice", "bob"])
        #expect(f.first?.techniques.map(\.uid) == ["T1133"] && f.first?.level == .medium)
    }

    @Test("managed devices, and no device on an internal application, stay quiet; repeats are suppressed")
    func quiet() async throws {
        var h = try Harness()
        try await h.normalTraffic()
        await h.events.access("alice", from: "198.51.100.10", classification: "restricted", device: Self.managed)
        try await h.feed()
        #expect(h.fired(RuleID.unmanagedDevice).isEmpty)
        for _ in 0..<5 { await h.events.access("carol", from: "203.0.113.8", device: Self.unmanaged) }
        try await h.feed()
        #expect(h.fired(RuleID.unmanagedDevice).count == 1, "one finding per user and source per ten minutes")
    }
}
