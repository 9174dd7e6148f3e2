import Foundation
import MenshenConfig
import MenshenStorage
import MenshenVisibility
#if canImport(Glibc)
import Glibc
#endif

/// The audit checkpoint key file and the anchor file: where they are, and
/// reading and writing them (the signing and the line format are MenshenVisibility's).
public enum AuditFiles {
    /// The signing key's path: `audit.signing_key_file`, or `audit.key` next to the SQLite
    /// file. Nil with PostgreSQL when none is configured (checkpoints are then off).
    public static func keyPath(_ config: MenshenConfiguration) -> String? {
        path(config.audit.signingKeyFile, default: "audit.key", config: config)
    }

    /// The anchor's path: `audit.checkpoint.anchor_file`, or `audit-anchor.jsonl` next to
    /// the SQLite file. Nil with PostgreSQL when none is configured.
    public static func anchorPath(_ config: MenshenConfiguration) -> String? {
        path(config.audit.checkpointAnchorFile, default: "audit-anchor.jsonl", config: config)
    }

    /// A key or state file's path: `configured`, or `name` next to the SQLite file; nil with PostgreSQL when not configured.
    static func path(_ configured: String, default name: String, config: MenshenConfiguration) -> String? {
        guard configured.isEmpty else { return configured }
        guard config.store.driver == .sqlite else { return nil }
        return ((config.store.sqlitePath as NSString).deletingLastPathComponent as NSString).appendingPathComponent(name)
    }

    /// Loads the signing key (base64 of 32 raw bytes; the file must be mode 0600), or
    /// creates it (mode 0600, never overwriting a file another process created meanwhile)
    /// when missing and `mayCreate`. Also loads other Ed25519 keys of the same file format
    /// (the evidence-pack key): `what` names the key in messages, `missingHint` says how to get one.
    public static func loadOrCreateKey(path: String, mayCreate: Bool, what: String = "audit signing key",
                                       missingHint: String = "run `menshen audit key` on the deployment that signs") throws -> AuditSigningKey {
        let fm = FileManager.default
        if fm.fileExists(atPath: path) {
            if let mode = (try? fm.attributesOfItem(atPath: path))?[.posixPermissions] as? Int, mode & 0o077 != 0 {
                throw AuditFileError("\(path): the \(what) must not be readable by group or others (chmod 600)")
            }
            guard let data = fm.contents(atPath: path), data.count <= 1024,
                  let bytes = Data(base64Encoded: String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
            else { throw AuditFileError("\(path): not an \(what) (base64 of 32 bytes)") }
            do { return try AuditSigningKey(rawRepresentation: Array(bytes)) } catch {
                throw AuditFileError("\(path): not an \(what) (base64 of 32 bytes)")
            }
        }
        guard mayCreate else { throw AuditFileError("\(path): no \(what) (\(missingHint))") }
        let key = AuditSigningKey()
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? fm.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        // O_EXCL: two processes starting at once never overwrite each other's key.
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST { return try loadOrCreateKey(path: path, mayCreate: false, what: what, missingHint: missingHint) }
            throw AuditFileError("\(path): cannot create the \(what) file")
        }
        defer { close(fd) }
        let bytes = Array((Data(key.rawRepresentation).base64EncodedString() + "\n").utf8)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count, fsync(fd) == 0 else {
            throw AuditFileError("\(path): cannot write the \(what) file")
        }
        return key
    }

    /// Appends one checkpoint line to the anchor (created mode 0640 when missing) and
    /// waits for it to reach the disk (fsync).
    public static func append(_ checkpoint: AuditCheckpointRecord, toAnchor path: String) throws {
        let line = Array((try AuditAnchorLine.encode(checkpoint) + "\n").utf8)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o640)
        guard fd >= 0 else { throw AuditFileError("\(path): cannot open the audit anchor file for appending") }
        defer { close(fd) }
        // One write of a short line with O_APPEND: concurrent writers never interleave inside a line.
        guard line.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == line.count, fsync(fd) == 0 else {
            throw AuditFileError("\(path): cannot write the audit anchor file")
        }
    }

    /// What ``readAnchor(path:maxLines:)`` found.
    public struct Anchor: Sendable {
        public var checkpoints: [AuditCheckpointRecord]
        /// A last line without its newline (a write cut short by a crash), ignored.
        public var tornLastLine: Bool
    }

    /// Reads every checkpoint of the anchor, streaming it in 64 KiB chunks. Nil when the
    /// file does not exist. A malformed line or a line over the limit throws with its line number.
    public static func readAnchor(path: String, maxLines: Int = 2_000_000) throws -> Anchor? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw AuditFileError("\(path): cannot read the audit anchor file") }
        defer { try? handle.close() }
        var out: [AuditCheckpointRecord] = []
        var partial: [UInt8] = []
        var lineNumber = 0
        func take(_ line: ArraySlice<UInt8>) throws {
            lineNumber += 1
            guard !line.isEmpty else { return }
            guard out.count < maxLines else { throw AuditFileError("\(path): more than \(maxLines) checkpoint lines") }
            do { out.append(try AuditAnchorLine.decode(String(decoding: line, as: UTF8.self))) } catch {
                throw AuditFileError("\(path):\(lineNumber): \(error)")
            }
        }
        while true {
            let chunk = try handle.read(upToCount: 64 * 1024) ?? Data()
            if chunk.isEmpty { break }
            partial += chunk
            var start = partial.startIndex
            while let nl = partial[start...].firstIndex(of: UInt8(ascii: "\n")) {
                try take(partial[start..<nl])
                start = nl + 1
            }
            partial.removeSubrange(..<start)
            if partial.count > AuditAnchorLine.maxBytes {
                throw AuditFileError("\(path):\(lineNumber + 1): line longer than \(AuditAnchorLine.maxBytes) bytes")
            }
        }
        return Anchor(checkpoints: out, tornLastLine: !partial.isEmpty)
    }
}

public struct AuditFileError: Error, CustomStringConvertible {
    public let description: String
    init(_ message: String) { description = message }
}
