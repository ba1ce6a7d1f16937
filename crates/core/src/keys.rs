//! The vault's keys at run time: the root keyring, the blind indexer, and per-subject data
//! keys fetched (or created) from the store and unwrapped on demand.

use aws_lc_rs::signature::Ed25519KeyPair;
use custodia_crypto::{BlindIndexer, DataKey, IndexKey, Keyring, SecretKey};
use custodia_store::{Store, SubjectKeyRow};

use crate::{SetupError, SubjectId, Timestamp, VaultError};

const INDEX_KEY_META: &str = "index_key";
const AUDIT_KEY_META: &str = "audit_signing_key";
const AUDIT_KEY_LABEL: &str = "custodia.audit-signing-key.v1";
const REDACTION_KEY_META: &str = "redaction_key";
const REDACTION_KEY_LABEL: &str = "custodia.redaction-key.v1";

pub(crate) struct Keys {
    keyring: Keyring,
    pub(crate) indexer: BlindIndexer,
    /// Signs audit log checkpoints (Ed25519); its seed is stored wrapped by the root key.
    pub(crate) audit_signer: Ed25519KeyPair,
    /// Keys the `hash` and `encrypt` operators of `/v1/redact` (stable across nodes and
    /// restarts, so keyed hashes join); stored wrapped by the root key.
    pub(crate) redaction: SecretKey,
}

/// Loads a wrapped key from the store's metadata, creating and storing it first if absent.
async fn load_or_create(
    store: &dyn Store,
    keyring: &Keyring,
    meta: &str,
    label: &str,
) -> Result<SecretKey, SetupError> {
    if store.get_meta(meta).await?.is_none() {
        let secret = SecretKey::generate()?;
        let wrapped = keyring.wrap(label, b"", &secret)?;
        // A concurrent node may win this race; both then read the winner below.
        store.insert_meta(meta, &wrapped.0).await?;
    }
    let wrapped = store
        .get_meta(meta)
        .await?
        .ok_or_else(|| SetupError::Other(format!("{meta} vanished after being stored")))?;
    keyring
        .unwrap(label, b"", &wrapped)
        .map_err(|_| SetupError::KeyMismatch)
}

impl Keys {
    /// Loads the index key from the store (creating it on first use) and checks that the
    /// root key is the one this database was initialised with.
    pub(crate) async fn load(keyring: Keyring, store: &dyn Store) -> Result<Self, SetupError> {
        if store.get_meta(INDEX_KEY_META).await?.is_none() {
            let (_, wrapped) = IndexKey::generate(&keyring)?;
            // A concurrent node may win this race; both then read the winner below.
            store.insert_meta(INDEX_KEY_META, &wrapped.0).await?;
        }
        let wrapped = store
            .get_meta(INDEX_KEY_META)
            .await?
            .ok_or_else(|| SetupError::Other("index key vanished after being stored".into()))?;
        let index_key = IndexKey::unwrap(&keyring, &wrapped).map_err(|_| SetupError::KeyMismatch)?;
        let seed = load_or_create(store, &keyring, AUDIT_KEY_META, AUDIT_KEY_LABEL).await?;
        let audit_signer = Ed25519KeyPair::from_seed_unchecked(seed.expose())
            .map_err(|_| SetupError::Other("the audit signing key is malformed".into()))?;
        let redaction = load_or_create(store, &keyring, REDACTION_KEY_META, REDACTION_KEY_LABEL).await?;
        Ok(Self {
            keyring,
            indexer: BlindIndexer::new(index_key),
            audit_signer,
            redaction,
        })
    }

    /// The data key of `subject`, if the subject has any data.
    pub(crate) async fn subject_key(
        &self,
        store: &dyn Store,
        subject: &SubjectId,
    ) -> Result<Option<DataKey>, VaultError> {
        match store.subject_key(subject.as_str()).await? {
            Some(row) => Ok(Some(self.unwrap(&row)?)),
            None => Ok(None),
        }
    }

    /// A new data key for `subject`'s first record, and its row to store with that record.
    pub(crate) fn new_subject_key(
        &self,
        subject: &SubjectId,
        now: Timestamp,
    ) -> Result<(DataKey, SubjectKeyRow), VaultError> {
        let (key, wrapped) = DataKey::generate(&self.keyring, subject.as_str())?;
        let row = SubjectKeyRow {
            subject_id: subject.as_str().to_owned(),
            key_version: key.version(),
            wrapped_key: wrapped.0,
            created_at: now.0,
        };
        Ok((key, row))
    }

    /// The data key of `subject`, created and stored first if the subject has none.
    pub(crate) async fn subject_key_or_create(
        &self,
        store: &dyn Store,
        subject: &SubjectId,
        now: Timestamp,
    ) -> Result<DataKey, VaultError> {
        if let Some(key) = self.subject_key(store, subject).await? {
            return Ok(key);
        }
        let (_, row) = self.new_subject_key(subject, now)?;
        // Whatever was stored wins: ours, or a concurrent request's.
        let stored = store.ensure_subject_key(&row).await?;
        self.unwrap(&stored)
    }

    /// Unwraps a stored data key.
    pub(crate) fn unwrap(&self, row: &SubjectKeyRow) -> Result<DataKey, VaultError> {
        Ok(DataKey::unwrap(
            &self.keyring,
            &row.subject_id,
            row.key_version,
            &row.wrapped_key,
        )?)
    }
}
