#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import MenshenAssessment
import MenshenCore
import MenshenStorage

/// Records and revokes attestations — statements by a named person about what
/// the system cannot observe (penetration tests, CI/CD separation of duties,
/// off-site backups …) — for `menshen attest`. Checks the principle against the
/// built-in catalog, reads the evidence files with strict checks (a file that
/// cannot be read is refused with its name and why, and then nothing is
/// stored), stores the attestation and its files in one transaction and
/// records each add and revoke as an OCSF Entity Management event.
public struct AttestationService: Sendable {
    let store: any MenshenStore
    let clock: any WallClock
    let random: any RandomSource
    let catalog: PrincipleCatalog

    public init(store: any MenshenStore, clock: any WallClock = SystemClock(), random: any RandomSource = SystemRandomSource(),
                catalog: PrincipleCatalog = .builtIn) {
        self.store = store; self.clock = clock; self.random = random; self.catalog = catalog
    }

    /// What an operator asks to record.
    public struct Request: Sendable {
        public var principleID: String
        public var statement: String
        public var attestedBy: String
        /// When it was attested; nil means now.
        public var attestedAt: Date?
        public var expiresAt: Date
        /// Paths of the evidence files; each is stored under its base name.
        public var files: [String]
        /// The operator recording it (the OS account running the command).
        public var recordedBy: String
        public init(principleID: String, statement: String, attestedBy: String, attestedAt: Date?, expiresAt: Date, files: [String], recordedBy: String) {
            self.principleID = principleID; self.statement = statement; self.attestedBy = attestedBy; self.attestedAt = attestedAt
            self.expiresAt = expiresAt; self.files = files; self.recordedBy = recordedBy
        }
    }

    /// Checks, reads the files, stores everything in one transaction and records the event. Throws
    /// ``AssessmentError/attestation(_:)`` or a `StoreError` naming what is wrong; nothing is stored then.
    public func add(_ request: Request) async throws -> AttestationRecord {
        let now = clock.now()
        guard catalog.principle(request.principleID) != nil else {
            throw AssessmentError.attestation("unknown principle \(AttestationService.quoted(request.principleID)): the guideline's principles are "
                + Pillar.allCases.compactMap { p in
                    let ids = catalog.principles(of: p).map(\.id)
                    return ids.first.map { "\($0)–\(ids.last ?? $0)" }
                }.joined(separator: ", "))
        }
        var record = AttestationRecord(id: random.uuid().uuidString.lowercased(), principleID: request.principleID, statement: request.statement,
                                       attestedBy: request.attestedBy, attestedAt: request.attestedAt ?? now, expiresAt: request.expiresAt,
                                       createdAt: now, createdBy: request.recordedBy)
        // Round to the store's precision first, so what is checked is what is stored.
        record.attestedAt = StoreCoding.date(millis: StoreCoding.millis(record.attestedAt))
        record.expiresAt = StoreCoding.date(millis: StoreCoding.millis(record.expiresAt))
        record.createdAt = StoreCoding.date(millis: StoreCoding.millis(record.createdAt))
        try AttestationLimits.validate(record, files: [])
        let files = try EvidenceFiles.read(request.files)
        let stored = try await store.createAttestation(record, files: files)
        try await AttestationEvents(store: store, clock: clock, random: random).added(stored)
        return stored
    }

    /// Stamps the revocation and records the event; throws `notFound` for an unknown id and `conflict`
    /// when it was revoked already (nothing is changed then). Returns the revoked attestation.
    public func revoke(id: String, reason: String, by operatorName: String) async throws -> AttestationRecord {
        try AttestationLimits.validateID(id)
        guard let existing = try await store.attestation(id: id) else { throw StoreError(.notFound, "no attestation \(id)") }
        if let at = existing.revokedAt {
            throw StoreError(.conflict, "attestation \(id) was revoked already at \(AssessmentRecords.rfc3339(at)) by \(existing.revokedBy ?? "?"); nothing was changed")
        }
        let now = StoreCoding.date(millis: StoreCoding.millis(clock.now()))
        guard try await store.revokeAttestation(id: id, at: now, by: operatorName, reason: reason) else {
            throw StoreError(.conflict, "attestation \(id) was revoked meanwhile; nothing was changed")
        }
        guard let revoked = try await store.attestation(id: id) else { throw StoreError(.notFound, "no attestation \(id)") }
        try await AttestationEvents(store: store, clock: clock, random: random).revoked(revoked)
        return revoked
    }

