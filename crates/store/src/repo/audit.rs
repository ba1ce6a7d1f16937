//! The append-only audit log and its signed checkpoints.
//!
//! Entries are numbered by the store in commit order. SQLite has one writer. On PostgreSQL
//! every transaction that appends entries first takes an advisory lock (the sequencer) and
//! holds it to commit, so no entry can commit with a number below one a checkpoint already
//! covers. (A rolled-back transaction leaves a gap in the numbers; verification of a shared
//! store does not require them to be contiguous.)

use std::sync::{Arc, RwLock};

use custodia_audit::chain::{ChainKey, START};

use crate::sql::{Conn, DbRow, Dialect, Stmt, placeholders, values_clause};
use crate::{
    AuditColumns, AuditColumnsRef, AuditQuery, AuditRow, AuditRowRef, CheckpointRow, ReadWrite, StoreError, TileRow,
};

/// Advisory lock that serializes audit appends across PostgreSQL server nodes.
const AUDIT_SEQUENCER_LOCK: i64 = 0x6175_6469_746c_6f67;

/// The key the store links appended entries with (`custodia_audit::chain`), installed by
/// the vault once it has read its keys ([`crate::Store::link_audit_with`]). Until then no
/// entry can be appended (fail closed): one without a link is never signed.
#[derive(Clone, Default)]
pub(crate) struct Linker(Arc<RwLock<Option<Arc<ChainKey>>>>, Option<Arc<std::sync::Mutex<Tail>>>);

/// The link of the newest entry this process appended, where it is the only writer (SQLite):
/// the next append must find it still the newest, or entries were deleted from the database
/// between two appends (the newest, before a checkpoint covered it: nothing else would tell).
#[derive(Default, Clone, PartialEq, Eq)]
pub(crate) struct Tail {
    /// As of the last batch committed (`None`: nothing appended yet by this process).
    committed: Option<Vec<u8>>,
    /// As appended in the batch running now.
    tentative: Option<Vec<u8>>,
    /// Set once the tail was found changed: never cleared while the process runs.
    broken: bool,
    /// Checked only once the store's owner said it is the log's one writer.
    checked: bool,
}

impl Linker {
    /// A linker that can check the log's tail at each append (one writer only), once told to
    /// ([`Self::check_tail`]).
    pub(crate) fn tracking_tail() -> Self {
        Self(Arc::default(), Some(Arc::default()))
    }

    fn tail(&self) -> Option<std::sync::MutexGuard<'_, Tail>> {
        self.1
            .as_ref()
            .map(|t| t.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// The tail as the batch running now left it (restored when a job's savepoint is rolled back).
    pub(crate) fn tentative(&self) -> Option<Tail> {
        self.tail().map(|t| t.clone())
    }

    pub(crate) fn restore(&self, saved: Option<Tail>) {
        if let (Some(mut tail), Some(saved)) = (self.tail(), saved) {
            let (broken, checked) = (tail.broken, tail.checked);
            *tail = Tail {
                broken,
                checked,
                ..saved
            };
        }
    }

    /// From now on, checks the tail at each append ([`crate::Store::sole_audit_writer`]).
    pub(crate) fn check_tail(&self) {
        if let Some(mut tail) = self.tail() {
            tail.checked = true;
        }
    }

    pub(crate) fn tail_broken(&self) -> bool {
        self.tail().is_some_and(|t| t.broken)
    }

    /// The batch committed (`true`) or was rolled back.
    pub(crate) fn settle(&self, committed: bool) {
        if let Some(mut tail) = self.tail() {
            if committed {
                if let Some(link) = tail.tentative.take() {
                    tail.committed = Some(link);
                }
            } else {
                tail.tentative = None;
            }
        }
    }

    /// Checks that `newest` (the stored link of the newest entry in the database) is the one
    /// this process appended last, and records `appended` as the new newest.
    fn follow_tail(&self, newest: Option<&[u8]>, appended: Option<&[u8]>) -> Result<(), StoreError> {
        let Some(mut tail) = self.tail().filter(|t| t.checked) else {
            return Ok(());
        };
        let expected = tail.tentative.as_deref().or(tail.committed.as_deref());
        if tail.broken || expected.is_some_and(|e| Some(e) != newest) {
            tail.broken = true;
            return Err(StoreError::Corrupt(
                "the newest audit entry is not the one this server appended last: entries were deleted from the database"
                    .into(),
            ));
        }
        if let Some(link) = appended {
            tail.tentative = Some(link.to_vec());
        }
        Ok(())
    }

    pub(crate) fn set(&self, key: Arc<ChainKey>) {
        // a poisoned lock only means a panic elsewhere while holding an `Arc`: the value is whole
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(key);
    }

    fn key(&self) -> Result<Arc<ChainKey>, StoreError> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                StoreError::Backend("audit entries cannot be appended before the vault's keys are loaded".into())
            })
    }
}

