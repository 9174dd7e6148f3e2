import Foundation

/// Named, persistent positions in the event log for the log's consumers (SIEM
/// export, detections, playbooks): each remembers the sequence of the last
/// event it has finished with, so a restart resumes there instead of at the
/// start (everything again) or the end (a gap).
///
/// A cursor is a plain value the consumer owns; the store does not check it
/// against the log (a consumer may move it back to replay). Names are short
/// ASCII identifiers (``ConsumerCursorName/validate(_:)``).
public protocol ConsumerCursorStore: Sendable {
    /// The saved sequence of `name`, or nil when it never saved one.
    func cursor(named name: String) async throws -> Int64?
    /// Saves (creates or replaces) `name`'s sequence, stamped `at`.
    /// Throws `invalidInput` for a bad name or a negative sequence, and stores nothing then.
    func saveCursor(named name: String, sequence: Int64, at: Date) async throws
}

/// The rules for consumer cursor names, the same on every backend.
public enum ConsumerCursorName {
    /// Longest accepted name, in bytes.
    public static let maxLength = 64

    /// Accepts 1–64 characters of `A–Z a–z 0–9 . _ : -` (e.g. `export.syslog`); throws `invalidInput` otherwise.
    public static func validate(_ name: String) throws {
        guard !name.isEmpty, name.utf8.count <= maxLength,
              name.utf8.allSatisfy({ b in
                  (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F || b == 0x3A || b == 0x2D
              })
        else { throw StoreError(.invalidInput, "consumer cursor name must be 1–\(maxLength) characters of A-Z a-z 0-9 . _ : -") }
    }

    /// Checks a name and a sequence together.
    public static func validate(_ name: String, sequence: Int64) throws {
        try validate(name)
        guard sequence >= 0 else { throw StoreError(.invalidInput, "consumer cursor sequence must not be negative") }
    }
}