    static func quoted(_ s: String) -> String {
        "\"" + String(s.unicodeScalars.prefix(40).map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) }) + "\""
    }
}

/// Reads evidence files from disk for an attestation, refusing — with the path
/// and the reason — anything that is not a readable regular file within
/// ``AttestationLimits`` (missing, a directory or device, permission denied,
/// too large, too many, a name that is not a plain base name). Sizes are
/// checked before any file is read, so a huge (or sparse) file is never read.
public enum EvidenceFiles {
    public static func read(_ paths: [String]) throws -> [AttestationFileContent] {
        guard paths.count <= AttestationLimits.maxFiles else {
            throw AssessmentError.attestation("\(paths.count) evidence files; at most \(AttestationLimits.maxFiles) per attestation")
        }
        var sizes: [Int] = []
        var names = Set<String>()
        for path in paths {
            let name = URL(fileURLWithPath: path).lastPathComponent
            do { try AttestationLimits.validateFileName(name) } catch let e as StoreError {
                throw AssessmentError.attestation("evidence file \(shown(path)): \(e.message)")
            }
            guard names.insert(name).inserted else {
                throw AssessmentError.attestation("evidence file \(shown(path)): another file named \(shown(name)) is already attached")
            }
            sizes.append(try size(of: path))
        }
        let total = sizes.reduce(0, +)
        guard total <= AttestationLimits.maxTotalBytes else {
            throw AssessmentError.attestation("the evidence files have \(total) bytes in all; at most \(AttestationLimits.maxTotalBytes) (100 MiB) per attestation")
        }
        return try paths.map { AttestationFileContent(name: URL(fileURLWithPath: $0).lastPathComponent, bytes: try contents(of: $0)) }
    }

    /// The size of a regular file, or a refusal naming the file and why.
    static func size(of path: String) throws -> Int {
        var st = stat()
        guard stat(path, &st) == 0 else { throw refusal(path, errno) }
        let type = st.st_mode & S_IFMT
        guard type != S_IFDIR else { throw AssessmentError.attestation("evidence file \(shown(path)): is a directory, not a file") }
        guard type == S_IFREG else { throw AssessmentError.attestation("evidence file \(shown(path)): is not a regular file") }
        guard st.st_size <= off_t(AttestationLimits.maxFileBytes) else {
            throw AssessmentError.attestation("evidence file \(shown(path)): \(st.st_size) bytes; at most \(AttestationLimits.maxFileBytes) (25 MiB) per file")
        }
        return Int(st.st_size)
    }

    /// The bytes of a regular file, reading at most one byte beyond the limit (a file that grew meanwhile is refused).
    static func contents(of path: String) throws -> Data {
        _ = try size(of: path)
        let fd = open(path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { throw refusal(path, errno) }
        defer { close(fd) }
        // What was opened must still be a regular file (not swapped for a FIFO or device since the check).
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw refusal(path, errno) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw AssessmentError.attestation("evidence file \(shown(path)): is not a regular file") }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw refusal(path, errno)
            }
            if n == 0 { break }
            data.append(contentsOf: buffer[0..<n])
            guard data.count <= AttestationLimits.maxFileBytes else {
                throw AssessmentError.attestation("evidence file \(shown(path)): more than \(AttestationLimits.maxFileBytes) bytes (25 MiB) per file")
            }
        }
        return data
    }

    /// A path or name for a message: control characters escaped (it came from the command line and goes to a terminal).
    public static func shown(_ path: String) -> String {
        String(path.unicodeScalars.prefix(500).map { $0.value < 0x20 || ($0.value >= 0x7F && $0.value < 0xA0) ? "\\u{\(String($0.value, radix: 16))}" : String($0) }
            .joined())
    }

    static func refusal(_ path: String, _ code: Int32) -> AssessmentError {
        switch code {
        case ENOENT: .attestation("evidence file \(shown(path)): no such file")
        case EACCES, EPERM: .attestation("evidence file \(shown(path)): permission denied")
        case EISDIR: .attestation("evidence file \(shown(path)): is a directory, not a file")
        default: .attestation("evidence file \(shown(path)): cannot be read (\(String(cString: strerror(code))))")
        }
    }
}

/// POSIX `read(2)` (named apart from ``EvidenceFiles/read(_:)``).
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int { read(fd, buffer, count) }
