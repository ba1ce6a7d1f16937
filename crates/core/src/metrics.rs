//! `GET /metrics`: the operational metrics ([`custodia_metrics`]) for a caller with
//! `read_metrics`. Each reading is audited, like every decision.

use crate::audit::{Allowed, AuditEvent};
use crate::{Principal, Timestamp, Vault, VaultError};

impl Vault {
    /// The metrics in Prometheus's text format, for a caller with `read_metrics`.
    pub async fn read_metrics(&self, principal: &Principal, now: Timestamp) -> Result<String, VaultError> {
        let event = AuditEvent::new("metrics.read", principal);
        self.audited(event, now, async {
            crate::gate::require(&self.policies, principal, custodia_registry::Capability::ReadMetrics)?;
            Ok(Allowed::Read(custodia_metrics::render(now.0), None))
        })
        .await
    }
}
