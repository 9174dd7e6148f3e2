import NIOCore
import NIOPosix
import Synchronization

/// Which upstreams failed recently. Passive: a failed connection marks an
/// upstream down for ``downFor``; active: ``probe(group:timeout:)`` tries a
/// TCP connection to each upstream marked down and marks it up again on
/// success (the server runs it every health-check interval). A down upstream
/// is still tried last, when every other one of the application failed too.
final class UpstreamHealth: Sendable {
    struct Key: Hashable, Sendable { var host: String; var port: Int; var tls: Bool }
    private let down = Mutex<[Key: (upstream: Upstream, until: NIODeadline)]>([:])
    let downFor: TimeAmount

    init(downFor: TimeAmount) { self.downFor = downFor }

    static func key(_ u: Upstream) -> Key { Key(host: u.host, port: u.port, tls: u.tls) }

    func markDown(_ u: Upstream) { down.withLock { $0[Self.key(u)] = (u, .now() + downFor) } }
    func markUp(_ u: Upstream) { _ = down.withLock { $0.removeValue(forKey: Self.key(u)) } }

    func isDown(_ u: Upstream) -> Bool {
        down.withLock { d in
            guard let entry = d[Self.key(u)] else { return false }
            if entry.until < .now() { d[Self.key(u)] = nil; return false }
            return true
        }
    }

    /// `upstreams` in the order to try: the ones not marked down first, in their configured order.
    func ordered(_ upstreams: [Upstream]) -> [Upstream] {
        let marks = upstreams.map(isDown)
        return zip(upstreams, marks).filter { !$0.1 }.map(\.0) + zip(upstreams, marks).filter { $0.1 }.map(\.0)
    }

    var downCount: Int { down.withLock { $0.count } }

    /// Tries a TCP connection to every upstream marked down; marks the reachable ones up.
    func probe(group: any EventLoopGroup, timeout: TimeAmount) async {
        let candidates = down.withLock { $0.values.map(\.upstream) }
        for u in candidates {
            do {
                let channel = try await ClientBootstrap(group: group).connectTimeout(timeout).connect(host: u.host, port: u.port).get()
                try? await channel.close()
                markUp(u)
            } catch {
                continue
            }
        }
    }
}
