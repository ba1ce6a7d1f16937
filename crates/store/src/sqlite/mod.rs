//! The embedded default: one SQLite file in the data directory, WAL mode, `synchronous=FULL`
//! (an acknowledged write survives power loss), `secure_delete` on (deleted ciphertext is
//! overwritten, not left in free pages). One writer thread owns the write connection and
//! commits concurrent writes together ([`writer`]); a pool of readers runs beside it under WAL.
//! Connections are `rusqlite`'s, called without a thread hand-off ([`conn`]). The SQL is the
//! PostgreSQL store's (`repo/`); here is only how connections are had.

pub(crate) mod conn;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use crate::sql::Conn;
use crate::tx::{Reader, ReaderConn};
use crate::{Adopted, StoreError, schema};

use crate::group_commit::Writer;

pub(crate) struct Sqlite {
    pub(crate) writer: Writer,
    readers: conn::Pool,
    /// How to open another connection (for a truncating checkpoint or an adoption).
    options: conn::Options,
    /// Dropped with the store, which stops the checkpointer thread.
    _checkpointer: Option<mpsc::Sender<()>>,
    /// Set after a write destroyed values: the checkpointer then empties the WAL
    /// ([`Sqlite::want_wal_purge`]).
    purge_wanted: Arc<AtomicBool>,
}

/// How long a connection waits for a lock held by another.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often at most the checkpointer empties the WAL after writes that destroyed values
/// ([`Sqlite::want_wal_purge`]): a value deleted stays in the log this long and a little more,
/// and a stream of deletions costs one truncating checkpoint a second, not one each.
const PURGE_EVERY: Duration = Duration::from_secs(1);

/// How many times a truncating checkpoint is tried (50 ms apart) before giving up.
const PURGE_ATTEMPTS: usize = 10;
/// How long one attempt waits for readers to leave the log.
const PURGE_WAIT: Duration = Duration::from_millis(200);

/// How soon the WAL is copied back into the database file again while writes keep coming.
/// At once, nearly: the writer's RESTART (`writer::bound_wal`) copies whatever is left and
/// flushes the database file, holding every write meanwhile, so the less it finds the shorter
/// the stall. Two-minute soaks at 16 clients: checkpoints every 100 ms left restarts of 25 ms
/// on average (p99 of requests 23-38 ms); every 5 ms, 4.7 ms (p99 10 ms), at the same
/// throughput (BENCHMARKS.md, soak).
const CHECKPOINT_BUSY: Duration = Duration::from_millis(5);
/// How often an idle log is looked at (a look that finds nothing new costs a lock and a read
/// of the shared memory; an idle server need not do it 200 times a second).
const CHECKPOINT_IDLE: Duration = Duration::from_millis(100);

/// How long the checkpointer waits after a look that found the log at `frames` frames, when the
/// look before found `last`: soon while the log moves (a restart, which starts it over, is a
/// move too), slowly while it is idle or cannot be read.
fn next_checkpoint(last: Option<i64>, frames: Option<i64>) -> Duration {
    if frames.is_some() && frames != last {
        CHECKPOINT_BUSY
    } else {
        CHECKPOINT_IDLE
    }
}

/// Copies the WAL into the database file in the background with PASSIVE checkpoints, which
/// run beside the writer and readers instead of stalling a commit the way SQLite's automatic
/// checkpoint (run by whichever connection commits past the threshold) does; and, when
/// `purge` is set, empties it (a TRUNCATE checkpoint, at most every [`PURGE_EVERY`]): the
/// pages of a deleted value stay in the log until its frames are written over, which under a
/// light load can be hours. On a thread of its own: a checkpoint copies and syncs megabytes.
/// Stops when `stop`'s sender is dropped.
fn start_checkpointer(options: &conn::Options, purge: Arc<AtomicBool>) -> Result<mpsc::Sender<()>, StoreError> {
    let conn = options.open()?;
    let (tx, stop) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("custodia-sqlite-checkpoint".into())
        .spawn(move || {
            // the log's frame count at the last look: while it moves, look again soon
            let mut last = None;
            let mut wait = CHECKPOINT_IDLE;
            let mut purged = std::time::Instant::now();
            while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(wait) {
                if purged.elapsed() >= PURGE_EVERY && purge.swap(false, Ordering::AcqRel) {
                    purged = std::time::Instant::now();
                    if !truncate_wal(&conn, BACKGROUND_PURGE_WAIT) {
                        // readers held the log: again at the next turn
                        purge.store(true, Ordering::Release);
                    }
                }
                let started = std::time::Instant::now();
                match conn::fetch(&conn, "PRAGMA wal_checkpoint(PASSIVE)", &[], Some(1)) {
                    Ok(rows) => {
                        let column = |name| rows.first().and_then(|r| r.opt_int(name).ok().flatten());
                        let frames = column("log");
                        tracing::debug!(
                            took_us = started.elapsed().as_micros(),
                            frames,
                            copied = column("checkpointed"),
                            "WAL checkpoint"
                        );
                        wait = next_checkpoint(last, frames);
                        last = frames;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
                        wait = CHECKPOINT_IDLE;
                    }
                }
            }
        })
        .map_err(|e| StoreError::Backend(format!("starting the checkpointer: {e}")))?;
    Ok(tx)
}

