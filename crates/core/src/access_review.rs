//! Access reviews: per principal (service key or operator), what it did in a period, read
//! from the audit log (purposes, collections, distinct subjects, denials and why, calls under
//! break-glass), what its roles allow that it never used (least-privilege candidates), its
//! break-glass grants, and whether its API key has gone unused for 90 days.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use custodia_registry::Capability;
use custodia_store::AuditQuery;
use custodia_types::{AccessReview, BreakGlassGrant, PrincipalReview};

use crate::audit::{Allowed, AuditEvent};
use crate::{Principal, Timestamp, Vault, VaultError, gate};

/// An API key unused this long is stale.
pub const STALE_KEY_MS: i64 = 90 * 86_400_000;
/// Audit entries read per page.
const PAGE: i64 = 10_000;

/// What the review keeps of one audit entry.
#[derive(serde::Deserialize)]
struct Entry {
    principal: String,
    decision: String,
    reason: Option<String>,
    purpose: Option<String>,
    collection: Option<String>,
    subject: Option<String>,
    #[serde(default)]
    detail: BTreeMap<String, String>,
}

/// Who a principal is, from the principals and operators tables.
struct Known {
    name: String,
    kind: &'static str,
    roles: Vec<String>,
    last_used_at: Option<i64>,
    stale_key: bool,
}

/// One principal's tallies while the log is read.
#[derive(Default)]
struct Tally {
    purposes: BTreeMap<String, u64>,
    collections: BTreeMap<String, u64>,
    subjects: HashSet<String>,
    allowed: u64,
    denied: u64,
    denial_reasons: BTreeMap<String, u64>,
    break_glass_calls: u64,
}

