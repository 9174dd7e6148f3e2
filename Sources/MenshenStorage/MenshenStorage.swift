/// MenshenStorage — the store seam.
///
/// Protocols for everything Menshen persists (directory, sessions, policies,
/// applications, the append-only event log, one-time enrolment tokens), the
/// records they exchange, the migration vocabulary, and ``InMemoryStore`` for
/// unit tests. Real backends live in `MenshenStorageSQLite` and
/// `MenshenStoragePostgres`; every backend must pass the same conformance
/// suite (`Tests/StorageConformanceTests`). This module performs no I/O.
public enum MenshenStorage {}