/// The audit log.
pub struct Audit<'a, A> {
    conn: Conn<'a>,
    /// Whether the transaction holds the sequencer already (None outside a transaction).
    sequenced: Option<&'a mut bool>,
    /// How appended entries are linked (None outside a transaction).
    linker: Option<&'a Linker>,
    _access: std::marker::PhantomData<A>,
}

impl<'a, A> Audit<'a, A> {
    pub(crate) fn new(conn: Conn<'a>, sequenced: Option<&'a mut bool>, linker: Option<&'a Linker>) -> Self {
        Self {
            conn,
            sequenced,
            linker,
            _access: std::marker::PhantomData,
        }
    }
}

const ENTRY_COLUMNS: &str = "seq, at, entry, leaf, principal, action, decision, purpose, subject, link";

fn audit_row(row: &DbRow) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        seq: row.int("seq")?,
        at: row.int("at")?,
        entry: row.text("entry")?,
        leaf: row.opt_bytes("leaf")?.unwrap_or_default(),
        index: AuditColumns {
            principal: row.opt_text("principal")?,
            action: row.opt_text("action")?,
            decision: row.opt_text("decision")?,
            purpose: row.opt_text("purpose")?,
            subject: row.opt_text("subject")?,
        },
        link: row.opt_bytes("link")?,
        metric: None,
    })
}

/// Separates the values of one column in a chunk. Canonical entries never hold it (JSON
/// escapes control characters); a value that does (written by someone else) is found by
/// counting separators, never mistaken for a boundary.
const SEPARATOR: u8 = 0x1e;
/// Stands for NULL in a chunk's indexed columns; a value that is this mark itself is counted as
/// odd, so the two are never confused.
const NULL_MARK: &str = "\u{1d}";
/// The indexed columns, in [`AuditChunk::columns`] order.
const INDEXED: [&str; 5] = ["principal", "action", "decision", "purpose", "subject"];

/// Consecutive audit entries read as one row ([`Audit::chunk`]): a count, the first and last
/// sequence numbers, and each column's values joined in sequence order (times by `,`, leaf
/// hashes and links end to end, a missing link as [`START`], texts by a separator no
/// canonical entry holds, NULL as a mark). Reading
/// the log a row per entry costs more than verifying it; a chunk costs one row per thousands.
///
/// The database is not trusted to hold only canonical values: [`AuditChunk::rows`] splits
/// the chunk only when every boundary is certain, and otherwise says so, and the caller reads
/// the same entries a row each ([`Audit::entries`]).
#[derive(Debug, Clone, Default)]
pub struct AuditChunk {
    count: i64,
    first: Option<i64>,
    last: Option<i64>,
    /// Rows the aggregates cannot carry exactly: a NULL entry, time or leaf, a leaf that is
    /// not 32 bytes, a column holding the NULL mark, a value of the wrong type (SQLite).
    odd: i64,
    ats: String,
    leaves: Vec<u8>,
    links: Vec<u8>,
    columns: [String; 5],
    entries: String,
}

