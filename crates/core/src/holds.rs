//! Legal holds: a subject's data, or a whole collection's, kept from the sweeper, from
//! erasure and from deletion while a hold lasts (GDPR Art. 17(3)(e): data needed for legal
//! claims). Placing, listing and releasing holds needs `manage_retention`; each is audited.

use custodia_registry::Capability;
use custodia_store::HoldRow;
use custodia_types::{Hold, HoldList, NewHold};

use crate::audit::{Allowed, AuditEvent};
use crate::rights::text;
use crate::{Principal, SubjectId, Timestamp, Vault, VaultError, gate};

/// The refusal of a destruction a legal hold forbids.
pub(crate) fn held_error() -> VaultError {
    VaultError::new(
        crate::ErrorKind::Conflict,
        "legal_hold",
        "a legal hold covers this subject or collection: nothing of it may be changed, deleted or erased until the hold is released (replacing a value destroys the one held; adding a field is allowed; GET /v1/retention/holds lists the holds)",
    )
}

pub(crate) fn hold_view(h: &HoldRow) -> Hold {
    Hold {
        hold_id: h.hold_id.clone(),
        subject_id: h.subject_id.clone(),
        collection: h.collection.clone(),
        reason: h.reason.clone(),
        created_by: h.created_by.clone(),
        created_at: Timestamp(h.created_at).to_rfc3339(),
        released_at: h.released_at.map(|t| Timestamp(t).to_rfc3339()),
        released_by: h.released_by.clone(),
        release_reason: h.release_reason.clone(),
    }
}