impl Vault {
    /// The access review of `[from, to)`. Needs `read_audit`.
    pub async fn access_review(
        &self,
        caller: &Principal,
        now: Timestamp,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<AccessReview, VaultError> {
        let event = AuditEvent::new("access.review", caller)
            .detail("from", from.0.to_string())
            .detail("to", to.0.to_string());
        self.audited(event, now, async {
            gate::require(&self.policies, caller, Capability::ReadAudit)?;
            Ok(Allowed::Read(self.review_access(now, from, to).await?, None))
        })
        .await
    }

    /// The access review of `[from, to)`, for local tools.
    pub async fn review_access(
        &self,
        now: Timestamp,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<AccessReview, VaultError> {
        if from >= to {
            return Err(VaultError::unprocessable(
                "invalid_period",
                "`from` must be before `to`",
            ));
        }
        let query = AuditQuery {
            from: Some(from.0),
            to: Some(to.0),
            ..AuditQuery::default()
        };
        let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
        let (mut after, mut entries) = (0, 0u64);
        loop {
            let rows = self.store.reader().await?.audit().query(&query, after, PAGE).await?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            for row in &rows {
                entries += 1;
                let Ok(entry) = serde_json::from_str::<Entry>(&row.entry) else {
                    continue;
                };
                let t = tallies.entry(entry.principal).or_default();
                if entry.detail.contains_key("break_glass") {
                    t.break_glass_calls += 1;
                }
                if entry.decision == "allow" {
                    t.allowed += 1;
                    if let Some(p) = entry.purpose {
                        *t.purposes.entry(p).or_default() += 1;
                    }
                    if let Some(c) = entry.collection {
                        *t.collections.entry(c).or_default() += 1;
                    }
                    if let Some(s) = entry.subject {
                        t.subjects.insert(s);
                    }
                } else {
                    t.denied += 1;
                    *t.denial_reasons.entry(entry.reason.unwrap_or_default()).or_default() += 1;
                }
            }
            if rows.len() < PAGE as usize {
                break;
            }
        }
        let mut reader = self.store.reader().await?;
        let services = reader.principals().all().await?;
        let operators = reader.operators().all().await?;
        let grants = reader.operators().break_glass_between(from.0, to.0).await?;
        // Everyone with a key or an account, and anyone else the log names.
        let mut people: BTreeMap<String, Known> = BTreeMap::new();
        for p in &services {
            let stale_key = p.revoked_at.is_none()
                && p.expires_at.is_none_or(|at| at > now.0)
                && now.0 - p.last_used_at.unwrap_or(p.created_at) >= STALE_KEY_MS;
            let known = Known {
                name: p.name.clone(),
                kind: "service",
                roles: p.roles.clone(),
                last_used_at: p.last_used_at,
                stale_key,
            };
            people.insert(p.principal_id.clone(), known);
        }
        for o in &operators {
            let known = Known {
                name: o.name.clone(),
                kind: "operator",
                roles: o.roles.clone(),
                last_used_at: None,
                stale_key: false,
            };
            people.insert(o.operator_id.clone(), known);
        }
        for id in tallies.keys() {
            let (kind, name) = unlisted(id);
            people.entry(id.clone()).or_insert_with(|| Known {
                name,
                kind,
                roles: Vec::new(),
                last_used_at: None,
                stale_key: false,
            });
        }
        let principals = people
            .into_iter()
            .map(|(id, known)| {
                let Known {
                    name,
                    kind,
                    roles,
                    last_used_at,
                    stale_key,
                } = known;
                let t = tallies.remove(&id).unwrap_or_default();
                let may: BTreeSet<&String> = roles
                    .iter()
                    .filter_map(|r| self.registry.role(r))
                    .flat_map(|r| r.purposes.iter())
                    .collect();
                let unused_purposes = may
                    .into_iter()
                    .filter(|p| !t.purposes.contains_key(*p))
                    .cloned()
                    .collect();
                let break_glass = grants
                    .iter()
                    .filter(|g| g.operator_id == id)
                    .map(|g| BreakGlassGrant {
                        grant_id: g.grant_id.clone(),
                        operator_id: g.operator_id.clone(),
                        role: g.role.clone(),
                        reason: g.reason.clone(),
                        started_at: Timestamp(g.started_at).to_rfc3339(),
                        expires_at: Timestamp(g.expires_at).to_rfc3339(),
                    })
                    .collect();
                PrincipalReview {
                    principal_id: id,
                    name,
                    kind: kind.to_owned(),
                    roles,
                    purposes: t.purposes,
                    collections: t.collections,
                    subjects: t.subjects.len() as u64,
                    allowed: t.allowed,
                    denied: t.denied,
                    denial_reasons: t.denial_reasons,
                    break_glass_calls: t.break_glass_calls,
                    break_glass,
                    unused_purposes,
                    last_used_at: last_used_at.map(|t| Timestamp(t).to_rfc3339()),
                    stale_key,
                }
            })
            .collect();
        Ok(AccessReview {
            from: from.to_rfc3339(),
            to: to.to_rfc3339(),
            entries,
            principals,
        })
    }
}

/// The kind and a name for one the log names who has neither a key nor an account: the
/// vault's own work (the offline sweeper, a restore), a command run on the server's host, a
/// preference center link; anyone else (a key since deleted from the database) is `unknown`.
fn unlisted(id: &str) -> (&'static str, String) {
    if id == crate::retention::SWEEPER_PRINCIPAL {
        ("system", "retention sweeper (custodia retention run)".to_owned())
    } else if id == crate::erasure::RESTORE_PRINCIPAL {
        ("system", "restore (custodia restore)".to_owned())
    } else if id == crate::registry_log::START_PRINCIPAL {
        ("system", "server start (the registry it serves)".to_owned())
    } else if let Some(user) = id.strip_prefix("local:") {
        ("local", format!("command line on the server's host (user {user})"))
    } else if id == crate::operators::LOCAL_CREATOR {
        ("local", "command line on the server's host".to_owned())
    } else if id.starts_with("portal:") {
        ("portal", "preference center link".to_owned())
    } else {
        ("unknown", String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vault_s_own_principals_are_named_in_a_review() {
        for (id, kind) in [
            (crate::retention::SWEEPER_PRINCIPAL, "system"),
            (crate::erasure::RESTORE_PRINCIPAL, "system"),
            (crate::registry_log::START_PRINCIPAL, "system"),
            ("local:ops", "local"),
            (crate::operators::LOCAL_CREATOR, "local"),
            ("portal:lnk_0123", "portal"),
        ] {
            let (k, name) = unlisted(id);
            assert_eq!(k, kind, "{id}");
            assert!(!name.is_empty(), "{id}");
        }
        assert_eq!(unlisted("prn_gone"), ("unknown", String::new()));
    }
}
