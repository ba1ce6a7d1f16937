//! The caches of derived state (subjects' ledger states, principals by key id) and how they
//! stay true when the store changes.
//!
//! - This node's own changes invalidate at once.
//! - Other nodes' changes (PostgreSQL) arrive as notifications ([`custodia_store::Changes`])
//!   and invalidate when they arrive: at the other node's commit, normally within milliseconds.
//!   While the listener is not subscribed, nothing is cached; when it subscribes again,
//!   everything cached is dropped (notifications sent meanwhile are lost).
//! - A read that raced an invalidation never caches what it read: every invalidation bumps a
//!   generation counter, and a value is cached only if the counter did not move while it was
//!   being read.
//! - Every entry expires after [`CACHE_TTL`] anyway: a safety net for a change whose
//!   notification never came (e.g. a node of an older release, which sends none). So a
//!   consent withdrawal or a key revocation through any node takes effect on every node when
//!   its notification arrives, and in any case within [`CACHE_TTL`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use custodia_store::{Change, Changes, PrincipalRow};

use crate::consent::SubjectState;

/// How long a cached entry is trusted at most (see the module's documentation).
pub const CACHE_TTL: Duration = Duration::from_secs(5);
/// Most entries a cache holds; it is emptied when full.
const CACHE_MAX: usize = 100_000;

/// Values by key, cached only while no invalidation races their read.
pub(crate) struct Cache<V> {
    generation: AtomicU64,
    /// Whether values may be cached: false while change notifications may be missed.
    enabled: AtomicBool,
    ttl_ms: AtomicU64,
    entries: Mutex<HashMap<String, (V, Instant)>>,
}

impl<V> Default for Cache<V> {
    fn default() -> Self {
        Self {
            generation: AtomicU64::new(0),
            enabled: AtomicBool::new(true),
            ttl_ms: AtomicU64::new(u64::try_from(CACHE_TTL.as_millis()).unwrap_or(u64::MAX)),
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> Cache<V> {
    /// The generation to note before reading a value from the store, for [`Cache::put`].
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub(crate) fn get(&self, key: &str) -> Option<V> {
        if !self.enabled.load(Ordering::SeqCst) {
            return None;
        }
        let ttl = Duration::from_millis(self.ttl_ms.load(Ordering::Relaxed));
        let entries = self.entries.lock().ok()?;
        let (value, fetched) = entries.get(key)?;
        (fetched.elapsed() < ttl).then(|| value.clone())
    }

    /// Caches `value`, read from the store after [`Cache::generation`] said `read_at`, unless
    /// an invalidation happened since (the value may predate it).
    pub(crate) fn put(&self, key: &str, read_at: u64, value: V) {
        if let Ok(mut entries) = self.entries.lock()
            && self.generation() == read_at
            && self.enabled.load(Ordering::SeqCst)
        {
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
            entries.insert(key.to_owned(), (value, Instant::now()));
        }
    }

    /// Drops `key`'s entry; reads racing this cache nothing.
    pub(crate) fn invalidate(&self, key: &str) {
        self.invalidate_where(|k, _| k == key);
    }

    /// Drops every entry `stale` picks; reads racing this cache nothing.
    pub(crate) fn invalidate_where(&self, stale: impl Fn(&str, &V) -> bool) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|k, (v, _)| !stale(k, v));
        }
    }

