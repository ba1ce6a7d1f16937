//! Which registry and policies each start serves, in the audit log. What a role may read
//! (the registry's roles and the data directory's `policies/*.cedar`), which courses an
//! operator needs, how long a session or a break-glass grant lasts and where alerts go are in
//! files, not in the database the vault seals: whoever can write the data directory could
//! change them between two starts. They cannot do it unseen: the first start,
//! and each start whose registry differs in a section from the one recorded last, appends
//! `registry.loaded` with the file's digest, a digest of each of its sections, and the
//! sections changed, in the tamper-evident log (an access review and
//! `GET /v1/audit/events?action=registry.loaded` show them).

use std::collections::BTreeMap;

use aws_lc_rs::digest;
use custodia_store::AuditQuery;

use crate::audit::AuditEvent;
use crate::{Timestamp, Vault, VaultError};

/// The action of the entry a start appends.
pub const REGISTRY_LOADED: &str = "registry.loaded";

/// Who appends it.
pub(crate) const START_PRINCIPAL: &str = "custodia:start";

/// What changed in the registry since the previous start recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryChange {
    /// No start recorded a registry before this one.
    First,
    /// The sections (`roles.support_agent`, `training.privacy_basics`, `operators`, ...) added,
    /// removed or changed; empty when none.
    Sections(Vec<String>),
}

/// The files a vault was opened with, as read once.
pub(crate) struct Sources {
    /// The registry file's text.
    pub(crate) registry: String,
    /// Each policy file, by name (`policies/ops.cedar`), with its text.
    pub(crate) policies: Vec<(String, String)>,
}

impl Vault {
    /// Appends `registry.loaded` for the registry and policy files the vault was opened with
    /// (see the module; a policy file is a section of its own, `policies/NAME.cedar`) when no
    /// start recorded one or a section changed since, and says what changed.
    pub async fn record_registry(&self, now: Timestamp) -> Result<RegistryChange, VaultError> {
        let sources = self
            .sources
            .as_ref()
            .ok_or_else(|| VaultError::internal(&"a vault opened without a data directory has no registry file"))?;
        let text = sources.registry.as_str();
        let mut sections: BTreeMap<String, String> = custodia_registry::sections(text)
            .map_err(|e| VaultError::internal(&e))?
            .into_iter()
            .map(|(name, written)| (name, short_digest(written.as_bytes())))
            .collect();
        for (name, policy) in &sources.policies {
            sections.insert(name.clone(), short_digest(policy.as_bytes()));
        }
        let change = match self.last_recorded_sections().await? {
            None => RegistryChange::First,
            Some(before) => {
                let names = before.keys().chain(sections.keys());
                let mut changed: Vec<String> = names
                    .filter(|name| before.get(*name) != sections.get(*name))
                    .cloned()
                    .collect();
                changed.sort();
                changed.dedup();
                RegistryChange::Sections(changed)
            }
        };
        let changed = match &change {
            RegistryChange::First => "(first recorded start)".to_owned(),
            // the same registry as the last start recorded: nothing to add
            RegistryChange::Sections(names) if names.is_empty() => return Ok(change),
            RegistryChange::Sections(names) => names.join(","),
        };
        let event = AuditEvent::unauthenticated(REGISTRY_LOADED, START_PRINCIPAL.to_owned())
            .detail("digest", hex::encode(digest::digest(&digest::SHA256, text.as_bytes())))
            .detail(
                "sections",
                serde_json::to_string(&sections).map_err(|e| VaultError::internal(&e))?,
            )
            .detail("changed", changed);
        let row = self.audit_row(&event, now, None)?;
        self.append_audit_rows(&[row]).await?;
        Ok(change)
    }

    /// The section digests of the newest `registry.loaded` entry, if any.
    async fn last_recorded_sections(&self) -> Result<Option<BTreeMap<String, String>>, VaultError> {
        let query = AuditQuery {
            action: Some(REGISTRY_LOADED.to_owned()),
            ..AuditQuery::default()
        };
        let mut reader = self.store.reader().await?;
        let mut last = None;
        let mut after = 0;
        loop {
            let page = reader.audit().query(&query, after, 1000).await?;
            let Some(row) = page.last() else { break };
            after = row.seq;
            last = Some(row.entry.clone());
        }
        Ok(last.map(|entry| {
            serde_json::from_str::<serde_json::Value>(&entry)
                .ok()
                .and_then(|e| e["detail"]["sections"].as_str().map(str::to_owned))
                .and_then(|s| serde_json::from_str(&s).ok())
                // an entry whose sections cannot be read: every section counts as changed
                .unwrap_or_default()
        }))
    }
}

/// The first 16 hex digits of the SHA-256 of `bytes`: enough to tell a section changed.
fn short_digest(bytes: &[u8]) -> String {
    let full = hex::encode(digest::digest(&digest::SHA256, bytes));
    full[..16].to_owned()
}

/// The action of the entry a start appends when it begins a new checkpoint log.
pub const CHECKPOINT_LOG_BEGUN: &str = "audit.checkpoint_log_begun";

impl Vault {
    /// Appends `audit.checkpoint_log_begun`: this start began a new checkpoint log over a
    /// database whose checkpoints reach `tree_size` (`serve --new-checkpoint-log`, the old log
    /// deleted, emptied or moved aside). What the old log proved is given up; the log says
    /// when and by how much (a reset left no trace but a warning on standard error).
    pub async fn record_checkpoint_log_begun(&self, tree_size: i64, now: Timestamp) -> Result<(), VaultError> {
        let event = AuditEvent::unauthenticated(CHECKPOINT_LOG_BEGUN, START_PRINCIPAL.to_owned())
            .detail("database_checkpoints_up_to", tree_size.to_string());
        let row = self.audit_row(&event, now, None)?;
        self.append_audit_rows(&[row]).await
    }
}
