//! The schema, described once for both backends, and its migrations: numbered steps applied
//! in order, each recorded in `schema_version`. Step texts use three type words that
//! [`Dialect::ddl`] spells per backend (`BLOB`/`BYTEA`, `INTEGER`/`BIGINT`, and the
//! auto-numbered key); what cannot be said the same way in both (the append-only triggers,
//! rewriting a table's primary key) is a [`Part::Dialect`] part with one text per backend.
//!
//! A database whose schema is newer than this binary knows is refused, never touched.

use crate::StoreError;
use crate::sql::{Conn, Dialect, Stmt};

/// A part of a migration step.
enum Part {
    /// The same DDL for both backends, with `{blob}`, `{int}` and `{serial}` type words.
    Common(&'static str),
    /// Rows of an append-only table cannot be changed or deleted (a database error names the
    /// table); on PostgreSQL neither can the table be truncated.
    AppendOnly(&'static str),
    /// Text that differs: (SQLite, PostgreSQL).
    Dialect(&'static str, &'static str),
}

/// The migration steps, oldest first; step N (1-based) brings the schema to version N.
const STEPS: &[&[Part]] = &[
    // 1: the vault core.
    &[Part::Common(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value {blob} NOT NULL);
         CREATE TABLE subject_keys (
            subject_id TEXT PRIMARY KEY,
            key_version {int} NOT NULL,
            wrapped_key {blob} NOT NULL,
            created_at {int} NOT NULL);
         CREATE TABLE records (
            record_id TEXT PRIMARY KEY,
            subject_id TEXT NOT NULL,
            collection TEXT NOT NULL,
            created_at {int} NOT NULL,
            updated_at {int} NOT NULL);
         CREATE INDEX records_by_subject ON records (subject_id, collection, created_at);
         CREATE TABLE record_fields (
            record_id TEXT NOT NULL REFERENCES records (record_id),
            field TEXT NOT NULL,
            ciphertext {blob} NOT NULL,
            purpose TEXT NOT NULL,
            updated_at {int} NOT NULL,
            PRIMARY KEY (record_id, field)) {without_rowid};
         CREATE TABLE blind_index (
            collection TEXT NOT NULL,
            field TEXT NOT NULL,
            digest {blob} NOT NULL,
            record_id TEXT NOT NULL REFERENCES records (record_id),
            subject_id TEXT NOT NULL,
            PRIMARY KEY (collection, field, digest, record_id)) {without_rowid};
         CREATE INDEX blind_index_by_record ON blind_index (record_id, field);
         CREATE TABLE principals (
            principal_id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            roles TEXT NOT NULL,
            key_id TEXT NOT NULL UNIQUE,
            key_hash {blob} NOT NULL,
            created_at {int} NOT NULL,
            revoked_at {int});",
    )],
    // 2: the subject ledger (consents, objections, opt-outs, restrictions), append-only.
    &[
        Part::Common(
            "CREATE TABLE subject_ledger (
                seq {serial},
                subject_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                purpose TEXT,
                value {int} NOT NULL,
                notice_version TEXT,
                method TEXT NOT NULL,
                evidence TEXT,
                principal_id TEXT NOT NULL,
                at {int} NOT NULL);
             CREATE INDEX subject_ledger_by_subject ON subject_ledger (subject_id, seq);",
        ),
        Part::AppendOnly("subject_ledger"),
    ],
    // 3: the audit log, append-only.
    &[
        Part::Common("CREATE TABLE audit_log (seq {serial}, at {int} NOT NULL, entry TEXT NOT NULL);"),
        Part::AppendOnly("audit_log"),
    ],
    // 4: vaulted tokens, sealed under their subject's data key.
    &[Part::Common(
        "CREATE TABLE tokens (
            token TEXT NOT NULL,
            subject_id TEXT NOT NULL,
            collection TEXT NOT NULL,
            field TEXT NOT NULL,
            kind TEXT NOT NULL,
            ciphertext {blob} NOT NULL,
            created_at {int} NOT NULL,
            PRIMARY KEY (token, subject_id));
         CREATE INDEX tokens_by_subject ON tokens (subject_id);",
    )],
    // 5: leaf hashes of audit entries, and signed checkpoints of the audit log's Merkle tree.
    &[
        Part::Common(
            "ALTER TABLE audit_log ADD COLUMN leaf {blob};
             CREATE TABLE audit_checkpoints (
                tree_size {int} PRIMARY KEY,
                root {blob} NOT NULL,
                at {int} NOT NULL,
                note TEXT NOT NULL);",
        ),
        Part::AppendOnly("audit_checkpoints"),
    ],
    // 6: audit entries get indexed columns derived from their canonical text (the text and
    // its leaf hash stay the source of truth; `audit verify` checks the columns against it).
    // Existing entries are filled from their text, with the append-only guard lifted for
    // that one statement inside this step's transaction. On PostgreSQL the append-only tables
    // of databases made before this step get their `BEFORE TRUNCATE` triggers here (newer
    // databases had them from `Part::AppendOnly`, so each is replaced).
    &[
        Part::Common(
            "ALTER TABLE audit_log ADD COLUMN principal TEXT;
             ALTER TABLE audit_log ADD COLUMN action TEXT;
             ALTER TABLE audit_log ADD COLUMN decision TEXT;
             ALTER TABLE audit_log ADD COLUMN purpose TEXT;
             ALTER TABLE audit_log ADD COLUMN subject TEXT;",
        ),
        Part::Dialect(
            "DROP TRIGGER audit_log_no_update;
             UPDATE audit_log SET principal = json_extract(entry, '$.principal'),
                action = json_extract(entry, '$.action'), decision = json_extract(entry, '$.decision'),
                purpose = json_extract(entry, '$.purpose'), subject = json_extract(entry, '$.subject')
                WHERE json_valid(entry);
             CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
                BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;",
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change;
             UPDATE audit_log SET principal = entry::jsonb->>'principal', action = entry::jsonb->>'action',
                decision = entry::jsonb->>'decision', purpose = entry::jsonb->>'purpose',
                subject = entry::jsonb->>'subject';
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change;
             CREATE OR REPLACE FUNCTION audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION 'audit_checkpoints is append-only'; END; $$;
             DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
             CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
                FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
             DROP TRIGGER IF EXISTS subject_ledger_no_truncate ON subject_ledger;
             CREATE TRIGGER subject_ledger_no_truncate BEFORE TRUNCATE ON subject_ledger
                FOR EACH STATEMENT EXECUTE FUNCTION subject_ledger_append_only();
             DROP TRIGGER IF EXISTS audit_checkpoints_no_truncate ON audit_checkpoints;
             CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
                FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_append_only();",
        ),
        // By principal: an ordinary index (few principals, times increasing: appends stay at
        // the right edge). By subject: subjects are random, so an ordinary index would dirty a
        // page per entry in every commit; `audit_subject_index` is filled in batches by a job
        // instead (`Audit::index_subjects`), and queries read the entries after its
        // `audit_index_state.upto` from the log itself.
        Part::Common(
            "CREATE INDEX audit_by_principal ON audit_log (principal, at);
             CREATE TABLE audit_subject_index (
                subject TEXT NOT NULL,
                seq {int} NOT NULL,
                PRIMARY KEY (subject, seq)) {without_rowid};
             CREATE TABLE audit_index_state (id {int} PRIMARY KEY, upto {int} NOT NULL);
             INSERT INTO audit_subject_index (subject, seq) SELECT subject, seq FROM audit_log WHERE subject IS NOT NULL;
             INSERT INTO audit_index_state (id, upto) SELECT 1, COALESCE(MAX(seq), 0) FROM audit_log;",
        ),
    ],
    // 7: data keys by class. A subject has one key per class: `default` for its data, and one
    // per retention class that outlives an erasure (see ARCHITECTURE.md, "Erasure and the
    // data that survives it"); each sealed field names the class of the key it is sealed under.
    &[
        Part::Dialect(
            "CREATE TABLE subject_keys_v7 (
                subject_id TEXT NOT NULL,
                key_class TEXT NOT NULL DEFAULT 'default',
                key_version INTEGER NOT NULL,
                wrapped_key BLOB NOT NULL,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (subject_id, key_class)) WITHOUT ROWID;
             INSERT INTO subject_keys_v7 (subject_id, key_class, key_version, wrapped_key, created_at)
                SELECT subject_id, 'default', key_version, wrapped_key, created_at FROM subject_keys;
             DROP TABLE subject_keys;
             ALTER TABLE subject_keys_v7 RENAME TO subject_keys;",
            "ALTER TABLE subject_keys ADD COLUMN key_class TEXT NOT NULL DEFAULT 'default';
             ALTER TABLE subject_keys DROP CONSTRAINT subject_keys_pkey;
             ALTER TABLE subject_keys ADD PRIMARY KEY (subject_id, key_class);",
        ),
        Part::Common("ALTER TABLE record_fields ADD COLUMN key_class TEXT NOT NULL DEFAULT 'default';"),
    ],
    // 8: tokens unique across the vault. A token is stored under a keyed digest of itself
    // (its name), never in clear; `token_names` holds one row per name: its field and, for a
    // deterministic token, a keyed digest of the value it stands for (`binding`, NULL for a
    // token that belongs to one subject's value alone), so that a token drawn for another
    // value is seen as taken inside the transaction that draws it. `token_values` seals the
    // value under each subject's data key. The tokens of v0.1 to 7, stored in clear and
    // keyed by (token, subject), stay readable in `tokens_v1` and are no longer written.
    &[Part::Common(
        "ALTER TABLE tokens RENAME TO tokens_v1;
         CREATE TABLE token_names (
            name {blob} PRIMARY KEY,
            collection TEXT NOT NULL,
            field TEXT NOT NULL,
            binding {blob}) {without_rowid};
         CREATE TABLE token_values (
            name {blob} NOT NULL REFERENCES token_names (name),
            subject_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            ciphertext {blob} NOT NULL,
            created_at {int} NOT NULL,
            PRIMARY KEY (name, subject_id)) {without_rowid};
         CREATE INDEX token_values_by_subject ON token_values (subject_id);",
    )],
    // 9: the audit log's tiles (C2SP tlog-tiles, height 8), full tiles only: each its 256
    // hashes, its root, and for level 0 the sequence number of its last entry (the leaves
    // after it are read from the log). Proofs read O(log n) of them instead of every leaf.
    &[
        Part::Common(
            "CREATE TABLE audit_tiles (
                level {int} NOT NULL,
                idx {int} NOT NULL,
                hashes {blob} NOT NULL,
                root {blob} NOT NULL,
                last_seq {int} NOT NULL,
                PRIMARY KEY (level, idx));",
        ),
        Part::AppendOnly("audit_tiles"),
    ],
    // 10: API keys may expire (Unix milliseconds; none when null).
    &[Part::Common("ALTER TABLE principals ADD COLUMN expires_at {int};")],
    // 11: data subject requests (GDPR Art. 12-22, CCPA), kept 24 months after they close
    // (`keep_until`); the subject id is cleared when the subject is erased (the keyed digest
    // stays, as in the audit log); `version` counts changes, each of which expects the version
    // it read (optimistic locking). `erasures` is the tombstone list: the keyed digest of every
    // erased subject, append-only, re-applied when an older backup is restored.
    &[
        Part::Common(
            "CREATE TABLE requests (
                request_id TEXT PRIMARY KEY,
                subject_id TEXT,
                subject_digest TEXT NOT NULL,
                kind TEXT NOT NULL,
                jurisdiction TEXT NOT NULL,
                received_via TEXT NOT NULL,
                status TEXT NOT NULL,
                received_at {int} NOT NULL,
                acknowledge_by {int},
                due_at {int} NOT NULL,
                extended_at {int},
                extension_reason TEXT,
                verified_via TEXT,
                verified_by TEXT,
                verified_at {int},
                denial_reason TEXT,
                outcome TEXT,
                created_by TEXT NOT NULL,
                updated_at {int} NOT NULL,
                closed_at {int},
                keep_until {int} NOT NULL,
                version {int} NOT NULL);
             CREATE INDEX requests_by_status ON requests (status, due_at);
             CREATE INDEX requests_by_subject ON requests (subject_digest);
             CREATE INDEX requests_by_keep_until ON requests (keep_until);
             CREATE TABLE erasures (
                seq {serial},
                subject_digest TEXT NOT NULL,
                request_id TEXT,
                at {int} NOT NULL);",
        ),
        Part::AppendOnly("erasures"),
    ],
    // 12: the Art. 19 outbox. A notification's body names the subject, so it is cleared when
    // the notification is final (delivered, failed); `last_error` holds an HTTP status or an
    // error class, never a receiver's answer. Every attempt is logged, append-only (ids and
    // outcomes only, no personal data).
    &[
        Part::Common(
            "CREATE TABLE notifications (
                id {serial},
                request_id TEXT NOT NULL,
                recipient TEXT NOT NULL,
                action TEXT NOT NULL,
                payload TEXT,
                status TEXT NOT NULL,
                attempts {int} NOT NULL,
                next_attempt_at {int},
                last_error TEXT,
                created_at {int} NOT NULL,
                delivered_at {int});
             CREATE INDEX notifications_by_request ON notifications (request_id, id);
             CREATE INDEX notifications_due ON notifications (next_attempt_at, id) WHERE status = 'pending';
             CREATE TABLE notification_attempts (
                seq {serial},
                notification_id {int} NOT NULL,
                at {int} NOT NULL,
                outcome TEXT NOT NULL,
                http_status {int});
             CREATE INDEX notification_attempts_by_notification ON notification_attempts (notification_id, seq);",
        ),
        Part::AppendOnly("notification_attempts"),
    ],
    // 13: purpose bindings (GDPR Art. 5(1)(b),(c),(e)). Every stored value is held for the
    // purposes bound to it, each with its own times: first bound (`bound_at`, its collection
    // under that purpose), last written under it (`renewed_at`), ended by the subject's ledger
    // (`ended_at`: a withdrawal, an objection, an opt-out) and when it stops justifying the
    // value (`expires_at`, NULL: never by time); a value with no binding left is destroyed.
    // `expires_at` is the sweeper's index (its cost grows with what expires, not with what is
    // stored). The single `purpose` of a field, overwritten by its last writer and never read,
    // goes: each field's bindings start from it (from its last write, the conservative time).
    // `retention_rules` remembers the rule each purpose's expiry times were computed with (a
    // changed rule recomputes them); `subject_activity` the subject's last activity (rules
    // running from it); `legal_holds` the holds that keep a subject or a collection from the
    // sweeper and from erasure. A token value names the purpose it was handed out under, so
    // that detokenizing answers only a purpose that may use what that purpose holds.
    &[
        Part::Common(
            "CREATE TABLE field_bindings (
                record_id TEXT NOT NULL,
                field TEXT NOT NULL,
                purpose TEXT NOT NULL,
                subject_id TEXT NOT NULL,
                collection TEXT NOT NULL,
                bound_at {int} NOT NULL,
                renewed_at {int} NOT NULL,
                ended_at {int},
                expires_at {int},
                PRIMARY KEY (record_id, field, purpose),
                FOREIGN KEY (record_id, field) REFERENCES record_fields (record_id, field)) {without_rowid};
             CREATE INDEX field_bindings_by_expiry ON field_bindings (expires_at, record_id, field, purpose)
                WHERE expires_at IS NOT NULL;
             CREATE INDEX field_bindings_by_subject ON field_bindings (subject_id, purpose);
             CREATE INDEX field_bindings_by_purpose ON field_bindings (purpose, record_id, field);
             INSERT INTO field_bindings (record_id, field, purpose, subject_id, collection, bound_at, renewed_at)
                SELECT f.record_id, f.field, f.purpose, r.subject_id, r.collection, f.updated_at, f.updated_at
                FROM record_fields f JOIN records r ON r.record_id = f.record_id;
             ALTER TABLE record_fields DROP COLUMN purpose;
             CREATE TABLE retention_rules (
                purpose TEXT PRIMARY KEY,
                rule TEXT NOT NULL,
                applied_at {int} NOT NULL);
             CREATE TABLE subject_activity (
                subject_id TEXT PRIMARY KEY,
                last_active_at {int} NOT NULL);
             CREATE TABLE legal_holds (
                hold_id TEXT PRIMARY KEY,
                subject_id TEXT,
                collection TEXT,
                reason TEXT NOT NULL,
                created_by TEXT NOT NULL,
                created_at {int} NOT NULL,
                released_at {int},
                released_by TEXT,
                release_reason TEXT);
             CREATE INDEX legal_holds_active ON legal_holds (subject_id, collection) WHERE released_at IS NULL;
             ALTER TABLE token_values ADD COLUMN purpose TEXT;",
        ),
    ],
    // 14: every version of the privacy notice the server has shown, as data (JSON) and as the
    // page people read (HTML), kept for good: a consent names the notice version the subject
    // was shown (GDPR Art. 7(1)), and what that version said must stay answerable. Erasures
    // are found by subject (a preference center link dies with its subject's erasure). A
    // subject has at most one open request of each kind from the preference center (a double
    // click opens one).
    &[
        Part::Common(
            "CREATE TABLE notices (
                version TEXT PRIMARY KEY,
                language TEXT NOT NULL,
                published_at {int} NOT NULL,
                notice TEXT NOT NULL,
                html TEXT NOT NULL);
             CREATE INDEX erasures_by_subject ON erasures (subject_digest, at);
             CREATE UNIQUE INDEX requests_one_open_from_portal ON requests (subject_digest, kind)
                WHERE received_via = 'portal' AND status IN ('received', 'verifying', 'in_progress', 'extended');",
        ),
        Part::AppendOnly("notices"),
    ],
    // 15: people and keys. Operators (people, apart from service principals) with an
    // Argon2id password, a sealed TOTP secret and the last step a code was accepted for (a
    // code never works twice), consecutive failures and the lockout they earned; their
    // sessions (the secret's hash only); their training completions, each attested by
    // someone, and their break-glass grants (an emergency role for minutes, with the reason),
    // both kept for good. API keys note when they were last used (access reviews). A
    // subject key re-wrapped by a root key rotation keeps its first wrapped form, which
    // names it across rotations.
    &[
        Part::Common(
            "CREATE TABLE operators (
                operator_id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                roles TEXT NOT NULL,
                password_hash TEXT,
                totp_sealed {blob},
                totp_confirmed_at {int},
                totp_last_step {int},
                enrol_hash {blob},
                enrol_expires_at {int},
                failed_logins {int} NOT NULL DEFAULT 0,
                locked_until {int},
                created_at {int} NOT NULL,
                created_by TEXT NOT NULL,
                disabled_at {int});
             CREATE TABLE operator_sessions (
                session_id TEXT PRIMARY KEY,
                secret_hash {blob} NOT NULL,
                operator_id TEXT NOT NULL,
                created_at {int} NOT NULL,
                expires_at {int} NOT NULL,
                revoked_at {int});
             CREATE INDEX operator_sessions_by_operator ON operator_sessions (operator_id);
             CREATE TABLE training_completions (
                operator_id TEXT NOT NULL,
                course TEXT NOT NULL,
                completed_at {int} NOT NULL,
                attested_by TEXT NOT NULL,
                recorded_at {int} NOT NULL);
             CREATE INDEX training_by_operator ON training_completions (operator_id, course, completed_at);
             CREATE TABLE break_glass (
                grant_id TEXT PRIMARY KEY,
                operator_id TEXT NOT NULL,
                session_id TEXT NOT NULL,
                role TEXT NOT NULL,
                reason TEXT NOT NULL,
                started_at {int} NOT NULL,
                expires_at {int} NOT NULL);
             CREATE INDEX break_glass_by_session ON break_glass (session_id);
             CREATE INDEX break_glass_by_time ON break_glass (started_at);
             ALTER TABLE principals ADD COLUMN last_used_at {int};
             ALTER TABLE principals ADD COLUMN created_by TEXT;
             ALTER TABLE principals ADD COLUMN client_cert {blob};
             ALTER TABLE subject_keys ADD COLUMN first_wrap {blob};",
        ),
        Part::AppendOnly("training_completions"),
        Part::AppendOnly("break_glass"),
    ],
    // 16: incidents. The breach register (GDPR Art. 33(5)): every incident, notified or not,
    // kept for good; what responders wrote (title, description, notes) is sealed by the
    // vault, the columns hold only times, names of phases and risks, and principal ids. The
    // timeline is append-only. Collections put in read-only mode while an incident is
    // contained.
    &[
        Part::Common(
            "CREATE TABLE incidents (
                incident_id TEXT PRIMARY KEY,
                opened_at {int} NOT NULL,
                opened_by TEXT NOT NULL,
                aware_at {int} NOT NULL,
                sealed {blob} NOT NULL,
                phase TEXT NOT NULL,
                risk TEXT NOT NULL,
                updated_at {int} NOT NULL);
             CREATE INDEX incidents_by_aware ON incidents (aware_at);
             CREATE TABLE incident_entries (
                entry_id {serial},
                incident_id TEXT NOT NULL,
                at {int} NOT NULL,
                by_principal TEXT NOT NULL,
                kind TEXT NOT NULL,
                sealed {blob} NOT NULL);
             CREATE INDEX incident_entries_by_incident ON incident_entries (incident_id, entry_id);
             CREATE TABLE read_only_collections (
                collection TEXT PRIMARY KEY,
                since {int} NOT NULL,
                incident_id TEXT NOT NULL,
                set_by TEXT NOT NULL);",
        ),
        Part::AppendOnly("incident_entries"),
    ],
    // 17: each audit entry's link (`custodia_audit::chain`): its place in the log, sealed by
    // the vault as the store appends it. Entries from before carry none.
    &[Part::Common("ALTER TABLE audit_log ADD COLUMN link {blob};")],
    // 18: a deterministic token's value is vaulted once per subject and purpose it is handed
    // out under, not once per subject: the first purpose's row stood for every later one, so
    // a guess tokenized under another purpose (the same token for the same value) stored
    // nothing when the subject held that value, and detokenized to nothing: an oracle, and a
    // token its own purpose could not turn back. Rows from before step 13 have no purpose.
    &[Part::Dialect(
        "CREATE TABLE token_values_v18 (
            name BLOB NOT NULL REFERENCES token_names (name),
            subject_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            ciphertext BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            purpose TEXT);
         INSERT INTO token_values_v18 (name, subject_id, kind, ciphertext, created_at, purpose)
            SELECT name, subject_id, kind, ciphertext, created_at, purpose FROM token_values;
         DROP TABLE token_values;
         ALTER TABLE token_values_v18 RENAME TO token_values;
         CREATE UNIQUE INDEX token_values_by_purpose ON token_values (name, subject_id, purpose);
         CREATE INDEX token_values_by_subject ON token_values (subject_id);",
        "ALTER TABLE token_values DROP CONSTRAINT token_values_pkey;
         CREATE UNIQUE INDEX token_values_by_purpose ON token_values (name, subject_id, purpose);",
    )],
    // 19: an incident is never deleted (the breach register, GDPR Art. 33(5)), nor its id or
    // record changed; its phase and risk columns still move (they index the sealed timeline,
    // which is what is read).
    &[Part::Dialect(
        "CREATE TRIGGER incidents_no_delete BEFORE DELETE ON incidents
            BEGIN SELECT RAISE(ABORT, 'incidents are never deleted (the breach register)'); END;
         CREATE TRIGGER incidents_record_fixed
            BEFORE UPDATE OF incident_id, opened_at, opened_by, aware_at, sealed ON incidents
            BEGIN SELECT RAISE(ABORT, 'incidents are never deleted (the breach register): nor their record changed'); END;",
        "CREATE FUNCTION incidents_never_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'UPDATE' AND (NEW.incident_id, NEW.opened_at, NEW.opened_by, NEW.aware_at, NEW.sealed)
                    IS NOT DISTINCT FROM (OLD.incident_id, OLD.opened_at, OLD.opened_by, OLD.aware_at, OLD.sealed) THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION 'incidents are never deleted (the breach register): nor their record changed';
            END; $$;
         CREATE TRIGGER incidents_no_delete BEFORE DELETE OR UPDATE ON incidents
            FOR EACH ROW EXECUTE FUNCTION incidents_never_deleted();
         CREATE TRIGGER incidents_no_truncate BEFORE TRUNCATE ON incidents
            FOR EACH STATEMENT EXECUTE FUNCTION incidents_never_deleted();",
    )],
    // 20: an incident's tally, the length of its timeline sealed by the vault with every
    // change: each entry seals its place, so an entry copied or removed in the middle leaves
    // the rest out of place, but the newest removed left nothing out of place.
    &[Part::Common("ALTER TABLE incidents ADD COLUMN tally {blob};")],
    // 21: the rows that grant access sealed by the vault (a MAC under a key only it holds):
    // principals, operators, their sessions and break-glass grants, so that one inserted or
    // changed in the database by hand is refused. Principals and operators from before are
    // sealed by the vault at its next start (`access_seals_pending`); sessions and grants from
    // before end (operators log in again).
    &[Part::Dialect(
        "ALTER TABLE principals ADD COLUMN seal BLOB;
         ALTER TABLE operators ADD COLUMN seal BLOB;
         ALTER TABLE operator_sessions ADD COLUMN seal BLOB;
         ALTER TABLE break_glass ADD COLUMN seal BLOB;
         INSERT INTO meta (key, value) VALUES ('access_seals_pending', X'01');",
        "ALTER TABLE principals ADD COLUMN seal BYTEA;
         ALTER TABLE operators ADD COLUMN seal BYTEA;
         ALTER TABLE operator_sessions ADD COLUMN seal BYTEA;
         ALTER TABLE break_glass ADD COLUMN seal BYTEA;
         INSERT INTO meta (key, value) VALUES ('access_seals_pending', '\\x01'::bytea);",
    )],
    // 22: the subject ledger sealed by the vault: each entry's seal binds it to its number
    // (a copy elsewhere, an entry inserted or changed by hand is refused), and each subject's
    // head seals how many entries it has, the newest and the chain of their seals (one
    // removed, or put in another's place, anywhere, leaves it off). Entries from before are sealed by the vault at its next start, once
    // (`ledger_sealed` in `meta` marks it done).
    &[
        Part::Common(
            "CREATE TABLE subject_ledger_seals (
                seq {int} PRIMARY KEY,
                seal {blob} NOT NULL);
             CREATE TABLE subject_ledger_heads (
                subject_id TEXT PRIMARY KEY,
                entries {int} NOT NULL,
                last_seq {int} NOT NULL,
                chain {blob} NOT NULL,
                seal {blob} NOT NULL);",
        ),
        Part::AppendOnly("subject_ledger_seals"),
    ],
    // 23: the rows that grant access tallied (`access_tally` in `meta`: how many are sealed
    // and the fold of their seals, moved with every change): a row put back as an earlier
    // copy had it, seal and all, leaves it off; and training completions sealed (one
    // inserted by hand is no training). The rows from before are tallied, and the completions
    // from before sealed (as sealed copies: the table is append-only), by the vault at its
    // next start, once (`access_tally_pending`, `training_seals_pending`).
    &[
        Part::Common("ALTER TABLE training_completions ADD COLUMN seal {blob};"),
        Part::Dialect(
            "INSERT INTO meta (key, value) VALUES ('access_tally_pending', X'01'), ('training_seals_pending', X'01');",
            "INSERT INTO meta (key, value) VALUES ('access_tally_pending', '\\x01'::bytea), ('training_seals_pending', '\\x01'::bytea);",
        ),
    ],
    // 24: purpose bindings sealed (the value, the purpose, when it was collected and last
    // written for it): a binding inserted or changed by hand lets no purpose use a value it
    // was never collected for. The bindings from before are sealed by the vault's next start
    // told to (`binding_seals_pending`, `serve --seal-access`), once.
    &[
        Part::Common("ALTER TABLE field_bindings ADD COLUMN seal {blob};"),
        Part::Dialect(
            "INSERT INTO meta (key, value) VALUES ('binding_seals_pending', X'01');",
            "INSERT INTO meta (key, value) VALUES ('binding_seals_pending', '\\x01'::bytea);",
        ),
    ],
    // 25: a subject's bindings by purpose, field and stored expiry, with their record: the
    // bindings a read may use are found in the index alone (a list passed over 20,000 values
    // of its own purpose the ledger had ended, or of a field its role may not read, looking
    // each up in the table: 12 ms; 5 now). It serves every lookup the old one did.
    &[Part::Common(
        "DROP INDEX field_bindings_by_subject;
         CREATE INDEX field_bindings_by_subject ON field_bindings (subject_id, purpose, field, expires_at, record_id);",
    )],
];

