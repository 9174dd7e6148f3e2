import MenshenStorage

/// The SQLite schema, as an ordered list of migrations. Never edit a released
/// migration: add a new one. Times are INTEGER milliseconds since the epoch.
public enum SQLiteMigrations {
    public static let all: [Migration] = [
        Migration(version: 1, name: "directory, sessions, policies, applications, enrolment tokens", statements: [
            """
            CREATE TABLE users (
              id TEXT PRIMARY KEY, display_name TEXT NOT NULL, email TEXT, kind TEXT NOT NULL,
              disabled INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)
            """,
            "CREATE TABLE groups (id TEXT PRIMARY KEY, display_name TEXT NOT NULL)",
            "CREATE TABLE roles (id TEXT PRIMARY KEY, display_name TEXT NOT NULL, risk_tier TEXT NOT NULL)",
            """
            CREATE TABLE group_members (
              group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
              user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
              PRIMARY KEY (group_id, user_id))
            """,
            """
            CREATE TABLE role_assignments (
              role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
              user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
              PRIMARY KEY (role_id, user_id))
            """,
            """
            CREATE TABLE sessions (
              id_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
              created_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL, idle_expires_at INTEGER NOT NULL,
              absolute_expires_at INTEGER NOT NULL, loa INTEGER NOT NULL, amr TEXT NOT NULL, attributes TEXT NOT NULL,
              revoked_at INTEGER, revoked_reason TEXT)
            """,
            "CREATE INDEX sessions_user ON sessions(user_id)",
            """
            CREATE TABLE policies (
              policy_id TEXT NOT NULL, version INTEGER NOT NULL, text TEXT NOT NULL, author TEXT NOT NULL,
              comment TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (policy_id, version))
            """,
            """
            CREATE TABLE applications (
              id TEXT PRIMARY KEY, display_name TEXT NOT NULL, host TEXT NOT NULL, path_prefix TEXT NOT NULL,
              upstreams TEXT NOT NULL, classification TEXT NOT NULL, scenario TEXT, updated_at INTEGER NOT NULL)
            """,
            """
            CREATE TABLE enrolment_tokens (
              token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
              purpose TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, used_at INTEGER)
            """,
        ]),
        Migration(version: 2, name: "append-only event log with hash chain", statements: [
            """
            CREATE TABLE events (
              seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, time INTEGER NOT NULL, class_uid INTEGER NOT NULL,
              severity_id INTEGER NOT NULL, user_id TEXT, payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)
            """,
            "CREATE INDEX events_time ON events(time)",
            "CREATE INDEX events_user ON events(user_id, time)",
            // Append-only: the database itself refuses edits and deletions of
            // event rows (retention pruning will go through a dedicated, audited path).
            "CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END",
            "CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END",
        ]),
        Migration(version: 3, name: "credentials and single-use flow state", statements: [
            """
            CREATE TABLE credentials (
              id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, kind TEXT NOT NULL,
              label TEXT NOT NULL, data TEXT NOT NULL, version INTEGER NOT NULL, created_at INTEGER NOT NULL, last_used_at INTEGER)
            """,
            "CREATE INDEX credentials_user ON credentials(user_id, created_at)",
            """
            CREATE TABLE flow_states (
              id_hash TEXT PRIMARY KEY, kind TEXT NOT NULL, user_id TEXT, data TEXT NOT NULL,
              created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)
            """,
            "CREATE INDEX flow_states_expiry ON flow_states(expires_at)",
        ]),
        Migration(version: 4, name: "change counters advanced by triggers (what the gateway re-checks)", statements: [
            "CREATE TABLE change_counters (kind TEXT PRIMARY KEY, generation INTEGER NOT NULL)",
            "INSERT INTO change_counters(kind, generation) VALUES ('access', 0), ('configuration', 0)",
            "CREATE TRIGGER users_updated AFTER UPDATE ON users BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER users_deleted AFTER DELETE ON users BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER members_added AFTER INSERT ON group_members BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER members_removed AFTER DELETE ON group_members BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER role_assignments_added AFTER INSERT ON role_assignments BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER role_assignments_removed AFTER DELETE ON role_assignments BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER roles_updated AFTER UPDATE ON roles BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER sessions_revoked AFTER UPDATE OF revoked_at ON sessions BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER policies_inserted AFTER INSERT ON policies BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'configuration'; END",
            "CREATE TRIGGER policies_deleted AFTER DELETE ON policies BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'configuration'; END",
            "CREATE TRIGGER applications_inserted AFTER INSERT ON applications BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'configuration'; END",
            "CREATE TRIGGER applications_updated AFTER UPDATE ON applications BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'configuration'; END",
            "CREATE TRIGGER applications_deleted AFTER DELETE ON applications BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'configuration'; END",
        ]),
        Migration(version: 5, name: "change counters also for deleted roles, groups and sessions and edited policies", statements: [
            "CREATE TRIGGER roles_deleted AFTER DELETE ON roles BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER groups_deleted AFTER DELETE ON groups BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER sessions_deleted AFTER DELETE ON sessions BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER policies_updated AFTER UPDATE ON policies BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'configuration'; END",
        ]),
        Migration(version: 6, name: "device inventory and device certificates", statements: [
            """
            CREATE TABLE devices (
              id TEXT PRIMARY KEY, owner_id TEXT REFERENCES users(id) ON DELETE SET NULL, display_name TEXT NOT NULL,
              device_class TEXT NOT NULL, platform TEXT NOT NULL, hardware_bound INTEGER NOT NULL, state TEXT NOT NULL,
              compliant INTEGER NOT NULL, compliance_reasons TEXT NOT NULL, posture TEXT, last_posture_at INTEGER,
              max_vulnerability_severity INTEGER NOT NULL, version INTEGER NOT NULL, enrolled_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)
            """,
            """
            CREATE TABLE device_certificates (
              serial TEXT PRIMARY KEY, device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
              fingerprint TEXT NOT NULL UNIQUE, public_key_fingerprint TEXT NOT NULL, not_before INTEGER NOT NULL,
              not_after INTEGER NOT NULL, revoked_at INTEGER, revoked_reason TEXT)
            """,
            "CREATE INDEX device_certificates_device ON device_certificates(device_id)",
            "CREATE TRIGGER devices_updated AFTER UPDATE ON devices BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER devices_deleted AFTER DELETE ON devices BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER device_certificates_revoked AFTER UPDATE OF revoked_at ON device_certificates BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
        ]),
        Migration(version: 7, name: "signed audit checkpoints of the event chain", statements: [
            """
            CREATE TABLE audit_checkpoints (
              seq INTEGER NOT NULL, key_id TEXT NOT NULL, event_id TEXT NOT NULL, hash TEXT NOT NULL, time INTEGER NOT NULL,
              signature TEXT NOT NULL, PRIMARY KEY (seq, key_id))
            """,
            "CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END",
            "CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END",
        ]),
        Migration(version: 8, name: "named consumer cursors over the event log (SIEM export, detections, playbooks)", statements: [
            "CREATE TABLE consumer_cursors (name TEXT PRIMARY KEY, sequence INTEGER NOT NULL CHECK (sequence >= 0), updated_at INTEGER NOT NULL)",
        ]),
        Migration(version: 9, name: "per-user risk contributions for the policy engine (written by detections, read by the gateway)", statements: [
            """
            CREATE TABLE risk_scores (
              user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE, contributions TEXT NOT NULL, updated_at INTEGER NOT NULL)
            """,
            "CREATE TRIGGER risk_scores_inserted AFTER INSERT ON risk_scores BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER risk_scores_updated AFTER UPDATE ON risk_scores BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER risk_scores_deleted AFTER DELETE ON risk_scores BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
        ]),
        Migration(version: 10, name: "playbook steps held for an operator's approval", statements: [
            """
            CREATE TABLE playbook_approvals (
              id TEXT PRIMARY KEY, playbook TEXT NOT NULL, action TEXT NOT NULL, finding_uid TEXT NOT NULL, summary TEXT NOT NULL,
              step TEXT NOT NULL, state TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, decided_by TEXT, decided_at INTEGER)
            """,
            "CREATE INDEX playbook_approvals_state ON playbook_approvals(state, created_at)",
        ]),
        Migration(version: 11, name: "retention: recorded prunes of the event log; only events at or below a prune may be deleted", statements: [
            """
            CREATE TABLE event_prunes (
              through_seq INTEGER PRIMARY KEY, through_hash TEXT NOT NULL, event_count INTEGER NOT NULL,
              export_sha256 TEXT NOT NULL, pruned_at INTEGER NOT NULL)
            """,
            "CREATE TRIGGER event_prunes_no_update BEFORE UPDATE ON event_prunes BEGIN SELECT RAISE(ABORT, 'event prunes are append-only'); END",
            "CREATE TRIGGER event_prunes_no_delete BEFORE DELETE ON event_prunes BEGIN SELECT RAISE(ABORT, 'event prunes are append-only'); END",
            "DROP TRIGGER events_no_delete",
            """
            CREATE TRIGGER events_no_delete BEFORE DELETE ON events
            WHEN OLD.seq > (SELECT COALESCE(MAX(through_seq), 0) FROM event_prunes)
            BEGIN SELECT RAISE(ABORT, 'events are append-only'); END
            """,
        ]),
        Migration(version: 12, name: "vulnerability findings per device", statements: [
            "ALTER TABLE devices ADD COLUMN vulnerability_findings TEXT NOT NULL DEFAULT '[]'",
        ]),
        Migration(version: 13, name: "attestations and their evidence files (kept: only the revocation may be stamped, once)", statements: [
            """
            CREATE TABLE attestations (
              id TEXT PRIMARY KEY, principle_id TEXT NOT NULL, statement TEXT NOT NULL, attested_by TEXT NOT NULL,
              attested_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER, revoked_by TEXT, revocation_reason TEXT,
              created_at INTEGER NOT NULL, created_by TEXT NOT NULL)
            """,
            "CREATE INDEX attestations_principle ON attestations(principle_id, attested_at)",
            """
            CREATE TABLE attestation_files (
              attestation_id TEXT NOT NULL REFERENCES attestations(id), position INTEGER NOT NULL, name TEXT NOT NULL,
              sha256 TEXT NOT NULL, size INTEGER NOT NULL, content BLOB NOT NULL, PRIMARY KEY (attestation_id, name))
            """,
            "CREATE TRIGGER attestations_no_delete BEFORE DELETE ON attestations BEGIN SELECT RAISE(ABORT, 'attestations are kept'); END",
            """
            CREATE TRIGGER attestations_revoke_only BEFORE UPDATE ON attestations
            WHEN OLD.revoked_at IS NOT NULL OR NEW.revoked_at IS NULL OR NEW.id IS NOT OLD.id OR NEW.principle_id IS NOT OLD.principle_id
              OR NEW.statement IS NOT OLD.statement OR NEW.attested_by IS NOT OLD.attested_by OR NEW.attested_at IS NOT OLD.attested_at
              OR NEW.expires_at IS NOT OLD.expires_at OR NEW.created_at IS NOT OLD.created_at OR NEW.created_by IS NOT OLD.created_by
            BEGIN SELECT RAISE(ABORT, 'attestations are kept: only a revocation may be recorded, once'); END
            """,
            "CREATE TRIGGER attestation_files_no_update BEFORE UPDATE ON attestation_files BEGIN SELECT RAISE(ABORT, 'evidence files are kept'); END",
            "CREATE TRIGGER attestation_files_no_delete BEFORE DELETE ON attestation_files BEGIN SELECT RAISE(ABORT, 'evidence files are kept'); END",
        ]),
        Migration(version: 14, name: "assessment history (append-only)", statements: [
            """
            CREATE TABLE assessments (
              seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, generated_at INTEGER NOT NULL,
              window_start INTEGER NOT NULL, window_end INTEGER NOT NULL, overall_level INTEGER NOT NULL,
              document TEXT NOT NULL, sha256 TEXT NOT NULL)
            """,
            "CREATE INDEX assessments_generated ON assessments(generated_at, seq)",
            "CREATE TRIGGER assessments_no_update BEFORE UPDATE ON assessments BEGIN SELECT RAISE(ABORT, 'assessments are append-only'); END",
            "CREATE TRIGGER assessments_no_delete BEFORE DELETE ON assessments BEGIN SELECT RAISE(ABORT, 'assessments are append-only'); END",
        ]),
        Migration(version: 15, name: "cases: incidents grouping detection findings (notes and findings kept, cases never deleted)", statements: [
            """
            CREATE TABLE cases (
              id TEXT PRIMARY KEY, title TEXT NOT NULL, status_id INTEGER NOT NULL, severity_id INTEGER NOT NULL, owner TEXT,
              verdict_id INTEGER, group_key TEXT NOT NULL, created_at INTEGER NOT NULL, modified_at INTEGER NOT NULL,
              last_finding_at INTEGER NOT NULL)
            """,
            "CREATE INDEX cases_group ON cases(group_key, last_finding_at)",
            "CREATE INDEX cases_modified ON cases(modified_at)",
            """
            CREATE TABLE case_findings (
              case_id TEXT NOT NULL REFERENCES cases(id), position INTEGER NOT NULL, finding_uid TEXT NOT NULL, attached_at INTEGER NOT NULL,
              PRIMARY KEY (case_id, finding_uid), UNIQUE (case_id, position))
            """,
            """
            CREATE TABLE case_notes (
              case_id TEXT NOT NULL REFERENCES cases(id), position INTEGER NOT NULL, author TEXT NOT NULL, created_at INTEGER NOT NULL,
              text TEXT NOT NULL, PRIMARY KEY (case_id, position))
            """,
            "CREATE TRIGGER cases_no_delete BEFORE DELETE ON cases BEGIN SELECT RAISE(ABORT, 'cases are kept'); END",
            "CREATE TRIGGER cases_keep_identity BEFORE UPDATE ON cases WHEN NEW.id IS NOT OLD.id OR NEW.created_at IS NOT OLD.created_at OR NEW.group_key IS NOT OLD.group_key BEGIN SELECT RAISE(ABORT, 'a case keeps its id, creation time and group'); END",
            "CREATE TRIGGER case_findings_no_update BEFORE UPDATE ON case_findings BEGIN SELECT RAISE(ABORT, 'attached findings are kept'); END",
            "CREATE TRIGGER case_findings_no_delete BEFORE DELETE ON case_findings BEGIN SELECT RAISE(ABORT, 'attached findings are kept'); END",
            "CREATE TRIGGER case_notes_no_update BEFORE UPDATE ON case_notes BEGIN SELECT RAISE(ABORT, 'case notes are append-only'); END",
            "CREATE TRIGGER case_notes_no_delete BEFORE DELETE ON case_notes BEGIN SELECT RAISE(ABORT, 'case notes are append-only'); END",
        ]),
        // In-place edits the earlier triggers missed: memberships and role assignments changed, certificates deleted or
        // changed, a session's expiry, owner, LoA, methods or attributes changed (not its per-request touch).
        Migration(version: 16, name: "change counters also for in-place edits", statements: [
            "CREATE TRIGGER members_updated AFTER UPDATE ON group_members BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER role_assignments_updated AFTER UPDATE ON role_assignments BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER sessions_edited AFTER UPDATE OF user_id, absolute_expires_at, loa, amr, attributes ON sessions BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER device_certificates_deleted AFTER DELETE ON device_certificates BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
            "CREATE TRIGGER device_certificates_edited AFTER UPDATE OF serial, device_id, fingerprint, not_before, not_after ON device_certificates BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access'; END",
        ]),
        // Who runs a job that must run in one process only (the detections): see LeaseStore. Not an access change.
        Migration(version: 17, name: "leases for jobs that run on one node only", statements: [
            "CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, acquired_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)",
        ]),
        // Device changes get a counter of their own (StoreChange.device): a fleet's posture reports no longer advance the
        // access counter, which empties what the gateway remembers about every session.
        Migration(version: 18, name: "a change counter of their own for devices and device certificates", statements: [
            "INSERT INTO change_counters(kind, generation) VALUES ('device', 0)",
            "DROP TRIGGER devices_updated",
            "CREATE TRIGGER devices_updated AFTER UPDATE ON devices BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'device'; END",
            "DROP TRIGGER devices_deleted",
            "CREATE TRIGGER devices_deleted AFTER DELETE ON devices BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'device'; END",
            "DROP TRIGGER device_certificates_revoked",
            "CREATE TRIGGER device_certificates_revoked AFTER UPDATE OF revoked_at ON device_certificates BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'device'; END",
            "DROP TRIGGER device_certificates_deleted",
            "CREATE TRIGGER device_certificates_deleted AFTER DELETE ON device_certificates BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'device'; END",
            "DROP TRIGGER device_certificates_edited",
            "CREATE TRIGGER device_certificates_edited AFTER UPDATE OF serial, device_id, fingerprint, not_before, not_after ON device_certificates BEGIN UPDATE change_counters SET generation = generation + 1 WHERE kind = 'device'; END",
        ]),
        // Every access change also says whose access it was (`access_changes`, the last AccessChanges.kept of them), so
        // the gateway keeps what it remembers about a session through changes to other users' access.
        Migration(version: 19, name: "access changes say whose access they concern", statements: [
            "CREATE TABLE access_changes (generation INTEGER PRIMARY KEY, user_id TEXT)",
            """
            CREATE TRIGGER access_changes_kept AFTER INSERT ON access_changes BEGIN
              DELETE FROM access_changes WHERE generation <= NEW.generation - \(AccessChanges.kept); END
            """,
        ] + accessChangeTriggers.flatMap { name, event, user in
            ["DROP TRIGGER \(name)", accessChangeTrigger(name, event, user: user)]
        }),
    ]

