//! Sealed tallies, kept in `meta`: how many sealed rows a set holds (and, for the ledger, the
//! newest entry's number) and the fold of their seals, sealed by the vault and moved inside
//! every transaction that changes the set. A row's own seal tells it was written by the
//! vault, not that it is the newest version the vault wrote: a row put back as an earlier
//! copy of the database had it (a revoked key's row from before its revocation, with the seal
//! it carried then), deleted, or a sealed row moved in from elsewhere leaves the tally's count
//! or fold off, and no row can be made to even it out (the seals are MACs). What a tally
//! cannot tell: the whole set and its tally put back together as an earlier copy had them.

use crate::sql::{Conn, Stmt};
use crate::{ReadWrite, StoreError};

/// Seals what the store keeps sealed (ledger entries and heads, tallies): a MAC under a key
/// only the vault holds; the store never sees it.
pub trait Sealer: Send + Sync {
    /// The seal of `message`.
    fn seal(&self, message: &[u8]) -> Vec<u8>;
    /// Whether `seal` is the seal of `message`.
    fn holds(&self, message: &[u8], seal: &[u8]) -> bool;
}

/// A message to seal: a domain label, then each part (integers 8 bytes big endian, texts a
/// presence byte, their length and their bytes).
pub(crate) struct Message(pub(crate) Vec<u8>);

impl Message {
    pub(crate) fn new(domain: &str) -> Self {
        Self(domain.as_bytes().to_vec())
    }

    pub(crate) fn int(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// The length, then the bytes.
    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&(v.len() as u64).to_be_bytes());
        self.0.extend_from_slice(v);
        self
    }

    /// A presence byte, then the length and the bytes.
    pub(crate) fn text(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => {
                self.0.push(1);
                self.bytes(v.as_bytes())
            }
            None => {
                self.0.push(0);
                self
            }
        }
    }
}

super::repository!(
    /// The tallies of sealed sets that are not a repository's own (the access rows').
    Tallies
);

