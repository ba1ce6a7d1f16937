//! The preference center's side of the vault: links a business's backend asks for a
//! customer (`POST /v1/subjects/{id}/portal-links`, `manage_consent`), and what the customer
//! holding one may do: see which categories of their data are held and why, change their
//! consents and their opt-out of sale and sharing (ledger entries, method `web_form`, with
//! the notice version they were shown), and open access, rectification and erasure requests.
//!
//! A link is its own credential: `cp1_` and base64url of the link's facts (subject, expiry,
//! jurisdiction, link id, issuer) sealed with AES-256-GCM under a key derived from the index
//! key ([`Domain::PortalLink`](custodia_crypto::Domain)). Nothing is stored per link; a
//! changed byte fails the seal, and the expiry is checked on every use. The customer acts as
//! principal `portal:<link id>`, which holds no role: the methods here are the only things
//! it can do, each audited about the subject.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use custodia_crypto::FieldContext;
use custodia_registry::{Capability, LegalBasis, RequestType};
use custodia_store::RequestQuery;
use custodia_types::{EvidenceInput, NewSubjectRequest, SubjectRequestView};
use serde::{Deserialize, Serialize};

use crate::audit::{Allowed, AuditEvent};
use crate::consent::{Entry, KIND_CONSENT, KIND_SALE_OPT_OUT, SubjectState};
use crate::{Principal, SubjectId, Timestamp, Vault, VaultError, gate};

/// How long a link lasts when the caller does not say.
pub const PORTAL_LINK_DEFAULT_TTL_SECONDS: u64 = 15 * 60;
/// The longest a link may last: a day.
pub const PORTAL_LINK_MAX_TTL_SECONDS: u64 = 24 * 60 * 60;
/// The prefix of every link token (its format version).
const TOKEN_PREFIX: &str = "cp1_";
/// The longest token accepted (a subject id of 128 characters makes about 420).
const MAX_TOKEN: usize = 1024;
/// The requests a customer may open from the page (those the link's jurisdiction grants):
/// the rights of GDPR Arts. 15 to 18, 20 and 21, and CCPA's limit on sensitive personal
/// information (§1798.121, which the notice tells them to use the page for). An opt-out of
/// sale is a choice on the page, not a request.
pub const PORTAL_REQUESTS: [RequestType; 7] = [
    RequestType::Access,
    RequestType::Portability,
    RequestType::Rectification,
    RequestType::Erasure,
    RequestType::Restriction,
    RequestType::Objection,
    RequestType::LimitSensitive,
];
/// The requests the page offers a subject of `jurisdiction`: those of [`PORTAL_REQUESTS`] it
/// grants, an objection only when some purpose is open to one, a limit on sensitive
/// information only when some field is sensitive.
#[must_use]
pub fn portal_requests(registry: &custodia_registry::Registry, jurisdiction: &str) -> Vec<RequestType> {
    let Some(jurisdiction) = registry.jurisdiction(jurisdiction) else {
        return Vec::new();
    };
    PORTAL_REQUESTS
        .into_iter()
        .filter(|k| jurisdiction.grants(*k))
        .filter(|k| *k != RequestType::Objection || registry.purposes.values().any(|p| p.objectable()))
        .filter(|k| *k != RequestType::LimitSensitive || holds_sensitive(registry))
        .collect()
}

/// Whether any declared field holds sensitive personal information (CCPA §1798.140(ae)).
fn holds_sensitive(registry: &custodia_registry::Registry) -> bool {
    registry
        .collections
        .values()
        .flat_map(|c| c.fields.values())
        .any(|f| custodia_registry::is_sensitive_category(&f.category))
}

/// The ledger method of what the page records.
const METHOD_WEB_FORM: &str = "web_form";
/// The longest user agent kept as evidence (longer ones are cut).
const MAX_USER_AGENT: usize = 512;

/// How often a subject's preference center may be used (a page, a choice, a request, a
/// receipt: each is audited, a choice is written to the ledger): twenty a minute on average,
/// thirty at once (a person changes their mind a few times; a script holding a link for its
/// day appended a thousand audit entries a second). Beyond, 429.
pub(crate) const REQUESTS_PER_SECOND: f64 = 20.0 / 60.0;
pub(crate) const REQUEST_BURST: f64 = 30.0;

