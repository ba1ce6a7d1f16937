//! The privacy notice as data: everything GDPR Art. 13/14 and CCPA §1798.100 ask a
//! controller to tell people, derived from the registry alone. The HTML page, the JSON
//! document and the Markdown export all render this one value, so they cannot disagree, and
//! its version (a digest of the content and of the wording) is what consents refer to.

use std::collections::{BTreeMap, BTreeSet};

use custodia_registry::{
    Date, Period, RecipientRole, Registry, RequestType, Retention, Transfer, is_sensitive_category, is_special_category,
};
use serde::Serialize;

use crate::locale::{Locale, Strings, fill};

/// The notice. Field names are the JSON document's (`GET /v1/notice`).
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    /// `sha256-` and the first 16 bytes (hex) of SHA-256 over the rest of the notice and the
    /// words of its language: a new version whenever what it says changes.
    pub version: String,
    /// The day this version was first shown (the controller's date; CCPA regulations
    /// §7011(e)(4)), as the server that shows it recorded it; absent from a notice generated
    /// without a server unless given ([`Notice::updated_on`]). Not covered by `version`: it
    /// says when, not what.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<Date>,
    pub language: String,
    pub controller: Controller,
    pub purposes: Vec<NoticePurpose>,
    pub categories: Vec<NoticeCategory>,
    pub recipients: Vec<NoticeRecipient>,
    pub rights: Vec<NoticeRights>,
    /// Whether any purpose is based on consent (and so may be withdrawn, Art. 13(2)(c)).
    pub consent_withdrawable: bool,
    pub sale_or_sharing: SaleOrSharing,
    pub sensitive: Sensitive,
    /// Where to complain (Art. 13(2)(d)).
    pub complaint_authority: String,
    /// Automated decision-making, profiling included (Art. 13(2)(f)), as the registry says it.
    pub automated_decisions: Option<String>,
}

/// Art. 13(1)(a)-(b).
#[derive(Debug, Clone, Serialize)]
pub struct Controller {
    pub name: String,
    pub contact: String,
    pub dpo: Option<String>,
    pub representative: Option<String>,
    pub country: String,
}

/// One purpose, Art. 13(1)(c)-(e), 13(2)(a), 14(2)(f).
#[derive(Debug, Clone, Serialize)]
pub struct NoticePurpose {
    pub name: String,
    pub description: String,
    /// `consent`, `contract`, ...
    pub legal_basis: String,
    /// The interest pursued, when the basis is legitimate interests (Art. 13(1)(d)).
    pub legitimate_interest: Option<String>,
    /// Data categories (taxonomy names) it uses.
    pub categories: Vec<String>,
    /// Recipient names (display names).
    pub recipients: Vec<String>,
    pub retention: Option<RetentionRule>,
    /// Where the data comes from when the subject did not provide it (Art. 14(2)(f)).
    pub source: Option<String>,
    /// The purposes whose data it also uses, as compatible with them (the registry's
    /// `compatible_with`, GDPR Art. 6(4)): in the notice, so that a purpose given another's
    /// data is told and gives the notice a new version. (Left out when empty: the notices
    /// of registries without it keep their versions.)
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reuses: Vec<String>,
    pub sale_or_sharing: bool,
    pub direct_marketing: bool,
    /// Kept after an erasure request (Art. 17(3)).
    pub survives_erasure: bool,
}

/// A retention rule as data: `{"period": "2y", "from": "last_update"}`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RetentionRule {
    pub period: PeriodText,
    pub from: &'static str,
}

/// A period in the registry's spelling (`2y`).
#[derive(Debug, Clone, Copy)]
pub struct PeriodText(pub Period);