/// An access row, for the vault to check against its seal.
#[derive(Debug, Clone, Copy)]
pub enum AccessRow<'a> {
    Principal(&'a crate::PrincipalRow),
    Operator(&'a crate::OperatorRow),
    Session(&'a crate::SessionRow),
    Grant(&'a crate::BreakGlassRow),
}

impl AccessRow<'_> {
    fn seal(&self) -> Option<&[u8]> {
        match self {
            Self::Principal(r) => r.seal.as_deref(),
            Self::Operator(r) => r.seal.as_deref(),
            Self::Session(r) => r.seal.as_deref(),
            Self::Grant(r) => r.seal.as_deref(),
        }
    }

    /// The row as a refusal names it (ids, never secrets).
    fn named(&self) -> String {
        match self {
            Self::Principal(r) => format!("principal {}", r.principal_id),
            Self::Operator(r) => format!("operator {}", r.operator_id),
            Self::Session(r) => format!("session {}", r.session_id),
            Self::Grant(r) => format!("break-glass grant {}", r.grant_id),
        }
    }
}

/// Seals access rows and tallies: whether an access row carries the vault's seal of what it
/// holds (the messages are the vault's).
pub trait AccessSealer: Sealer {
    fn holds_row(&self, row: AccessRow<'_>) -> bool;
}

/// What a row's seal adds to the access tally's fold: a MAC of it, which only the vault can
/// make. Folded as they are, the seals themselves (which anyone reading the database has)
/// would let whoever holds several earlier copies pick rows to put back whose seals XOR to
/// what the tally expects; the terms cannot be computed without the vault's key.
fn term(seal: &dyn Sealer, row_seal: &[u8]) -> Vec<u8> {
    let mut m = b"custodia.access-tally-term.v1".to_vec();
    m.extend_from_slice(row_seal);
    seal.seal(&m)
}

/// What [`Tallies::check_access`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessCheck {
    /// Every sealed row carries its seal, and they are what the tally counted.
    Holds,
    /// Every sealed row carries its seal, and there is no tally (`rows` sealed rows): a
    /// database from before the tally (schema version 23) or one whose tally was deleted.
    NoTally { rows: i64 },
}

impl Tallies<'_, ReadWrite> {
    /// Checks the access rows against their seals and their sealed tally, its row locked
    /// first (every change of an access row moves it, so the rows read are those it counted):
    /// a row written or changed by hand fails its own seal; one put back as an earlier copy
    /// had it (a revocation, rotation, disabling or logout undone with the seal the row
    /// carried before), deleted, or copied in leaves the count or the fold off.
    pub async fn check_access(&mut self, seal: &dyn AccessSealer) -> Result<AccessCheck, StoreError> {
        let stored = self.locked_access_tally(seal).await?;
        let held = self.access_rows_folded(seal).await?;
        let Some(stored) = stored else {
            return Ok(AccessCheck::NoTally { rows: held.count });
        };
        if stored != held {
            let what = if held.count == stored.count {
                format!("the {} sealed rows are not those the vault counted", held.count)
            } else {
                format!("{} sealed rows where the vault counted {}", held.count, stored.count)
            };
            return Err(StoreError::AccessAltered(format!(
                "{what} (a row put back as an earlier copy of the database had it, deleted, or copied in)"
            )));
        }
        Ok(AccessCheck::Holds)
    }

    /// Makes the access rows' tally from the rows as they are (each checked against its seal
    /// first), once: at the start that follows the upgrade to schema version 23. Returns how
    /// many sealed rows it counted.
    pub async fn tally_access_rows(&mut self, seal: &dyn AccessSealer) -> Result<i64, StoreError> {
        self.locked_access_tally(seal).await?;
        let held = self.access_rows_folded(seal).await?;
        crate::repo::Meta::<ReadWrite>::new(self.conn.reborrow())
            .set(ACCESS.key, &held.to_bytes(&ACCESS, seal))
            .await?;
        Ok(held.count)
    }

    /// The access tally as stored, its row locked until the transaction ends (`None`: none).
    async fn locked_access_tally(&mut self, seal: &dyn Sealer) -> Result<Option<Tally>, StoreError> {
        let lock = self.conn.dialect().row_lock();
        let stmt = Stmt::new(format!("SELECT value FROM meta WHERE key = $1{lock}")).bind(ACCESS.key);
        match self.conn.fetch_optional(stmt).await? {
            Some(row) => Ok(Some(Tally::open(
                &row.bytes("value").map_err(|_| not_sealed(&ACCESS))?,
                &ACCESS,
                seal,
            )?)),
            None => Ok(None),
        }
    }

    /// Every access row with a seal, each checked against it, folded (a row that fails its
    /// seal, or holds a column of a type the vault never writes, is an alteration, named).
    async fn access_rows_folded(&mut self, seal: &dyn AccessSealer) -> Result<Tally, StoreError> {
        const SHOWN: usize = 10;
        let mut held = Tally::EMPTY;
        let mut altered = Vec::new();
        let mut note = |row: AccessRow<'_>, held: &mut Tally| match row.seal() {
            None => {}
            Some(s) if seal.holds_row(row) => {
                held.fold(&term(seal, s));
                held.count += 1;
            }
            Some(_) => altered.push(row.named()),
        };
        for (table, _) in ACCESS_TABLES {
            let stmt = Stmt::new(format!("SELECT * FROM {table} WHERE seal IS NOT NULL"));
            for r in self.conn.fetch_all(stmt).await? {
                let unreadable = || {
                    StoreError::AccessAltered(format!(
                        "a row of {table} holds a value of a type the vault never writes"
                    ))
                };
                match table {
                    "principals" => note(
                        AccessRow::Principal(&super::principals::principal_row(&r).map_err(|_| unreadable())?),
                        &mut held,
                    ),
                    "operators" => note(
                        AccessRow::Operator(&super::operators::operator_row(&r).map_err(|_| unreadable())?),
                        &mut held,
                    ),
                    "operator_sessions" => note(
                        AccessRow::Session(&super::operators::session_row(&r).map_err(|_| unreadable())?),
                        &mut held,
                    ),
                    _ => note(
                        AccessRow::Grant(&super::operators::break_glass_row(&r).map_err(|_| unreadable())?),
                        &mut held,
                    ),
                }
            }
        }
        if !altered.is_empty() {
            let more = altered.len().saturating_sub(SHOWN);
            altered.truncate(SHOWN);
            if more > 0 {
                altered.push(format!("and {more} more"));
            }
            return Err(StoreError::AccessAltered(format!(
                "not as the vault sealed them (written or changed by hand): {}",
                altered.join(", ")
            )));
        }
        Ok(held)
    }
}

/// A set of sealed rows with a tally: the `meta` key it is kept under, the domain label its
/// seal is made with, and the error that says the set was altered.
pub(crate) struct Tallied {
    pub(crate) key: &'static str,
    domain: &'static str,
    pub(crate) altered: fn(String) -> StoreError,
}

/// The subject ledger's: entries, the newest's number, the fold of the subjects' head seals.
pub(crate) const LEDGER: Tallied = Tallied {
    key: "ledger_tally",
    domain: "custodia.ledger-tally.v1",
    altered: StoreError::LedgerAltered,
};

/// The rows that grant access: principals, operators, operators' sessions and break-glass
/// grants with a seal, and the fold of those seals (no number: `newest` stays 0).
pub(crate) const ACCESS: Tallied = Tallied {
    key: "access_tally",
    domain: "custodia.access-tally.v1",
    altered: StoreError::AccessAltered,
};

