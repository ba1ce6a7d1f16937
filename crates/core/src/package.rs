//! The data subject's access and portability package (GDPR Art. 15(1)(a)-(h), Art. 20):
//! every record of the subject in every collection, decrypted (the subject's own copy, so no
//! role's output form applies); each purpose holding their data or under which the audit
//! log says it was processed, with its legal basis, retention, recipients and source; their ledger (consent history); who accessed their data,
//! from the audit log; and their rights.
//!
//! [`Vault::subject_package`] neither authorizes nor audits: it is the inside of the requests
//! API's fulfil step, which checks `fulfil_requests`, checks that the requester's identity
//! was verified and writes the audit entry before it calls this. Nothing else may call it.
//!
//! A package may hold thousands of records and audit entries, so it is read in parts
//! ([`PackageReader::next_part`]), a page of records or of entries at a time, each page from
//! the store by keyset; the server writes each part to the response as it comes. The parts
//! are read by several queries, not in one snapshot: a record written while the package is
//! read may or may not be in it, and none appears twice.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use custodia_crypto::{DataKey, FieldContext};
use custodia_registry::{RecipientRole, Registry};
use custodia_store::{AuditQuery, LedgerRow, RecordCursor, Store, StoredRecord};
use custodia_types::{
    PackageAccess, PackageConsent, PackageController, PackageField, PackagePurpose, PackageRecipient, PackageRecord,
    PackageRetention, PackageRight, PackageRights, PackageTokens, SubjectPackage,
};
use zeroize::Zeroizing;

use crate::{SubjectId, Timestamp, Vault, VaultError};

/// Records read per page.
pub const PACKAGE_RECORD_PAGE: i64 = 500;
/// Audit entries read per page.
pub const PACKAGE_ACCESS_PAGE: i64 = 1000;

/// How many records a package's first page reads, before it knows their size.
const FIRST_RECORD_PAGE: i64 = 4;
/// A purpose's source when the registry names none: the subject gave the data.
pub const PROVIDED_BY_YOU: &str = "provided by you";

/// One part of a package, in the order [`PackageReader::next_part`] returns them: `Head`,
/// `Records` (zero or more pages), `Tokens`, `Purposes`, `ConsentHistory`, `Access` (zero or more
/// pages), `Rights`. Together they are the fields of [`SubjectPackage`], in its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackagePart {
    Head {
        subject_id: String,
        generated_at: String,
        controller: PackageController,
    },
    Records(Vec<PackageRecord>),
    Tokens(Vec<PackageTokens>),
    Purposes(Vec<PackagePurpose>),
    ConsentHistory(Vec<PackageConsent>),
    Access(Vec<PackageAccess>),
    Rights(PackageRights),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Head,
    Records,
    Tokens,
    Purposes,
    ConsentHistory,
    Access,
    Rights,
    Done,
}

/// A subject's package, read part by part. Owns what it reads with (no borrow of the vault),
/// so a response body can be written from it on a task of its own.
pub struct PackageReader {
    store: Arc<Store>,
    registry: Arc<Registry>,
    subject: SubjectId,
    generated_at: Timestamp,
    /// The subject's data keys by class (none: the subject has no data, or only data whose
    /// key an erasure destroyed).
    keys: Vec<(String, DataKey)>,
    ledger: Vec<LedgerRow>,
    /// The keyed digests audit entries about the subject carry.
    digests: Vec<String>,
    stage: Stage,
    /// Page sizes ([`PACKAGE_RECORD_PAGE`], [`PACKAGE_ACCESS_PAGE`]; smaller in tests).
    pages: (i64, i64),
    /// How many records the next page reads: a few first, then as many as hold about a list
    /// page's bytes at the largest record seen, at most `pages.0` (500 records of 34 KB were
    /// one 17 MB piece of the answer, held whole while its client read it).
    record_page: i64,
    /// The most a record read so far holds, sealed.
    largest: usize,
    records_after: Option<RecordCursor>,
    audit_after: i64,
    /// Purposes the records read so far hold fields under.
    purposes: BTreeSet<String>,
    /// Principal names by id, as looked up.
    principal_names: HashMap<String, String>,
}