impl Serialize for PeriodText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// One data category, with every purpose that uses it and how long each keeps it
/// (Art. 13(2)(a) per category, CCPA §1798.100(a)(3)).
#[derive(Debug, Clone, Serialize)]
pub struct NoticeCategory {
    pub category: String,
    pub purposes: Vec<String>,
    pub retention: Vec<CategoryRetention>,
    /// Sensitive personal information (CPRA §1798.140(ae)).
    pub sensitive: bool,
    /// A special category (GDPR Art. 9) or criminal data (Art. 10).
    pub special: bool,
    /// Sold or shared through a purpose that is a sale or sharing.
    pub sold_or_shared: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CategoryRetention {
    pub purpose: String,
    pub retention: Option<RetentionRule>,
}

/// Art. 13(1)(e)-(f).
#[derive(Debug, Clone, Serialize)]
pub struct NoticeRecipient {
    pub name: String,
    pub country: String,
    /// `processor`, `controller`, `joint_controller`.
    pub role: &'static str,
    /// `none`, `adequacy_decision`, `safeguard`, `unprotected`.
    pub transfer: &'static str,
    pub safeguard: Option<String>,
    pub purposes: Vec<String>,
}

/// The rights one law grants and how fast it is answered (Art. 13(2)(b), CCPA §1798.130).
#[derive(Debug, Clone, Serialize)]
pub struct NoticeRights {
    pub jurisdiction: String,
    pub title: String,
    pub rights: Vec<NoticeRight>,
    pub authority: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NoticeRight {
    /// The request type, e.g. `access`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// As the jurisdiction's rule spells it, e.g. `1 month`.
    pub respond_within: String,
}

/// CCPA §1798.100(a)(1), §1798.120, §1798.135.
#[derive(Debug, Clone, Serialize)]
pub struct SaleOrSharing {
    pub sells_or_shares: bool,
    pub purposes: Vec<String>,
    pub categories: Vec<String>,
    /// A Global Privacy Control signal is honoured as an opt-out.
    pub gpc_honoured: bool,
}

/// CPRA §1798.121 and GDPR Art. 9.
#[derive(Debug, Clone, Serialize)]
pub struct Sensitive {
    pub categories: Vec<String>,
    pub special_categories: Vec<String>,
    pub purposes: Vec<String>,
}

impl RetentionRule {
    fn of(r: &Retention) -> Self {
        Self {
            period: PeriodText(r.period),
            from: r.from.name(),
        }
    }

    /// In plain words.
    #[must_use]
    pub fn describe(rule: Option<&Self>, t: &Strings) -> String {
        let Some(rule) = rule else {
            return t.retention.none.clone();
        };
        let r = &t.retention;
        let (one, many, n) = match rule.period.0 {
            Period::Days(n) => (&r.day, &r.days, n),
            Period::Months(n) => (&r.month, &r.months, n),
            Period::Years(n) => (&r.year, &r.years, n),
        };
        let period = if n == 1 {
            one.clone()
        } else {
            fill(many, &[("n", &n.to_string())])
        };
        let template = match rule.from {
            "collection" => &r.collection,
            "last_update" => &r.last_update,
            "last_activity" => &r.last_activity,
            _ => &r.consent_withdrawn,
        };
        fill(template, &[("period", &period)])
    }
}

/// The plain words of a legal basis.
#[must_use]
pub fn legal_basis_text<'a>(name: &str, t: &'a Strings) -> &'a str {
    let l = &t.legal_basis;
    match name {
        "consent" => &l.consent,
        "contract" => &l.contract,
        "legal_obligation" => &l.legal_obligation,
        "vital_interests" => &l.vital_interests,
        "public_task" => &l.public_task,
        _ => &l.legitimate_interests,
    }
}

/// The plain words of a right.
#[must_use]
pub fn right_text(kind: RequestType, t: &Strings) -> &str {
    let r = &t.rights;
    match kind {
        RequestType::Access => &r.access,
        RequestType::Portability => &r.portability,
        RequestType::Rectification => &r.rectification,
        RequestType::Erasure => &r.erasure,
        RequestType::Restriction => &r.restriction,
        RequestType::Objection => &r.objection,
        RequestType::OptOutSale => &r.opt_out_sale,
        RequestType::LimitSensitive => &r.limit_sensitive,
    }
}