/// The `meta` key set (`0x01`) by the schema step that added the access rows' tally (schema
/// version 23): the vault makes the tally at its next start, then sets it to `0x00`.
pub const ACCESS_PENDING: &str = "access_tally_pending";

/// The bytes of the fold of seals (a seal's first bytes).
const FOLD: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) count: i64,
    pub(crate) newest: i64,
    pub(crate) fold: [u8; FOLD],
}

impl Tally {
    pub(crate) const EMPTY: Self = Self {
        count: 0,
        newest: 0,
        fold: [0; FOLD],
    };

    /// Folds a seal in, or out (XOR is its own inverse).
    pub(crate) fn fold(&mut self, seal: &[u8]) {
        for (acc, b) in self.fold.iter_mut().zip(seal) {
            *acc ^= b;
        }
    }

    /// What the tally's seal covers: the domain label, the count and the newest number (8
    /// bytes each, big endian), the fold.
    fn message(&self, domain: &str) -> Vec<u8> {
        let mut m = domain.as_bytes().to_vec();
        m.extend_from_slice(&self.count.to_be_bytes());
        m.extend_from_slice(&self.newest.to_be_bytes());
        m.extend_from_slice(&self.fold);
        m
    }

    /// As stored: count, newest number (8 bytes each, big endian), the fold, then its seal.
    pub(crate) fn to_bytes(self, of: &Tallied, seal: &dyn Sealer) -> Vec<u8> {
        let mut bytes = self.count.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.newest.to_be_bytes());
        bytes.extend_from_slice(&self.fold);
        bytes.extend_from_slice(&seal.seal(&self.message(of.domain)));
        bytes
    }

    /// A stored tally, checked against its seal.
    pub(crate) fn open(bytes: &[u8], of: &Tallied, seal: &dyn Sealer) -> Result<Self, StoreError> {
        let int = |at: usize| {
            bytes
                .get(at..at + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(i64::from_be_bytes)
        };
        let fold = bytes.get(16..16 + FOLD).and_then(|b| <[u8; FOLD]>::try_from(b).ok());
        if let (Some(count), Some(newest), Some(fold), Some(s)) = (int(0), int(8), fold, bytes.get(16 + FOLD..)) {
            let tally = Self { count, newest, fold };
            if seal.holds(&tally.message(of.domain), s) {
                return Ok(tally);
            }
        }
        Err(not_sealed(of))
    }
}

/// The error of a tally that is not the one the vault sealed (changed, of another type).
pub(crate) fn not_sealed(of: &Tallied) -> StoreError {
    (of.altered)("its tally is not the one the vault sealed".into())
}

/// Moves the tally of `of` as `change` says, its row locked until the transaction ends (so
/// the changes of several nodes each count).
pub(crate) async fn moved(
    conn: &mut Conn<'_>,
    of: &Tallied,
    seal: &dyn Sealer,
    change: impl FnOnce(&mut Tally),
) -> Result<(), StoreError> {
    let lock = conn.dialect().row_lock();
    // The row made first if it is not there, so there is a row to lock: two first changes (of
    // two nodes) would each count from none. A tally deleted by hand starts again from none,
    // which leaves it off for good.
    let mut meta = crate::repo::Meta::<ReadWrite>::new(conn.reborrow());
    meta.insert(of.key, &Tally::EMPTY.to_bytes(of, seal)).await?;
    let stmt = Stmt::new(format!("SELECT value FROM meta WHERE key = $1{lock}")).bind(of.key);
    let mut tally = match conn.fetch_optional(stmt).await? {
        Some(row) => Tally::open(&row.bytes("value").map_err(|_| not_sealed(of))?, of, seal)?,
        None => Tally::EMPTY,
    };
    change(&mut tally);
    crate::repo::Meta::<ReadWrite>::new(conn.reborrow())
        .set(of.key, &tally.to_bytes(of, seal))
        .await
}

