//! Who may read the record of processing activities (GDPR Art. 30): it describes every
//! processing activity, so it is for auditors (`read_audit`), and each reading is audited.
//! The privacy notice is public and needs nothing.

use custodia_registry::Capability;

use crate::audit::{Allowed, AuditEvent};
use crate::{Principal, Timestamp, Vault, VaultError, gate};

impl Vault {
    /// Allows (and audits) one reading of the record of processing by `principal`.
    pub async fn read_record_of_processing(&self, principal: &Principal, now: Timestamp) -> Result<(), VaultError> {
        self.audited(AuditEvent::new("ropa.read", principal), now, async {
            gate::require(&self.policies, principal, Capability::ReadAudit)?;
            Ok(Allowed::Read((), None))
        })
        .await
    }
}

/// A privacy notice version as stored: what it said (`notice`, JSON) and the page (`html`).
pub use custodia_store::NoticeRow;

impl Vault {
    /// Records the notice version the server shows from now on, unless it is known (each
    /// version is kept for good: consents refer to it). Returns whether it is new. From now
    /// on a consent given under an earlier version of this vault's counts only if its
    /// purpose's terms are unchanged (`terms`).
    pub async fn publish_notice(&self, row: NoticeRow) -> Result<bool, VaultError> {
        let current = row.version.clone();
        let new = self
            .store
            .write(move |mut tx| Box::pin(async move { tx.notices().publish(&row).await }))
            .await?;
        let mut reader = self.store.reader().await?;
        let mut shown = Vec::new();
        for listed in reader.notices().list().await? {
            if let Some(row) = reader.notices().get(&listed.version).await? {
                shown.push(row);
            }
        }
        drop(reader);
        let terms = crate::terms::Terms::new(&current, shown.iter().map(|r| (r.version.as_str(), r.notice.as_str())));
        *self.terms.write().unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::new(terms);
        // states folded before knew nothing of the terms
        self.caches.ledger.invalidate_where(|_, _| true);
        Ok(new)
    }

    /// The terms of the notices shown (see [`crate::terms`]).
    pub(crate) fn terms(&self) -> std::sync::Arc<crate::terms::Terms> {
        std::sync::Arc::clone(&self.terms.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// A notice version that was shown, if it was.
    pub async fn notice_version(&self, version: &str) -> Result<Option<NoticeRow>, VaultError> {
        Ok(self.store.reader().await?.notices().get(version).await?)
    }

    /// Every notice version shown, first published first, without their texts.
    pub async fn notice_versions(&self) -> Result<Vec<NoticeRow>, VaultError> {
        Ok(self.store.reader().await?.notices().list().await?)
    }
}