/// The plain words of a recipient's role.
#[must_use]
pub fn recipient_role_text<'a>(role: &str, t: &'a Strings) -> &'a str {
    match role {
        "processor" => &t.recipient_role.processor,
        "controller" => &t.recipient_role.controller,
        _ => &t.recipient_role.joint_controller,
    }
}

impl NoticeRecipient {
    /// The name of a recipient's role in JSON and CSV.
    #[must_use]
    pub fn role_of(role: RecipientRole) -> &'static str {
        match role {
            RecipientRole::Processor => "processor",
            RecipientRole::Controller => "controller",
            RecipientRole::JointController => "joint_controller",
        }
    }
}

/// The data categories a purpose uses, sorted, each once.
pub(crate) fn purpose_categories(registry: &Registry, purpose: &custodia_registry::Purpose) -> Vec<String> {
    purpose
        .fields
        .iter()
        .flat_map(|(coll, fields)| {
            fields.iter().filter_map(move |f| {
                registry
                    .collection(coll)
                    .and_then(|c| c.fields.get(f))
                    .map(|f| f.category.clone())
            })
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

impl Notice {
    /// The notice of `registry` in the words of `locale`.
    #[must_use]
    pub fn build(registry: &Registry, locale: &Locale) -> Self {
        let org = &registry.organization;
        let display = |id: &String| {
            registry
                .recipients
                .get(id)
                .map_or_else(|| id.clone(), |r| r.display_name.clone())
        };
        let purposes: Vec<NoticePurpose> = registry
            .purposes
            .values()
            .map(|p| NoticePurpose {
                name: p.name.clone(),
                description: p.description.clone(),
                legal_basis: p.legal_basis.name().to_owned(),
                legitimate_interest: p.legal_basis.interest().map(str::to_owned),
                categories: purpose_categories(registry, p),
                recipients: p.recipients.iter().map(display).collect(),
                retention: p.retention.as_ref().map(RetentionRule::of),
                source: p.source.clone(),
                reuses: p.compatible_with.iter().cloned().collect(),
                sale_or_sharing: p.sale_or_sharing,
                direct_marketing: p.direct_marketing,
                survives_erasure: p.survives_erasure,
            })
            .collect();

        let mut by_category: BTreeMap<String, Vec<&NoticePurpose>> = BTreeMap::new();
        for p in &purposes {
            for c in &p.categories {
                by_category.entry(c.clone()).or_default().push(p);
            }
        }
        // Categories held in fields no purpose declares are listed too: they are collected.
        for c in registry.collections.values() {
            for f in c.fields.values() {
                by_category.entry(f.category.clone()).or_default();
            }
        }
        let categories: Vec<NoticeCategory> = by_category
            .into_iter()
            .map(|(category, ps)| NoticeCategory {
                sensitive: is_sensitive_category(&category),
                special: is_special_category(&category),
                sold_or_shared: ps.iter().any(|p| p.sale_or_sharing),
                purposes: ps.iter().map(|p| p.name.clone()).collect(),
                retention: ps
                    .iter()
                    .map(|p| CategoryRetention {
                        purpose: p.name.clone(),
                        retention: p.retention,
                    })
                    .collect(),
                category,
            })
            .collect();

        // Only recipients some purpose discloses to: the notice describes actual disclosures
        // (Art. 13(1)(e)), as the record of processing does (`custodia check` warns of the
        // others).
        let recipients = registry
            .recipients
            .values()
            .filter(|r| registry.recipient_used(&r.name))
            .map(|r| {
                let transfer = registry.transfer_to(r);
                NoticeRecipient {
                    name: r.display_name.clone(),
                    country: r.country.clone(),
                    role: NoticeRecipient::role_of(r.role),
                    transfer: transfer.name(),
                    safeguard: match transfer {
                        Transfer::Safeguard(s) => Some(s),
                        _ => None,
                    },
                    purposes: registry
                        .purposes
                        .values()
                        .filter(|p| p.recipients.contains(&r.name))
                        .map(|p| p.name.clone())
                        .collect(),
                }
            })
            .collect();

        let rights = registry
            .jurisdictions
            .values()
            .map(|j| NoticeRights {
                jurisdiction: j.name.clone(),
                title: j.title.clone(),
                rights: j
                    .request_types
                    .iter()
                    .map(|k| NoticeRight {
                        kind: k.as_str(),
                        respond_within: j.rule(*k).respond_within.to_string(),
                    })
                    .collect(),
                authority: j.authority.clone().unwrap_or_else(|| org.supervisory_authority.clone()),
            })
            .collect();

        let selling: Vec<&NoticePurpose> = purposes.iter().filter(|p| p.sale_or_sharing).collect();
        let sale_or_sharing = SaleOrSharing {
            sells_or_shares: !selling.is_empty(),
            purposes: selling.iter().map(|p| p.name.clone()).collect(),
            categories: selling
                .iter()
                .flat_map(|p| p.categories.iter().cloned())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            gpc_honoured: true,
        };
        let sensitive_categories: Vec<String> = categories
            .iter()
            .filter(|c| c.sensitive || c.special)
            .map(|c| c.category.clone())
            .collect();
        let sensitive = Sensitive {
            special_categories: categories
                .iter()
                .filter(|c| c.special)
                .map(|c| c.category.clone())
                .collect(),
            purposes: purposes
                .iter()
                .filter(|p| p.categories.iter().any(|c| sensitive_categories.contains(c)))
                .map(|p| p.name.clone())
                .collect(),
            categories: sensitive_categories,
        };

        let mut notice = Self {
            version: String::new(),
            last_updated: None,
            language: locale.language.clone(),
            controller: Controller {
                name: org.name.clone(),
                contact: org.contact.clone(),
                dpo: org.dpo.clone(),
                representative: org.representative.clone(),
                country: org.country.clone(),
            },
            consent_withdrawable: purposes.iter().any(|p| p.legal_basis == "consent"),
            purposes,
            categories,
            recipients,
            rights,
            sale_or_sharing,
            sensitive,
            complaint_authority: org.supervisory_authority.clone(),
            automated_decisions: org.automated_decisions.clone(),
        };
        notice.version = version_of(&notice, locale);
        notice
    }

    /// The same notice, saying it was last updated on `date` (its version unchanged).
    #[must_use]
    pub fn updated_on(self, date: Date) -> Self {
        Self {
            last_updated: Some(date),
            ..self
        }
    }

    /// The purpose called `name`.
    #[must_use]
    pub fn purpose(&self, name: &str) -> Option<&NoticePurpose> {
        self.purposes.iter().find(|p| p.name == name)
    }
}

/// `sha256-<32 hex>` over the notice's canonical JSON (its version empty, no date: the
/// JSON of notices before dates existed, so their versions stay) and the words.
fn version_of(notice: &Notice, locale: &Locale) -> String {
    let undated = Notice {
        version: String::new(),
        last_updated: None,
        ..notice.clone()
    };
    let json = serde_json::to_vec(&undated).unwrap_or_default();
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"custodia notice v1\0");
    ctx.update(&(json.len() as u64).to_be_bytes());
    ctx.update(&json);
    ctx.update(&locale.digest);
    let digest = ctx.finish();
    format!("sha256-{}", hex::encode(&digest.as_ref()[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use custodia_registry::EXAMPLE_REGISTRY;

    fn example() -> (Registry, Locale) {
        (
            Registry::parse("r.toml", EXAMPLE_REGISTRY).unwrap(),
            Locale::english().unwrap(),
        )
    }

    /// Each element GDPR Art. 13(1)-(2) (14(2)(f) for the source) and CCPA §1798.100 ask for,
    /// found in the notice's JSON where a reader would look.
    #[test]
    fn the_notice_holds_every_element_the_law_asks_for() {
        let (reg, locale) = example();
        let n = serde_json::to_value(Notice::build(&reg, &locale)).unwrap();
        // Art. 13(1)(a)-(b): controller, contact, DPO.
        assert_eq!(n["controller"]["name"], "Example Shop Ltd");
        assert_eq!(n["controller"]["contact"], "privacy@shop.example");
        assert_eq!(n["controller"]["dpo"], "Data Protection Officer, dpo@shop.example");
        // (c)-(d): each purpose with its legal basis, the legitimate interest where that is it.
        let purposes = n["purposes"].as_array().unwrap();
        assert_eq!(purposes.len(), reg.purposes.len());
        let support = purposes.iter().find(|p| p["name"] == "customer_support").unwrap();
        assert_eq!(support["legal_basis"], "legitimate_interests");
        assert!(
            support["legitimate_interest"]
                .as_str()
                .unwrap()
                .starts_with("Helping customers")
        );
        let payment = purposes.iter().find(|p| p["name"] == "payment").unwrap();
        assert_eq!(payment["legitimate_interest"], serde_json::Value::Null);
        assert_eq!(
            payment["categories"],
            serde_json::json!(["user.financial.credit_card", "user.name"])
        );
        // (e)-(f): recipients, countries, transfer safeguards.
        let recipients = n["recipients"].as_array().unwrap();
        let mail = recipients.iter().find(|r| r["name"] == "Mail Sender Inc.").unwrap();
        assert_eq!(mail["country"], "US");
        assert_eq!(mail["transfer"], "safeguard");
        assert!(
            mail["safeguard"]
                .as_str()
                .unwrap()
                .contains("Standard Contractual Clauses")
        );
        assert_eq!(mail["purposes"], serde_json::json!(["marketing_email"]));
        let cards = recipients.iter().find(|r| r["name"] == "Card Payments Ltd").unwrap();
        assert_eq!(cards["transfer"], "adequacy_decision", "IE seen from GB");
        // Art. 13(2)(a): retention per purpose and per category.
        assert_eq!(
            payment["retention"],
            serde_json::json!({"period": "13m", "from": "collection"})
        );
        let email = n["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["category"] == "user.contact.email")
            .unwrap();
        let kept: Vec<&str> = email["retention"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["purpose"].as_str().unwrap())
            .collect();
        assert_eq!(
            kept,
            ["analytics", "customer_support", "marketing_email", "order_fulfillment"]
        );
        // (b): the rights and their deadlines; (c) withdrawal of consent; (d) complaint.
        let gdpr = n["rights"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["jurisdiction"] == "gdpr")
            .unwrap();
        let kinds: Vec<&str> = gdpr["rights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["type"].as_str().unwrap())
            .collect();
        for right in [
            "access",
            "rectification",
            "erasure",
            "restriction",
            "objection",
            "portability",
        ] {
            assert!(kinds.contains(&right), "{right}: {kinds:?}");
        }
        assert_eq!(gdpr["rights"][0]["respond_within"], "1 month");
        assert_eq!(gdpr["authority"], "Information Commissioner's Office (ICO)");
        assert_eq!(n["consent_withdrawable"], true);
        assert_eq!(n["complaint_authority"], "Information Commissioner's Office (ICO)");
        // CCPA: sale/sharing disclosure and sensitive categories.
        assert_eq!(n["sale_or_sharing"]["sells_or_shares"], true);
        assert_eq!(n["sale_or_sharing"]["purposes"], serde_json::json!(["analytics"]));
        assert_eq!(
            n["sale_or_sharing"]["categories"],
            serde_json::json!(["user.contact.email", "user.demographic.date_of_birth"])
        );
        assert_eq!(
            n["sensitive"]["categories"],
            serde_json::json!(["user.financial.credit_card"])
        );
        assert_eq!(
            n["sensitive"]["purposes"],
            serde_json::json!(["customer_support", "payment"])
        );
        // Art. 14(2)(f): the source, when the subject did not provide the data.
        assert_eq!(payment["source"], serde_json::Value::Null);
        // Art. 6(4), 13(3): data given for one purpose that another uses as compatible.
        assert_eq!(support["reuses"], serde_json::json!(["order_fulfillment", "payment"]));
        assert!(payment.get("reuses").is_none(), "{payment}");
        assert_eq!(n["language"], "en");
        assert!(n["version"].as_str().unwrap().starts_with("sha256-"));
        assert_eq!(n["version"].as_str().unwrap().len(), "sha256-".len() + 32);
    }

    #[test]
    fn the_version_changes_with_what_the_notice_says_and_only_then() {
        let (reg, locale) = example();
        let v1 = Notice::build(&reg, &locale).version;
        assert_eq!(Notice::build(&reg, &locale).version, v1, "deterministic");
        // A role is not in the notice: its change keeps the version.
        let mut roles_changed = reg.clone();
        roles_changed.roles.remove("auditor");
        assert_eq!(Notice::build(&roles_changed, &locale).version, v1);
        // A purpose's retention, a recipient's safeguard, the wording: each a new version.
        let mut r = reg.clone();
        r.purposes.get_mut("payment").unwrap().retention = None;
        assert_ne!(Notice::build(&r, &locale).version, v1);
        let mut r = reg.clone();
        r.recipients.get_mut("email_provider").unwrap().safeguard = None;
        assert_ne!(Notice::build(&r, &locale).version, v1);
        // a purpose given another's data (review: the version stayed, consents "current")
        let mut r = reg.clone();
        r.purposes
            .get_mut("analytics")
            .unwrap()
            .compatible_with
            .insert("order_fulfillment".to_owned());
        assert_ne!(Notice::build(&r, &locale).version, v1);
        let words = crate::locale::ENGLISH.replacen("Privacy notice", "Privacy statement", 1);
        let reworded = Locale::parse("en", std::path::Path::new("en.toml"), &words).unwrap();
        assert_ne!(Notice::build(&reg, &reworded).version, v1);
    }

    /// The date a version was first shown is said, not hashed: a dated notice keeps its
    /// version, and a notice without a date has no `last_updated` key (the JSON older
    /// versions were hashed over).
    #[test]
    fn the_last_updated_date_is_shown_but_not_part_of_the_version() {
        let (reg, locale) = example();
        let undated = Notice::build(&reg, &locale);
        let json = serde_json::to_value(&undated).unwrap();
        assert!(json.get("last_updated").is_none(), "{json}");
        let dated = undated.clone().updated_on(Date::parse("2026-03-01").unwrap());
        assert_eq!(serde_json::to_value(&dated).unwrap()["last_updated"], "2026-03-01");
        assert_eq!(version_of(&dated, &locale), undated.version);
    }

    /// A recipient no purpose names receives nothing: the notice, describing actual
    /// disclosures, leaves it out (it listed it with "No safeguard declared").
    #[test]
    fn the_notice_lists_only_recipients_some_purpose_discloses_to() {
        let text = format!(
            "{EXAMPLE_REGISTRY}\n[recipients.crm]\nname = \"CRM Inc.\"\ncountry = \"US\"\nrole = \"processor\"\n"
        );
        let reg = Registry::parse("r.toml", &text).unwrap();
        let locale = Locale::english().unwrap();
        let notice = Notice::build(&reg, &locale);
        let names: Vec<&str> = notice.recipients.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(!names.contains(&"CRM Inc."), "{names:?}");
        assert_eq!(
            notice.version,
            Notice::build(&Registry::parse("r.toml", EXAMPLE_REGISTRY).unwrap(), &locale).version,
            "the same notice as without it"
        );
    }

    #[test]
    fn retention_reads_as_plain_words() {
        let t = Locale::english().unwrap().strings;
        let rule = |period, from| RetentionRule {
            period: PeriodText(period),
            from,
        };
        assert_eq!(
            RetentionRule::describe(Some(&rule(Period::Years(2), "last_update")), &t),
            "2 years from its last update"
        );
        assert_eq!(
            RetentionRule::describe(Some(&rule(Period::Days(1), "consent_withdrawn")), &t),
            "While you consent, and 1 day after you withdraw"
        );
        assert_eq!(
            RetentionRule::describe(Some(&rule(Period::Months(13), "collection")), &t),
            "13 months from when we collected it"
        );
        assert_eq!(
            RetentionRule::describe(None, &t),
            "Until you withdraw, object or ask us to erase it"
        );
    }
}