/// How long the checkpointer's truncating checkpoint waits for readers (holding writers back
/// meanwhile) before it tries again at its next turn: briefly, as it may come every second.
const BACKGROUND_PURGE_WAIT: Duration = Duration::from_millis(20);

/// One TRUNCATE checkpoint, waiting at most `wait` for readers to leave the log (holding
/// writers back meanwhile); whether it emptied the log.
fn truncate_wal(conn: &rusqlite::Connection, wait: Duration) -> bool {
    if conn.busy_timeout(wait).is_err() {
        return false;
    }
    let emptied = match conn::fetch(conn, "PRAGMA wal_checkpoint(TRUNCATE)", &[], Some(1)) {
        // (the first column is 1 when a reader or the writer kept it from finishing)
        Ok(rows) => rows.first().and_then(|r| r.opt_int("busy").ok().flatten()) == Some(0),
        Err(e) => {
            tracing::warn!(error = %e, "emptying the WAL after a deletion failed");
            false
        }
    };
    let _ = conn.busy_timeout(BUSY_TIMEOUT);
    emptied
}

/// The body of [`Sqlite::adopt_audit_log`], on a connection with `cur` attached.
async fn adopt(c: &mut Conn<'_>) -> Result<Adopted, StoreError> {
    use crate::sql::Stmt;
    let last = c
        .fetch_optional(Stmt::new("SELECT seq, leaf FROM audit_log ORDER BY seq DESC LIMIT 1"))
        .await?;
    let (seq, leaf) = match &last {
        Some(row) => (row.int("seq")?, row.opt_bytes("leaf")?),
        None => (0, None),
    };
    if seq > 0 {
        let there = c
            .fetch_optional(Stmt::new("SELECT leaf FROM cur.audit_log WHERE seq = $1").bind(seq))
            .await?;
        let same = match there {
            Some(row) => row.opt_bytes("leaf")? == leaf,
            None => false,
        };
        if !same {
            return Err(StoreError::Schema(
                "the backup's audit log is not a prefix of the current database's: not the same vault's history".into(),
            ));
        }
    }
    c.run("BEGIN IMMEDIATE").await?;
    let copied = async {
        // The subjects whose ledger moved since the backup: their bindings are timed again
        // once the ledger is carried over (a withdrawal ends what it concerns).
        let ledger_subjects = c
            .fetch_all(Stmt::new(
                "SELECT DISTINCT subject_id FROM cur.subject_ledger \
                 WHERE seq > (SELECT COALESCE(MAX(seq), 0) FROM subject_ledger) ORDER BY subject_id",
            ))
            .await?
            .iter()
            .map(|r| r.text("subject_id"))
            .collect::<Result<Vec<_>, _>>()?;
        // A subject's key the replaced database made after the backup's (the subject erased
        // and come back): stored once the erasure is made again (see `Adopted::later_keys`).
        let later_keys = c
            .fetch_all(Stmt::new(
                "SELECT c.subject_id, c.key_class, c.key_version, c.wrapped_key, c.created_at, c.first_wrap \
                 FROM cur.subject_keys c JOIN subject_keys k ON k.subject_id = c.subject_id \
                 AND k.key_class = c.key_class WHERE c.created_at > k.created_at ORDER BY c.subject_id, c.key_class",
            ))
            .await?
            .iter()
            .map(crate::repo::subjects::key_row)
            .collect::<Result<Vec<_>, _>>()?;
        let n = c
            .execute(
                Stmt::new(
                    "INSERT INTO audit_log (seq, at, entry, leaf, principal, action, decision, purpose, subject, link) \
                     SELECT seq, at, entry, leaf, principal, action, decision, purpose, subject, link FROM cur.audit_log \
                     WHERE seq > $1 ORDER BY seq",
                )
                .bind(seq),
            )
            .await?;
        c.run(
            "INSERT INTO audit_checkpoints (tree_size, root, at, note) SELECT tree_size, root, at, note \
             FROM cur.audit_checkpoints WHERE tree_size > (SELECT COALESCE(MAX(tree_size), 0) FROM audit_checkpoints) \
             ORDER BY tree_size;
             INSERT INTO audit_tiles (level, idx, hashes, root, last_seq) SELECT level, idx, hashes, root, last_seq \
             FROM cur.audit_tiles c WHERE NOT EXISTS \
             (SELECT 1 FROM audit_tiles t WHERE t.level = c.level AND t.idx = c.idx);
             INSERT INTO erasures (subject_digest, request_id, at) SELECT subject_digest, request_id, at \
             FROM cur.erasures c WHERE NOT EXISTS (SELECT 1 FROM erasures e \
             WHERE e.subject_digest = c.subject_digest AND e.at = c.at) ORDER BY seq;
             INSERT INTO legal_holds (hold_id, subject_id, collection, reason, created_by, created_at, \
             released_at, released_by, release_reason) SELECT hold_id, subject_id, collection, reason, \
             created_by, created_at, released_at, released_by, release_reason FROM cur.legal_holds c \
             WHERE NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.hold_id = c.hold_id);
             UPDATE legal_holds SET (released_at, released_by, release_reason) = \
             (SELECT c.released_at, c.released_by, c.release_reason FROM cur.legal_holds c \
             WHERE c.hold_id = legal_holds.hold_id) WHERE released_at IS NULL AND EXISTS \
             (SELECT 1 FROM cur.legal_holds c WHERE c.hold_id = legal_holds.hold_id AND c.released_at IS NOT NULL);
             INSERT INTO subject_ledger (seq, subject_id, kind, purpose, value, notice_version, method, \
             evidence, principal_id, at) SELECT seq, subject_id, kind, purpose, value, notice_version, method, \
             evidence, principal_id, at FROM cur.subject_ledger \
             WHERE seq > (SELECT COALESCE(MAX(seq), 0) FROM subject_ledger) ORDER BY seq;
             INSERT INTO subject_keys (subject_id, key_class, key_version, wrapped_key, created_at, first_wrap) \
             SELECT subject_id, key_class, key_version, wrapped_key, created_at, first_wrap FROM cur.subject_keys c \
             WHERE NOT EXISTS (SELECT 1 FROM subject_keys k \
             WHERE k.subject_id = c.subject_id AND k.key_class = c.key_class);",
        )
        .await?;
        carry_over_state(c).await?;
        Ok::<Adopted, StoreError>(Adopted {
            audit_entries: n,
            ledger_subjects,
            later_keys,
        })
    }
    .await;
    match copied {
        Ok(n) => {
            c.run("COMMIT").await?;
            Ok(n)
        }
        Err(e) => {
            let _ = c.run("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Tables whose rows a restore takes from the database it replaces, as they are now: what
/// was decided about access and duties since the backup must not be undone by it. API keys
/// revoked or rotated, operators disabled or locked and their sessions ended stay so (a key
/// that came back would be one its owner believes dead); data subject requests keep their
/// state and the Art. 19 outbox its deliveries (the duties they record are the law's); the
/// collections an incident put in read-only mode stay so.
const TAKEN_AS_THEY_ARE: &[&str] = &[
    "principals",
    "operators",
    "operator_sessions",
    "requests",
    "notifications",
    "read_only_collections",
    "subject_ledger_heads",
];

/// Append-only tables whose rows a restore adds from the database it replaces (the backup
/// holds a prefix of them), each with the columns that tell a row apart: training
/// completions and break-glass grants (evidence about people), incidents' timelines,
/// delivery attempts and published notices.
const ADDED_FROM_THE_REPLACED: &[(&str, &[&str])] = &[
    // (a completion from before seals and its sealed copy are two rows)
    (
        "training_completions",
        &["operator_id", "course", "completed_at", "recorded_at", "seal"],
    ),
    ("break_glass", &["grant_id"]),
    ("incident_entries", &["entry_id"]),
    ("notification_attempts", &["seq"]),
    ("notices", &["version"]),
    // every entry's seal: the backup's entries are a prefix of the replaced database's
    ("subject_ledger_seals", &["seq"]),
];

/// Brings into the backup (attached as `main`, the replaced database as `cur`) what a restore
/// must not undo: [`TAKEN_AS_THEY_ARE`], [`ADDED_FROM_THE_REPLACED`], and the breach register
/// (incidents are never deleted: those opened since are added, the others take their phase,
/// risk and sealed tally as they are now).
async fn carry_over_state(c: &mut Conn<'_>) -> Result<(), StoreError> {
    let mut sql = String::new();
    for table in TAKEN_AS_THEY_ARE {
        let names = column_list(c, table).await?;
        sql.push_str(&format!(
            "DELETE FROM main.{table}; INSERT INTO main.{table} ({names}) SELECT {names} FROM cur.{table};\n"
        ));
    }
    for (table, key) in ADDED_FROM_THE_REPLACED
        .iter()
        .chain([&("incidents", &["incident_id"][..])])
    {
        let names = column_list(c, table).await?;
        let same = key
            .iter()
            .map(|k| format!("x.{k} IS c.{k}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        sql.push_str(&format!(
            "INSERT INTO main.{table} ({names}) SELECT {names} FROM cur.{table} c \
             WHERE NOT EXISTS (SELECT 1 FROM main.{table} x WHERE {same});\n"
        ));
    }
    // the ledger's entries carry the seals the replaced database holds (a backup from before
    // they were made is sealed by those); the access rows, taken as they are, carry their
    // tally as it is (or its absence, and the mark that it is still to be made), and the
    // completions the mark that they are still to be sealed, as the replaced database has it
    sql.push_str(&format!(
        "INSERT OR IGNORE INTO main.meta (key, value) SELECT key, value FROM cur.meta WHERE key = '{}';\n\
         INSERT OR REPLACE INTO main.meta (key, value) SELECT key, value FROM cur.meta WHERE key = '{}';\n\
         DELETE FROM main.meta WHERE key IN ('{access}', '{pending}', '{training}');\n\
         INSERT INTO main.meta (key, value) SELECT key, value FROM cur.meta WHERE key IN ('{access}', '{pending}', '{training}');\n",
        crate::repo::LEDGER_SEALED,
        crate::repo::tally::LEDGER.key,
        access = crate::repo::tally::ACCESS.key,
        pending = crate::repo::tally::ACCESS_PENDING,
        training = crate::repo::TRAINING_SEALS_PENDING,
    ));
    sql.push_str(
        "UPDATE main.incidents SET (phase, risk, updated_at, tally) = \
         (SELECT c.phase, c.risk, c.updated_at, c.tally FROM cur.incidents c WHERE c.incident_id = incidents.incident_id) \
         WHERE EXISTS (SELECT 1 FROM cur.incidents c WHERE c.incident_id = incidents.incident_id);",
    );
    c.run(&sql).await
}

/// `table`'s columns, in order, as an SQL list (both databases are at one schema version).
async fn column_list(c: &mut Conn<'_>, table: &str) -> Result<String, StoreError> {
    let stmt = crate::sql::Stmt::new("SELECT name FROM pragma_table_info($1) ORDER BY cid").bind(table);
    let names = c.fetch_all(stmt).await?;
    Ok(names
        .iter()
        .map(|r| r.text("name"))
        .collect::<Result<Vec<_>, _>>()?
        .join(", "))
}

/// Makes the database file readable and writable by its owner only (0600), creating it so if
/// it is new; SQLite creates its `-wal` and `-shm` files with the database file's mode. Files
/// a looser release left behind are tightened.
fn make_private(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let io = |e: std::io::Error| StoreError::Backend(format!("{}: {e}", path.display()));
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(io)?;
        }
        let mut files = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            files.push(name.into());
        }
        // The `-wal` and `-shm` files come and go (SQLite removes them when the last
        // connection of another store closes): one that is gone needs no tightening.
        let gone = |r: std::io::Result<()>| match r {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        };
        for file in &files {
            gone(std::fs::metadata(file).and_then(|m| {
                if m.permissions().mode() & 0o077 != 0 {
                    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
                } else {
                    Ok(())
                }
            }))
            .map_err(|e| StoreError::Backend(format!("{}: {e}", file.display())))?;
        }
    }
    Ok(())
}