    /// Drops everything and turns caching on or off.
    fn reset(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::SeqCst);
        self.invalidate_where(|_, _| true);
    }

    #[cfg(test)]
    pub(crate) fn set_ttl(&self, ttl: Duration) {
        self.ttl_ms
            .store(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

/// The vault's caches, shared with the task that applies other nodes' changes.
#[derive(Default)]
pub(crate) struct Caches {
    /// Subjects' ledger states by subject id.
    pub(crate) ledger: Cache<Arc<SubjectState>>,
    /// Principals by API key id (key hashes, never keys).
    pub(crate) principals: Cache<PrincipalRow>,
    /// The collections in read-only mode (one entry, key [`READ_ONLY_KEY`]).
    pub(crate) read_only: Cache<Arc<std::collections::BTreeSet<String>>>,
    /// Set when the sweeper found the whole ledger off its sealed tally while this server
    /// ran (entries or a subject's head taken away under it): from then on nothing is decided
    /// on any subject's ledger (the next start refuses it).
    pub(crate) ledger_off: std::sync::atomic::AtomicBool,
    /// Set when the sweeper found the rows that grant access off their sealed tally while
    /// this server ran (a revoked key's row put back from an earlier copy, say): from then on
    /// no key, session or login is accepted (the next start refuses it).
    pub(crate) access_off: std::sync::atomic::AtomicBool,
}

/// The key of the one entry of [`Caches::read_only`].
pub(crate) const READ_ONLY_KEY: &str = "";

impl Caches {
    /// Forgets whatever a change makes stale.
    pub(crate) fn apply(&self, change: &Change) {
        match change {
            Change::Ledger(subject) => self.ledger.invalidate(subject),
            Change::Principal(id) => self.forget_principal(id),
            Change::ReadOnly => self.read_only.invalidate(READ_ONLY_KEY),
            Change::Down => {
                self.ledger.reset(false);
                self.principals.reset(false);
                self.read_only.reset(false);
            }
            Change::Resumed => {
                self.ledger.reset(true);
                self.principals.reset(true);
                self.read_only.reset(true);
            }
        }
    }

    /// Forgets every cached key of a principal.
    pub(crate) fn forget_principal(&self, principal_id: &str) {
        self.principals
            .invalidate_where(|_, row| row.principal_id == principal_id);
    }

    /// Applies every change `changes` reports, until the task is aborted.
    pub(crate) fn follow(self: Arc<Self>, mut changes: Changes) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let change = changes.next().await;
                self.apply(&change);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(principal_id: &str, key_id: &str) -> PrincipalRow {
        PrincipalRow {
            principal_id: principal_id.into(),
            name: "svc".into(),
            roles: vec!["admin".into()],
            key_id: key_id.into(),
            key_hash: vec![0; 32],
            created_at: 0,
            revoked_at: None,
            expires_at: None,
            last_used_at: None,
            created_by: None,
            client_cert: None,
            seal: None,
        }
    }

    /// An authentication that read a principal before its revocation, and tries to cache it
    /// after the revocation forgot it, caches nothing (it would keep the revoked key working).
    #[test]
    fn a_principal_read_before_a_revocation_is_not_cached_after_it() {
        let caches = Caches::default();
        let read_at = caches.principals.generation();
        caches.forget_principal("prn_1");
        caches.principals.put("k1", read_at, row("prn_1", "k1"));
        assert!(caches.principals.get("k1").is_none());
        let read_at = caches.principals.generation();
        caches.principals.put("k1", read_at, row("prn_1", "k1"));
        assert!(caches.principals.get("k1").is_some());
        caches.apply(&Change::Principal("prn_2".into()));
        assert!(caches.principals.get("k1").is_some(), "another principal's change");
        caches.apply(&Change::Principal("prn_1".into()));
        assert!(caches.principals.get("k1").is_none());
    }

    /// While notifications may be missed, nothing is cached; when they resume, nothing cached
    /// before survives.
    #[test]
    fn nothing_is_cached_while_notifications_may_be_missed() {
        let caches = Caches::default();
        let state = Arc::new(SubjectState::default());
        caches.ledger.put("s1", caches.ledger.generation(), Arc::clone(&state));
        assert!(caches.ledger.get("s1").is_some());
        caches.apply(&Change::Down);
        assert!(caches.ledger.get("s1").is_none());
        caches.ledger.put("s1", caches.ledger.generation(), Arc::clone(&state));
        assert!(caches.ledger.get("s1").is_none(), "cached while down");
        let read_while_down = caches.ledger.generation();
        caches.apply(&Change::Resumed);
        caches.ledger.put("s1", read_while_down, Arc::clone(&state));
        assert!(caches.ledger.get("s1").is_none(), "a read from before the resumption");
        caches.ledger.put("s1", caches.ledger.generation(), state);
        assert!(caches.ledger.get("s1").is_some());
        caches.apply(&Change::Ledger("s1".into()));
        assert!(caches.ledger.get("s1").is_none());
    }

    /// Entries expire after the TTL, notification or not.
    #[test]
    fn entries_expire() {
        let cache: Cache<u8> = Cache::default();
        cache.set_ttl(Duration::ZERO);
        cache.put("k", cache.generation(), 1);
        assert_eq!(cache.get("k"), None);
    }

    /// A fresh database on the test PostgreSQL server, if there is one.
    fn postgres_database() -> Option<String> {
        let Ok(url) = std::env::var("CUSTODIA_TEST_POSTGRES_URL") else {
            assert!(std::env::var("CI").is_err(), "CI must run the PostgreSQL tests");
            return None;
        };
        let name = format!(
            "custodia_core_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let out = std::process::Command::new("psql")
            .arg(&url)
            .arg("-qc")
            .arg(format!("CREATE DATABASE {name}"))
            .output()
            .expect("psql must be installed to run the PostgreSQL tests");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (base, _) = url.rsplit_once('/').unwrap();
        Some(format!("{base}/{name}"))
    }

    /// Polls `done` until it holds, for at most a generous minute (a notification normally
    /// arrives within milliseconds).
    async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done().await {
            assert!(Instant::now() < deadline, "{what} never reached the other node");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Two nodes on one PostgreSQL database, each with warm caches that would otherwise be
    /// trusted for an hour: a consent withdrawn and a key revoked through one are enforced by
    /// the other once its notification arrives.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_withdrawal_and_a_revocation_on_one_node_are_enforced_on_the_other() {
        use crate::{DataDir, SubjectId, Timestamp};
        let Some(url) = postgres_database() else { return };
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let admin_token = data.init(Some(&url), Timestamp(1)).await.unwrap().admin_token;
        let a = data.open(Some(&url)).await.unwrap();
        let b = data.open(Some(&url)).await.unwrap();
        for node in [&a, &b] {
            node.caches.ledger.set_ttl(Duration::from_secs(3600));
            node.caches.principals.set_ttl(Duration::from_secs(3600));
        }
        let now = Timestamp(2);
        let admin = a.authenticate(&admin_token, now).await.unwrap();

        // Consent given through A; B reads (and caches) the subject's state.
        let subject = SubjectId::parse("cust_1").unwrap();
        let purpose = a.registry().purpose("marketing_email").unwrap().clone();
        let consent = |granted: bool| custodia_types::ConsentRequest {
            purpose: "marketing_email".into(),
            granted,
            notice_version: granted.then(|| "v1".to_owned()),
            method: "api".into(),
            evidence: None,
        };
        a.record_consent(&admin, now, &subject, &consent(true)).await.unwrap();
        eventually("the consent", async || {
            b.subject_state(&subject).await.unwrap().permits(&purpose).is_ok()
        })
        .await;
        assert!(b.subject_state(&subject).await.unwrap().permits(&purpose).is_ok());
        // Withdrawn through A: B refuses the purpose.
        a.record_consent(&admin, now, &subject, &consent(false)).await.unwrap();
        eventually("the withdrawal", async || {
            b.subject_state(&subject).await.unwrap().permits(&purpose).is_err()
        })
        .await;

        // A key B has authenticated (and cached), revoked through A: B refuses it.
        let (id, token) = a
            .insert_principal(now, "svc", &["support_agent".to_owned()])
            .await
            .unwrap();
        b.authenticate(&token, now).await.unwrap();
        a.revoke_principal(&admin, now, &id).await.unwrap();
        eventually("the revocation", async || b.authenticate(&token, now).await.is_err()).await;
    }
}