impl Dialect {
    /// DDL text with the type words spelt for this backend.
    fn ddl(self, text: &str) -> String {
        let (blob, int, serial, without_rowid) = match self {
            Self::Sqlite => ("BLOB", "INTEGER", "INTEGER PRIMARY KEY AUTOINCREMENT", "WITHOUT ROWID"),
            Self::Postgres => ("BYTEA", "BIGINT", "BIGSERIAL PRIMARY KEY", ""),
        };
        text.replace("{blob}", blob)
            .replace("{int}", int)
            .replace("{serial}", serial)
            .replace("{without_rowid}", without_rowid)
    }

    /// The triggers that make `table` append-only.
    fn append_only(self, table: &str) -> String {
        match self {
            Self::Sqlite => format!(
                "CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
                    BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;
                 CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
                    BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;"
            ),
            Self::Postgres => format!(
                "CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN RAISE EXCEPTION '{table} is append-only'; END; $$;
                 CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
                    FOR EACH ROW EXECUTE FUNCTION {table}_append_only();
                 CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                    FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only();"
            ),
        }
    }

    fn step(self, parts: &[Part]) -> String {
        parts
            .iter()
            .map(|part| match part {
                Part::Common(text) => self.ddl(text),
                Part::AppendOnly(table) => self.append_only(table),
                Part::Dialect(sqlite, postgres) => match self {
                    Self::Sqlite => (*sqlite).to_owned(),
                    Self::Postgres => (*postgres).to_owned(),
                },
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = STEPS.len() as i64;

/// Advisory lock key held while migrating PostgreSQL ("custodia" in ASCII, truncated), so
/// several server nodes can start at once.
const MIGRATION_LOCK: i64 = 0x6375_7374_6f64_6961;

/// Brings the schema to [`SCHEMA_VERSION`] inside the transaction `conn` is in (the caller
/// begins and commits it), up to `target` steps (tests stop early to build old databases).
///
/// A current schema is only read, never touched: the server's own PostgreSQL role (the
/// service role, see `roles.rs`) may not change the schema, and opens a current database
/// without needing to. A schema that is behind is refused to a role that may not migrate it,
/// naming the command that does.
pub(crate) async fn migrate(conn: &mut Conn<'_>, target: i64) -> Result<(), StoreError> {
    let dialect = conn.dialect();
    if dialect == Dialect::Postgres {
        conn.execute(Stmt::new("SELECT pg_advisory_xact_lock($1)").bind(MIGRATION_LOCK))
            .await?;
    }
    let current = current_version(conn).await?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Schema(format!(
            "database schema version {current} is newer than this binary knows ({SCHEMA_VERSION}); upgrade custodia"
        )));
    }
    if current >= target {
        return Ok(());
    }
    if !may_migrate(conn).await? {
        return Err(StoreError::Schema(format!(
            "the database schema is at version {current} and this binary needs version {target}, but this \
             database role may not change the schema (it is the service role): run `custodia migrate \
             --database-url <the owner role's URL>` first (`custodia init` for a new database)"
        )));
    }
    if current == 0 {
        conn.run(&dialect.ddl("CREATE TABLE IF NOT EXISTS schema_version (version {int} NOT NULL)"))
            .await?;
    }
    for (i, parts) in STEPS.iter().enumerate() {
        let version = i as i64 + 1;
        if version <= current || version > target {
            continue;
        }
        conn.run(&dialect.step(parts)).await?;
        conn.execute(Stmt::new("INSERT INTO schema_version (version) VALUES ($1)").bind(version))
            .await?;
    }
    Ok(())
}

/// Fails unless the database is at [`SCHEMA_VERSION`] (a read-only opening cannot migrate).
pub(crate) async fn require_current(conn: &mut Conn<'_>) -> Result<(), StoreError> {
    let current = current_version(conn).await.map_err(|_| {
        StoreError::Schema("the database has no Custodia schema (run custodia init or serve first)".into())
    })?;
    if current == SCHEMA_VERSION {
        Ok(())
    } else {
        Err(StoreError::Schema(format!(
            "the database schema is version {current} and this binary reads version {SCHEMA_VERSION}; {}",
            if current < SCHEMA_VERSION {
                "start the server once to migrate it"
            } else {
                "upgrade custodia"
            }
        )))
    }
}

/// The schema version a database is at (0 when new).
pub(crate) async fn current_version(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    if !tables(conn).await?.iter().any(|t| t == "schema_version") {
        return Ok(0);
    }
    let row = conn
        .fetch_optional(Stmt::new("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version"))
        .await?;
    row.map_or(Ok(0), |r| r.int("v"))
}

/// The tables of the schema the store uses (PostgreSQL: the connection's current schema).
pub(crate) async fn tables(conn: &mut Conn<'_>) -> Result<Vec<String>, StoreError> {
    let sql = match conn.dialect() {
        Dialect::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name"
        }
        Dialect::Postgres => {
            "SELECT tablename::text AS name FROM pg_catalog.pg_tables WHERE schemaname = current_schema() ORDER BY name"
        }
    };
    conn.fetch_all(Stmt::new(sql))
        .await?
        .iter()
        .map(|row| row.text("name"))
        .collect()
}

/// Whether this connection's role may change the schema: on PostgreSQL, create tables in the
/// schema and act as the owner of every table already in it; on SQLite, whoever can write
/// the file can.
async fn may_migrate(conn: &mut Conn<'_>) -> Result<bool, StoreError> {
    if conn.dialect() == Dialect::Sqlite {
        return Ok(true);
    }
    let row = conn
        .fetch_optional(Stmt::new(
            "SELECT CASE WHEN has_schema_privilege(current_schema(), 'CREATE') AND NOT EXISTS (
                SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema()
                AND NOT pg_has_role(tableowner, 'USAGE')) THEN 1 ELSE 0 END::BIGINT AS may",
        ))
        .await?;
    Ok(row.map(|r| r.int("may")).transpose()?.unwrap_or(0) == 1)
}