impl AuditChunk {
    /// The number of entries in the chunk.
    #[must_use]
    pub fn len(&self) -> usize {
        usize::try_from(self.count).unwrap_or(0)
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The highest sequence number in the chunk.
    #[must_use]
    pub fn last(&self) -> Option<i64> {
        self.last
    }

    /// The entries, oldest first; `None` when the chunk cannot be split with certainty: its
    /// sequence numbers have gaps, a row is odd, or a value holds a separator (the counts of
    /// separators do not match the count of entries). Read such a chunk a row at a time.
    #[must_use]
    pub fn rows<'a>(&'a self) -> Option<Vec<AuditRowRef<'a>>> {
        let n = self.len();
        if n == 0 {
            return Some(Vec::new());
        }
        let (first, last) = (self.first?, self.last?);
        if self.odd != 0
            || last.checked_sub(first)?.checked_add(1)? != self.count
            || self.leaves.len() != n * 32
            || self.links.len() != n * 32
        {
            return None;
        }
        // A value holding a separator shows as one separator too many.
        let split = |text: &'a str, separator: u8| {
            (text.bytes().filter(|&b| b == separator).count() == n - 1).then(|| text.split(char::from(separator)))
        };
        let mut ats = split(&self.ats, b',')?;
        let mut entries = split(&self.entries, SEPARATOR)?;
        let [p, a, d, u, s] = &self.columns;
        let [mut p, mut a, mut d, mut u, mut s] = [
            split(p, SEPARATOR)?,
            split(a, SEPARATOR)?,
            split(d, SEPARATOR)?,
            split(u, SEPARATOR)?,
            split(s, SEPARATOR)?,
        ];
        let value = |v: &'a str| (v != NULL_MARK).then_some(v);
        let mut rows = Vec::with_capacity(n);
        let links = self.links.chunks_exact(32);
        for ((seq, leaf), link) in (first..=last).zip(self.leaves.chunks_exact(32)).zip(links) {
            rows.push(AuditRowRef {
                seq,
                at: strict_int(ats.next()?)?,
                entry: entries.next()?,
                leaf,
                index: AuditColumnsRef {
                    principal: value(p.next()?),
                    action: value(a.next()?),
                    decision: value(d.next()?),
                    purpose: value(u.next()?),
                    subject: value(s.next()?),
                },
                link: Some(link),
            });
        }
        Some(rows)
    }
}

/// An integer as SQL writes one: an optional `-` and digits.
fn strict_int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn checkpoint_row(row: &DbRow) -> Result<CheckpointRow, StoreError> {
    Ok(CheckpointRow {
        tree_size: row.int("tree_size")?,
        root: row.bytes("root")?,
        at: row.int("at")?,
        note: row.text("note")?,
    })
}