impl Sqlite {
    /// Opens (creating if needed, mode 0600) the database file at `path` and migrates it up to
    /// `target`.
    pub(crate) async fn open(path: &Path, target: i64) -> Result<Self, StoreError> {
        make_private(path)?;
        // Settings (`conn::Options::open`): WAL, synchronous=FULL, foreign keys, secure_delete,
        // a memory map and a larger cache. No connection checkpoints as part of a commit
        // (`wal_autocheckpoint=0`): the checkpointer thread does it beside the writer, and the
        // writer restarts the log when it grows (`writer::bound_wal`), truncating the file
        // back to `journal_size_limit`.
        let options = conn::Options {
            path: path.to_path_buf(),
            mode: conn::Mode::ReadWrite,
            busy_timeout: BUSY_TIMEOUT,
        };
        let mut conn = options.open()?;
        {
            let mut c = Conn::Sqlite(&mut conn);
            c.run("BEGIN IMMEDIATE").await?;
            match schema::migrate(&mut c, target).await {
                Ok(()) => c.run("COMMIT").await?,
                Err(e) => {
                    let _ = c.run("ROLLBACK").await;
                    return Err(e);
                }
            }
        }
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let writer = writer::start(conn, Some(wal.into()))?;
        let purge_wanted = Arc::new(AtomicBool::new(false));
        let checkpointer = start_checkpointer(&options, Arc::clone(&purge_wanted))?;
        let readers = std::thread::available_parallelism().map_or(4, |n| n.get().clamp(2, 8) * 2);
        Ok(Self {
            writer,
            readers: conn::Pool::open(&options, readers)?,
            options,
            _checkpointer: Some(checkpointer),
            purge_wanted,
        })
    }