/// What a link says, sealed inside it.
#[derive(Serialize, Deserialize)]
struct LinkFacts {
    /// The subject.
    s: String,
    /// The link's id (random), the customer's principal id is `portal:<l>`.
    l: String,
    /// Expiry, Unix milliseconds.
    e: i64,
    /// The jurisdiction requests are opened under.
    j: String,
    /// The principal that asked for the link.
    i: String,
    /// When the link was made, Unix milliseconds.
    t: i64,
    /// The id of the API key that asked for it (`None`: an operator's session, or a link
    /// made before keys were named): a rotation of that key withdraws its links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<String>,
}

/// A link made for a subject.
#[derive(Debug, Clone)]
pub struct PortalLink {
    /// The credential, for the path `/portal/{token}`.
    pub token: String,
    pub expires_at: Timestamp,
}

/// A checked link: who the customer is and until when.
#[derive(Debug, Clone)]
pub struct PortalSession {
    pub subject: SubjectId,
    pub link_id: String,
    pub expires_at: Timestamp,
    pub jurisdiction: String,
    principal: Principal,
}

impl PortalSession {
    /// The principal the customer acts as (`portal:<link id>`, no roles).
    #[must_use]
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

/// One consent-based purpose as the subject's ledger holds it.
#[derive(Debug, Clone)]
pub struct ConsentChoice {
    pub purpose: String,
    /// `None`: never given nor withdrawn.
    pub granted: Option<bool>,
    pub at: Option<Timestamp>,
    pub method: Option<String>,
    pub notice_version: Option<String>,
    /// Given under a notice of this vault that said other things of the purpose than the one
    /// in force: it permits nothing until given again (`consent_outdated`).
    pub outdated: bool,
}

/// The opt-out of sale and sharing as the ledger holds it.
#[derive(Debug, Clone)]
pub struct SaleChoice {
    pub opted_out: bool,
    pub at: Option<Timestamp>,
    pub method: Option<String>,
}

/// What the page shows a subject.
#[derive(Debug, Clone)]
pub struct PortalState {
    pub subject: SubjectId,
    /// Data category to the purposes holding values of it.
    pub held: BTreeMap<String, BTreeSet<String>>,
    /// Every consent-based purpose of the registry.
    pub consents: Vec<ConsentChoice>,
    /// `None` when no purpose sells or shares.
    pub sale: Option<SaleChoice>,
    /// The last ledger entry's sequence number (the receipt's position).
    pub last_seq: Option<i64>,
    /// A restriction of processing is in force (Art. 18): the data is kept, not used.
    pub restricted: bool,
    /// The purposes the subject objected to, the objection in force (Art. 21).
    pub objected: Vec<String>,
}

/// What the customer submitted.
#[derive(Debug, Clone, Default)]
pub struct PortalChanges {
    /// Consent wanted, for each purpose the page showed.
    pub consents: BTreeMap<String, bool>,
    /// The opt-out wanted, when the page showed it.
    pub sale_opt_out: Option<bool>,
    /// The browser sent `Sec-GPC: 1`.
    pub gpc: bool,
    pub user_agent: Option<String>,
}

impl Vault {
    /// A link to the preference center of `subject`, lasting `ttl_seconds` (default 15
    /// minutes, at most a day), whose requests are opened under `jurisdiction` (default
    /// `gdpr` when the registry has it, else its first). Needs `issue_portal_links`: the
    /// link's holder acts as the subject on the page.
    pub async fn issue_portal_link(
        &self,
        principal: &Principal,
        now: Timestamp,
        subject: &SubjectId,
        ttl_seconds: Option<u64>,
        jurisdiction: Option<&str>,
    ) -> Result<PortalLink, VaultError> {
        let link_id = custodia_crypto::random_hex::<16>()?;
        let event = self.about(AuditEvent::new("portal.link", principal), subject)?;
        self.audited(event.clone(), now, async {
            gate::require(&self.policies, principal, Capability::IssuePortalLinks)?;
            // A link lives while its issuer's API key does (checked on every use); an
            // operator's session is no key, and its link would be dead on first use.
            if principal.operator.is_some() {
                return Err(VaultError::forbidden(
                    "portal_link_issuer",
                    "preference center links are issued with an API key (the service that sends them to the customer), not an operator session",
                )
                .into());
            }
            let ttl = ttl_seconds.unwrap_or(PORTAL_LINK_DEFAULT_TTL_SECONDS);
            if ttl == 0 || ttl > PORTAL_LINK_MAX_TTL_SECONDS {
                return Err(VaultError::bad_request(
                    "invalid_ttl",
                    format!("ttl_seconds must be 1 to {PORTAL_LINK_MAX_TTL_SECONDS} (a day)"),
                )
                .with_field("ttl_seconds")
                .into());
            }
            let jurisdiction = match jurisdiction {
                Some(name) => self.jurisdiction(name).map_err(|e| e.with_field("jurisdiction"))?,
                None => self
                    .registry
                    .jurisdiction("gdpr")
                    .or_else(|| self.registry.jurisdictions.values().next())
                    .ok_or_else(|| VaultError::unprocessable("no_jurisdiction", "the registry has no jurisdiction"))?,
            };
            let issuer = self.store.reader().await?.principals().by_id(&principal.id).await?;
            // no later than the issuer's key expires: the link dies with it, and its holder
            // is told when
            let expires_at = Timestamp(
                now.0
                    .saturating_add(i64::try_from(ttl * 1000).unwrap_or(i64::MAX))
                    .min(issuer.as_ref().and_then(|row| row.expires_at).unwrap_or(i64::MAX)),
            );
            let key_id = issuer.map(|row| row.key_id);
            let facts = LinkFacts {
                s: subject.as_str().to_owned(),
                l: link_id.clone(),
                e: expires_at.0,
                j: jurisdiction.name.clone(),
                i: principal.id.clone(),
                t: now.0,
                k: key_id,
            };
            let plain = serde_json::to_vec(&facts).map_err(|e| VaultError::internal(&e))?;
            let sealed = self.keys.portal_link_key()?.seal(&LINK_CONTEXT, &plain)?;
            let token = format!("{TOKEN_PREFIX}{}", B64URL.encode(sealed));
            let audit = self.audit_row(
                &event
                    .detail("link", link_id.clone())
                    .detail("expires_at", expires_at.to_rfc3339()),
                now,
                None,
            )?;
            self.append_audit_rows(&[audit]).await?;
            Ok(Allowed::Written(PortalLink { token, expires_at }))
        })
        .await
    }

