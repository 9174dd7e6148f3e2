import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import MenshenConfig
import MenshenCore
import MenshenStorage
import MenshenVisibility
import ServiceLifecycle
import Synchronization

/// Where and how the JSON Lines export writes (the `export.jsonl.*` keys).
public struct JSONLinesExportSettings: Sendable {
    /// The active file; rotated files are `path.1` (the newest) … `path.keepFiles`.
    public var path: String
    /// A file is rotated before a line would take it past this size (a longer line gets a file to itself).
    public var maxFileBytes: Int
    /// How many rotated files are kept besides the active one (the oldest is deleted beyond that).
    public var keepFiles: Int
    public var batchSize: Int
    public var idleInterval: Duration
    public var maxBackoff: Duration
    /// The consumer cursor's name in the store.
    public var cursorName: String

    public init(path: String, maxFileBytes: Int = 100 << 20, keepFiles: Int = 10, batchSize: Int = 500,
                idleInterval: Duration = .milliseconds(200), maxBackoff: Duration = .seconds(30), cursorName: String = "export.jsonl") {
        self.path = path; self.maxFileBytes = max(4096, maxFileBytes); self.keepFiles = max(1, keepFiles); self.batchSize = max(1, batchSize)
        self.idleInterval = idleInterval; self.maxBackoff = maxBackoff; self.cursorName = cursorName
    }
}

/// Writes every event of the log to a JSON Lines file for log shippers (Filebeat, Fluent Bit, a SIEM's
/// file collector): one object per line, as `menshen audit search --json` prints it (sequence, id, time,
/// class, chain hashes and the OCSF event), rotated by size with a kept-files count.
///
/// It follows the log with ``EventTail`` (so it never slows the writers of events) from a persistent
/// consumer cursor (`export.jsonl`). Each batch is written, fsync'd, and only then is the cursor saved.
/// **Every event is in exactly one file, in order**: before writing, the exporter knows the last sequence
/// already in the files — at start and after any failed write it reads the last complete line of the
/// active file (or of `path.1`), cuts a torn last line (a crash in the middle of a write) and skips
/// events up to that sequence. A disk that is full or unwritable makes the batch fail and be retried
/// with back-off; nothing is lost while the log keeps the events. Rotation renames `path` → `path.1` →
/// `path.2` …, dropping the file beyond `keepFiles`, and syncs the directory.
public final class JSONLinesExporter: Service, Sendable {
    public struct Status: Sendable, Equatable {
        public var linesWritten = 0
        public var rotations = 0
        public var writeFailures = 0
        /// The last event written and synced.
        public var writtenSequence: Int64 = 0
        public var lastError: String?
    }

    let store: any EventStore & ConsumerCursorStore
    let settings: JSONLinesExportSettings
    let clock: any WallClock
    let logger: Logger
    private let state = Mutex<Status>(Status())

    public init(store: any EventStore & ConsumerCursorStore, settings: JSONLinesExportSettings, clock: any WallClock = SystemClock(),
                logger: Logger = Logger(label: "menshen.export.jsonl")) {
        self.store = store; self.settings = settings; self.clock = clock; self.logger = logger
    }

