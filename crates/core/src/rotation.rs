//! Root key rotation: a new version of the root key, and every key it wraps (each subject's
//! data keys, the vault's own service keys) wrapped again under it, online and in batches.
//!
//! ```text
//! rotate:  provider adds version N+1 ─► keyring N+1 in force (new keys wrap under it)
//!          ─► service keys re-wrapped ─► subject keys re-wrapped, `BATCH` per transaction,
//!             walking (subject, class) order; each row compare-and-swapped, so a write or
//!             an erasure racing it wins and the row is simply skipped
//! resume:  a rotation that stopped (a crash, a kill) is resumed by rotating again: while
//!          any key is under an older version, no new version is added
//! retire:  a version is removed from the provider only when `status` counts nothing under it
//! ```
//!
//! Data keys themselves never change, so no sealed value is touched and reads go on
//! throughout; a key re-wrapped keeps its identity (`SubjectKeyRow::identity`), so a write
//! that read it before the re-wrap still commits.

use custodia_crypto::{DataKey, IndexKey};
use custodia_registry::Capability;
use custodia_store::{KeyCursor, root_version_of};
use custodia_types::{KeyStatus, KeyVersionStatus};

use crate::audit::{Allowed, AuditEvent};
use crate::keys::{
    ACCESS_SEAL_KEY_LABEL, ACCESS_SEAL_KEY_META, AUDIT_KEY_LABEL, AUDIT_KEY_META, INDEX_KEY_META, RECEIPT_KEY_LABEL,
    RECEIPT_KEY_META, REDACTION_KEY_LABEL, REDACTION_KEY_META,
};
use crate::{ErrorKind, Principal, Timestamp, Vault, VaultError, gate};

/// Subject keys re-wrapped per transaction.
pub const REWRAP_BATCH: usize = 500;

/// The vault's own keys wrapped by the root key: metadata row and wrap label (the index key
/// has its own label inside `custodia_crypto`).
const SERVICE_KEYS: [(&str, Option<&str>); 5] = [
    (INDEX_KEY_META, None),
    (AUDIT_KEY_META, Some(AUDIT_KEY_LABEL)),
    (REDACTION_KEY_META, Some(REDACTION_KEY_LABEL)),
    (RECEIPT_KEY_META, Some(RECEIPT_KEY_LABEL)),
    (ACCESS_SEAL_KEY_META, Some(ACCESS_SEAL_KEY_LABEL)),
];

/// One batch's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrapBatch {
    /// Keys re-wrapped by this batch.
    pub rewrapped: u64,
    /// Keys looked at (re-wrapped or already current).
    pub seen: u64,
    /// Where the next batch starts; `None` when the walk is over.
    pub next: KeyCursor,
}

fn no_provider() -> VaultError {
    VaultError::new(
        ErrorKind::Conflict,
        "rotation_unavailable",
        "this vault was given its root key directly; rotation needs a key provider (the data directory's key file or CUSTODIA_ROOT_KEY)",
    )
}

/// How long after a rotation an older version is retired (a retirement sooner waits): other
/// nodes take up to a second to wrap new keys under the new version, and their last keys
/// under the old one are written by then.
const RETIRE_SETTLE_MS: i64 = 3_000;