    /// Checks a link: 403 `portal_link_invalid` for anything not sealed by this vault (or
    /// changed by a single bit), 403 `portal_link_expired` once its time is over, and 403
    /// `portal_link_revoked` when its issuer was revoked, its key rotated or expired, or it lost
    /// `issue_portal_links` (checked on every use: a capability given back re-arms its links), or the
    /// subject was erased after it was made.
    pub async fn open_portal(&self, token: &str, now: Timestamp) -> Result<PortalSession, VaultError> {
        let invalid = || {
            VaultError::forbidden(
                "portal_link_invalid",
                "this preference center link is not valid; ask for a new one",
            )
        };
        let body = token
            .strip_prefix(TOKEN_PREFIX)
            .filter(|_| token.len() <= MAX_TOKEN)
            .ok_or_else(invalid)?;
        let sealed = B64URL.decode(body).map_err(|_| invalid())?;
        let plain = self
            .keys
            .portal_link_key()?
            .open(&LINK_CONTEXT, &sealed)
            .map_err(|_| invalid())?;
        let facts: LinkFacts = serde_json::from_slice(&plain).map_err(|_| invalid())?;
        if now.0 >= facts.e {
            return Err(VaultError::forbidden(
                "portal_link_expired",
                "this preference center link has expired; ask for a new one",
            ));
        }
        let subject = SubjectId::parse(&facts.s).map_err(|_| invalid())?;
        let mut reader = self.store.reader().await?;
        let issuer = reader.principals().by_id(&facts.i).await?;
        let erased_at = reader.erasures().last_of(&self.keys.audit_subject(&subject)?).await?;
        drop(reader);
        // An issuer whose key was revoked, rotated (a leaked key is rotated: what it made goes
        // with it) or has expired vouches for nothing any more.
        let live = |p: &custodia_store::PrincipalRow| {
            p.revoked_at.is_none()
                && p.expires_at.is_none_or(|at| now.0 < at)
                && facts.k.as_ref().is_none_or(|k| *k == p.key_id)
        };
        let issuer_may = issuer.filter(live).is_some_and(|p| {
            let issuer = Principal {
                id: p.principal_id,
                name: p.name,
                roles: p.roles,
                context: BTreeMap::new(),
                operator: None,
            };
            gate::require(&self.policies, &issuer, Capability::IssuePortalLinks).is_ok()
        });
        if !issuer_may || erased_at.is_some_and(|at| at >= facts.t) {
            return Err(VaultError::forbidden(
                "portal_link_revoked",
                "this preference center link was withdrawn; ask for a new one",
            ));
        }
        // every use of a link may write to the ledger or the audit log
        self.portal_limit
            .take(subject.as_str(), now, "preference center requests")?;
        Ok(PortalSession {
            principal: Principal {
                id: format!("portal:{}", facts.l),
                name: "preference-center".to_owned(),
                roles: Vec::new(),
                context: BTreeMap::new(),
                operator: None,
            },
            subject,
            link_id: facts.l,
            expires_at: Timestamp(facts.e),
            jurisdiction: facts.j,
        })
    }