impl<A> Audit<'_, A> {
    /// Entries with `seq > after`, oldest first, at most `limit`.
    pub async fn entries(&mut self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        let rows = self
            .conn
            .fetch_all(Stmt::new(sql).bind(after).bind(limit).scan())
            .await?;
        rows.iter().map(audit_row).collect()
    }

    /// The entries with `after < seq <= upto` as one row: what verification reads, a chunk
    /// of consecutive entries at a time, instead of a row per entry (see [`AuditChunk`]).
    pub async fn chunk(&mut self, after: i64, upto: i64) -> Result<AuditChunk, StoreError> {
        // The aggregates join values in sequence order. PostgreSQL is told so in each one.
        // SQLite aggregates rows in the order it reads them, here a range of its rowid
        // (`seq` is the rowid), in order; an `ORDER BY` inside its aggregates would copy every
        // value through a sorter, which costs more than all the rest. (Were the order ever
        // different, the entries would meet the wrong leaves and checkpoints: verification
        // would fail, never pass.)
        let (concat, blob, order, start) = match self.conn.dialect() {
            Dialect::Sqlite => ("group_concat", "BLOB", "", "zeroblob(32)"),
            Dialect::Postgres => (
                "string_agg",
                "BYTEA",
                " ORDER BY seq",
                "decode(repeat('00', 32), 'hex')",
            ),
        };
        let (separator, null) = (char::from(SEPARATOR), NULL_MARK);
        let mut odd = String::new();
        let mut columns = String::new();
        for c in INDEXED {
            odd.push_str(&format!(" OR {c} = '{null}'"));
            columns.push_str(&format!(
                "{concat}(COALESCE({c}, '{null}'), '{separator}'{order}) AS {c}, "
            ));
        }
        // A SQLite column takes a value of any type. A BLOB would pass here for the text it
        // holds, yet no query by that column finds it (and reading it as a row fails), so a
        // BLOB (the only values that sort at or above the empty BLOB) is odd too.
        if self.conn.dialect() == Dialect::Sqlite {
            for c in ["entry", "at"].iter().chain(&INDEXED) {
                odd.push_str(&format!(" OR {c} >= X''"));
            }
            // and a link that is not a BLOB (anything else sorts below one)
            odd.push_str(" OR link < X''");
        }
        let sql = format!(
            "SELECT COUNT(*) AS n, MIN(seq) AS first, MAX(seq) AS last, \
             SUM(CASE WHEN entry IS NULL OR at IS NULL OR leaf IS NULL OR length(leaf) <> 32 \
             OR length(link) <> 32{odd} THEN 1 ELSE 0 END) AS odd, \
             {concat}(CAST(at AS TEXT), ','{order}) AS ats, \
             {concat}(leaf, CAST('' AS {blob}){order}) AS leaves, \
             {concat}(COALESCE(link, {start}), CAST('' AS {blob}){order}) AS links, {columns}\
             {concat}(entry, '{separator}'{order}) AS entries \
             FROM audit_log WHERE seq > $1 AND seq <= $2"
        );
        let row = self
            .conn
            .fetch_optional(Stmt::new(sql).bind(after).bind(upto).scan())
            .await?
            .ok_or_else(|| StoreError::Corrupt("an aggregate returned no row".into()))?;
        let text = |c: &str| row.opt_text(c).map(Option::unwrap_or_default);
        Ok(AuditChunk {
            count: row.int("n")?,
            first: row.opt_int("first")?,
            last: row.opt_int("last")?,
            odd: row.opt_int("odd")?.unwrap_or(0),
            ats: text("ats")?,
            leaves: row.opt_bytes("leaves")?.unwrap_or_default(),
            links: row.opt_bytes("links")?.unwrap_or_default(),
            columns: [
                text(INDEXED[0])?,
                text(INDEXED[1])?,
                text(INDEXED[2])?,
                text(INDEXED[3])?,
                text(INDEXED[4])?,
            ],
            entries: text("entries")?,
        })
    }

    /// The size of the newest checkpoint stored as signed before `before` (0: none): an entry
    /// made after then is numbered beyond it (every checkpoint signed before an entry was made
    /// covers only entries before it). The time is the row's, which no signature covers.
    pub async fn checkpoint_size_before(&mut self, before: i64) -> Result<i64, StoreError> {
        let stmt = Stmt::new("SELECT MAX(tree_size) AS low FROM audit_checkpoints WHERE at < $1").bind(before);
        match self.conn.fetch_optional(stmt).await? {
            Some(row) => Ok(row.opt_int("low")?.unwrap_or(0)),
            None => Ok(0),
        }
    }

    /// How many entries with `after < seq <= upto` name a subject yet are missing from the
    /// subject index, as far as the indexing job has reached: none, unless rows of the index
    /// were deleted by hand (a query by subject would then pass over those entries).
    pub async fn unindexed_subjects(&mut self, after: i64, upto: i64) -> Result<i64, StoreError> {
        let stmt = Stmt::new(
            "SELECT COUNT(*) AS n FROM audit_log a WHERE a.seq > $1 AND a.seq <= $2 \
             AND a.seq <= (SELECT upto FROM audit_index_state WHERE id = 1) AND a.subject IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM audit_subject_index i WHERE i.subject = a.subject AND i.seq = a.seq)",
        )
        .bind(after)
        .bind(upto)
        .scan();
        match self.conn.fetch_optional(stmt).await? {
            Some(row) => row.int("n"),
            None => Ok(0),
        }
    }

    /// The lowest and highest sequence numbers above `after`, if any. Each bound is a query of
    /// its own: SQLite answers a lone `MIN` or `MAX` from one end of the key, but both in one
    /// query read every entry in between (the whole log).
    pub async fn seq_bounds(&mut self, after: i64) -> Result<Option<(i64, i64)>, StoreError> {
        let stmt = Stmt::new(
            "SELECT (SELECT MIN(seq) FROM audit_log WHERE seq > $1) AS low, \
             (SELECT MAX(seq) FROM audit_log WHERE seq > $1) AS high",
        )
        .bind(after);
        let Some(row) = self.conn.fetch_optional(stmt).await? else {
            return Ok(None);
        };
        Ok(row.opt_int("low")?.zip(row.opt_int("high")?))
    }

    /// Entries with `seq > after` that `query` selects, oldest first, at most `limit`: index
    /// lookups, not a scan of the log. By subject, the sequence numbers come from
    /// `audit_subject_index` and, for the entries the indexing job has not reached yet, from
    /// the log's tail, a chunk at a time; the other conditions then select among those rows.
    /// Without a subject, the conditions run on the log (by principal through the
    /// `(principal, at)` index).
    pub async fn query(&mut self, query: &AuditQuery, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        if query.subjects.is_empty() {
            return self.select(query, None, after, limit).await;
        }
        const CHUNK: i64 = 1000;
        let upto = self
            .conn
            .fetch_optional(Stmt::new("SELECT upto FROM audit_index_state WHERE id = 1"))
            .await?
            .map_or(Ok(0), |r| r.int("upto"))?;
        let mut out = Vec::new();
        let mut cursor = after;
        loop {
            let seqs = self.subject_seqs(&query.subjects, cursor, upto, CHUNK).await?;
            let Some(&last) = seqs.last() else { break };
            let wanted = limit - i64::try_from(out.len()).unwrap_or(limit);
            out.extend(self.select(query, Some(&seqs), after, wanted).await?);
            if i64::try_from(out.len()).unwrap_or(limit) >= limit || (seqs.len() as i64) < CHUNK {
                break;
            }
            cursor = last;
        }
        Ok(out)
    }

    /// The purposes of the allowed entries about any of `subjects` (what their data was
    /// processed for, as the log says it), each once, sorted: from the subject index, and
    /// from the log after the index's mark, as [`Audit::query`] finds the entries. The answer
    /// is at most one row per purpose, however many entries there are.
    pub async fn purposes_about(&mut self, subjects: &[String]) -> Result<Vec<String>, StoreError> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let upto = self
            .conn
            .fetch_optional(Stmt::new("SELECT upto FROM audit_index_state WHERE id = 1"))
            .await?
            .map_or(Ok(0), |r| r.int("upto"))?;
        let list = placeholders(2, subjects.len());
        let index = format!(
            "SELECT DISTINCT a.purpose AS purpose FROM audit_subject_index i JOIN audit_log a ON a.seq = i.seq \
             WHERE i.subject IN ({list}) AND i.seq <= $1 AND a.decision = 'allow' AND a.purpose IS NOT NULL"
        );
        let tail = format!(
            "SELECT DISTINCT purpose FROM audit_log \
             WHERE seq > $1 AND subject IN ({list}) AND decision = 'allow' AND purpose IS NOT NULL"
        );
        let mut purposes = std::collections::BTreeSet::new();
        for sql in [index, tail] {
            let mut stmt = Stmt::new(sql).bind(upto).scan();
            for s in subjects {
                stmt.push(s);
            }
            for row in self.conn.fetch_all(stmt).await? {
                purposes.insert(row.text("purpose")?);
            }
        }
        Ok(purposes.into_iter().collect())
    }

    /// The first `n` sequence numbers above `cursor` of entries about any of `subjects`: from
    /// the subject index, and from the log after the index's mark `upto`.
    async fn subject_seqs(
        &mut self,
        subjects: &[String],
        cursor: i64,
        upto: i64,
        n: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let list = placeholders(3, subjects.len());
        let limit = subjects.len() + 3;
        let mut seqs = Vec::new();
        // Each statement bounds `seq` by one range, so the planner reads that range of the key.
        let index = format!(
            "SELECT seq FROM audit_subject_index WHERE subject IN ({list}) AND seq > $1 AND seq <= $2 ORDER BY seq LIMIT ${limit}"
        );
        let tail = format!(
            "SELECT seq FROM audit_log WHERE seq > $1 AND seq <= $2 AND subject IN ({list}) ORDER BY seq LIMIT ${limit}"
        );
        for (sql, low, high) in [(index, cursor, upto), (tail, cursor.max(upto), i64::MAX)] {
            let mut stmt = Stmt::new(sql).bind(low).bind(high).scan();
            for s in subjects {
                stmt.push(s);
            }
            stmt.push(n);
            for row in self.conn.fetch_all(stmt).await? {
                seqs.push(row.int("seq")?);
            }
        }
        seqs.sort_unstable();
        seqs.dedup();
        seqs.truncate(usize::try_from(n).unwrap_or(0));
        Ok(seqs)
    }

    /// Entries with `seq > after` (and among `seqs`, when given) meeting the query's
    /// conditions other than the subject, oldest first, at most `limit`.
    async fn select(
        &mut self,
        query: &AuditQuery,
        seqs: Option<&[i64]>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let mut sql = format!("SELECT {ENTRY_COLUMNS} FROM audit_log WHERE seq > $1");
        let mut n = 1;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if let Some(seqs) = seqs {
            let list: Vec<String> = seqs.iter().map(|_| next()).collect();
            sql.push_str(&format!(" AND seq IN ({})", list.join(", ")));
        }
        let optional = [
            ("principal", query.principal.as_deref()),
            ("action", query.action.as_deref()),
            ("purpose", query.purpose.as_deref()),
            ("decision", query.decision.as_deref()),
        ];
        for (column, value) in &optional {
            if value.is_some() {
                sql.push_str(&format!(" AND {column} = {}", next()));
            }
        }
        if query.from.is_some() {
            sql.push_str(&format!(" AND at >= {}", next()));
        }
        if query.to.is_some() {
            sql.push_str(&format!(" AND at < {}", next()));
        }
        sql.push_str(&format!(" ORDER BY seq LIMIT {}", next()));
        let mut stmt = Stmt::new(sql).bind(after).scan();
        for seq in seqs.unwrap_or_default() {
            stmt.push(*seq);
        }
        for (_, value) in optional {
            if let Some(v) = value {
                stmt.push(v);
            }
        }
        for t in [query.from, query.to].into_iter().flatten() {
            stmt.push(t);
        }
        stmt.push(limit);
        self.conn.fetch_all(stmt).await?.iter().map(audit_row).collect()
    }

    /// How far the subject index disagrees with the log: entries up to its mark that it lacks,
    /// rows it holds that no entry has, and whether its mark lies beyond the log. An index
    /// edited to hide entries from subject lookups shows here (`audit verify` checks it).
    pub async fn subject_index_faults(&mut self) -> Result<(i64, i64, bool), StoreError> {
        let count = |sql: &'static str| Stmt::new(sql).scan();
        let missing = self.unindexed_subjects(i64::MIN, i64::MAX).await?;
        let extra = self
            .conn
            .fetch_optional(count(
                "SELECT COUNT(*) AS n FROM audit_subject_index i WHERE NOT EXISTS \
                 (SELECT 1 FROM audit_log a WHERE a.seq = i.seq AND a.subject = i.subject)",
            ))
            .await?
            .map_or(Ok(0), |r| r.int("n"))?;
        let beyond = self
            .conn
            .fetch_optional(count(
                "SELECT COUNT(*) AS n FROM audit_index_state \
                 WHERE upto > (SELECT COALESCE(MAX(seq), 0) FROM audit_log)",
            ))
            .await?
            .map_or(Ok(0), |r| r.int("n"))?;
        Ok((missing, extra, beyond > 0))
    }

    /// The checkpoints of trees larger than `after`, smallest first, at most `limit` (the
    /// server signs one a second while the log grows: a year's would not fit in memory).
    pub async fn checkpoints_after(&mut self, after: i64, limit: i64) -> Result<Vec<CheckpointRow>, StoreError> {
        let stmt = Stmt::new(
            "SELECT tree_size, root, at, note FROM audit_checkpoints WHERE tree_size > $1 ORDER BY tree_size LIMIT $2",
        )
        .bind(after)
        .bind(limit);
        self.conn.fetch_all(stmt).await?.iter().map(checkpoint_row).collect()
    }

    /// Whether the vault holds records or ledger entries: each was written with an audit
    /// entry in its transaction, so a log without entries beside them was emptied.
    pub async fn data_written(&mut self) -> Result<bool, StoreError> {
        let stmt =
            Stmt::new("SELECT 1 AS one WHERE EXISTS (SELECT 1 FROM records) OR EXISTS (SELECT 1 FROM subject_ledger)");
        Ok(self.conn.fetch_optional(stmt).await?.is_some())
    }

    /// How many checkpoints there are.
    pub async fn checkpoint_count(&mut self) -> Result<i64, StoreError> {
        let stmt = Stmt::new("SELECT COUNT(*) AS n FROM audit_checkpoints").scan();
        self.conn.fetch_optional(stmt).await?.map_or(Ok(0), |row| row.int("n"))
    }

    /// The hashes of the full tile at `level`, `idx`.
    pub async fn tile(&mut self, level: i64, idx: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let stmt = Stmt::new("SELECT hashes FROM audit_tiles WHERE level = $1 AND idx = $2")
            .bind(level)
            .bind(idx);
        self.conn
            .fetch_optional(stmt)
            .await?
            .map(|r| r.bytes("hashes"))
            .transpose()
    }

    /// The hashes and root of the full tile at `level`, `idx`.
    pub async fn tile_and_root(&mut self, level: i64, idx: i64) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
        let stmt = Stmt::new("SELECT hashes, root FROM audit_tiles WHERE level = $1 AND idx = $2")
            .bind(level)
            .bind(idx);
        self.conn
            .fetch_optional(stmt)
            .await?
            .map(|r| Ok((r.bytes("hashes")?, r.bytes("root")?)))
            .transpose()
    }

    /// The roots of the full tiles at `level` with `start <= idx < end`, in order.
    pub async fn tile_roots(&mut self, level: i64, start: i64, end: i64) -> Result<Vec<Vec<u8>>, StoreError> {
        let stmt = Stmt::new("SELECT root FROM audit_tiles WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx")
            .bind(level)
            .bind(start)
            .bind(end);
        self.conn
            .fetch_all(stmt)
            .await?
            .iter()
            .map(|r| r.bytes("root"))
            .collect()
    }

    /// The newest full level-0 tile of entries up to `upto` (tiles other nodes stored of
    /// entries after it are left out): its index and the sequence number of its last entry.
    pub async fn last_leaf_tile(&mut self, upto: i64) -> Result<Option<(i64, i64)>, StoreError> {
        let stmt = Stmt::new(
            "SELECT idx, last_seq FROM audit_tiles WHERE level = 0 AND last_seq <= $1 ORDER BY idx DESC LIMIT 1",
        )
        .bind(upto);
        self.conn
            .fetch_optional(stmt)
            .await?
            .map(|r| Ok((r.int("idx")?, r.int("last_seq")?)))
            .transpose()
    }

    /// The largest stored tile index of each level, `(level, idx)`, lowest level first.
    pub async fn last_tiles(&mut self) -> Result<Vec<(i64, i64)>, StoreError> {
        let stmt = Stmt::new("SELECT level, MAX(idx) AS idx FROM audit_tiles GROUP BY level ORDER BY level");
        self.conn
            .fetch_all(stmt)
            .await?
            .iter()
            .map(|r| Ok((r.int("level")?, r.int("idx")?)))
            .collect()
    }

    /// The sequence number of the last entry of the full level-0 tile `idx`.
    pub async fn tile_last_seq(&mut self, idx: i64) -> Result<Option<i64>, StoreError> {
        let stmt = Stmt::new("SELECT last_seq FROM audit_tiles WHERE level = 0 AND idx = $1").bind(idx);
        self.conn
            .fetch_optional(stmt)
            .await?
            .map(|r| r.int("last_seq"))
            .transpose()
    }

    /// Sequence numbers and stored leaf hashes of the entries with `seq > after`, oldest
    /// first, at most `limit`.
    pub async fn leaves(&mut self, after: i64, limit: i64) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let stmt = Stmt::new("SELECT seq, leaf FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(limit)
            .scan();
        self.conn
            .fetch_all(stmt)
            .await?
            .iter()
            .map(|r| Ok((r.int("seq")?, r.opt_bytes("leaf")?.unwrap_or_default())))
            .collect()
    }

    /// The newest checkpoint.
    pub async fn latest_checkpoint(&mut self) -> Result<Option<CheckpointRow>, StoreError> {
        let stmt = Stmt::new("SELECT tree_size, root, at, note FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1");
        self.conn
            .fetch_optional(stmt)
            .await?
            .as_ref()
            .map(checkpoint_row)
            .transpose()
    }
}