/// Whether `id` has the shape of a hold id (`hold_` and 32 hex digits).
fn is_hold_id(id: &str) -> bool {
    id.strip_prefix("hold_")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn hold_not_found() -> VaultError {
    VaultError::not_found(
        "hold_not_found",
        "no legal hold in force by that id (hold ids look like hold_ and 32 hex digits)",
    )
}

impl Vault {
    /// Places a legal hold on a subject or a collection.
    #[tracing::instrument(skip_all)]
    pub async fn place_hold(&self, principal: &Principal, now: Timestamp, req: &NewHold) -> Result<Hold, VaultError> {
        let subject = req
            .subject_id
            .as_deref()
            .map(|s| SubjectId::parse(s).map_err(|e| e.with_field("subject_id")))
            .transpose()?;
        let mut event = AuditEvent::new("retention.hold", principal);
        if let Some(subject) = &subject {
            event = self.about(event, subject)?;
        }
        if let Some(c) = req
            .collection
            .as_deref()
            .filter(|c| self.registry.collection(c).is_some())
        {
            event = event.collection(c);
        }
        let event_for_row = event.clone();
        self.audited(event, now, async {
            gate::require(&self.policies, principal, Capability::ManageRetention)?;
            let collection = match (&subject, req.collection.as_deref()) {
                (Some(_), None) => None,
                (None, Some(c)) if self.registry.collection(c).is_some() => Some(c.to_owned()),
                (None, Some(c)) => {
                    return Err(VaultError::unprocessable(
                        "unknown_collection",
                        format!("no collection {} is declared in the registry", crate::quoted_name(c, false)),
                    )
                    .with_field("collection")
                    .into());
                }
                _ => {
                    return Err(VaultError::unprocessable(
                        "invalid_hold",
                        "a hold covers either a subject (`subject_id`) or a collection (`collection`): give exactly one",
                    )
                    .into());
                }
            };
            let row = HoldRow {
                hold_id: format!("hold_{}", custodia_crypto::random_hex::<16>()?),
                subject_id: subject.as_ref().map(|s| s.as_str().to_owned()),
                collection,
                reason: text("reason", &req.reason)?,
                created_by: principal.id.clone(),
                created_at: now.0,
                released_at: None,
                released_by: None,
                release_reason: None,
            };
            let audit = self.audit_row(&event_for_row.detail("hold", row.hold_id.clone()), now, None)?;
            let stored = row.clone();
            self.store
                .write(move |mut tx| {
                    Box::pin(async move {
                        // A subject's hold waits for an erasure's step under way (which locks
                        // the subject's keys) and holds the next one back: the erasure then
                        // sees it and stops.
                        if let Some(subject) = &stored.subject_id {
                            tx.subjects().lock_keys(subject, custodia_store::KeyLock::Update).await?;
                        }
                        tx.retention().place_hold(&stored).await?;
                        tx.audit().append(&[audit]).await
                    })
                })
                .await?;
            Ok(Allowed::Written(hold_view(&row)))
        })
        .await
    }

    /// The holds in force (with `all`, released ones too).
    #[tracing::instrument(skip_all)]
    pub async fn list_holds(&self, principal: &Principal, now: Timestamp, all: bool) -> Result<HoldList, VaultError> {
        self.audited(AuditEvent::new("retention.holds", principal), now, async {
            gate::require(&self.policies, principal, Capability::ManageRetention)?;
            let mut reader = self.store.reader().await?;
            let rows = if all {
                reader.retention().all_holds().await?
            } else {
                reader.retention().active_holds().await?
            };
            Ok(Allowed::Read(
                HoldList {
                    holds: rows.iter().map(hold_view).collect(),
                },
                None,
            ))
        })
        .await
    }

    /// Releases a hold in force.
    #[tracing::instrument(skip_all)]
    pub async fn release_hold(
        &self,
        principal: &Principal,
        now: Timestamp,
        hold_id: &str,
        reason: &str,
    ) -> Result<Hold, VaultError> {
        let shown = if is_hold_id(hold_id) {
            hold_id
        } else {
            "(invalid hold id)"
        };
        let event = AuditEvent::new("retention.release", principal).detail("hold", shown);
        let event_for_row = event.clone();
        self.audited(event, now, async {
            gate::require(&self.policies, principal, Capability::ManageRetention)?;
            let reason = text("reason", reason)?;
            if !is_hold_id(hold_id) {
                return Err(hold_not_found().into());
            }
            let found = self.store.reader().await?.retention().hold(hold_id).await?;
            let Some(mut row) = found.filter(|h| h.released_at.is_none()) else {
                return Err(hold_not_found().into());
            };
            let mut event = event_for_row;
            if let Some(s) = &row.subject_id {
                event = self.about(event, &SubjectId::stored(s)?)?;
            }
            if let Some(c) = &row.collection {
                event = event.collection(c);
            }
            let audit = self.audit_row(&event, now, None)?;
            let (id, by, why) = (row.hold_id.clone(), principal.id.clone(), reason.clone());
            let released = self
                .store
                .write(move |mut tx| {
                    Box::pin(async move {
                        if !tx.retention().release_hold(&id, &by, now.0, &why).await? {
                            return Ok(false);
                        }
                        tx.audit().append(&[audit]).await?;
                        Ok(true)
                    })
                })
                .await?;
            if !released {
                return Err(hold_not_found().into());
            }
            row.released_at = Some(now.0);
            row.released_by = Some(principal.id.clone());
            row.release_reason = Some(reason);
            Ok(Allowed::Written(hold_view(&row)))
        })
        .await
    }

    /// Refuses when a hold in force covers `subject`, or a collection it has values in: its
    /// erasure waits for the release.
    pub(crate) async fn refuse_held_subject(&self, subject: &SubjectId) -> Result<(), VaultError> {
        let mut reader = self.store.reader().await?;
        let held = reader.retention().of_subject(subject.as_str()).await?;
        let collections: std::collections::BTreeSet<&str> = held.iter().map(|v| v.collection.as_str()).collect();
        let collections: Vec<&str> = collections.into_iter().collect();
        let holds = reader.retention().holds_on(subject.as_str(), &collections).await?;
        if holds.is_empty() { Ok(()) } else { Err(held_error()) }
    }
}