impl std::fmt::Debug for PackageReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackageReader")
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// The access and portability package of `subject` as of `now`, to be read part by part
    /// ([`PackageReader::next_part`], or whole with [`PackageReader::collect`]).
    ///
    /// Does NOT authorize and does NOT audit: the caller (fulfilling an `access` or
    /// `portability` request) must have checked `fulfil_requests` and the requester's
    /// verified identity, and written its audit entry, before calling this.
    #[tracing::instrument(skip_all)]
    pub async fn subject_package(&self, subject: &SubjectId, now: Timestamp) -> Result<PackageReader, VaultError> {
        let keys = self
            .store
            .reader()
            .await?
            .subjects()
            .keys(subject.as_str())
            .await?
            .iter()
            .map(|row| Ok((row.key_class.clone(), self.keys.unwrap(row)?)))
            .collect::<Result<Vec<_>, VaultError>>()?;
        let ledger = self
            .store
            .reader()
            .await?
            .ledger()
            .of_subject(subject.as_str(), &*self.keys.access_seal)
            .await?;
        Ok(PackageReader {
            store: Arc::clone(&self.store),
            registry: Arc::clone(&self.registry),
            subject: subject.clone(),
            generated_at: now,
            keys,
            ledger,
            digests: self.subject_digests(subject)?,
            stage: Stage::Head,
            pages: (PACKAGE_RECORD_PAGE, PACKAGE_ACCESS_PAGE),
            record_page: FIRST_RECORD_PAGE,
            largest: 1,
            records_after: None,
            audit_after: 0,
            purposes: BTreeSet::new(),
            principal_names: HashMap::new(),
        })
    }
}

impl PackageReader {
    /// Reads `records` records and `entries` audit entries per page instead of
    /// [`PACKAGE_RECORD_PAGE`] and [`PACKAGE_ACCESS_PAGE`] (at least one each).
    #[must_use]
    pub fn with_page_sizes(self, records: i64, entries: i64) -> Self {
        Self {
            pages: (records.max(1), entries.max(1)),
            record_page: records.clamp(1, FIRST_RECORD_PAGE),
            ..self
        }
    }

    /// The next part of the package (see [`PackagePart`] for their order); `None` after the
    /// last. An error leaves the package unfinished: the caller must not present what it
    /// has as the whole package.
    pub async fn next_part(&mut self) -> Result<Option<PackagePart>, VaultError> {
        loop {
            match self.stage {
                Stage::Head => {
                    self.stage = Stage::Records;
                    return Ok(Some(self.head()));
                }
                Stage::Records => {
                    let (page, last) = self.package_records().await?;
                    if last {
                        self.stage = Stage::Tokens;
                    }
                    if !page.is_empty() {
                        return Ok(Some(PackagePart::Records(page)));
                    }
                }
                Stage::Tokens => {
                    self.stage = Stage::Purposes;
                    return Ok(Some(PackagePart::Tokens(self.package_tokens().await?)));
                }
                Stage::Purposes => {
                    let processed = self.store.reader().await?.audit().purposes_about(&self.digests).await?;
                    self.stage = Stage::ConsentHistory;
                    return Ok(Some(PackagePart::Purposes(self.package_purposes(processed))));
                }
                Stage::ConsentHistory => {
                    self.stage = Stage::Access;
                    return Ok(Some(PackagePart::ConsentHistory(self.consent_history())));
                }
                Stage::Access => {
                    let page = self.access_history().await?;
                    if page.len() < usize::try_from(self.pages.1).unwrap_or(usize::MAX) {
                        self.stage = Stage::Rights;
                    }
                    if !page.is_empty() {
                        return Ok(Some(PackagePart::Access(page)));
                    }
                }
                Stage::Rights => {
                    self.stage = Stage::Done;
                    return Ok(Some(PackagePart::Rights(rights(&self.registry))));
                }
                Stage::Done => return Ok(None),
            }
        }
    }