/// Refuses a change of an access row while the tally of the rows already there is still to
/// be made (after the upgrade to schema version 23, until the server's first start makes
/// it): a tally begun from one row would leave the others uncounted. (With no sealed row
/// yet, a new vault's, the tally begun by the change counts every one.) Asked before the
/// change is written.
pub(crate) async fn access_change_allowed(conn: &mut Conn<'_>) -> Result<(), StoreError> {
    let any_sealed = ACCESS_TABLES
        .iter()
        .map(|(table, _)| format!("EXISTS (SELECT 1 FROM {table} WHERE seal IS NOT NULL)"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let stmt = Stmt::new(format!(
        "SELECT 1 AS untallied WHERE NOT EXISTS (SELECT 1 FROM meta WHERE key = $1) \
         AND EXISTS (SELECT 1 FROM meta WHERE key = $2 AND value = $3) AND ({any_sealed})"
    ))
    .bind(ACCESS.key)
    .bind(ACCESS_PENDING)
    .bind(&[1u8][..]);
    match conn.fetch_optional(stmt).await? {
        Some(_) => Err(StoreError::AccessUntallied),
        None => Ok(()),
    }
}

/// Moves the access rows' tally: `out` (a row's seal before the change, if it had one) taken
/// out, `into` (its seal after) put in (each as its [`term`]).
pub(crate) async fn access_moved(
    conn: &mut Conn<'_>,
    seal: &dyn Sealer,
    out: Option<&[u8]>,
    into: Option<&[u8]>,
) -> Result<(), StoreError> {
    let terms = [(out, -1), (into, 1)].map(|(s, step)| s.map(|s| (term(seal, s), step)));
    moved(conn, &ACCESS, seal, |t| {
        for (term, step) in terms.iter().flatten() {
            t.fold(term);
            t.count += step;
        }
    })
    .await
}

/// The tables of the rows that grant access, each with its key column.
pub(crate) const ACCESS_TABLES: [(&str, &str); 4] = [
    ("principals", "principal_id"),
    ("operators", "operator_id"),
    ("operator_sessions", "session_id"),
    ("break_glass", "grant_id"),
];

/// Stores `new_seal` as the seal of the access row `id` of `table` (one of
/// [`ACCESS_TABLES`]) and moves the tally from the seal it had (the row locked as it is read,
/// so two changes of one row each take out the seal the other put in).
pub(crate) async fn reseal_access_row(
    conn: &mut Conn<'_>,
    (table, key): (&str, &str),
    id: &str,
    new_seal: Option<&[u8]>,
    seal: &dyn Sealer,
) -> Result<(), StoreError> {
    let lock = conn.dialect().row_lock();
    access_change_allowed(conn).await?;
    let stmt = Stmt::new(format!("SELECT seal FROM {table} WHERE {key} = $1{lock}")).bind(id);
    let Some(row) = conn.fetch_optional(stmt).await? else {
        return Ok(());
    };
    // (a seal of another type than the vault writes is none it wrote)
    let old = row.opt_bytes("seal").map_err(|_| {
        StoreError::AccessAltered(format!(
            "a row of {table} holds a seal of a type the vault never writes"
        ))
    })?;
    let stmt = Stmt::new(format!("UPDATE {table} SET seal = $1 WHERE {key} = $2"))
        .bind(new_seal)
        .bind(id);
    conn.execute(stmt).await?;
    access_moved(conn, seal, old.as_deref(), new_seal).await
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mac;

    impl Sealer for Mac {
        fn seal(&self, message: &[u8]) -> Vec<u8> {
            aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"k"), message)
                .as_ref()
                .to_vec()
        }

        fn holds(&self, message: &[u8], seal: &[u8]) -> bool {
            self.seal(message) == seal
        }
    }

    #[test]
    fn a_tally_opens_only_as_sealed_and_only_for_its_own_set() {
        let mut t = Tally::EMPTY;
        t.count = 3;
        t.newest = 9;
        t.fold(&[7; 32]);
        let bytes = t.to_bytes(&ACCESS, &Mac);
        assert_eq!(Tally::open(&bytes, &ACCESS, &Mac).ok(), Some(t));
        // the same bytes are no ledger tally: each set's seal names it
        assert!(matches!(
            Tally::open(&bytes, &LEDGER, &Mac),
            Err(StoreError::LedgerAltered(_))
        ));
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 1;
            assert!(
                matches!(Tally::open(&flipped, &ACCESS, &Mac), Err(StoreError::AccessAltered(_))),
                "byte {i}"
            );
        }
        assert!(Tally::open(&bytes[..bytes.len() - 1], &ACCESS, &Mac).is_err());
        assert!(Tally::open(&[], &ACCESS, &Mac).is_err());
    }

    #[test]
    fn a_fold_is_its_own_inverse_and_tells_one_seal_from_another() {
        let mut t = Tally::EMPTY;
        t.fold(&[1; 32]);
        t.fold(&[2; 32]);
        let both = t;
        t.fold(&[1; 32]);
        assert_eq!(t.fold, [2; 32]);
        t.fold(&[2; 32]);
        assert_eq!(t, Tally::EMPTY);
        // a row's earlier seal in place of its newest leaves another fold
        let mut replayed = Tally::EMPTY;
        replayed.fold(&[3; 32]);
        replayed.fold(&[2; 32]);
        assert_ne!(replayed.fold, both.fold);
    }
}
