import MenshenStorage

/// The PostgreSQL schema, as an ordered list of migrations mirroring
/// `SQLiteMigrations` version for version. Never edit a released migration.
/// Times are BIGINT milliseconds since the epoch, like the SQLite backend.
public enum PostgresMigrations {
    public static let all: [Migration] = [
        Migration(version: 1, name: "directory, sessions, policies, applications, enrolment tokens", statements: [
            """
            CREATE TABLE users (
              id TEXT PRIMARY KEY, display_name TEXT NOT NULL, email TEXT, kind TEXT NOT NULL,
              disabled BOOLEAN NOT NULL DEFAULT FALSE, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
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
              created_at BIGINT NOT NULL, last_seen_at BIGINT NOT NULL, idle_expires_at BIGINT NOT NULL,
              absolute_expires_at BIGINT NOT NULL, loa INTEGER NOT NULL, amr TEXT NOT NULL, attributes TEXT NOT NULL,
              revoked_at BIGINT, revoked_reason TEXT)
            """,
            "CREATE INDEX sessions_user ON sessions(user_id)",
            """
            CREATE TABLE policies (
              policy_id TEXT NOT NULL, version INTEGER NOT NULL, text TEXT NOT NULL, author TEXT NOT NULL,
              comment TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (policy_id, version))
            """,
            """
            CREATE TABLE applications (
              id TEXT PRIMARY KEY, display_name TEXT NOT NULL, host TEXT NOT NULL, path_prefix TEXT NOT NULL,
              upstreams TEXT NOT NULL, classification TEXT NOT NULL, scenario TEXT, updated_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE enrolment_tokens (
              token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
              purpose TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, used_at BIGINT)
            """,
        ]),
        Migration(version: 2, name: "append-only event log with hash chain", statements: [
            """
            CREATE TABLE events (
              seq BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE, time BIGINT NOT NULL, class_uid INTEGER NOT NULL,
              severity_id INTEGER NOT NULL, user_id TEXT, payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)
            """,
            "CREATE INDEX events_time ON events(time)",
            "CREATE INDEX events_user ON events(user_id, time)",
            """
            CREATE FUNCTION menshen_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'events are append-only'; END $$
            """,
            "CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events FOR EACH ROW EXECUTE FUNCTION menshen_events_append_only()",
        ]),
        Migration(version: 3, name: "credentials and single-use flow state", statements: [
            """
            CREATE TABLE credentials (
              id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, kind TEXT NOT NULL,
              label TEXT NOT NULL, data TEXT NOT NULL, version INTEGER NOT NULL, created_at BIGINT NOT NULL, last_used_at BIGINT)
            """,
            "CREATE INDEX credentials_user ON credentials(user_id, created_at)",
            """
            CREATE TABLE flow_states (
              id_hash TEXT PRIMARY KEY, kind TEXT NOT NULL, user_id TEXT, data TEXT NOT NULL,
              created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)
            """,
            "CREATE INDEX flow_states_expiry ON flow_states(expires_at)",
        ]),
        // Statement-level triggers: a counter per kind, and a NOTIFY that PostgreSQL delivers at commit
        // to every node LISTENing on menshen_changes (no home-made cluster protocol).
        Migration(version: 4, name: "change counters and LISTEN/NOTIFY triggers (what the gateway re-checks)", statements: [
            "CREATE TABLE change_counters (kind TEXT PRIMARY KEY, generation BIGINT NOT NULL)",
            "INSERT INTO change_counters(kind, generation) VALUES ('access', 0), ('configuration', 0)",
            """
            CREATE FUNCTION menshen_access_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              UPDATE change_counters SET generation = generation + 1 WHERE kind = 'access';
              PERFORM pg_notify('menshen_changes', 'access');
              RETURN NULL;
            END $$
            """,
            """
            CREATE FUNCTION menshen_configuration_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              UPDATE change_counters SET generation = generation + 1 WHERE kind = 'configuration';
              PERFORM pg_notify('menshen_changes', 'configuration');
              RETURN NULL;
            END $$
            """,
            "CREATE TRIGGER users_changed AFTER UPDATE OR DELETE ON users FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
            "CREATE TRIGGER members_changed AFTER INSERT OR DELETE ON group_members FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
            "CREATE TRIGGER role_assignments_changed AFTER INSERT OR DELETE ON role_assignments FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
            "CREATE TRIGGER roles_changed AFTER UPDATE OR DELETE ON roles FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
            "CREATE TRIGGER sessions_revoked AFTER UPDATE OF revoked_at ON sessions FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
            "CREATE TRIGGER policies_changed AFTER INSERT OR UPDATE OR DELETE ON policies FOR EACH STATEMENT EXECUTE FUNCTION menshen_configuration_changed()",
            "CREATE TRIGGER applications_changed AFTER INSERT OR UPDATE OR DELETE ON applications FOR EACH STATEMENT EXECUTE FUNCTION menshen_configuration_changed()",
        ]),
        Migration(version: 5, name: "change notifications also for deleted groups and sessions", statements: [
            "CREATE TRIGGER groups_changed AFTER DELETE ON groups FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
            "CREATE TRIGGER sessions_deleted AFTER DELETE ON sessions FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
        ]),
        Migration(version: 6, name: "device inventory and device certificates", statements: [
            """
            CREATE TABLE devices (
              id TEXT PRIMARY KEY, owner_id TEXT REFERENCES users(id) ON DELETE SET NULL, display_name TEXT NOT NULL,
              device_class TEXT NOT NULL, platform TEXT NOT NULL, hardware_bound BOOLEAN NOT NULL, state TEXT NOT NULL,
              compliant BOOLEAN NOT NULL, compliance_reasons TEXT NOT NULL, posture TEXT, last_posture_at BIGINT,
              max_vulnerability_severity INTEGER NOT NULL, version INTEGER NOT NULL, enrolled_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE device_certificates (
              serial TEXT PRIMARY KEY, device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
              fingerprint TEXT NOT NULL UNIQUE, public_key_fingerprint TEXT NOT NULL, not_before BIGINT NOT NULL,
              not_after BIGINT NOT NULL, revoked_at BIGINT, revoked_reason TEXT)
            """,
            "CREATE INDEX device_certificates_device ON device_certificates(device_id)",
            "CREATE TRIGGER devices_changed AFTER UPDATE OR DELETE ON devices FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
            "CREATE TRIGGER device_certificates_revoked AFTER UPDATE OF revoked_at ON device_certificates FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
        ]),
        Migration(version: 7, name: "signed audit checkpoints of the event chain", statements: [
            """
            CREATE TABLE audit_checkpoints (
              seq BIGINT NOT NULL, key_id TEXT NOT NULL, event_id TEXT NOT NULL, hash TEXT NOT NULL, time BIGINT NOT NULL,
              signature TEXT NOT NULL, PRIMARY KEY (seq, key_id))
            """,
            """
            CREATE FUNCTION menshen_audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'audit checkpoints are append-only'; END $$
            """,
            "CREATE TRIGGER audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON audit_checkpoints FOR EACH ROW EXECUTE FUNCTION menshen_audit_checkpoints_append_only()",
        ]),
        Migration(version: 8, name: "named consumer cursors over the event log (SIEM export, detections, playbooks)", statements: [
            "CREATE TABLE consumer_cursors (name TEXT PRIMARY KEY, sequence BIGINT NOT NULL CHECK (sequence >= 0), updated_at BIGINT NOT NULL)",
        ]),
        Migration(version: 9, name: "per-user risk contributions for the policy engine (written by detections, read by the gateway)", statements: [
            """
            CREATE TABLE risk_scores (
              user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE, contributions TEXT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "CREATE TRIGGER risk_scores_changed AFTER INSERT OR UPDATE OR DELETE ON risk_scores FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
        ]),
        Migration(version: 10, name: "playbook steps held for an operator's approval", statements: [
            """
            CREATE TABLE playbook_approvals (
              id TEXT PRIMARY KEY, playbook TEXT NOT NULL, action TEXT NOT NULL, finding_uid TEXT NOT NULL, summary TEXT NOT NULL,
              step TEXT NOT NULL, state TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, decided_by TEXT, decided_at BIGINT)
            """,
            "CREATE INDEX playbook_approvals_state ON playbook_approvals(state, created_at)",
        ]),
        Migration(version: 11, name: "retention: recorded prunes of the event log; only events at or below a prune may be deleted", statements: [
            """
            CREATE TABLE event_prunes (
              through_seq BIGINT PRIMARY KEY, through_hash TEXT NOT NULL, event_count BIGINT NOT NULL,
              export_sha256 TEXT NOT NULL, pruned_at BIGINT NOT NULL)
            """,
            """
            CREATE FUNCTION menshen_event_prunes_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'event prunes are append-only'; END $$
            """,
            "CREATE TRIGGER event_prunes_no_change BEFORE UPDATE OR DELETE ON event_prunes FOR EACH ROW EXECUTE FUNCTION menshen_event_prunes_append_only()",
            """
            CREATE FUNCTION menshen_events_prunable() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'DELETE' AND OLD.seq <= (SELECT COALESCE(MAX(through_seq), 0) FROM event_prunes) THEN RETURN OLD; END IF;
              RAISE EXCEPTION 'events are append-only';
            END $$
            """,
            "DROP TRIGGER events_no_update ON events",
            "CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events FOR EACH ROW EXECUTE FUNCTION menshen_events_prunable()",
        ]),
        Migration(version: 12, name: "vulnerability findings per device", statements: [
            "ALTER TABLE devices ADD COLUMN vulnerability_findings TEXT NOT NULL DEFAULT '[]'",
        ]),
        Migration(version: 13, name: "attestations and their evidence files (kept: only the revocation may be stamped, once)", statements: [
            """
            CREATE TABLE attestations (
              id TEXT PRIMARY KEY, principle_id TEXT NOT NULL, statement TEXT NOT NULL, attested_by TEXT NOT NULL,
              attested_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, revoked_at BIGINT, revoked_by TEXT, revocation_reason TEXT,
              created_at BIGINT NOT NULL, created_by TEXT NOT NULL)
            """,
            "CREATE INDEX attestations_principle ON attestations(principle_id, attested_at)",
            """
            CREATE TABLE attestation_files (
              attestation_id TEXT NOT NULL REFERENCES attestations(id), position INTEGER NOT NULL, name TEXT NOT NULL,
              sha256 TEXT NOT NULL, size BIGINT NOT NULL, content BYTEA NOT NULL, PRIMARY KEY (attestation_id, name))
            """,
            """
            CREATE FUNCTION menshen_attestations_kept() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'UPDATE' AND OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
                 AND NEW.id IS NOT DISTINCT FROM OLD.id AND NEW.principle_id IS NOT DISTINCT FROM OLD.principle_id
                 AND NEW.statement IS NOT DISTINCT FROM OLD.statement AND NEW.attested_by IS NOT DISTINCT FROM OLD.attested_by
                 AND NEW.attested_at IS NOT DISTINCT FROM OLD.attested_at AND NEW.expires_at IS NOT DISTINCT FROM OLD.expires_at
                 AND NEW.created_at IS NOT DISTINCT FROM OLD.created_at AND NEW.created_by IS NOT DISTINCT FROM OLD.created_by THEN
                RETURN NEW;
              END IF;
              RAISE EXCEPTION 'attestations are kept: only a revocation may be recorded, once';
            END $$
            """,
            "CREATE TRIGGER attestations_kept BEFORE UPDATE OR DELETE ON attestations FOR EACH ROW EXECUTE FUNCTION menshen_attestations_kept()",
            """
            CREATE FUNCTION menshen_attestation_files_kept() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'evidence files are kept'; END $$
            """,
            "CREATE TRIGGER attestation_files_kept BEFORE UPDATE OR DELETE ON attestation_files FOR EACH ROW EXECUTE FUNCTION menshen_attestation_files_kept()",
        ]),
        Migration(version: 14, name: "assessment history (append-only)", statements: [
            """
            CREATE TABLE assessments (
              seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id TEXT NOT NULL UNIQUE, generated_at BIGINT NOT NULL,
              window_start BIGINT NOT NULL, window_end BIGINT NOT NULL, overall_level INTEGER NOT NULL,
              document TEXT NOT NULL, sha256 TEXT NOT NULL)
            """,
            "CREATE INDEX assessments_generated ON assessments(generated_at, seq)",
            """
            CREATE FUNCTION menshen_assessments_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'assessments are append-only'; END $$
            """,
            "CREATE TRIGGER assessments_no_change BEFORE UPDATE OR DELETE ON assessments FOR EACH ROW EXECUTE FUNCTION menshen_assessments_append_only()",
        ]),
        Migration(version: 15, name: "cases: incidents grouping detection findings (notes and findings kept, cases never deleted)", statements: [
            """
            CREATE TABLE cases (
              id TEXT PRIMARY KEY, title TEXT NOT NULL, status_id INTEGER NOT NULL, severity_id INTEGER NOT NULL, owner TEXT,
              verdict_id INTEGER, group_key TEXT NOT NULL, created_at BIGINT NOT NULL, modified_at BIGINT NOT NULL,
              last_finding_at BIGINT NOT NULL)
            """,
            "CREATE INDEX cases_group ON cases(group_key, last_finding_at)",
            "CREATE INDEX cases_modified ON cases(modified_at)",
            """
            CREATE TABLE case_findings (
              case_id TEXT NOT NULL REFERENCES cases(id), position INTEGER NOT NULL, finding_uid TEXT NOT NULL, attached_at BIGINT NOT NULL,
              PRIMARY KEY (case_id, finding_uid), UNIQUE (case_id, position))
            """,
            """
            CREATE TABLE case_notes (
              case_id TEXT NOT NULL REFERENCES cases(id), position INTEGER NOT NULL, author TEXT NOT NULL, created_at BIGINT NOT NULL,
              text TEXT NOT NULL, PRIMARY KEY (case_id, position))
            """,
            """
            CREATE FUNCTION menshen_cases_kept() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'UPDATE' AND NEW.id IS NOT DISTINCT FROM OLD.id AND NEW.created_at IS NOT DISTINCT FROM OLD.created_at
                 AND NEW.group_key IS NOT DISTINCT FROM OLD.group_key THEN
                RETURN NEW;
              END IF;
              RAISE EXCEPTION 'cases are kept: a case keeps its id, creation time and group';
            END $$
            """,
            "CREATE TRIGGER cases_kept BEFORE UPDATE OR DELETE ON cases FOR EACH ROW EXECUTE FUNCTION menshen_cases_kept()",
            """
            CREATE FUNCTION menshen_case_rows_kept() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'case notes and attached findings are append-only'; END $$
            """,
            "CREATE TRIGGER case_findings_kept BEFORE UPDATE OR DELETE ON case_findings FOR EACH ROW EXECUTE FUNCTION menshen_case_rows_kept()",
            "CREATE TRIGGER case_notes_kept BEFORE UPDATE OR DELETE ON case_notes FOR EACH ROW EXECUTE FUNCTION menshen_case_rows_kept()",
        ]),
        // Writes the earlier triggers missed — TRUNCATE of any table the gateway decides on, memberships and role
        // assignments changed in place, certificates deleted or changed, a session's expiry, owner, LoA, methods or
        // attributes changed (not its per-request touch: last_seen_at, idle_expires_at) — so that every node re-checks.
        Migration(version: 16, name: "change notifications also for TRUNCATE and in-place edits", statements: [
            "CREATE TRIGGER users_truncated AFTER TRUNCATE ON users FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
            "CREATE TRIGGER groups_truncated AFTER TRUNCATE ON groups FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
            "CREATE TRIGGER roles_truncated AFTER TRUNCATE ON roles FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
            "CREATE TRIGGER members_edited AFTER UPDATE OR TRUNCATE ON group_members FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
            "CREATE TRIGGER role_assignments_edited AFTER UPDATE OR TRUNCATE ON role_assignments FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
            "CREATE TRIGGER sessions_truncated AFTER TRUNCATE ON sessions FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
            "CREATE TRIGGER sessions_edited AFTER UPDATE OF user_id, absolute_expires_at, loa, amr, attributes ON sessions FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
            "CREATE TRIGGER devices_truncated AFTER TRUNCATE ON devices FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
            "CREATE TRIGGER device_certificates_edited AFTER DELETE OR TRUNCATE OR UPDATE OF serial, device_id, fingerprint, not_before, not_after ON device_certificates FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
            "CREATE TRIGGER risk_scores_truncated AFTER TRUNCATE ON risk_scores FOR EACH STATEMENT EXECUTE FUNCTION menshen_access_changed()",
            "CREATE TRIGGER policies_truncated AFTER TRUNCATE ON policies FOR EACH STATEMENT EXECUTE FUNCTION menshen_configuration_changed()",
            "CREATE TRIGGER applications_truncated AFTER TRUNCATE ON applications FOR EACH STATEMENT EXECUTE FUNCTION menshen_configuration_changed()",
        ]),
        // Who runs a job that must run on one node only (the detections): see LeaseStore. Times are the server's clock
        // (milliseconds since 1970), so the nodes' clocks need not agree. Not an access change: no notification.
        Migration(version: 17, name: "leases for jobs that run on one node only", statements: [
            "CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, acquired_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)",
        ]),
        // Device changes get a counter and a notification of their own (StoreChange.device): a fleet's posture reports no
        // longer make every node re-check every long-lived connection, only those that present a device certificate.
        //
        // The counters become sequences (read through a view of the same name and shape): a trigger's nextval never
        // waits, where its UPDATE of a counter row held that row until its transaction ended — a transaction left open
        // after editing a user (an administrator's psql) held up every revocation, sign-out and membership change on
        // every node. Sequences are not transactional: a change rolled back still counts (one needless re-check), and
        // the backstop poll may see a count before its commit (the NOTIFY at commit follows it; the poll reports a kind
        // on two reads). The old table is locked first, so that no count made meanwhile is lost in the carry-over.
        Migration(version: 18, name: "change counters as sequences (no lock held until commit); a counter and notification of their own for devices", statements: [
            "LOCK TABLE change_counters IN ACCESS EXCLUSIVE MODE",
            "CREATE SEQUENCE change_access_generation MINVALUE 0",
            "CREATE SEQUENCE change_configuration_generation MINVALUE 0",
            "CREATE SEQUENCE change_device_generation MINVALUE 0",
            """
            DO $$
            BEGIN
              PERFORM setval('change_access_generation', (SELECT generation FROM change_counters WHERE kind = 'access'), true);
              PERFORM setval('change_configuration_generation', (SELECT generation FROM change_counters WHERE kind = 'configuration'), true);
              PERFORM setval('change_device_generation', 0, true);
            END $$
            """,
            "DROP TABLE change_counters",
            """
            CREATE VIEW change_counters (kind, generation) AS
              SELECT 'access'::text, last_value FROM change_access_generation
              UNION ALL SELECT 'configuration'::text, last_value FROM change_configuration_generation
              UNION ALL SELECT 'device'::text, last_value FROM change_device_generation
            """,
            """
            CREATE OR REPLACE FUNCTION menshen_access_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              PERFORM nextval('change_access_generation');
              PERFORM pg_notify('menshen_changes', 'access');
              RETURN NULL;
            END $$
            """,
            """
            CREATE OR REPLACE FUNCTION menshen_configuration_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              PERFORM nextval('change_configuration_generation');
              PERFORM pg_notify('menshen_changes', 'configuration');
              RETURN NULL;
            END $$
            """,
            """
            CREATE FUNCTION menshen_device_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              PERFORM nextval('change_device_generation');
              PERFORM pg_notify('menshen_changes', 'device');
              RETURN NULL;
            END $$
            """,
            "DROP TRIGGER devices_changed ON devices",
            "CREATE TRIGGER devices_changed AFTER UPDATE OR DELETE ON devices FOR EACH STATEMENT EXECUTE FUNCTION menshen_device_changed()",
            "DROP TRIGGER devices_truncated ON devices",
            "CREATE TRIGGER devices_truncated AFTER TRUNCATE ON devices FOR EACH STATEMENT EXECUTE FUNCTION menshen_device_changed()",
            "DROP TRIGGER device_certificates_revoked ON device_certificates",
            "CREATE TRIGGER device_certificates_revoked AFTER UPDATE OF revoked_at ON device_certificates FOR EACH STATEMENT EXECUTE FUNCTION menshen_device_changed()",
            "DROP TRIGGER device_certificates_edited ON device_certificates",
            "CREATE TRIGGER device_certificates_edited AFTER DELETE OR TRUNCATE OR UPDATE OF serial, device_id, fingerprint, not_before, not_after ON device_certificates FOR EACH STATEMENT EXECUTE FUNCTION menshen_device_changed()",
        ]),
        // SQLite's migration 19 records whose access each access change concerned, for the gateway's memory of session
        // facts. On PostgreSQL the gateway remembers none (it reads the session on every request: see
        // CommittedAccessGeneration), so there is nothing to record; the version is kept in step with SQLite's.
        Migration(version: 19, name: "access changes say whose access they concern (SQLite only; nothing to do here)", statements: []),
    ]
}