    /// The whole package in memory (every record and entry at once: for tests and small
    /// subjects; a response streams [`PackageReader::next_part`] instead).
    pub async fn collect(mut self) -> Result<SubjectPackage, VaultError> {
        let mut package = SubjectPackage {
            subject_id: String::new(),
            generated_at: String::new(),
            controller: controller(&self.registry),
            records: Vec::new(),
            tokens: Vec::new(),
            purposes: Vec::new(),
            consent_history: Vec::new(),
            access_history: Vec::new(),
            rights: rights(&self.registry),
        };
        while let Some(part) = self.next_part().await? {
            match part {
                PackagePart::Head {
                    subject_id,
                    generated_at,
                    controller,
                } => {
                    package.subject_id = subject_id;
                    package.generated_at = generated_at;
                    package.controller = controller;
                }
                PackagePart::Records(page) => package.records.extend(page),
                PackagePart::Tokens(t) => package.tokens = t,
                PackagePart::Purposes(p) => package.purposes = p,
                PackagePart::ConsentHistory(c) => package.consent_history = c,
                PackagePart::Access(page) => package.access_history.extend(page),
                PackagePart::Rights(r) => package.rights = r,
            }
        }
        Ok(package)
    }

    fn head(&self) -> PackagePart {
        PackagePart::Head {
            subject_id: self.subject.as_str().to_owned(),
            generated_at: self.generated_at.to_rfc3339(),
            controller: controller(&self.registry),
        }
    }

    /// The next page of the subject's records, every stored field opened with the subject's
    /// data key; empty after the last.
    /// And whether it was the last.
    async fn package_records(&mut self) -> Result<(Vec<PackageRecord>, bool), VaultError> {
        if self.keys.is_empty() {
            return Ok((Vec::new(), true));
        }
        let limit = self.record_page;
        let page = self
            .store
            .reader()
            .await?
            .records()
            .page_of_subject(custodia_store::PageOf {
                subject_id: self.subject.as_str(),
                collection: None,
                usable_by: None,
                after: self.records_after.as_ref(),
                limit,
            })
            .await?;
        if let Some(last) = page.last() {
            self.records_after = Some(RecordCursor::after(last));
        }
        let last = page.len() < usize::try_from(limit).unwrap_or(usize::MAX);
        self.largest = page
            .iter()
            .map(crate::records::stored_bytes)
            .fold(self.largest, usize::max);
        let fits = i64::try_from(crate::Page::MAX_LIST_BYTES / self.largest).unwrap_or(i64::MAX);
        self.record_page = fits.clamp(1, self.pages.0);
        let mut out = Vec::with_capacity(page.len());
        for stored in &page {
            self.purposes.extend(
                stored
                    .fields
                    .iter()
                    .flat_map(|f| f.bindings.iter().map(|b| b.purpose.clone())),
            );
            out.push(open_record(&self.registry, &self.keys, stored)?);
        }
        Ok((out, last))
    }

    /// The subject's values held as tokens, by field and purpose (their purposes join the
    /// package's): named, not shown, for each is sealed to its token, which the vault does not
    /// keep.
    async fn package_tokens(&mut self) -> Result<Vec<PackageTokens>, VaultError> {
        let held = self
            .store
            .reader()
            .await?
            .tokens()
            .holdings_of(self.subject.as_str())
            .await?;
        self.purposes.extend(held.iter().filter_map(|h| h.purpose.clone()));
        Ok(held
            .into_iter()
            .map(|h| PackageTokens {
                category: self
                    .registry
                    .collections
                    .get(&h.collection)
                    .and_then(|c| c.fields.get(&h.field))
                    .map(|f| f.category.clone()),
                collection: h.collection,
                field: h.field,
                purpose: h.purpose,
                kind: h.kind,
                count: h.count,
                first_at: Timestamp(h.first_at).to_rfc3339(),
                last_at: Timestamp(h.last_at).to_rfc3339(),
            })
            .collect())
    }