    /// The exporter the `export.jsonl.*` keys describe (call only when `export.jsonl.enabled`).
    public static func configured(_ config: MenshenConfiguration, store: any EventStore & ConsumerCursorStore, clock: any WallClock,
                                  logger: Logger) throws -> JSONLinesExporter {
        let c = config.jsonLinesExport
        var path = c.path
        if path.isEmpty {
            guard config.store.driver == .sqlite else { throw JSONLinesExportError("export.jsonl.path is required with PostgreSQL") }
            path = ((config.store.sqlitePath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("events.jsonl")
        }
        return JSONLinesExporter(store: store, settings: JSONLinesExportSettings(path: path, maxFileBytes: c.maxFileBytes, keepFiles: c.keepFiles),
                                 clock: clock, logger: logger)
    }

    public var status: Status { state.withLock { $0 } }

    public func run() async throws {
        let tail = EventTail(store: store, batchSize: settings.batchSize, idleInterval: settings.idleInterval, maxBackoff: settings.maxBackoff)
        let file = JSONLinesFile(settings: settings)
        await cancelWhenGracefulShutdown {
            // Where to resume: the saved cursor, or further when the files already hold later events.
            var start: Int64?
            var backoff = self.settings.idleInterval
            while start == nil, !Task.isCancelled {
                do {
                    let saved = try await self.store.cursor(named: self.settings.cursorName) ?? 0
                    start = max(saved, try file.recover())
                } catch {
                    self.note(error)
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, self.settings.maxBackoff)
                }
            }
            guard let start else { return }
            await tail.follow(after: start, onError: { [weak self] error in self?.note(error) }) { batch in
                let written = try file.append(batch) { rotated in self.state.withLock { $0.rotations += rotated } }
                self.state.withLock { $0.linesWritten += written; $0.writtenSequence = file.lastSequence }
                try await self.store.saveCursor(named: self.settings.cursorName, sequence: file.lastSequence, at: self.clock.now())
            }
        }
        file.close()
    }

    private func note(_ error: any Error) {
        state.withLock { $0.writeFailures += 1; $0.lastError = "\(error)" }
        logger.warning("JSON Lines export: \(error)")
    }
}

public struct JSONLinesExportError: Error, CustomStringConvertible {
    public let description: String
    init(_ message: String) { description = message }
}

/// The files of the JSON Lines export: the active file's descriptor and size, and the last sequence in the
/// files. Used by one task at a time (the exporter's follow loop); the lock only makes that checkable.
final class JSONLinesFile: Sendable {
    let settings: JSONLinesExportSettings
    private struct Open { var fd: Int32 = -1; var size = 0; var last: Int64 = 0; var needsRecovery = true }
    private let open = Mutex(Open())

    init(settings: JSONLinesExportSettings) { self.settings = settings }

    var lastSequence: Int64 { open.withLock { $0.last } }

    /// Reads the last sequence already written (cutting a torn last line) and opens the active file.
    func recover() throws -> Int64 {
        try open.withLock { o in try recover(&o); return o.last }
    }

    private func recover(_ o: inout Open) throws {
        if o.fd >= 0 { Glibc.close(o.fd); o.fd = -1 }
        var last: Int64 = 0
        if let l = try Self.lastSequence(path: settings.path, cutTornLine: true) { last = l }
        else if let l = try Self.lastSequence(path: settings.path + ".1", cutTornLine: false) { last = l }
        let fd = Glibc.open(settings.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw JSONLinesExportError("\(settings.path): cannot open (\(String(cString: strerror(errno))))") }
        var st = stat()
        guard fstat(fd, &st) == 0 else { Glibc.close(fd); throw JSONLinesExportError("\(settings.path): cannot stat") }
        o = Open(fd: fd, size: Int(st.st_size), last: max(o.last, last), needsRecovery: false)
    }

    /// Writes the events after the last one in the files, rotating by size, and syncs. Returns the lines written.
    func append(_ batch: [StoredEvent], rotated: (Int) -> Void) throws -> Int {
        try open.withLock { o in
            if o.needsRecovery || o.fd < 0 { try recover(&o) }
            var written = 0
            var rotations = 0
            var pending: [UInt8] = []
            var pendingLast: Int64 = o.last
            func flush() throws {
                guard !pending.isEmpty else { return }
                var offset = 0
                while offset < pending.count {
                    let n = pending[offset...].withUnsafeBytes { Glibc.write(o.fd, $0.baseAddress, $0.count) }
                    guard n > 0 else { throw JSONLinesExportError("\(settings.path): write failed (\(String(cString: strerror(errno))))") }
                    offset += n
                }
                guard fsync(o.fd) == 0 else { throw JSONLinesExportError("\(settings.path): fsync failed (\(String(cString: strerror(errno))))") }
                o.size += pending.count
                o.last = pendingLast
                pending.removeAll(keepingCapacity: true)
            }
            do {
                for e in batch where e.sequence > o.last && e.sequence > pendingLast {
                    let line = Array((AuditEventText.jsonLine(e) + "\n").utf8)
                    if o.size + pending.count > 0, o.size + pending.count + line.count > settings.maxFileBytes {
                        try flush()
                        try rotate(&o)
                        rotations += 1
                    }
                    pending += line
                    pendingLast = e.sequence
                    written += 1
                }
                try flush()
            } catch {
                o.needsRecovery = true   // the next attempt first finds what really reached the file
                throw error
            }
            if rotations > 0 { rotated(rotations) }
            return written
        }
    }