impl Vault {
    /// Where the root key comes from (`file`, `environment`, or `given`).
    #[must_use]
    pub fn key_provider(&self) -> &'static str {
        self.keys.provider.as_ref().map_or("given", |p| p.name())
    }

    /// Sets where the root key comes from (the data directory does, when it opens a vault).
    pub(crate) fn set_key_provider(&mut self, provider: std::sync::Arc<dyn custodia_crypto::KeyProvider>) {
        self.keys.provider = Some(provider);
    }

    /// The root key's versions and what each wraps, at `now`. Needs `manage_keys`.
    pub async fn read_key_status(&self, caller: &Principal, now: Timestamp) -> Result<KeyStatus, VaultError> {
        let event = AuditEvent::new("keys.status", caller);
        self.audited(event, now, async {
            gate::require(&self.policies, caller, Capability::ManageKeys)?;
            Ok(Allowed::Read(self.key_status(now).await?, None))
        })
        .await
    }

    /// The root key's versions and what each wraps, for local tools.
    pub async fn key_status(&self, now: Timestamp) -> Result<KeyStatus, VaultError> {
        let keyring = self.keys.keyring();
        let current = keyring.current_version();
        let mut reader = self.store.reader().await?;
        let subject_counts = reader.subjects().count_by_root_version().await?;
        let mut service_counts = std::collections::BTreeMap::<u32, i64>::new();
        for (meta, _) in SERVICE_KEYS {
            if let Some(wrapped) = reader.meta().get(meta).await? {
                *service_counts
                    .entry(root_version_of(&wrapped).unwrap_or(0))
                    .or_default() += 1;
            }
        }
        let mut versions: std::collections::BTreeMap<u32, KeyVersionStatus> = keyring
            .versions()
            .into_iter()
            .map(|(version, created)| {
                let status = KeyVersionStatus {
                    version,
                    created_at: created.map(|s| Timestamp(s.saturating_mul(1000)).to_rfc3339()),
                    age_days: created.map(|s| (now.0.div_euclid(1000) - s).div_euclid(86_400)),
                    current: version == current,
                    subject_keys: 0,
                    service_keys: 0,
                    unused: true,
                };
                (version, status)
            })
            .collect();
        // Versions in use but not loaded show too (their keys cannot be opened: a problem).
        let blank = |version| KeyVersionStatus {
            version,
            created_at: None,
            age_days: None,
            current: false,
            subject_keys: 0,
            service_keys: 0,
            unused: true,
        };
        for (version, n) in subject_counts {
            versions.entry(version).or_insert_with(|| blank(version)).subject_keys += n;
        }
        for (version, n) in service_counts {
            versions.entry(version).or_insert_with(|| blank(version)).service_keys += n;
        }
        let mut pending = 0;
        for v in versions.values_mut() {
            v.unused = v.subject_keys == 0 && v.service_keys == 0;
            if v.version != current {
                pending += v.subject_keys + v.service_keys;
            }
        }
        Ok(KeyStatus {
            provider: self.key_provider().to_owned(),
            current_version: current,
            versions: versions.into_values().collect(),
            pending,
            rotation: None,
        })
    }

    /// Starts a rotation, or resumes one: while any key is under an older version, the
    /// current version stays the target; otherwise the provider adds a version. Re-wraps the
    /// service keys and returns the target version. The subject keys follow with
    /// [`Vault::rewrap_batch`]. `by` names who asked (a principal id, or `local`).
    pub async fn begin_rotation(&self, by: &str, now: Timestamp) -> Result<(u32, bool), VaultError> {
        let provider = self.keys.provider.clone().ok_or_else(no_provider)?;
        let status = self.key_status(now).await?;
        let resumed = status.pending > 0;
        if !resumed {
            let keyring = provider.add_version(now.0.div_euclid(1000))?;
            self.keys.replace_keyring(keyring);
        }
        let target = self.keys.keyring().current_version();
        let event = AuditEvent::unauthenticated("keys.rotate", by.to_owned())
            .detail("to_version", target.to_string())
            .detail("resumed", resumed.to_string());
        self.append_audit_rows(&[self.audit_row(&event, now, None)?]).await?;
        self.rewrap_service_keys().await?;
        Ok((target, resumed))
    }

    /// [`Vault::begin_rotation`] for a caller with `manage_keys`. `claim` runs once the
    /// caller is allowed, before anything changes: the server's claim on its one rotation slot
    /// (false: one is running, 409 `rotation_running`), so a caller without the capability
    /// can neither take the slot nor learn that it is taken.
    pub async fn start_rotation(
        &self,
        caller: &Principal,
        now: Timestamp,
        claim: impl FnOnce() -> bool,
    ) -> Result<(u32, bool), VaultError> {
        let event = AuditEvent::new("keys.rotate.request", caller);
        self.audited(event, now, async {
            gate::require(&self.policies, caller, Capability::ManageKeys)?;
            if !claim() {
                return Err(VaultError::new(
                    ErrorKind::Conflict,
                    "rotation_running",
                    "a rotation is running; follow it with GET /v1/keys",
                )
                .into());
            }
            Ok(Allowed::Written(self.begin_rotation(&caller.id, now).await?))
        })
        .await
    }

    /// Re-wraps each service key not under the current version.
    async fn rewrap_service_keys(&self) -> Result<(), VaultError> {
        let keyring = self.keys.keyring();
        let current = keyring.current_version();
        for (meta, label) in SERVICE_KEYS {
            let Some(old) = self.store.reader().await?.meta().get(meta).await? else {
                continue;
            };
            if root_version_of(&old) == Some(current) {
                continue;
            }
            let new = match label {
                None => IndexKey::rewrap(&keyring, &old)?,
                Some(label) => keyring.rewrap(label, b"", &old)?,
            };
            self.store
                .write(move |mut tx| Box::pin(async move { tx.meta().replace(meta, &old, &new.0).await }))
                .await?;
        }
        Ok(())
    }

    /// Re-wraps up to `limit` subject keys after `after` that are not under the current
    /// version, in one transaction.
    pub async fn rewrap_batch(&self, after: &KeyCursor, limit: usize) -> Result<RewrapBatch, VaultError> {
        let keyring = self.keys.keyring();
        let current = keyring.current_version();
        let rows = self.store.reader().await?.subjects().keys_after(after, limit).await?;
        let next = if rows.len() < limit {
            None
        } else {
            rows.last().map(|r| (r.subject_id.clone(), r.key_class.clone()))
        };
        let seen = rows.len() as u64;
        let mut changes = Vec::new();
        for row in rows {
            if row.root_version() != Some(current) {
                let new = DataKey::rewrap(&keyring, &row.subject_id, &row.wrapped_key)?;
                changes.push((row, new.0));
            }
        }
        if changes.is_empty() {
            return Ok(RewrapBatch {
                rewrapped: 0,
                seen,
                next,
            });
        }
        let rewrapped = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    let mut n = 0;
                    for (row, new) in &changes {
                        if tx.subjects().rewrap(row, new).await? {
                            n += 1;
                        }
                    }
                    Ok(n)
                })
            })
            .await?;
        Ok(RewrapBatch { rewrapped, seen, next })
    }

    /// Re-wraps every subject key not under the current version, [`REWRAP_BATCH`] per
    /// transaction, letting other work go first between batches; `progress` sees each batch.
    /// Returns how many were re-wrapped.
    pub async fn rewrap_all(&self, mut progress: impl FnMut(&RewrapBatch)) -> Result<u64, VaultError> {
        let (mut cursor, mut rewrapped) = (None, 0);
        loop {
            let batch = self.rewrap_batch(&cursor, REWRAP_BATCH).await?;
            rewrapped += batch.rewrapped;
            progress(&batch);
            match batch.next {
                Some(next) => cursor = Some(next),
                None => return Ok(rewrapped),
            }
            tokio::task::yield_now().await;
        }
    }

    /// Removes root key version `version` from the provider, refused while anything is
    /// wrapped under it or it is the current one. `by` names who asked.
    pub async fn retire_key_version(&self, by: &str, now: Timestamp, version: u32) -> Result<KeyStatus, VaultError> {
        let provider = self.keys.provider.clone().ok_or_else(no_provider)?;
        let status = self.key_status(now).await?;
        let Some(entry) = status.versions.iter().find(|v| v.version == version) else {
            return Err(VaultError::not_found(
                "unknown_key_version",
                format!("the root key has no version {version}"),
            ));
        };
        if entry.current {
            return Err(VaultError::new(
                ErrorKind::Conflict,
                "key_version_current",
                format!("version {version} is the current root key; rotate first"),
            ));
        }
        if !entry.unused {
            return Err(VaultError::new(
                ErrorKind::Conflict,
                "key_version_in_use",
                format!(
                    "version {version} still wraps {} subject key(s) and {} service key(s); finish the rotation first (custodia keys rotate)",
                    entry.subject_keys, entry.service_keys
                ),
            ));
        }
        // Nodes sharing the key source load the version a rotation added within a second
        // (`Keys::reload_if_behind`); until then one may still wrap a new key under the old
        // version, which `status` counts only once it is written. A retirement that soon after
        // the rotation waits that out, then counts again.
        let ring = self.keys.keyring();
        let made = ring
            .versions()
            .into_iter()
            .find(|(v, _)| *v == ring.current_version())
            .and_then(|(_, made)| made);
        if let Some(made) = made {
            let age_ms = now.0 - made.saturating_mul(1000);
            if let Ok(wait) = u64::try_from(RETIRE_SETTLE_MS - age_ms)
                && wait > 0
            {
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                let again = self.key_status(now).await?;
                if let Some(v) = again.versions.iter().find(|v| v.version == version && !v.unused) {
                    return Err(VaultError::new(
                        ErrorKind::Conflict,
                        "key_version_in_use",
                        format!(
                            "version {version} still wraps {} subject key(s) and {} service key(s) another node wrapped as the rotation finished; run custodia keys rotate again, then retire",
                            v.subject_keys, v.service_keys
                        ),
                    ));
                }
            }
        }
        let keyring = provider.remove_version(version)?;
        self.keys.replace_keyring(keyring);
        let event = AuditEvent::unauthenticated("keys.retire", by.to_owned()).detail("version", version.to_string());
        self.append_audit_rows(&[self.audit_row(&event, now, None)?]).await?;
        self.key_status(now).await
    }

    /// [`Vault::retire_key_version`] for a caller with `manage_keys`.
    pub async fn retire_key(&self, caller: &Principal, now: Timestamp, version: u32) -> Result<KeyStatus, VaultError> {
        let event = AuditEvent::new("keys.retire.request", caller).detail("version", version.to_string());
        self.audited(event, now, async {
            gate::require(&self.policies, caller, Capability::ManageKeys)?;
            Ok(Allowed::Read(
                self.retire_key_version(&caller.id, now, version).await?,
                None,
            ))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{Call, DataDir, SubjectId};

    use crate::principal::tests::admin;

    async fn write(vault: &Vault, subject: &str, email: &str) {
        let fields: BTreeMap<String, String> = [("email".to_owned(), email.to_owned())].into_iter().collect();
        vault
            .create_record(
                &Call::new(&admin(), "order_fulfillment", Timestamp(10)),
                &SubjectId::parse(subject).unwrap(),
                "customers",
                &fields,
            )
            .await
            .unwrap();
    }

    async fn email(vault: &Vault, subject: &str) -> String {
        let records = vault
            .list_records(
                &Call::new(&admin(), "order_fulfillment", Timestamp(20)),
                &SubjectId::parse(subject).unwrap(),
                "customers",
                None,
                &crate::Page::list(None, None).unwrap(),
                &crate::unmetered,
            )
            .await
            .unwrap()
            .records;
        records[0].fields["email"].clone()
    }

    /// A node sharing the key file with one that rotated wraps its new data keys under
    /// the new version once its keyring is a second old (it wrapped them under the old one
    /// until it met a key re-wrapped, and a retirement then took their data away).
    #[tokio::test]
    async fn another_node_wraps_new_keys_under_the_version_a_rotation_added() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        data.init(None, Timestamp(1)).await.unwrap();
        let b = data.open(None).await.unwrap();
        write(&b, "cus_before", "before@example.com").await;
        // the other node's rotation: a version added to the shared file, and the index key
        // re-wrapped under it first (as `begin_rotation` does)
        let added = custodia_crypto::Keyring::add_version_to_file(&dir.path().join("root.key"), 2).unwrap();
        assert_eq!(added.current_version(), 2);
        let old = b
            .store
            .reader()
            .await
            .unwrap()
            .meta()
            .get(INDEX_KEY_META)
            .await
            .unwrap()
            .unwrap();
        let new = IndexKey::rewrap(&added, &old).unwrap().0;
        b.store
            .write(move |mut tx| Box::pin(async move { tx.meta().replace(INDEX_KEY_META, &old, &new).await }))
            .await
            .unwrap();
        // within the second after b last looked: still the old version
        *b.keys.checked.lock().unwrap() = Some(std::time::Instant::now());
        write(&b, "cus_soon", "soon@example.com").await;
        // a second on (b's keyring found current when it made its last key)
        *b.keys.checked.lock().unwrap() = std::time::Instant::now().checked_sub(std::time::Duration::from_secs(2));
        write(&b, "cus_after", "after@example.com").await;
        let mut reader = b.store.reader().await.unwrap();
        let keys = reader.subjects().keys("cus_after").await.unwrap();
        let roots: Vec<_> = keys.iter().map(|k| root_version_of(&k.wrapped_key)).collect();
        assert_eq!(roots, [Some(2)]);
        let soon = reader.subjects().keys("cus_soon").await.unwrap();
        assert_eq!(
            soon.iter().map(|k| root_version_of(&k.wrapped_key)).collect::<Vec<_>>(),
            [Some(1)]
        );
    }

    #[tokio::test]
    async fn rotation_rewraps_every_key_online_resumes_and_retires_the_old_version() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        data.init(None, Timestamp(1)).await.unwrap();
        let vault = data.open(None).await.unwrap();
        for i in 0..(2 * REWRAP_BATCH + 7) {
            write(&vault, &format!("cus_{i:04}"), &format!("c{i}@example.com")).await;
        }
        let before = vault.key_status(Timestamp(1_000_000)).await.unwrap();
        assert_eq!(
            (before.provider.as_str(), before.current_version, before.pending),
            ("file", 1, 0)
        );
        assert_eq!(before.versions[0].subject_keys, (2 * REWRAP_BATCH + 7) as i64);
        assert_eq!(before.versions[0].service_keys, 5);

        let (version, resumed) = vault.begin_rotation("local", Timestamp(2_000_000)).await.unwrap();
        assert_eq!((version, resumed), (2, false));
        // One batch, then "a crash": the next rotation resumes rather than adding a version.
        let first = vault.rewrap_batch(&None, REWRAP_BATCH).await.unwrap();
        assert_eq!(first.rewrapped, REWRAP_BATCH as u64);
        // Reads and writes go on mid-rotation, under either version.
        assert_eq!(email(&vault, "cus_0000").await, "c0@example.com");
        assert_eq!(email(&vault, "cus_1006").await, "c1006@example.com");
        write(&vault, "cus_new", "new@example.com").await;
        let mid = vault.key_status(Timestamp(2_000_000)).await.unwrap();
        assert_eq!(mid.pending, (REWRAP_BATCH + 7) as i64);
        let retire = vault
            .retire_key_version("local", Timestamp(2_000_000), 1)
            .await
            .unwrap_err();
        assert_eq!(retire.code, "key_version_in_use");

        // A fresh process (the key file now has version 2) resumes.
        drop(vault);
        let vault = data.open(None).await.unwrap();
        let (version, resumed) = vault.begin_rotation("local", Timestamp(3_000_000)).await.unwrap();
        assert_eq!((version, resumed), (2, true));
        let rest = vault.rewrap_all(|_| {}).await.unwrap();
        assert_eq!(rest, (REWRAP_BATCH + 7) as u64);
        let after = vault.key_status(Timestamp(3_000_000)).await.unwrap();
        assert_eq!(after.pending, 0);
        let v1 = &after.versions[0];
        assert!(
            v1.unused && !v1.current && v1.subject_keys == 0 && v1.service_keys == 0,
            "{after:?}"
        );
        assert_eq!(after.versions[1].subject_keys, (2 * REWRAP_BATCH + 8) as i64);
        assert_eq!(
            after.versions[1].created_at.as_deref(),
            Some("1970-01-01T00:33:20.000Z")
        );

        // Nothing stored is under version 1 any more, not even the digest kept to name a key
        // across re-wraps (a retired key must open nothing).
        let rows = vault
            .store
            .reader()
            .await
            .unwrap()
            .subjects()
            .keys_after(&None, 10_000)
            .await
            .unwrap();
        for row in &rows {
            assert_eq!(row.root_version(), Some(2));
            if let Some(first) = &row.first_wrap {
                assert_eq!(first.len(), 32, "a SHA-256 digest, not a wrapped key");
            }
        }
        assert_eq!(
            rows.iter().filter(|r| r.first_wrap.is_some()).count(),
            2 * REWRAP_BATCH + 7
        );

        // Version 1 can go; every value still reads, in this process and in a new one.
        let retired = vault
            .retire_key_version("local", Timestamp(3_000_000), 1)
            .await
            .unwrap();
        assert_eq!(retired.versions.len(), 1);
        assert_eq!(
            vault
                .retire_key_version("local", Timestamp(3_000_000), 2)
                .await
                .unwrap_err()
                .code,
            "key_version_current"
        );
        drop(vault);
        let vault = data.open(None).await.unwrap();
        assert_eq!(email(&vault, "cus_0000").await, "c0@example.com");
        assert_eq!(email(&vault, "cus_new").await, "new@example.com");
        let key_file = std::fs::read_to_string(dir.path().join(custodia_crypto::KEY_FILE_NAME)).unwrap();
        assert!(
            !key_file.lines().any(|l| l.starts_with("1 ")),
            "version 1 is gone from the file"
        );
    }

    #[tokio::test]
    async fn status_and_rotation_need_manage_keys() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        data.init(None, Timestamp(1)).await.unwrap();
        let vault = data.open(None).await.unwrap();
        let auditor = Principal {
            roles: vec!["auditor".into()],
            ..admin()
        };
        assert_eq!(
            vault.read_key_status(&auditor, Timestamp(5)).await.unwrap_err().kind,
            ErrorKind::Forbidden
        );
        let claimed = std::cell::Cell::new(false);
        let refused = vault.start_rotation(&auditor, Timestamp(5), || {
            claimed.set(true);
            true
        });
        assert_eq!(refused.await.unwrap_err().kind, ErrorKind::Forbidden);
        assert!(!claimed.get(), "the slot is claimed only once the caller is allowed");
        assert_eq!(
            vault.retire_key(&auditor, Timestamp(5), 1).await.unwrap_err().kind,
            ErrorKind::Forbidden
        );
        assert_eq!(
            vault.key_status(Timestamp(5)).await.unwrap().current_version,
            1,
            "nothing was added"
        );
        assert_eq!(
            vault
                .read_key_status(&admin(), Timestamp(5))
                .await
                .unwrap()
                .current_version,
            1
        );
    }
}