    /// Opens the database file at `path` read-only (SQLite refuses every write): for
    /// verification, which must not change what it verifies. The schema must be current.
    pub(crate) async fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Schema(format!("{} does not exist", path.display())));
        }
        let options = conn::Options {
            path: path.to_path_buf(),
            mode: conn::Mode::ReadOnly,
            busy_timeout: BUSY_TIMEOUT,
        };
        let mut conn = options.open()?;
        schema::require_current(&mut Conn::Sqlite(&mut conn)).await?;
        Ok(Self {
            writer: writer::start(conn, None)?,
            readers: conn::Pool::open(&options, 4)?,
            options,
            _checkpointer: None,
            purge_wanted: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Appends to this database's audit log (entries, checkpoints, tiles) what the database
    /// file `current` holds beyond it, provided this log is a prefix of that one (its last
    /// entry is the same there), and the tombstones, legal holds, ledger entries and subject
    /// keys it lacks, and takes from it what a restore must not undo ([`carry_over_state`]);
    /// says what it carried over. The subject index is left to its job, which indexes every entry after its
    /// mark.
    pub(crate) async fn adopt_audit_log(&self, current: &Path) -> Result<Adopted, StoreError> {
        let path = current
            .to_str()
            .ok_or_else(|| StoreError::Backend(format!("{}: the path must be UTF-8", current.display())))?;
        let mut conn = self.options.open()?;
        let mut c = Conn::Sqlite(&mut conn);
        c.execute(crate::sql::Stmt::new("ATTACH DATABASE $1 AS cur").bind(path))
            .await?;
        let adopted = adopt(&mut c).await;
        let detached = c.run("DETACH DATABASE cur").await;
        let adopted = adopted?;
        detached?;
        Ok(adopted)
    }

    /// Asks the checkpointer to empty the WAL soon (within about [`PURGE_EVERY`]): after a
    /// write that destroyed values, whose old pages the log still holds.
    pub(crate) fn want_wal_purge(&self) {
        self.purge_wanted.store(true, Ordering::Release);
    }

    /// A `TRUNCATE` checkpoint, tried a few times while readers still use the log; on a
    /// blocking thread, as it waits.
    pub(crate) async fn purge_wal(&self) -> Result<bool, StoreError> {
        let options = self.options.clone();
        tokio::task::spawn_blocking(move || {
            let conn = options.open()?;
            for _ in 0..PURGE_ATTEMPTS {
                if truncate_wal(&conn, PURGE_WAIT) {
                    return Ok(true);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(false)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("the WAL purge stopped: {e}")))?
    }

    pub(crate) async fn reader(&self) -> Result<Reader, StoreError> {
        Ok(Reader {
            conn: ReaderConn::Sqlite(self.readers.acquire().await?),
            bindings: self.writer.integrity.bindings.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_follow_a_moving_log_and_rest_on_an_idle_one() {
        // the log grew, or was started over by a restart: look again soon
        assert_eq!(next_checkpoint(None, Some(10)), CHECKPOINT_BUSY);
        assert_eq!(next_checkpoint(Some(10), Some(250)), CHECKPOINT_BUSY);
        assert_eq!(next_checkpoint(Some(16_000), Some(12)), CHECKPOINT_BUSY);
        // nothing written since the last look, or nothing known: rest
        assert_eq!(next_checkpoint(Some(250), Some(250)), CHECKPOINT_IDLE);
        assert_eq!(next_checkpoint(Some(250), None), CHECKPOINT_IDLE);
        assert_eq!(next_checkpoint(None, None), CHECKPOINT_IDLE);
        assert!(CHECKPOINT_BUSY < CHECKPOINT_IDLE);
    }
}