    /// The triggers that count access changes, as migration 19 made them (a later change to them is a migration of its
    /// own, with its own list): the trigger's name, its event, and the user it
    /// concerns — an expression over `OLD`/`NEW`, or `NULL` for a change that may concern anyone. A row that changes
    /// its user concerns anyone too (`sameUser`): the old user's and the new user's remembered facts are both void.
    static let accessChangeTriggers: [(name: String, event: String, user: String)] = [
        ("users_updated", "AFTER UPDATE ON users", "CASE WHEN NEW.id = OLD.id THEN OLD.id END"),
        ("users_deleted", "AFTER DELETE ON users", "OLD.id"),
        ("members_added", "AFTER INSERT ON group_members", "NEW.user_id"),
        ("members_removed", "AFTER DELETE ON group_members", "OLD.user_id"),
        ("members_updated", "AFTER UPDATE ON group_members", sameUser),
        ("role_assignments_added", "AFTER INSERT ON role_assignments", "NEW.user_id"),
        ("role_assignments_removed", "AFTER DELETE ON role_assignments", "OLD.user_id"),
        ("role_assignments_updated", "AFTER UPDATE ON role_assignments", sameUser),
        ("roles_updated", "AFTER UPDATE ON roles", "NULL"),
        ("roles_deleted", "AFTER DELETE ON roles", "NULL"),
        ("groups_deleted", "AFTER DELETE ON groups", "NULL"),
        ("sessions_revoked", "AFTER UPDATE OF revoked_at ON sessions", sameUser),
        ("sessions_edited", "AFTER UPDATE OF user_id, absolute_expires_at, loa, amr, attributes ON sessions", sameUser),
        ("sessions_deleted", "AFTER DELETE ON sessions", "OLD.user_id"),
        ("risk_scores_inserted", "AFTER INSERT ON risk_scores", "NEW.user_id"),
        ("risk_scores_updated", "AFTER UPDATE ON risk_scores", sameUser),
        ("risk_scores_deleted", "AFTER DELETE ON risk_scores", "OLD.user_id"),
    ]
    private static let sameUser = "CASE WHEN NEW.user_id = OLD.user_id THEN OLD.user_id END"

    /// A trigger that advances the access counter and records whose access the change concerned, under the new count.
    static func accessChangeTrigger(_ name: String, _ event: String, user: String) -> String {
        """
        CREATE TRIGGER \(name) \(event) BEGIN
          UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access';
          INSERT INTO access_changes(generation, user_id) SELECT generation, \(user) FROM change_counters WHERE kind = 'access'; END
        """
    }
}