/// The tables whose rows are never changed or deleted: those of the `Part::AppendOnly` steps.
pub(crate) fn append_only_tables() -> impl Iterator<Item = &'static str> {
    STEPS
        .iter()
        .flat_map(|parts| parts.iter())
        .filter_map(|part| match part {
            Part::AppendOnly(table) => Some(*table),
            _ => None,
        })
}

/// What the service role (the server's own PostgreSQL role, see `roles.rs`) may do with each
/// table that is not append-only: the statements the repositories run on it, no more. An
/// append-only table gets `SELECT, INSERT` ([`APPEND_ONLY_PRIVILEGES`]); no table gets
/// `TRUNCATE`, `REFERENCES` or `TRIGGER`, and the role owns nothing, so it cannot change the
/// schema or its triggers. A new table needs a line here: granting refuses a schema with a
/// table this list does not decide (and the store's tests check the list against the schema).
const SERVICE_PRIVILEGES: &[(&str, &str)] = &[
    ("schema_version", "SELECT"),
    // Keys and settings are written once (`INSERT ... ON CONFLICT DO NOTHING`).
    // A root key rotation re-wraps the wrapped service keys (`UPDATE ... WHERE value = old`).
    ("meta", "SELECT, INSERT, UPDATE"),
    // Erasure deletes a subject's key; a root key rotation re-wraps it (the data key itself
    // never changes).
    ("subject_keys", "SELECT, INSERT, UPDATE, DELETE"),
    // `UPDATE` also for `SELECT ... FOR UPDATE`, which locks a record for its change.
    ("records", "SELECT, INSERT, UPDATE, DELETE"),
    ("record_fields", "SELECT, INSERT, UPDATE, DELETE"),
    ("blind_index", "SELECT, INSERT, DELETE"),
    // Revocation sets `revoked_at`; principals are never deleted.
    ("principals", "SELECT, INSERT, UPDATE"),
    // Tokens of schema versions before 8 are only read; a token's name and each subject's
    // sealed value under it are written once.
    ("tokens_v1", "SELECT, DELETE"),
    // Its name before schema version 8 (a database granted before it is migrated).
    ("tokens", "SELECT, INSERT"),
    ("token_names", "SELECT, INSERT"),
    // Erasure deletes a subject's token values (names stay reserved); a value handed out
    // again under its purpose renews its time (its retention runs from it).
    ("token_values", "SELECT, INSERT, UPDATE, DELETE"),
    // Requests change state until they close and are deleted 24 months later.
    ("requests", "SELECT, INSERT, UPDATE, DELETE"),
    // The subject index is appended to by its job, and its one state row moved forward.
    ("audit_subject_index", "SELECT, INSERT"),
    ("audit_index_state", "SELECT, UPDATE"),
    // Queued in a request's transaction, moved along by the delivery job (its body cleared
    // when final); never deleted. Their attempts are append-only.
    ("notifications", "SELECT, INSERT, UPDATE"),
    // Moved forward with each ledger entry of its subject; never deleted.
    ("subject_ledger_heads", "SELECT, INSERT, UPDATE"),
    // Bound, renewed, re-timed and ended as writes, the ledger and the sweeper go.
    ("field_bindings", "SELECT, INSERT, UPDATE, DELETE"),
    // Rewritten when a purpose's rule changes.
    ("retention_rules", "SELECT, INSERT, UPDATE"),
    // Moved forward by writes and reports; deleted with a subject that has nothing left.
    ("subject_activity", "SELECT, INSERT, UPDATE, DELETE"),
    // Placed and released, never deleted (the list of holds is evidence).
    ("legal_holds", "SELECT, INSERT, UPDATE"),
    // Enrolled, locked, unlocked and disabled, never deleted (their ids stay in the audit log).
    ("operators", "SELECT, INSERT, UPDATE"),
    // Opened at login, revoked at logout or by an administrator; deleted a week after they
    // expired (by the check of the access rows' tally).
    ("operator_sessions", "SELECT, INSERT, UPDATE, DELETE"),
    // Incidents move through phases and risk assessments; never deleted (the breach register).
    ("incidents", "SELECT, INSERT, UPDATE"),
    // A collection is put in read-only mode and taken out of it again.
    ("read_only_collections", "SELECT, INSERT, DELETE"),
];