    /// Each purpose holding a field of the records read, named in the subject's ledger, or
    /// `processed` (the purposes of the allowed audit entries about the subject: what their
    /// data was used for, Art. 15(1)(a), though that purpose holds none of it, as support
    /// reading an order), as the registry declares it (a purpose the registry no longer
    /// declares is left out; the fields and the access history still name it).
    fn package_purposes(&self, processed: Vec<String>) -> Vec<PackagePurpose> {
        let ledger = self.ledger.iter().filter_map(|e| e.purpose.clone());
        let names: BTreeSet<String> = self.purposes.iter().cloned().chain(ledger).chain(processed).collect();
        names
            .iter()
            .filter_map(|name| self.registry.purpose(name))
            .map(|p| PackagePurpose {
                name: p.name.clone(),
                description: p.description.clone(),
                legal_basis: p.legal_basis.name().to_owned(),
                legitimate_interest: p.legal_basis.interest().map(str::to_owned),
                // No retention rule declared: both empty (kept until a withdrawal,
                // objection, opt-out or erasure ends the values, never by time).
                retention: p.retention.map_or_else(
                    || PackageRetention {
                        period: String::new(),
                        from: String::new(),
                    },
                    |r| PackageRetention {
                        period: r.period.to_string(),
                        from: r.from.name().to_owned(),
                    },
                ),
                recipients: p
                    .recipients
                    .iter()
                    .filter_map(|r| self.registry.recipients.get(r))
                    .map(|r| PackageRecipient {
                        name: r.display_name.clone(),
                        country: r.country.clone(),
                        role: match r.role {
                            RecipientRole::Processor => "processor",
                            RecipientRole::Controller => "controller",
                            RecipientRole::JointController => "joint_controller",
                        }
                        .to_owned(),
                        safeguard: r.safeguard.clone(),
                    })
                    .collect(),
                source: p.source.clone().unwrap_or_else(|| PROVIDED_BY_YOU.to_owned()),
            })
            .collect()
    }

    fn consent_history(&self) -> Vec<PackageConsent> {
        // the evidence's sealed members open with the `default` key (none once erased)
        let key = self
            .keys
            .iter()
            .find(|(class, _)| class == custodia_store::DEFAULT_KEY_CLASS)
            .map(|(_, key)| key);
        self.ledger
            .iter()
            .map(|e| PackageConsent {
                kind: e.kind.clone(),
                purpose: e.purpose.clone(),
                value: e.value,
                method: e.method.clone(),
                at: Timestamp(e.at).to_rfc3339(),
                notice_version: e.notice_version.clone(),
                evidence: e
                    .evidence
                    .as_deref()
                    .and_then(|text| crate::consent::open_evidence(&self.subject, text, key)),
            })
            .collect()
    }

    /// The next page of audit entries about the subject (found by its keyed digests through
    /// the subject index); empty after the last.
    async fn access_history(&mut self) -> Result<Vec<PackageAccess>, VaultError> {
        let query = AuditQuery {
            subjects: self.digests.clone(),
            ..AuditQuery::default()
        };
        let rows = self
            .store
            .reader()
            .await?
            .audit()
            .query(&query, self.audit_after, self.pages.1)
            .await?;
        if let Some(last) = rows.last() {
            self.audit_after = last.seq;
        }
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let entry: LoggedEntry = serde_json::from_str(&row.entry).map_err(|e| VaultError::internal(&e))?;
            out.push(PackageAccess {
                at: Timestamp(row.at).to_rfc3339(),
                principal: self.principal_name(entry.principal).await?,
                action: entry.action,
                purpose: entry.purpose,
                collection: entry.collection,
                decision: entry.decision,
                reason: entry.reason,
                fields: entry.fields,
            });
        }
        Ok(out)
    }

    /// The name of the principal `id`, or `id` when the vault does not know it.
    async fn principal_name(&mut self, id: String) -> Result<String, VaultError> {
        if let Some(name) = self.principal_names.get(&id) {
            return Ok(name.clone());
        }
        let found = self.store.reader().await?.principals().by_id(&id).await?;
        let name = found.map_or_else(|| id.clone(), |p| p.name);
        self.principal_names.insert(id, name.clone());
        Ok(name)
    }
}

/// What the package reads of an audit entry (see `audit.rs`, `Entry`).
#[derive(serde::Deserialize)]
struct LoggedEntry {
    principal: String,
    action: String,
    decision: String,
    reason: Option<String>,
    purpose: Option<String>,
    collection: Option<String>,
    #[serde(default)]
    fields: Vec<String>,
}

