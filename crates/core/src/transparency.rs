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
