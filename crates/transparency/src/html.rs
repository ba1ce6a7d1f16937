//! The HTML pages (askama templates in `templates/`, escaped by default): the privacy
//! notice, the preference center, a consent receipt, and a message page for refusals. One
//! small stylesheet ([`STYLESHEET`]), no script, no third-party resource.

use askama::Template;
use serde::Serialize;

use crate::locale::{PortalStrings, ReceiptStrings, Strings, fill};
use crate::view::NoticeText;

/// The stylesheet every page links (`/assets/custodia.css`).
pub const STYLESHEET: &str = include_str!("../assets/custodia.css");

/// A page that could not be rendered (a template bug, never input): the adapter answers 500.
pub type RenderError = askama::Error;

#[derive(Template)]
#[template(path = "notice.html")]
struct NoticePage<'a> {
    lang: &'a str,
    title: &'a str,
    text: &'a NoticeText,
}

/// The privacy notice page.
pub fn notice_page(text: &NoticeText) -> Result<String, RenderError> {
    NoticePage {
        lang: &text.language,
        title: &text.title,
        text,
    }
    .render()
}

/// A category of data held about the subject, and the purposes holding it (their
/// descriptions).
#[derive(Debug, Clone)]
pub struct HeldCategory {
    pub label: String,
    pub purposes: Vec<String>,
}

/// One consent-based purpose and whether consent is live.
#[derive(Debug, Clone)]
pub struct ConsentToggle {
    pub purpose: String,
    pub description: String,
    pub granted: bool,
    /// Given under earlier terms of the purpose: shown off, with a word why.
    pub outdated: bool,
}

/// The opt-out of sale and sharing, and whether the browser's GPC signal holds it on.
#[derive(Debug, Clone, Copy)]
pub struct SaleToggle {
    pub opted_out: bool,
    pub gpc: bool,
}

/// A request the subject may make from the page.
#[derive(Debug, Clone)]
pub struct RequestButton {
    /// A request type the page offers (`custodia_core::PORTAL_REQUESTS`).
    pub kind: &'static str,
    pub label: String,
}

/// What the preference center shows one subject.
#[derive(Debug, Clone)]
pub struct PortalView {
    /// The page's own path, e.g. `/portal/<link>`: forms post below it.
    pub base: String,
    pub csrf: String,
    pub notice_version: String,
    /// The link's expiry, as shown.
    pub expires_at: String,
    pub held: Vec<HeldCategory>,
    pub consents: Vec<ConsentToggle>,
    /// `None` when nothing is sold or shared.
    pub sale: Option<SaleToggle>,
    pub status: Option<String>,
    /// Whether the subject's ledger has something to give a receipt for.
    pub receipt: bool,
    pub requests: Vec<RequestButton>,
    /// A restriction of processing is in force.
    pub restricted: bool,
    /// The purposes objected to, by their descriptions.
    pub objected: Vec<String>,
}

#[derive(Template)]
#[template(path = "portal.html")]
struct PortalPage<'a> {
    lang: &'a str,
    title: &'a str,
    t: &'a PortalStrings,
    intro: String,
    expires: String,
    base: &'a str,
    csrf: &'a str,
    notice_version: &'a str,
    held: &'a [HeldCategory],
    consents: &'a [ConsentToggle],
    sale: Option<SaleToggle>,
    status: Option<&'a str>,
    receipt: bool,
    requests: &'a [RequestButton],
    restricted: bool,
    objected: &'a [String],
}

/// The preference center page of `view`, for `controller`, in `language`.
pub fn portal_page(view: &PortalView, controller: &str, language: &str, t: &Strings) -> Result<String, RenderError> {
    let p = &t.portal;
    PortalPage {
        lang: language,
        title: &p.title,
        t: p,
        intro: fill(&p.intro, &[("controller", controller)]),
        expires: fill(&p.expires, &[("expires", &view.expires_at)]),
        base: &view.base,
        csrf: &view.csrf,
        notice_version: &view.notice_version,
        held: &view.held,
        consents: &view.consents,
        sale: view.sale,
        status: view.status.as_deref(),
        receipt: view.receipt,
        requests: &view.requests,
        restricted: view.restricted,
        objected: &view.objected,
    }
    .render()
}

/// A consent receipt: what the subject agreed to, when and how, as the ledger holds it.
/// The JSON download is this value.
#[derive(Debug, Clone, Serialize)]
pub struct Receipt {
    /// `rcpt-` and a digest of the subject and the ledger position it describes: the same
    /// choices give the same id.
    pub receipt_id: String,
    pub controller: String,
    pub controller_contact: String,
    pub subject_id: String,
    pub issued_at: String,
    /// The notice version current when the receipt was issued.
    pub notice_version: String,
    pub consents: Vec<ReceiptConsent>,
    pub sale_opt_out: Option<ReceiptSale>,
}

impl Receipt {
    /// The id of the receipt of `subject`'s ledger up to entry `last_seq`: the same choices
    /// give the same id, and the ledger's vault-wide numbering does not show through.
    #[must_use]
    pub fn id_for(subject: &str, last_seq: i64) -> String {
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            format!("custodia receipt\n{subject}\n{last_seq}").as_bytes(),
        );
        format!("rcpt-{}", hex::encode(&digest.as_ref()[..12]))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ReceiptConsent {
    pub purpose: String,
    pub description: String,
    /// `None`: never given nor withdrawn.
    pub granted: Option<bool>,
    pub at: Option<String>,
    pub method: Option<String>,
    /// The notice version the subject was shown when they decided.
    pub notice_version: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReceiptSale {
    pub opted_out: bool,
    pub at: Option<String>,
    pub method: Option<String>,
}

#[derive(Template)]
#[template(path = "receipt.html")]
struct ReceiptPage<'a> {
    lang: &'a str,
    title: &'a str,
    t: &'a ReceiptStrings,
    intro: String,
    issued: String,
    receipt: &'a Receipt,
}

/// The readable receipt.
pub fn receipt_page(receipt: &Receipt, language: &str, t: &Strings) -> Result<String, RenderError> {
    let r = &t.receipt;
    ReceiptPage {
        lang: language,
        title: &r.title,
        t: r,
        intro: fill(&r.intro, &[("controller", &receipt.controller)]),
        issued: fill(&r.issued, &[("at", &receipt.issued_at)]),
        receipt,
    }
    .render()
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    lang: &'a str,
    title: &'a str,
    id: &'a str,
    message: &'a str,
}

/// A page saying why something cannot be shown; `id` names the message for tests and tools.
pub fn message_page(language: &str, title: &str, id: &str, message: &str) -> Result<String, RenderError> {
    MessagePage {
        lang: language,
        title,
        id,
        message,
    }
    .render()
}