/// A stored record with every field opened, in plain text, each with the key of its class (a
/// value whose key an erasure destroyed is left out).
fn open_record(
    registry: &Registry,
    keys: &[(String, DataKey)],
    stored: &StoredRecord,
) -> Result<PackageRecord, VaultError> {
    let declared = registry.collection(&stored.collection);
    let mut fields = Vec::with_capacity(stored.fields.len());
    for f in &stored.fields {
        let Some((_, key)) = keys.iter().find(|(class, _)| *class == f.key_class) else {
            continue;
        };
        let ctx = FieldContext {
            collection: &stored.collection,
            subject: &stored.subject_id,
            record: &stored.record_id,
            field: &f.field,
        };
        let plain = Zeroizing::new(key.open(&ctx, &f.ciphertext)?);
        let value = std::str::from_utf8(&plain)
            .map_err(|_| VaultError::internal(&"stored value is not UTF-8"))?
            .to_owned();
        fields.push(PackageField {
            name: f.field.clone(),
            category: declared
                .and_then(|c| c.fields.get(&f.field))
                .map(|d| d.category.clone()),
            value,
            purposes: f.bindings.iter().map(|b| b.purpose.clone()).collect(),
        });
    }
    Ok(PackageRecord {
        collection: stored.collection.clone(),
        record_id: stored.record_id.clone(),
        created_at: Timestamp(stored.created_at).to_rfc3339(),
        updated_at: Timestamp(stored.updated_at).to_rfc3339(),
        fields,
    })
}

fn controller(registry: &Registry) -> PackageController {
    let o = &registry.organization;
    PackageController {
        name: o.name.clone(),
        contact: o.contact.clone(),
        dpo: o.dpo.clone(),
        supervisory_authority: o.supervisory_authority.clone(),
        country: o.country.clone(),
    }
}

/// The rights a subject has, a line each: (name, law, explanation).
const RIGHTS: &[(&str, &str, &str)] = &[
    (
        "access",
        "GDPR Art. 15",
        "You can get a copy of the personal data we hold about you and of how we use it: this package.",
    ),
    (
        "rectification",
        "GDPR Art. 16",
        "You can have data about you that is wrong corrected, and data that is incomplete completed.",
    ),
    (
        "erasure",
        "GDPR Art. 17",
        "You can have your data deleted when we no longer need it, when you withdraw your consent or object, or when it was used unlawfully; data the law makes us keep is kept only for that.",
    ),
    (
        "restriction",
        "GDPR Art. 18",
        "You can have us stop using your data, other than storing it, while its accuracy or our reasons are checked.",
    ),
    (
        "portability",
        "GDPR Art. 20",
        "You can get the data you gave us in a machine-readable form (this package as JSON), and have it sent to another organization.",
    ),
    (
        "objection",
        "GDPR Art. 21",
        "You can object to uses of your data based on our legitimate interests, and to direct marketing at any time.",
    ),
    (
        "withdraw_consent",
        "GDPR Art. 7(3)",
        "You can withdraw any consent at any time, as easily as you gave it; what was done before stays lawful.",
    ),
    (
        "automated_decisions",
        "GDPR Art. 22",
        "You can refuse to be subject to a decision made only by automated means that significantly affects you.",
    ),
    (
        "opt_out_sale",
        "CCPA §1798.120",
        "You can tell us not to sell or share your personal information.",
    ),
    (
        "limit_sensitive",
        "CCPA §1798.121",
        "You can limit our use of your sensitive personal information to what is needed to serve you.",
    ),
    (
        "complaint",
        "GDPR Art. 77",
        "You can complain to a data protection supervisory authority, in particular the one named here.",
    ),
];

