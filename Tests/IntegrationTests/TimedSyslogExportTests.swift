import Foundation
import MenshenCore
import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import MenshenTestSupport
import MenshenVisibility
import Testing

/// The SIEM export when the receiver goes away or misbehaves: rsyslog stopped and started again,
/// the exporter itself restarted, a "SIEM" that never reads and one that answers garbage.
/// Slow (rsyslog restarts, write timeouts), so `Timed…`: scripts/test runs it alone.
@Suite("Timed SIEM export resilience")
struct TimedSyslogExportTests {
    static func ids(_ messages: [[String: String]]) -> [String] {
        messages.map { m in
            let sd = m["structured_data"] ?? ""
            return sd.range(of: #"id="[0-9a-f-]+""#, options: .regularExpression).map { String(sd[$0].dropFirst(4).dropLast()) } ?? "?"
        }
    }

    @Test("rsyslog stopped for a while: events written meanwhile all arrive once it is back, none twice")
    func receiverStopped() async throws {
        guard let rsyslog = try await ThrowawayRsyslog.start() else { return }
        defer { rsyslog.clean() }
        let (store, dir) = try SyslogExportTests.store()
        defer { try? FileManager.default.removeItem(at: dir) }
        let clock = FixedClock(Date(timeIntervalSince1970: 1_795_399_200))
        for transport in [SyslogExportSettings.Transport.tcp, .tls] {
            let before = try await store.lastEvent()?.sequence ?? 0
            var settings = SyslogExportSettings.test(port: transport == .tcp ? rsyslog.tcpPort : rsyslog.tlsPort, transport: transport,
                                                     caFile: rsyslog.caFile)
            settings.cursorName = "export.\(transport.rawValue)"
            try await store.saveCursor(named: settings.cursorName, sequence: before, at: clock.now())
            let already = rsyslog.messages().count
            var events = try await NastyEvents.append(30, to: store, clock: clock)
            let running = RunningExporter(try SyslogExporter(store: store, settings: settings, clock: clock))
            #expect(try await running.waitConfirmed(events.last!.sequence))

            try await rsyslog.stop()
            events += try await NastyEvents.append(30, to: store, clock: clock, offset: 30)
            try await Task.sleep(for: .seconds(2))
            let down = running.exporter.status
            #expect(down.connectFailures > 0, "it kept trying: \(down)")
            #expect(down.confirmedSequence == events[29].sequence, "nothing written while rsyslog was down counts as delivered")

            try await rsyslog.restart()
            events += try await NastyEvents.append(10, to: store, clock: clock, offset: 60)
            #expect(try await running.waitConfirmed(events.last!.sequence))
            try await Task.sleep(for: .milliseconds(300))
            await running.stop()
            let received = Array(rsyslog.messages().dropFirst(already))
            try SyslogExportTests.checkExactlyOnce(received, events, input: transport.rawValue, formatter: settings.formatter)
        }
        try await store.close()
    }

    @Test("the exporter restarted (a new process) resumes from its saved cursor: nothing twice, nothing missing")
    func exporterRestarted() async throws {
        guard let rsyslog = try await ThrowawayRsyslog.start() else { return }
        defer { rsyslog.clean() }
        let (store, dir) = try SyslogExportTests.store()
        defer { try? FileManager.default.removeItem(at: dir) }
        let clock = FixedClock(Date(timeIntervalSince1970: 1_795_399_200))
        let settings = SyslogExportSettings.test(port: rsyslog.tcpPort, transport: .tcp)
        var events = try await NastyEvents.append(25, to: store, clock: clock)
        let first = RunningExporter(try SyslogExporter(store: store, settings: settings, clock: clock))
        #expect(try await first.waitConfirmed(events.last!.sequence))
        await first.stop()
        try await store.close()
        // Another handle on the same file, as after a restart of menshen.
        let reopened = try SQLiteStore(path: dir.appendingPathComponent("menshen.sqlite").path)
        #expect(try await reopened.cursor(named: "export.syslog") == events.last!.sequence)
        events += try await NastyEvents.append(25, to: reopened, clock: clock, offset: 25)
        let second = RunningExporter(try SyslogExporter(store: reopened, settings: settings, clock: clock))
        #expect(try await second.waitConfirmed(events.last!.sequence))
        try await Task.sleep(for: .milliseconds(300))
        await second.stop()
        try SyslogExportTests.checkExactlyOnce(rsyslog.messages(), events, input: "tcp", formatter: settings.formatter)
        try await reopened.close()
    }

    @Test("rsyslog stopped in the middle of a burst: nothing is lost; a repeat is only an identical copy of an unconfirmed event")
    func receiverStoppedMidBurst() async throws {
        guard let rsyslog = try await ThrowawayRsyslog.start() else { return }
        defer { rsyslog.clean() }
        let (store, dir) = try SyslogExportTests.store()
        defer { try? FileManager.default.removeItem(at: dir) }
        let clock = FixedClock(Date(timeIntervalSince1970: 1_795_399_200))
        let settings = SyslogExportSettings.test(port: rsyslog.tcpPort, transport: .tcp)
        let running = RunningExporter(try SyslogExporter(store: store, settings: settings, clock: clock))
        var events: [StoredEvent] = []
        for round in 0..<20 {
            events += try await NastyEvents.append(10, to: store, clock: clock, offset: round * 10)
            if round == 8 { try await rsyslog.stop() }
            if round == 12 { try await rsyslog.restart() }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await running.waitConfirmed(events.last!.sequence))
        try await Task.sleep(for: .milliseconds(300))
        let status = running.exporter.status
        await running.stop()
        let messages = rsyslog.messages()
        let got = Self.ids(messages)
        let want = events.map { $0.event.id.uuidString.lowercased() }
        #expect(Set(got) == Set(want), "every event arrived (missing: \(Set(want).subtracting(got).count))")
        var firstCopy: [String: String] = [:]
        var repeats = 0
        for (id, m) in zip(got, messages) {
            if let raw = firstCopy[id] { repeats += 1; #expect(m["raw"] == raw, "a repeat is an identical copy") } else { firstCopy[id] = m["raw"] }
        }
        #expect(repeats <= status.framesResent, "only resent (unconfirmed) events repeat: \(repeats) repeats, \(status.framesResent) resent")
        print("SIEM export mid-burst stop: \(events.count) events, \(messages.count) messages, \(repeats) repeats, \(status.framesResent) resent")
        try await store.close()
    }

    /// A stand-in SIEM in Python: `hang` accepts connections and never reads; `garbage` reads
    /// octet-counted frames (counting them into FILE) and keeps sending random bytes back.
    static let fakeSIEM = """
        import os, signal, socket, sys, threading, time
        signal.pthread_sigmask(signal.SIG_SETMASK, [])   # the test process's blocked signals are inherited
        mode, port_file, count_file = sys.argv[1], sys.argv[2], sys.argv[3]
        srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        srv.bind(('127.0.0.1', 0)); srv.listen(16)
        open(port_file, 'w').write(str(srv.getsockname()[1]))
        held, frames, lock = [], [0], threading.Lock()
        def garbage(c):
            buf = b''
            c.settimeout(0.05)
            while True:
                try: c.sendall(os.urandom(512) + b'\\n\\x00HTTP/1.1 400 Bad\\r\\n')
                except OSError: return
                try: data = c.recv(65536)
                except socket.timeout: continue
                except OSError: return
                if not data: return
                buf += data
                while b' ' in buf[:12]:
                    n, rest = buf.split(b' ', 1)
                    if len(rest) < int(n): break
                    buf = rest[int(n):]
                    with lock:
                        frames[0] += 1
                        open(count_file, 'w').write(str(frames[0]))
        while True:
            c, _ = srv.accept()
            if mode == 'hang': held.append(c)
            else: threading.Thread(target=garbage, args=(c,), daemon=True).start()
        """

    /// Starts the fake SIEM; returns its process and port.
    static func startFake(_ mode: String, dir: URL) async throws -> (ChildProcess, Int, URL) {
        let portFile = dir.appendingPathComponent("\(mode).port"), countFile = dir.appendingPathComponent("\(mode).count")
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", fakeSIEM, mode, portFile.path, countFile.path]
        let log = dir.appendingPathComponent("\(mode).log").path
        p.outputPath = log   // kept for the failure message
        try p.run()
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOf: portFile, encoding: .utf8), let port = Int(text) { return (p, port, countFile) }
            try await Task.sleep(for: .milliseconds(50))
        }
        p.terminate()
        p.waitUntilExit()
        throw Harness.HarnessError("the fake SIEM did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    @Test("a SIEM that accepts and never reads: writers are not held up, in-flight data stays bounded, the exporter reports a write timeout")
    func receiverNeverReads() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (fake, port, _) = try await Self.startFake("hang", dir: dir)
        defer { fake.signal(SIGKILL); fake.waitUntilExit() }
        let store = try SQLiteStore(path: dir.appendingPathComponent("menshen.sqlite").path)
        let clock = FixedClock(Date(timeIntervalSince1970: 1_795_399_200))
        var settings = SyslogExportSettings.test(port: port, transport: .tcp, format: .json)
        settings.maxInFlightBytes = 256 * 1024
        let running = RunningExporter(try SyslogExporter(store: store, settings: settings, clock: clock))
        // Big events (≈ 6 KB each): a few hundred fill every socket buffer on the way.
        let filler = String(repeating: "x", count: 6000)
        var appended = 0
        for batch in 0..<40 {
            let events = (0..<50).map { i in
                NewEvent(id: UUID(), time: clock.now(), classUID: 3002, severityID: 1,
                         payloadJSON: #"{"class_uid":3002,"message":"event \#(batch * 50 + i) \#(filler)"}"#)
            }
            appended += try await store.appendEvents(events, hasher: EventChain.hasher).count
        }
        #expect(appended == 2000, "every write went through while the SIEM was stuck")
        // The exporter notices the stall within its write timeout and keeps retrying.
        let deadline = ContinuousClock.now + .seconds(20)
        while running.exporter.status.writeTimeouts == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        let status = running.exporter.status
        await running.stop()
        #expect(status.writeTimeouts >= 1, "\(status)")
        #expect(status.lastError != nil, "\(status)")
        #expect(status.maxInFlightBytesSeen <= settings.maxInFlightBytes + settings.formatter.maxMessageBytes + 16, "\(status)")
        #expect(status.confirmedSequence < 2000, "a receiver that does not read is not counted as having everything")
        #expect(try await store.eventCount() == 2000)
        try await store.close()
    }

    @Test("a SIEM that answers garbage: the bytes are discarded and counted, and the export carries on")
    func receiverSendsGarbage() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (fake, port, countFile) = try await Self.startFake("garbage", dir: dir)
        defer { fake.signal(SIGKILL); fake.waitUntilExit() }
        let store = try SQLiteStore(path: dir.appendingPathComponent("menshen.sqlite").path)
        let clock = FixedClock(Date(timeIntervalSince1970: 1_795_399_200))
        let settings = SyslogExportSettings.test(port: port, transport: .tcp)
        let events = try await NastyEvents.append(200, to: store, clock: clock)
        let running = RunningExporter(try SyslogExporter(store: store, settings: settings, clock: clock))
        #expect(try await running.waitConfirmed(events.last!.sequence))
        let deadline = ContinuousClock.now + .seconds(10)
        var frames = 0
        while frames < events.count, ContinuousClock.now < deadline {
            frames = Int((try? String(contentsOf: countFile, encoding: .utf8)) ?? "") ?? 0
            try await Task.sleep(for: .milliseconds(100))
        }
        let status = running.exporter.status
        await running.stop()
        #expect(frames >= events.count, "the SIEM parsed every octet-counted frame")
        #expect(status.unexpectedBytesReceived > 0, "\(status)")
        #expect(status.framesWritten >= events.count)
        try await store.close()
    }
}