/// The service role's privileges on an append-only table.
pub const APPEND_ONLY_PRIVILEGES: &str = "SELECT, INSERT";

/// The service role's privileges on one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableGrant {
    pub table: String,
    /// A privilege list as `GRANT` takes it, e.g. `SELECT, INSERT`.
    pub privileges: &'static str,
    /// Whether the schema makes the table append-only (triggers refuse UPDATE, DELETE and,
    /// on PostgreSQL, TRUNCATE, whoever asks).
    pub append_only: bool,
}

/// The grant decision for each of `tables`; an error names every table without one.
pub(crate) fn service_grants(tables: &[String]) -> Result<Vec<TableGrant>, StoreError> {
    let mut undecided = Vec::new();
    let mut grants = Vec::with_capacity(tables.len());
    for table in tables {
        let append_only = append_only_tables().any(|t| t == table);
        let privileges = if append_only {
            Some(APPEND_ONLY_PRIVILEGES)
        } else {
            SERVICE_PRIVILEGES.iter().find(|(t, _)| t == table).map(|(_, p)| *p)
        };
        match privileges {
            Some(privileges) => grants.push(TableGrant {
                table: table.clone(),
                privileges,
                append_only,
            }),
            None => undecided.push(table.as_str()),
        }
    }
    if undecided.is_empty() {
        Ok(grants)
    } else {
        Err(StoreError::Schema(format!(
            "no service-role privileges are decided for table(s) {} (crates/store/src/schema.rs, SERVICE_PRIVILEGES)",
            undecided.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_table_is_both_append_only_and_in_the_service_list() {
        for table in append_only_tables() {
            assert!(
                SERVICE_PRIVILEGES.iter().all(|(t, _)| *t != table),
                "{table} is append-only: its privileges come from APPEND_ONLY_PRIVILEGES"
            );
        }
    }

    #[test]
    fn a_table_without_a_decision_is_refused_by_name() {
        let tables = vec!["audit_log".to_owned(), "records".to_owned(), "new_table".to_owned()];
        let err = service_grants(&tables).unwrap_err().to_string();
        assert!(err.contains("new_table") && !err.contains("records"), "{err}");
        let grants = service_grants(&tables[..2]).unwrap();
        assert_eq!(grants[0].privileges, APPEND_ONLY_PRIVILEGES);
        assert!(grants[0].append_only && !grants[1].append_only);
    }

    #[test]
    fn the_service_role_never_gets_schema_or_trigger_privileges() {
        for (table, privileges) in SERVICE_PRIVILEGES {
            for privilege in privileges.split(", ") {
                assert!(
                    ["SELECT", "INSERT", "UPDATE", "DELETE"].contains(&privilege),
                    "{table}: {privilege}"
                );
            }
        }
    }
}