    /// The token a link's forms carry against cross-site request forgery: a keyed digest of
    /// the link's id, so only a page served for this link has it.
    pub fn portal_csrf_token(&self, session: &PortalSession) -> Result<String, VaultError> {
        self.keys.portal_csrf(&session.link_id)
    }

    /// Checks a form posted to the link's page: refuses (403, audited as `portal.form`) one
    /// the browser says came from another site (`cross_site`) and one whose CSRF token is not
    /// the link's (compared in constant time). An accepted form writes nothing here: what it
    /// does is audited by itself.
    pub async fn check_portal_form(
        &self,
        session: &PortalSession,
        now: Timestamp,
        csrf: &str,
        cross_site: bool,
    ) -> Result<(), VaultError> {
        let event = self.about(AuditEvent::new("portal.form", &session.principal), &session.subject)?;
        self.audited(event, now, async {
            if cross_site {
                return Err(VaultError::forbidden("cross_site_form", "the form was sent from another site").into());
            }
            let expected = self.portal_csrf_token(session)?;
            if aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), csrf.as_bytes()).is_err() {
                return Err(VaultError::forbidden(
                    "csrf_token_mismatch",
                    "the form was not sent from this link's page, or has expired; open the page again",
                )
                .into());
            }
            Ok(Allowed::Written(()))
        })
        .await
    }

    /// What the page shows (`action`: `portal.view`, or `portal.receipt` for a receipt),
    /// audited about the subject. A `Sec-GPC: 1` from the customer's browser (`gpc`) is
    /// recorded first as an opt-out of sale and sharing (method `gpc`), unless one is in force.
    pub async fn portal_state(
        &self,
        session: &PortalSession,
        now: Timestamp,
        gpc: bool,
        receipt: bool,
    ) -> Result<PortalState, VaultError> {
        let action = if receipt { "portal.receipt" } else { "portal.view" };
        let event = self.about(AuditEvent::new(action, &session.principal), &session.subject)?;
        self.audited(event.clone(), now, async {
            if gpc && self.registry.purposes.values().any(|p| p.sale_or_sharing) {
                self.record_gpc(&session.principal, now, &session.subject).await?;
            }
            let state = self.portal_state_inner(&session.subject).await?;
            // what the page showed about the person: categories held, and a ledger (a page of
            // nothing, for a subject the vault never held, hands out nothing: a blast radius
            // counts only pages that did)
            let shown = state.held.len() + usize::from(state.last_seq.is_some());
            Ok(Allowed::ReadAbout(
                state,
                vec![event.detail("entries", shown.to_string())],
            ))
        })
        .await
    }

    async fn portal_state_inner(&self, subject: &SubjectId) -> Result<PortalState, VaultError> {
        let mut reader = self.store.reader().await?;
        let bindings = reader.retention().of_subject(subject.as_str()).await?;
        // values held as tokens too (a card number vaulted for payments): a customer holding
        // only those was told nothing was held (review)
        let tokens = reader.tokens().holdings_of(subject.as_str()).await?;
        let ledger = reader
            .ledger()
            .of_subject(subject.as_str(), &*self.keys.access_seal)
            .await?;
        drop(reader);
        // The ledger folded as every access check folds it.
        let folded = SubjectState::from_ledger(&ledger).outdate(&self.terms());
        let mut held: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let live = bindings
            .iter()
            .map(|b| {
                (
                    &b.collection,
                    &b.field,
                    b.binding.ended_at.is_none().then_some(&b.binding.purpose),
                )
            })
            .chain(tokens.iter().map(|t| (&t.collection, &t.field, t.purpose.as_ref())));
        for (collection, field, purpose) in live {
            let category = self
                .registry
                .collection(collection)
                .and_then(|c| c.fields.get(field))
                .map(|f| f.category.clone());
            if let Some(category) = category {
                let purposes = held.entry(category).or_default();
                if let Some(purpose) = purpose {
                    // Why it is held: the purpose it was collected for, and every purpose that
                    // may use it as compatible with that one (GDPR Art. 6(4)), but those the
                    // ledger ended (a consent withdrawn, an objection, an opt-out: the gate
                    // refuses them, and the page listed them as uses; review). A restriction
                    // ends none: the data is kept for them, and the page says it is not used.
                    let readers = self.registry.purposes.values().filter(|r| {
                        self.registry.may_use(&r.name, purpose)
                            && r.declares(collection, field)
                            && folded.ended(r).is_none()
                    });
                    purposes.extend(readers.map(|r| r.name.clone()));
                }
            }
        }
        let consents = self
            .registry
            .purposes
            .values()
            .filter(|p| p.legal_basis == LegalBasis::Consent)
            .map(|p| {
                let entry = folded.consent_entry(&p.name);
                ConsentChoice {
                    purpose: p.name.clone(),
                    granted: entry.map(|e| e.value),
                    at: entry.map(|e| Timestamp(e.at)),
                    method: entry.map(|e| e.method.clone()),
                    notice_version: entry.and_then(|e| e.notice_version.clone()),
                    outdated: folded.consent_outdated(&p.name),
                }
            })
            .collect();
        let sale = self.registry.purposes.values().any(|p| p.sale_or_sharing).then(|| {
            // When and how the opt-out was last set or lifted.
            let entry = ledger.iter().rev().find(|e| e.kind == KIND_SALE_OPT_OUT);
            SaleChoice {
                opted_out: folded.sale_opted_out(),
                at: entry.map(|e| Timestamp(e.at)),
                method: entry.map(|e| e.method.clone()),
            }
        });
        Ok(PortalState {
            subject: subject.clone(),
            held,
            consents,
            sale,
            last_seq: ledger.last().map(|e| e.seq),
            restricted: folded.restricted(),
            objected: folded
                .objected()
                .filter(|p| {
                    self.registry
                        .purpose(p)
                        .is_some_and(custodia_registry::Purpose::objectable)
                })
                .cloned()
                .collect(),
        })
    }

    /// Records what the customer chose on the page: one ledger entry (method `web_form`, the
    /// notice version `shown`) per consent that changed and for a changed opt-out, all in
    /// one transaction with one audit entry. A purpose not based on consent, or unknown, is
    /// refused (422) and nothing is recorded. With GPC on, the opt-out stays in force (an
    /// opt-in is ignored). Returns how many entries were appended.
    pub async fn portal_choose(
        &self,
        session: &PortalSession,
        now: Timestamp,
        changes: &PortalChanges,
        notice_version: &str,
    ) -> Result<usize, VaultError> {
        let event = self.about(AuditEvent::new("portal.choices", &session.principal), &session.subject)?;
        let audited_event = event.clone();
        self.audited(event, now, async {
            for name in changes.consents.keys() {
                match self.registry.purpose(name) {
                    Some(p) if p.legal_basis == LegalBasis::Consent => {}
                    _ => {
                        return Err(VaultError::unprocessable(
                            "consent_not_applicable",
                            "the form names a purpose that is not one based on consent",
                        )
                        .with_field("consent")
                        .into());
                    }
                }
            }
            let user_agent = changes.user_agent.as_ref().map(|ua| {
                let clean: String = ua.chars().filter(|c| !c.is_control()).collect();
                clean.chars().take(MAX_USER_AGENT).collect::<String>()
            });
            let evidence = || {
                self.evidence(
                    &session.subject,
                    Some(&EvidenceInput {
                        ip: None,
                        user_agent: user_agent.clone(),
                    }),
                )
            };
            // Decided from the ledger as it stands, written only if it still stands so: a
            // second click racing the first finds the first's entries and adds none.
            for attempt in 1..=3 {
                let state = self.portal_state_inner(&session.subject).await?;
                let mut entries = Vec::new();
                for c in &state.consents {
                    let Some(&wanted) = changes.consents.get(&c.purpose) else {
                        continue;
                    };
                    // a change of the ledger; and a consent given under earlier terms given
                    // again (the box ticked under the notice in force is what counts now) or
                    // withdrawn (left as it was, it would count again if the terms went back;
                    // review)
                    if c.granted.unwrap_or(false) != wanted || (c.outdated && wanted) {
                        entries.push(Entry {
                            kind: KIND_CONSENT,
                            purpose: Some(c.purpose.clone()),
                            value: wanted,
                            notice_version: Some(notice_version.to_owned()),
                            method: METHOD_WEB_FORM.to_owned(),
                            evidence: evidence()?,
                        });
                    }
                }
                if let Some(sale) = &state.sale {
                    // GPC holds the opt-out on whatever the form says (CCPA regs §7025).
                    let wanted = if changes.gpc { Some(true) } else { changes.sale_opt_out };
                    if let Some(wanted) = wanted.filter(|w| *w != sale.opted_out) {
                        entries.push(Entry {
                            kind: KIND_SALE_OPT_OUT,
                            purpose: None,
                            value: wanted,
                            notice_version: None,
                            method: if changes.gpc { "gpc" } else { METHOD_WEB_FORM }.to_owned(),
                            evidence: evidence()?,
                        });
                    }
                }
                if entries.is_empty() {
                    return Ok(Allowed::Read(0, None));
                }
                let count = entries.len();
                let event = audited_event.clone().detail("entries", count.to_string());
                match self
                    .append(
                        &session.principal,
                        now,
                        &session.subject,
                        &entries,
                        &event,
                        Some(state.last_seq),
                    )
                    .await
                {
                    Err(e) if e.code == crate::consent::LEDGER_MOVED && attempt < 3 => {}
                    Err(e) => return Err(e.into()),
                    Ok(_) => return Ok(Allowed::Written(count)),
                }
            }
            Err(VaultError::internal(&"the ledger kept moving").into())
        })
        .await
    }

    /// Opens a request of `kind` (`access`, `rectification` or `erasure`) for the link's
    /// subject under the link's jurisdiction, received via `portal` and not verified (the
    /// business verifies it before fulfilling). An open request of the same kind from before
    /// is returned instead of a second one (`true`: it already existed).
    pub async fn portal_request(
        &self,
        session: &PortalSession,
        now: Timestamp,
        kind: &str,
    ) -> Result<(SubjectRequestView, bool), VaultError> {
        let event = self.about(AuditEvent::new("request.create", &session.principal), &session.subject)?;
        let for_row = event.clone();
        self.audited(event, now, async {
            let offered = portal_requests(&self.registry, &session.jurisdiction);
            let Some(kind) = kind.parse().ok().filter(|k| offered.contains(k)) else {
                let kinds: Vec<&str> = offered.iter().map(|k| k.as_str()).collect();
                return Err(VaultError::bad_request(
                    "invalid_request_type",
                    format!("type must be one of: {}", kinds.join(", ")),
                )
                .with_field("type")
                .into());
            };
            if let Some(existing) = self.open_portal_request(session, kind).await? {
                return Ok(Allowed::Read((self.request_view(&existing, now).await?, true), None));
            }
            // (the page offers none then; a form posted anyway is answered so)
            if kind == RequestType::Restriction && self.subject_state(&session.subject).await?.restricted() {
                return Err(VaultError::new(
                    crate::ErrorKind::Conflict,
                    "restriction_in_force",
                    "the use of your data is restricted already",
                )
                .into());
            }
            let req = NewSubjectRequest {
                subject_id: session.subject.as_str().to_owned(),
                kind: kind.as_str().to_owned(),
                jurisdiction: session.jurisdiction.clone(),
                received_via: Some("portal".to_owned()),
                received_at: None,
                verified_by: None,
            };
            match self
                .insert_request(&session.principal, now, &session.subject, &req, for_row)
                .await
            {
                Ok(view) => Ok(Allowed::Written((view, false))),
                // A request of the same kind opened meanwhile (the schema keeps one open per
                // subject and kind from the page): that one is the answer.
                Err(e) => match self.open_portal_request(session, kind).await? {
                    Some(existing) => Ok(Allowed::Read((self.request_view(&existing, now).await?, true), None)),
                    None => Err(e),
                },
            }
        })
        .await
    }

    /// The subject's open request of `kind` opened from the preference center, if any.
    async fn open_portal_request(
        &self,
        session: &PortalSession,
        kind: RequestType,
    ) -> Result<Option<custodia_store::RequestRow>, VaultError> {
        let open = self
            .store
            .reader()
            .await?
            .requests()
            .list(&RequestQuery {
                statuses: [
                    crate::rights::RECEIVED,
                    crate::rights::VERIFYING,
                    crate::rights::IN_PROGRESS,
                    crate::rights::EXTENDED,
                ]
                .map(str::to_owned)
                .to_vec(),
                due_before: None,
                subject_digest: Some(self.keys.audit_subject(&session.subject)?),
                limit: 1000,
            })
            .await?;
        Ok(open
            .into_iter()
            .find(|r| r.kind == kind.as_str() && r.received_via == "portal"))
    }
}

