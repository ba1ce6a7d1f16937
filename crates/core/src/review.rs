//! The retention review report (what is held, for which purpose, what expires soon, what the
//! registry leaves uncovered) and the subject activity rules running from it count from.

use std::collections::BTreeSet;

use custodia_registry::Capability;
use custodia_store::HeldCount;
use custodia_types::{ExpiringWindow, HeldLine, RetentionReport};

use crate::audit::{Allowed, AuditEvent};
use crate::retention::SweepOptions;
use crate::{Call, SubjectId, Timestamp, Vault, VaultError, gate};

/// The windows the report looks ahead, in days.
const WINDOWS: [u32; 2] = [30, 90];
const DAY_MS: i64 = 86_400_000;

impl Vault {
    /// The retention review report at `now`.
    #[tracing::instrument(skip_all)]
    pub async fn retention_report(
        &self,
        principal: &crate::Principal,
        now: Timestamp,
    ) -> Result<RetentionReport, VaultError> {
        self.audited(AuditEvent::new("retention.report", principal), now, async {
            gate::require(&self.policies, principal, Capability::ManageRetention)?;
            Ok(Allowed::Read(self.review(now).await?, None))
        })
        .await
    }

    /// The report itself, for the CLI working on a data directory (no principal).
    pub async fn review(&self, now: Timestamp) -> Result<RetentionReport, VaultError> {
        let (held, ended, holds) = {
            let mut reader = self.store.reader().await?;
            let held = reader.retention().held_counts().await?;
            let ended = reader.retention().held_only_by_ended().await?;
            let holds = reader.retention().active_holds().await?;
            (held, ended, holds)
        };
        let mut expiring = Vec::with_capacity(WINDOWS.len());
        for days in WINDOWS {
            let until = Timestamp(now.0.saturating_add(i64::from(days) * DAY_MS));
            let opts = SweepOptions {
                as_of: until,
                now,
                dry_run: true,
                batch: crate::retention::SWEEP_BATCH,
            };
            let sweep = self.sweep(&opts, &mut |_| {}).await?;
            expiring.push(ExpiringWindow {
                days,
                until: until.to_rfc3339(),
                sweep,
            });
        }
        let declared: BTreeSet<(&str, &str)> = self
            .registry
            .purposes
            .values()
            .flat_map(|p| {
                p.fields
                    .iter()
                    .flat_map(|(c, fs)| fs.iter().map(move |f| (c.as_str(), f.as_str())))
            })
            .collect();
        let fields_without_purpose = self
            .registry
            .collections
            .values()
            .flat_map(|c| c.fields.keys().map(move |f| (c.name.as_str(), f.as_str())))
            .filter(|k| !declared.contains(k))
            .map(|(c, f)| format!("{c}.{f}"))
            .collect();
        let purposes_without_retention = self
            .registry
            .purposes
            .values()
            .filter(|p| p.retention.is_none())
            .map(|p| p.name.clone())
            .collect();
        let (known, unknown): (Vec<HeldCount>, Vec<HeldCount>) = held
            .into_iter()
            .partition(|h| self.registry.purpose(&h.purpose).is_some());
        Ok(RetentionReport {
            generated_at: now.to_rfc3339(),
            held: known.iter().map(|h| self.held_line(h)).collect(),
            expiring,
            fields_without_purpose,
            purposes_without_retention,
            held_only_by_ended: ended.iter().map(|h| self.held_line(h)).collect(),
            unknown_purposes: unknown.iter().map(|h| self.held_line(h)).collect(),
            holds: holds.iter().map(crate::holds::hold_view).collect(),
        })
    }

    fn held_line(&self, h: &HeldCount) -> HeldLine {
        let category = self
            .registry
            .collection(&h.collection)
            .and_then(|c| c.fields.get(&h.field))
            .map(|f| f.category.clone())
            .unwrap_or_default();
        let rule = match self.registry.purpose(&h.purpose) {
            None => "purpose not declared".to_owned(),
            Some(p) => p.retention.map_or_else(|| "none".to_owned(), |r| r.describe()),
        };
        HeldLine {
            collection: h.collection.clone(),
            field: h.field.clone(),
            category,
            purpose: h.purpose.clone(),
            rule,
            values: h.values,
            ended: h.ended,
        }
    }

    /// Records that `subject` was active (it logged in, ordered, called): what its purposes
    /// keep from its last activity is kept that much longer. The caller must be able to write
    /// under the call's purpose, and the subject's ledger must permit it.
    #[tracing::instrument(skip_all)]
    pub async fn report_activity(&self, call: &Call<'_>, subject: &SubjectId) -> Result<(), VaultError> {
        let event = self.about(call.event("subject.activity"), subject)?;
        let allow = self.audit_row(&event, call.now, None)?;
        self.audited(event, call.now, async {
            let declared = self.registry.purpose(call.purpose).and_then(|p| {
                p.fields
                    .iter()
                    .next()
                    .and_then(|(c, fs)| Some((c.clone(), fs.iter().next()?.clone())))
            });
            let Some((collection, field)) = declared else {
                // An undeclared purpose is refused as the gate refuses it.
                return Err(self
                    .authorize(call, "")
                    .err()
                    .unwrap_or_else(|| {
                        VaultError::forbidden("unknown_purpose", "no such purpose is declared in the registry")
                    })
                    .into());
            };
            let grant = self.authorize(call, &collection)?;
            // (writing one of the purpose's fields stands for writing under it; the refusal
            // names the purpose, not a field the caller did not send)
            grant.may_write(grant.declared_field(&field)?).map_err(|_| {
                VaultError::forbidden(
                    "purpose_write_denied",
                    format!(
                        "your roles may not write under purpose `{}`, which reporting a subject's activity under it needs",
                        grant.purpose.name
                    ),
                )
            })?;
            self.ledger_permits(call, subject, grant.purpose).await?;
            let activity = self.activity(subject, call.now);
            self.store
                .write(move |mut tx| {
                    Box::pin(async move {
                        // A subject with no data has nothing to keep longer: no row is made
                        // for it (the answer is the same, so it tells nothing of who exists).
                        if tx.retention().subject_has_records(&activity.subject_id).await? {
                            tx.retention().record_activity(&activity).await?;
                        }
                        tx.audit().append(&[allow]).await
                    })
                })
                .await?;
            Ok(Allowed::Written(()))
        })
        .await
    }
}
