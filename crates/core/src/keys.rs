//! The vault's keys at run time: the root keyring, the blind indexer, and per-subject data
//! keys fetched (or created) from the store and unwrapped on demand.

use aws_lc_rs::signature::Ed25519KeyPair;
use custodia_crypto::{BlindIndexer, DataKey, IndexKey, Keyring, SecretKey};
use custodia_store::{DEFAULT_KEY_CLASS, Store, SubjectKeyRow};

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

/// The metadata value `meta`, storing `make()`'s first if absent (a concurrent node may win
/// that race; every node then reads the winner).
async fn meta_or_insert(
    store: &Store,
    meta: &'static str,
    make: impl FnOnce() -> Result<Vec<u8>, SetupError>,
) -> Result<Vec<u8>, SetupError> {
    if let Some(value) = store.reader().await?.meta().get(meta).await? {
        return Ok(value);
    }
    let value = make()?;
    store
        .write(move |mut tx| Box::pin(async move { tx.meta().insert(meta, &value).await }))
        .await?;
    store
        .reader()
        .await?
        .meta()
        .get(meta)
        .await?
        .ok_or_else(|| SetupError::Other(format!("{meta} vanished after being stored")))
}

/// Loads a wrapped key from the store's metadata, creating and storing it first if absent.
async fn load_or_create(
    store: &Store,
    keyring: &Keyring,
    meta: &'static str,
    label: &str,
) -> Result<SecretKey, SetupError> {
    let wrapped = meta_or_insert(store, meta, || {
        let secret = SecretKey::generate()?;
        Ok(keyring.wrap(label, b"", &secret)?.0)
    })
    .await?;
    keyring
        .unwrap(label, b"", &wrapped)
        .map_err(|_| SetupError::KeyMismatch)
}

impl Keys {
    /// Loads the index key from the store (creating it on first use) and checks that the
    /// root key is the one this database was initialised with.
    pub(crate) async fn load(keyring: Keyring, store: &Store) -> Result<Self, SetupError> {
        let wrapped = meta_or_insert(store, INDEX_KEY_META, || Ok(IndexKey::generate(&keyring)?.1.0)).await?;
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

    /// The data key of `subject` and its stored row, if the subject has any data.
    pub(crate) async fn subject_key(
        &self,
        store: &Store,
        subject: &SubjectId,
    ) -> Result<Option<(DataKey, SubjectKeyRow)>, VaultError> {
        match store.reader().await?.subjects().key(subject.as_str()).await? {
            Some(row) => Ok(Some((self.unwrap(&row)?, row))),
            None => Ok(None),
        }
    }

    /// The key a write seals under: the subject's stored key, or a fresh one (`true`) when
    /// the subject has none. The write's transaction checks it is still the stored key.
    pub(crate) async fn sealing_key(
        &self,
        store: &Store,
        subject: &SubjectId,
        now: Timestamp,
    ) -> Result<(DataKey, SubjectKeyRow, bool), VaultError> {
        match self.subject_key(store, subject).await? {
            Some((key, row)) => Ok((key, row, false)),
            None => {
                let (key, row) = self.new_subject_key(subject, now)?;
                Ok((key, row, true))
            }
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
            key_class: DEFAULT_KEY_CLASS.to_owned(),
            key_version: key.version(),
            wrapped_key: wrapped.0,
            created_at: now.0,
        };
        Ok((key, row))
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
