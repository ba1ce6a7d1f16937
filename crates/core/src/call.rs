//! The context every data use case runs in: who calls, under which purpose, and when. The
//! adapters build it once per request (the only place the clock is read); the use cases take
//! it whole, so none can be called without a purpose or a time.

use crate::audit::AuditEvent;
use crate::gate::{self, Grant};
use crate::{Principal, Timestamp, Vault, VaultError};

/// A data call: principal, purpose, time.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub principal: &'a Principal,
    pub purpose: &'a str,
    pub now: Timestamp,
}

impl<'a> Call<'a> {
    #[must_use]
    pub fn new(principal: &'a Principal, purpose: &'a str, now: Timestamp) -> Self {
        Self {
            principal,
            purpose,
            now,
        }
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