/// Where a link's facts are sealed: no subject or record of its own.
const LINK_CONTEXT: FieldContext<'static> = FieldContext {
    collection: "custodia:portal",
    subject: "",
    record: "link",
    field: "v1",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::tests::vault;

    const T0: i64 = 1_800_000_000_000;

    fn subject(s: &str) -> SubjectId {
        SubjectId::parse(s).unwrap()
    }

    /// A subject's preference center is used thirty times at once and then twenty a minute
    /// (time moved): a link holder cannot grow the ledger and the audit log without end; a
    /// refusal (429) writes neither, and another subject is not held back.
    #[tokio::test]
    async fn a_subjects_preference_center_is_rate_limited() {
        let (_dir, vault, admin) = vault().await;
        let (_, key) = vault
            .create_principal(&admin, Timestamp(T0), "pages", &["consent_service".to_owned()], None)
            .await
            .unwrap();
        let pages = vault.authenticate(&key, Timestamp(T0)).await.unwrap();
        let link = |s: &'static str| {
            let (vault, pages) = (&vault, &pages);
            async move {
                vault
                    .issue_portal_link(pages, Timestamp(T0), &subject(s), Some(86_400), None)
                    .await
                    .unwrap()
                    .token
            }
        };
        let (flood, other) = (link("c-flood").await, link("c-other").await);
        let choose = |token: &str, at: i64, granted: bool| {
            let changes = PortalChanges {
                consents: BTreeMap::from([("marketing_email".to_owned(), granted)]),
                ..PortalChanges::default()
            };
            let (vault, token) = (&vault, token.to_owned());
            async move {
                let session = vault.open_portal(&token, Timestamp(at)).await?;
                vault.portal_choose(&session, Timestamp(at), &changes, "v1").await
            }
        };
        for i in 0..30 {
            assert_eq!(choose(&flood, T0, i % 2 == 0).await.unwrap(), 1, "change {i}");
        }
        let history = |s: &'static str| {
            let (vault, admin) = (&vault, &admin);
            async move {
                vault
                    .privacy_state(admin, Timestamp(T0), &subject(s), &crate::unmetered)
                    .await
                    .unwrap()
                    .history
                    .len()
            }
        };
        assert_eq!(history("c-flood").await, 30);
        let refused = choose(&flood, T0, true).await.unwrap_err();
        assert_eq!(
            (refused.code, refused.kind),
            ("rate_limited", crate::ErrorKind::TooManyRequests)
        );
        assert!(
            refused
                .message
                .contains("20 preference center requests a minute per subject"),
            "{}",
            refused.message
        );
        assert_eq!(history("c-flood").await, 30, "nothing written");
        assert_eq!(choose(&other, T0, true).await.unwrap(), 1, "another subject goes on");
        // three seconds on, one more
        assert_eq!(choose(&flood, T0 + 3_000, true).await.unwrap(), 1);
        assert!(choose(&flood, T0 + 3_000, false).await.is_err());
    }

    /// Time is moved, never slept: a link lasts exactly its ttl, and dies with its issuer's
    /// key (expired or revoked) and with its subject's erasure.
    #[tokio::test]
    async fn a_link_lasts_its_ttl_and_no_longer_than_its_issuer() {
        let (_dir, vault, admin) = vault().await;
        let (_, key) = vault
            .create_principal(
                &admin,
                Timestamp(T0),
                "account-pages",
                &["consent_service".to_owned()],
                Some(Timestamp(T0 + 3_600_000)),
            )
            .await
            .unwrap();
        let pages = vault.authenticate(&key, Timestamp(T0)).await.unwrap();
        let link = vault
            .issue_portal_link(&pages, Timestamp(T0), &subject("c1"), Some(600), None)
            .await
            .unwrap();
        assert_eq!(link.expires_at, Timestamp(T0 + 600_000));
        let code = |r: Result<PortalSession, VaultError>| r.err().map(|e| e.code);
        let session = vault.open_portal(&link.token, Timestamp(T0 + 599_999)).await.unwrap();
        assert_eq!(
            (session.subject.as_str(), session.jurisdiction.as_str()),
            ("c1", "gdpr")
        );
        assert!(session.principal().id.starts_with("portal:") && session.principal().roles.is_empty());
        assert_eq!(
            code(vault.open_portal(&link.token, Timestamp(T0 + 600_000)).await),
            Some("portal_link_expired")
        );

        // A day-long link outlives nothing: the issuer's key expires after an hour, and the
        // link says so (it said a day, and died after the hour; review).
        let long = vault
            .issue_portal_link(&pages, Timestamp(T0), &subject("c1"), Some(86_400), Some("ccpa"))
            .await
            .unwrap();
        assert_eq!(long.expires_at, Timestamp(T0 + 3_600_000));
        assert!(vault.open_portal(&long.token, Timestamp(T0 + 3_599_999)).await.is_ok());
        assert_eq!(
            code(vault.open_portal(&long.token, Timestamp(T0 + 3_600_000)).await),
            Some("portal_link_expired")
        );

        // A rotated key (a leaked one is rotated) withdraws the links it made; the new key's
        // links open.
        let (issuer_id, key) = vault
            .create_principal(&admin, Timestamp(T0), "pages-2", &["consent_service".to_owned()], None)
            .await
            .unwrap();
        let pages = vault.authenticate(&key, Timestamp(T0)).await.unwrap();
        let before = vault
            .issue_portal_link(&pages, Timestamp(T0), &subject("c1"), None, None)
            .await
            .unwrap();
        let (_, rotated) = vault
            .rotate_key(&admin, Timestamp(T0 + 1), &issuer_id, None)
            .await
            .unwrap();
        assert_eq!(
            code(vault.open_portal(&before.token, Timestamp(T0 + 2)).await),
            Some("portal_link_revoked")
        );
        let pages = vault.authenticate(&rotated, Timestamp(T0 + 2)).await.unwrap();
        let after = vault
            .issue_portal_link(&pages, Timestamp(T0 + 2), &subject("c1"), None, None)
            .await
            .unwrap();
        assert!(vault.open_portal(&after.token, Timestamp(T0 + 3)).await.is_ok());

        // Roles without issue_portal_links, bad ttls and jurisdictions are refused.
        let (_, agent) = vault
            .create_principal(&admin, Timestamp(T0), "agent", &["support_agent".to_owned()], None)
            .await
            .unwrap();
        let agent = vault.authenticate(&agent, Timestamp(T0)).await.unwrap();
        let refused = vault
            .issue_portal_link(&agent, Timestamp(T0), &subject("c1"), None, None)
            .await
            .unwrap_err();
        assert_eq!(refused.code, "not_allowed");
        for (ttl, jurisdiction, expected) in [
            (Some(0), None, "invalid_ttl"),
            (Some(86_401), None, "invalid_ttl"),
            (None, Some("atlantis"), "unknown_jurisdiction"),
        ] {
            let e = vault
                .issue_portal_link(&admin, Timestamp(T0), &subject("c1"), ttl, jurisdiction)
                .await
                .unwrap_err();
            assert_eq!(e.code, expected);
        }
    }

    #[tokio::test]
    async fn every_byte_of_a_link_is_checked() {
        let (_dir, vault, admin) = vault().await;
        let link = vault
            .issue_portal_link(&admin, Timestamp(T0), &subject("c1"), None, None)
            .await
            .unwrap();
        let body = link.token.strip_prefix(TOKEN_PREFIX).unwrap();
        let sealed = B64URL.decode(body).unwrap();
        for i in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[i] ^= 0x01;
            let token = format!("{TOKEN_PREFIX}{}", B64URL.encode(&flipped));
            let e = vault.open_portal(&token, Timestamp(T0)).await.unwrap_err();
            assert_eq!(e.code, "portal_link_invalid", "byte {i}");
        }
        // A link of another vault (another index key) does not open here.
        let (_dir2, other, other_admin) = crate::package::tests::vault().await;
        let foreign = other
            .issue_portal_link(&other_admin, Timestamp(T0), &subject("c1"), None, None)
            .await
            .unwrap();
        let e = vault.open_portal(&foreign.token, Timestamp(T0)).await.unwrap_err();
        assert_eq!(e.code, "portal_link_invalid");
    }
}