fn rights(registry: &Registry) -> PackageRights {
    PackageRights {
        rights: RIGHTS
            .iter()
            .map(|(name, law, explanation)| PackageRight {
                name: (*name).to_owned(),
                law: (*law).to_owned(),
                explanation: (*explanation).to_owned(),
            })
            .collect(),
        complain_to: registry.organization.supervisory_authority.clone(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use custodia_types::ConsentRequest;

    use super::*;
    use crate::{Call, DataDir, Principal, RecordId};

    /// A vault over a temporary data directory (the example registry) and its administrator.
    pub(crate) async fn vault() -> (tempfile::TempDir, Vault, Principal) {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let init = data.init(None, Timestamp(1)).await.unwrap();
        let vault = data.open(None).await.unwrap();
        let admin = vault.authenticate(&init.admin_token, Timestamp(2)).await.unwrap();
        (dir, vault, admin)
    }

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// Alice (`s1`): two records under two purposes, a consent and a third record under it,
    /// and a read under customer support. Bob (`s2`): a record, a consent and a read of his own.
    pub(crate) async fn alice_and_bob(vault: &Vault, admin: &Principal) -> (SubjectId, SubjectId) {
        let (alice, bob) = (SubjectId::parse("s1").unwrap(), SubjectId::parse("s2").unwrap());
        let at = |t: i64| Timestamp(1_800_000_000_000 + t);
        let create = |subject: &SubjectId, purpose: &'static str, t: i64, values: BTreeMap<String, String>| {
            let subject = subject.clone();
            async move {
                vault
                    .create_record(&Call::new(admin, purpose, at(t)), &subject, "customers", &values)
                    .await
                    .unwrap()
            }
        };
        let shipping = create(
            &alice,
            "order_fulfillment",
            10,
            fields(&[
                ("email", "alice@example.com"),
                ("name", "Alice <script>alert(1)</script> & \"Co\""),
                ("shipping_address", "1 High Street\nLondon"),
            ]),
        )
        .await;
        create(
            &alice,
            "payment",
            20,
            fields(&[("name", "Alice A"), ("card_number", "4242424242424242")]),
        )
        .await;
        let consent = |subject: &SubjectId, purpose: &str, t: i64| {
            let (subject, req) = (
                subject.clone(),
                ConsentRequest {
                    purpose: purpose.into(),
                    granted: true,
                    notice_version: Some("2026-01".into()),
                    method: "web_form".into(),
                    evidence: Some(custodia_types::EvidenceInput {
                        ip: Some("203.0.113.7".into()),
                        user_agent: Some("Mozilla/5.0 (Alice's phone)".into()),
                    }),
                },
            );
            async move { vault.record_consent(admin, at(t), &subject, &req).await.unwrap() }
        };
        consent(&alice, "marketing_email", 30).await;
        create(
            &alice,
            "marketing_email",
            40,
            fields(&[("email", "alice@news.example")]),
        )
        .await;
        vault
            .get_record(
                &Call::new(admin, "customer_support", at(50)),
                &alice,
                "customers",
                &shipping,
                None,
            )
            .await
            .unwrap();

        let bobs = create(
            &bob,
            "order_fulfillment",
            15,
            fields(&[("email", "bob@example.net"), ("name", "Bob Secret")]),
        )
        .await;
        consent(&bob, "analytics", 35).await;
        // Bob's order data read by support (a purpose compatible with orders).
        vault
            .get_record(
                &Call::new(admin, "customer_support", at(55)),
                &bob,
                "customers",
                &bobs,
                None,
            )
            .await
            .unwrap();
        (alice, bob)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_package_holds_the_subjects_data_purposes_consents_and_accesses() {
        let (_dir, vault, admin) = vault().await;
        let (alice, _) = alice_and_bob(&vault, &admin).await;
        let now = Timestamp(1_800_000_100_000);
        let package = vault
            .subject_package(&alice, now)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();

        assert_eq!(package.subject_id, "s1");
        assert_eq!(package.generated_at, now.to_rfc3339());
        assert_eq!(package.controller.name, "Example Shop Ltd");
        assert_eq!(package.controller.contact, "privacy@shop.example");
        assert_eq!(
            package.controller.supervisory_authority,
            "Information Commissioner's Office (ICO)"
        );
        assert!(package.controller.dpo.is_some());

        // Every record, oldest first, every value decrypted and plain, with its purpose.
        type Shown<'a> = (&'a str, &'a str, &'a str, Option<&'a str>);
        let values: Vec<Vec<Shown<'_>>> = package
            .records
            .iter()
            .map(|r| {
                r.fields
                    .iter()
                    .map(|f| {
                        (
                            f.name.as_str(),
                            f.value.as_str(),
                            f.purposes.first().map_or("", String::as_str),
                            f.category.as_deref(),
                        )
                    })
                    .collect()
            })
            .collect();
        assert_eq!(
            values,
            [
                vec![
                    (
                        "email",
                        "alice@example.com",
                        "order_fulfillment",
                        Some("user.contact.email")
                    ),
                    (
                        "name",
                        "Alice <script>alert(1)</script> & \"Co\"",
                        "order_fulfillment",
                        Some("user.name")
                    ),
                    (
                        "shipping_address",
                        "1 High Street\nLondon",
                        "order_fulfillment",
                        Some("user.contact.address")
                    ),
                ],
                vec![
                    // Plain, though most roles see card numbers masked: the subject's own copy.
                    (
                        "card_number",
                        "4242424242424242",
                        "payment",
                        Some("user.financial.credit_card")
                    ),
                    ("name", "Alice A", "payment", Some("user.name")),
                ],
                vec![(
                    "email",
                    "alice@news.example",
                    "marketing_email",
                    Some("user.contact.email")
                )],
            ]
        );
        assert!(package.records.iter().all(|r| r.collection == "customers"));
        assert!(package.records.iter().all(|r| RecordId::parse(&r.record_id).is_ok()));
        assert_eq!(package.records[0].created_at, Timestamp(1_800_000_000_010).to_rfc3339());

        // The purposes holding her fields or named in her ledger, and customer support, which
        // holds none of her data but read it: Art. 15(1)(a) asks for the purposes of the
        // processing, not only of the storage (this test once asserted support's absence).
        let names: Vec<&str> = package.purposes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["customer_support", "marketing_email", "order_fulfillment", "payment"]
        );
        let support = &package.purposes[0];
        assert_eq!(support.legal_basis, "legitimate_interests");
        assert!(
            support
                .legitimate_interest
                .as_deref()
                .is_some_and(|i| i.starts_with("Helping customers")),
            "{support:?}"
        );
        let fulfil = &package.purposes[2];
        assert_eq!(fulfil.legal_basis, "contract");
        assert_eq!(fulfil.legitimate_interest, None);
        assert_eq!(fulfil.retention.period, "2y");
        assert_eq!(fulfil.retention.from, "last_update");
        assert_eq!(fulfil.source, PROVIDED_BY_YOU);
        assert_eq!(fulfil.recipients.len(), 1);
        assert_eq!(fulfil.recipients[0].name, "Parcel Carrier Ltd");
        assert_eq!(fulfil.recipients[0].country, "GB");
        assert_eq!(fulfil.recipients[0].role, "processor");
        assert_eq!(fulfil.recipients[0].safeguard, None);
        let marketing = &package.purposes[1];
        assert_eq!(marketing.legal_basis, "consent");
        assert_eq!(marketing.recipients[0].country, "US");
        assert!(marketing.recipients[0].safeguard.is_some());

        assert_eq!(
            package.consent_history,
            [PackageConsent {
                kind: "consent".into(),
                purpose: Some("marketing_email".into()),
                value: true,
                method: "web_form".into(),
                at: Timestamp(1_800_000_000_030).to_rfc3339(),
                notice_version: Some("2026-01".into()),
                evidence: package.consent_history[0].evidence.clone(),
            }]
        );
        // Art. 15: what was recorded with her consent, the user agent opened with her key; the
        // address only as the keyed hash the vault keeps, never the address
        let evidence = package.consent_history[0].evidence.clone().unwrap_or_default();
        assert_eq!(evidence["user_agent"], "Mozilla/5.0 (Alice's phone)", "{evidence}");
        assert!(
            evidence["ip_hash"].as_str().is_some_and(|h| h.len() >= 32),
            "{evidence}"
        );
        assert!(!evidence.to_string().contains("203.0.113.7"), "{evidence}");

        // Who touched her data: her three records created, her consent, one read; Bob's never.
        let accesses: Vec<(&str, Option<&str>, &str)> = package
            .access_history
            .iter()
            .map(|a| (a.action.as_str(), a.purpose.as_deref(), a.decision.as_str()))
            .collect();
        assert_eq!(
            accesses,
            [
                ("record.create", Some("order_fulfillment"), "allow"),
                ("record.create", Some("payment"), "allow"),
                ("consent.record", Some("marketing_email"), "allow"),
                ("record.create", Some("marketing_email"), "allow"),
                ("record.read", Some("customer_support"), "allow"),
            ]
        );
        let read = &package.access_history[4];
        assert_eq!(read.principal, "bootstrap-admin", "the principal's name, not its id");
        assert_eq!(read.collection.as_deref(), Some("customers"));
        // The fields returned with a value (the record holds no phone, and its card is in the
        // payment record).
        assert_eq!(read.fields, ["email", "name"]);
        assert_eq!(read.at, Timestamp(1_800_000_000_050).to_rfc3339());

        assert!(package.rights.rights.iter().any(|r| r.name == "erasure"));
        assert!(package.rights.rights.iter().any(|r| r.name == "portability"));
        assert_eq!(package.rights.complain_to, "Information Commissioner's Office (ICO)");
    }

    /// Another subject's data never appears: not their values, not their purposes, not the
    /// entries about them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_subjects_data_never_appears() {
        let (_dir, vault, admin) = vault().await;
        let (alice, bob) = alice_and_bob(&vault, &admin).await;
        let now = Timestamp(1_800_000_100_000);
        let text = |package: &SubjectPackage| serde_json::to_string(package).unwrap();
        let alices = vault
            .subject_package(&alice, now)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let bobs = vault.subject_package(&bob, now).await.unwrap().collect().await.unwrap();
        for bobs_own in ["bob@example.net", "Bob Secret", "analytics", "\"s2\""] {
            assert!(!text(&alices).contains(bobs_own), "{bobs_own} in Alice's package");
            assert!(text(&bobs).contains(bobs_own), "{bobs_own} not in Bob's package");
        }
        for alices_own in [
            "alice@example.com",
            "4242424242424242",
            "marketing_email",
            "payment",
            "\"s1\"",
        ] {
            assert!(!text(&bobs).contains(alices_own), "{alices_own} in Bob's package");
        }
        assert_eq!(bobs.records.len(), 1);
        assert_eq!(bobs.access_history.len(), 3, "{:?}", bobs.access_history);

        // A subject the vault knows nothing of gets an empty package, rights included.
        let nobody = SubjectId::parse("s3").unwrap();
        let empty = vault
            .subject_package(&nobody, now)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert!(empty.records.is_empty() && empty.purposes.is_empty());
        assert!(empty.consent_history.is_empty() && empty.access_history.is_empty());
        assert!(!empty.rights.rights.is_empty());
    }

    /// Read a page at a time, the parts come in the package's order and add up to the same
    /// package as pages larger than the data.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_pages_give_the_same_package_in_order() {
        let (_dir, vault, admin) = vault().await;
        let (alice, _) = alice_and_bob(&vault, &admin).await;
        let now = Timestamp(1_800_000_100_000);
        let whole = vault
            .subject_package(&alice, now)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let mut reader = vault.subject_package(&alice, now).await.unwrap().with_page_sizes(2, 2);
        let mut kinds = Vec::new();
        while let Some(part) = reader.next_part().await.unwrap() {
            kinds.push(match part {
                PackagePart::Head { .. } => "head",
                PackagePart::Records(page) => {
                    assert!(page.len() <= 2);
                    "records"
                }
                PackagePart::Tokens(_) => "tokens",
                PackagePart::Purposes(_) => "purposes",
                PackagePart::ConsentHistory(_) => "consents",
                PackagePart::Access(page) => {
                    assert!(page.len() <= 2);
                    "access"
                }
                PackagePart::Rights(_) => "rights",
            });
        }
        assert_eq!(
            kinds,
            [
                "head", "records", "records", "tokens", "purposes", "consents", "access", "access", "access", "rights"
            ]
        );
        let paged = vault
            .subject_package(&alice, now)
            .await
            .unwrap()
            .with_page_sizes(2, 2)
            .collect()
            .await
            .unwrap();
        assert_eq!(paged, whole);
    }
}
