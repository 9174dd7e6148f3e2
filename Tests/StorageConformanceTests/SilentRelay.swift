#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// A TCP relay on 127.0.0.1 to a server, whose open connections can be made silent: what either side sends is
/// dropped and nothing is closed — a network that loses a flow (a failover, a NAT or firewall timeout) as the
/// connection's ends see it. Connections made after ``silenceOpenConnections()`` are relayed as usual.
/// Blocking sockets and one thread per direction: a test has a handful of connections.
final class SilentRelay: Sendable {
    let port: Int
    private let listener: Int32
    private let target: (host: String, port: Int)
    /// Open connections (both descriptors) and the ids of the silenced ones.
    private let state = Mutex<(next: Int, open: [Int: (Int32, Int32)], silenced: Set<Int>, closed: Bool)>((0, [:], [], false))

    init(to host: String, port targetPort: Int) throws {
        target = (host, targetPort)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 64) == 0 else { Glibc.close(fd); throw CocoaError(.fileWriteUnknown) }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        listener = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    /// From now on nothing passes on the connections open now, in either direction; they stay open.
    func silenceOpenConnections() {
        state.withLock { $0.silenced.formUnion($0.open.keys) }
    }

    var openCount: Int { state.withLock { $0.open.count } }

    func close() {
        let fds: [Int32] = state.withLock { s in
            s.closed = true
            return s.open.values.flatMap { [$0.0, $0.1] }
        }
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
        for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { return }
            let server = Self.connect(target.host, target.port)
            guard server >= 0 else { Glibc.close(client); continue }
            let id: Int? = state.withLock { s in
                if s.closed { return nil }
                s.next += 1
                s.open[s.next] = (client, server)
                return s.next
            }
            guard let id else { Glibc.close(client); Glibc.close(server); return }
            Thread { [self] in pump(id, from: client, to: server) }.start()
            Thread { [self] in pump(id, from: server, to: client) }.start()
        }
    }

    private func pump(_ id: Int, from: Int32, to: Int32) {
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(from, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            if state.withLock({ $0.silenced.contains(id) }) { continue }   // dropped: the other end hears nothing
            var sent = 0
            while sent < n {
                let m = buffer.withUnsafeBytes { send(to, $0.baseAddress! + sent, n - sent, Int32(MSG_NOSIGNAL)) }
                if m <= 0 { break }
                sent += m
            }
        }
        // One side ended (not a silenced connection's peer: it never learns). Close both once.
        let pair: (Int32, Int32)? = state.withLock { s in s.silenced.contains(id) ? nil : s.open.removeValue(forKey: id) }
        if let pair { shutdown(pair.0, Int32(SHUT_RDWR)); shutdown(pair.1, Int32(SHUT_RDWR)); Glibc.close(pair.0); Glibc.close(pair.1) }
    }

    private static func connect(_ host: String, _ port: Int) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else { return -1 }
        defer { freeaddrinfo(result) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { return -1 }
        guard Glibc.connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else { Glibc.close(fd); return -1 }
        return fd
    }
}