    private func rotate(_ o: inout Open) throws {
        Glibc.close(o.fd)
        o.fd = -1
        let p = settings.path
        // path.(keep-1) → path.keep (replacing the oldest) … path → path.1.
        for i in stride(from: settings.keepFiles - 1, through: 1, by: -1) where FileManager.default.fileExists(atPath: "\(p).\(i)") {
            guard rename("\(p).\(i)", "\(p).\(i + 1)") == 0 else { throw JSONLinesExportError("\(p).\(i): cannot rotate") }
        }
        guard rename(p, "\(p).1") == 0 else { throw JSONLinesExportError("\(p): cannot rotate") }
        let fd = Glibc.open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw JSONLinesExportError("\(p): cannot open (\(String(cString: strerror(errno))))") }
        let dir = Glibc.open((p as NSString).deletingLastPathComponent.isEmpty ? "." : (p as NSString).deletingLastPathComponent, O_RDONLY)
        if dir >= 0 { _ = fsync(dir); Glibc.close(dir) }
        o.fd = fd
        o.size = 0
    }

    func close() { open.withLock { o in if o.fd >= 0 { Glibc.close(o.fd); o.fd = -1 } } }

    /// The `sequence` of the last complete line of the file at `path` (nil when it has none). A last line
    /// without its newline is cut off when `cutTornLine` (it was being written when the process died).
    static func lastSequence(path: String, cutTornLine: Bool) throws -> Int64? {
        let fd = Glibc.open(path, cutTornLine ? O_RDWR : O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw JSONLinesExportError("\(path): cannot stat") }
        var end = Int(st.st_size)
        let limit = AuditExport.maxLineBytes + 1
        // Read backwards in 64 KiB steps until two newlines (or the start) bound the last complete line.
        var tail: [UInt8] = []
        var position = end
        func newlines() -> [Int] { tail.indices.filter { tail[$0] == 0x0A } }
        while position > 0, newlines().count < 2, tail.count <= limit {
            let step = min(65_536, position)
            position -= step
            var chunk = [UInt8](repeating: 0, count: step)
            guard pread(fd, &chunk, step, off_t(position)) == step else { throw JSONLinesExportError("\(path): cannot read") }
            tail = chunk + tail
        }
        if let lastNewline = tail.lastIndex(of: 0x0A), lastNewline != tail.count - 1 {
            // A torn last line.
            if cutTornLine {
                guard ftruncate(fd, off_t(position + lastNewline + 1)) == 0 else { throw JSONLinesExportError("\(path): cannot cut a torn line") }
            }
            end = position + lastNewline + 1
            tail = Array(tail[...lastNewline])
        } else if tail.lastIndex(of: 0x0A) == nil {
            if cutTornLine, !tail.isEmpty, position == 0 { guard ftruncate(fd, 0) == 0 else { throw JSONLinesExportError("\(path): cannot cut a torn line") } }
            return nil
        }
        _ = end
        let body = tail.dropLast()   // without the final newline
        let start = body.lastIndex(of: 0x0A).map { $0 + 1 } ?? body.startIndex
        guard let object = try? JSONSerialization.jsonObject(with: Data(body[start...])) as? [String: Any],
              let sequence = (object["sequence"] as? NSNumber)?.int64Value
        else { throw JSONLinesExportError("\(path): the last line is not an exported event; move the file away to start a new one") }
        return sequence
    }
}