impl Audit<'_, ReadWrite> {
    /// Appends entries in this transaction.
    pub async fn append(&mut self, rows: &[AuditRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        if self.conn.dialect() == Dialect::Postgres && !self.sequenced.as_deref().copied().unwrap_or(false) {
            self.conn
                .execute(Stmt::new("SELECT pg_advisory_xact_lock($1)").bind(AUDIT_SEQUENCER_LOCK))
                .await?;
            if let Some(flag) = self.sequenced.as_deref_mut() {
                *flag = true;
            }
        }
        // Each entry is linked to the one before it, which the sequencer (PostgreSQL) or the
        // one writer (SQLite) keeps the last until this transaction ends.
        let key = self
            .linker
            .ok_or_else(|| StoreError::Backend("audit entries are appended only in a transaction".into()))?
            .key()?;
        let last = self
            .conn
            .fetch_optional(Stmt::new("SELECT link FROM audit_log ORDER BY seq DESC LIMIT 1"))
            .await?;
        let newest = match last {
            Some(row) => row.opt_bytes("link")?,
            None => None,
        };
        // A malformed last link is left for the checkpointer to name (it refuses that entry).
        let mut previous = custodia_audit::chain::stored_link(newest.as_deref()).unwrap_or(START);
        let links: Vec<_> = rows
            .iter()
            .map(|r| {
                previous = key.link(&previous, &r.leaf);
                previous
            })
            .collect();
        for (chunk, links) in rows
            .chunks(Dialect::MAX_PARAMETERS / 9)
            .zip(links.chunks(Dialect::MAX_PARAMETERS / 9))
        {
            let sql = values_clause(
                "INSERT INTO audit_log (at, entry, leaf, principal, action, decision, purpose, subject, link) VALUES ",
                9,
                chunk.len(),
            );
            let mut stmt = Stmt::new(sql);
            for (r, link) in chunk.iter().zip(links) {
                stmt.push(r.at);
                stmt.push(&r.entry);
                stmt.push(&r.leaf);
                stmt.push(r.index.principal.as_deref());
                stmt.push(r.index.action.as_deref());
                stmt.push(r.index.decision.as_deref());
                stmt.push(r.index.purpose.as_deref());
                stmt.push(r.index.subject.as_deref());
                stmt.push(link.as_slice());
            }
            self.conn.execute(stmt).await?;
        }
        if let Some(linker) = self.linker {
            linker.follow_tail(newest.as_deref(), links.last().map(|l| l.as_slice()))?;
        }
        custodia_metrics::audit_written(rows.len(), rows.iter().filter_map(|r| r.metric.as_ref()));
        Ok(())
    }

    /// Adds the entries appended since the last call to `audit_subject_index`, in one batch;
    /// returns how many. Entries commit in sequence order (one SQLite writer; the sequencer on
    /// PostgreSQL), so every entry up to the highest visible number is there to be indexed.
    pub async fn index_subjects(&mut self) -> Result<u64, StoreError> {
        let lock = self.conn.dialect().row_lock();
        let state = self
            .conn
            .fetch_optional(Stmt::new(format!(
                "SELECT upto FROM audit_index_state WHERE id = 1{lock}"
            )))
            .await?
            .ok_or_else(|| StoreError::Corrupt("audit_index_state has no row".into()))?;
        let upto = state.int("upto")?;
        let last = self
            .conn
            .fetch_optional(Stmt::new("SELECT COALESCE(MAX(seq), 0) AS last FROM audit_log"))
            .await?
            .map_or(Ok(upto), |r| r.int("last"))?;
        if last <= upto {
            return Ok(0);
        }
        let added = self
            .conn
            .execute(
                Stmt::new(
                    "INSERT INTO audit_subject_index (subject, seq) SELECT subject, seq FROM audit_log \
                     WHERE seq > $1 AND seq <= $2 AND subject IS NOT NULL ORDER BY subject, seq",
                )
                .bind(upto)
                .bind(last),
            )
            .await?;
        self.conn
            .execute(Stmt::new("UPDATE audit_index_state SET upto = $1 WHERE id = 1").bind(last))
            .await?;
        Ok(added)
    }

    /// Stores full tiles; one already stored (by another node) is left as it is.
    pub async fn insert_tiles(&mut self, tiles: &[TileRow]) -> Result<(), StoreError> {
        for chunk in tiles.chunks(Dialect::MAX_PARAMETERS / 5) {
            if chunk.is_empty() {
                continue;
            }
            let sql = format!(
                "{} ON CONFLICT (level, idx) DO NOTHING",
                values_clause(
                    "INSERT INTO audit_tiles (level, idx, hashes, root, last_seq) VALUES ",
                    5,
                    chunk.len()
                )
            );
            let mut stmt = Stmt::new(sql);
            for t in chunk {
                stmt.push(t.level);
                stmt.push(t.idx);
                stmt.push(&t.hashes);
                stmt.push(&t.root);
                stmt.push(t.last_seq);
            }
            self.conn.execute(stmt).await?;
        }
        Ok(())
    }

    /// Stores a signed checkpoint (append-only; a second one for the same size conflicts).
    pub async fn insert_checkpoint(&mut self, row: &CheckpointRow) -> Result<(), StoreError> {
        let stmt = Stmt::new("INSERT INTO audit_checkpoints (tree_size, root, at, note) VALUES ($1, $2, $3, $4)")
            .bind(row.tree_size)
            .bind(&row.root)
            .bind(row.at)
            .bind(&row.note);
        self.conn.execute(stmt).await?;
        Ok(())
    }
}
