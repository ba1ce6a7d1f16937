//! The context every data use case runs in: who calls, under which purpose, and when. The
//! adapters build it once per request (the only place the clock is read); the use cases take
//! it whole, so none can be called without a purpose or a time.

use crate::audit::AuditEvent;
use crate::gate::{self, Grant};
use crate::{Principal, Timestamp, Vault, VaultError};

/// A data call: principal, purpose, time, and whether the request carried a Global Privacy
/// Control signal (`Sec-GPC: 1`), recorded once the call has passed the gate.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub principal: &'a Principal,
    pub purpose: &'a str,
    pub now: Timestamp,
    pub gpc: bool,
}

impl<'a> Call<'a> {
    #[must_use]
    pub fn new(principal: &'a Principal, purpose: &'a str, now: Timestamp) -> Self {
        Self {
            principal,
            purpose,
            now,
            gpc: false,
        }
    }

    /// The same call, carrying a GPC signal when `gpc`.
    #[must_use]
    pub fn with_gpc(self, gpc: bool) -> Self {
        Self { gpc, ..self }
    }

    /// The audit event of `action` by this call, before the decision.
    pub(crate) fn event(&self, action: &'static str) -> AuditEvent {
        AuditEvent::new(action, self.principal).purpose(self.purpose)
    }
}

impl Vault {
    /// The gate's grant for this call on `collection` (see [`gate::authorize`]).
    pub(crate) fn authorize<'a>(&'a self, call: &Call<'a>, collection: &str) -> Result<Grant<'a>, VaultError> {
        gate::authorize(&self.registry, &self.policies, call.principal, call.purpose, collection)
    }
}
