//! The subject's access and portability package as an HTTP response: JSON (Art. 20: machine
//! readable, exactly the shape of [`SubjectPackage`](custodia_types::SubjectPackage)) or a
//! readable HTML page, written part by part as the vault reads it
//! ([`custodia_core::PackageReader`]), so a subject with 10,000 records is never held in
//! memory whole.
//!
//! [`package_response`] neither authorizes nor audits: the requests API's fulfil handler
//! does both before calling it.

use std::fmt::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use custodia_core::{PackagePart, PackageReader, SubjectId, Timestamp, Vault, VaultError};
use custodia_types::{
    PackageAccess, PackageConsent, PackageController, PackagePurpose, PackageRecord, PackageRights, PackageTokens,
};
use serde::Deserialize;

use crate::ApiError;
use crate::unsent::Reservation;

/// How a package is rendered (the `format` parameter).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PackageFormat {
    /// `application/json`: the package as data, for portability (GDPR Art. 20).
    #[default]
    Json,
    /// `text/html; charset=utf-8`: a page for the subject to read.
    Html,
}

impl PackageFormat {
    /// `json` or `html`; anything else is a 400 naming the parameter.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        match text {
            "json" => Ok(Self::Json),
            "html" => Ok(Self::Html),
            _ => Err(ApiError {
                field: Some("format".into()),
                ..ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_format",
                    "format must be `json` or `html`",
                )
            }),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Html => "text/html; charset=utf-8",
        }
    }
}

/// Parts in flight between the reader and the response body.
const PARTS_IN_FLIGHT: usize = 4;

/// The package of `subject` as of `now`, in `format`, as a streamed `200` response.
///
/// Does NOT authorize and does NOT audit: the caller checks `fulfil_requests` and the
/// requester's verified identity and writes the audit entry first. An error before the first
/// bytes is answered as an error; one later (the store failing halfway) aborts the response,
/// so a client never takes a cut-off package for a whole one.
///
/// Each piece of the answer holds its place in the budget of answers unsent (`read`, of the
/// principal fulfilling, which took a list page's worth before the request was fulfilled, so
/// that a full budget refuses it before anything is done) until it is written, waiting for
/// room (packages nobody read held 40 MB each, 2.5 GB for sixty).
pub(crate) async fn package_response(
    vault: &Vault,
    subject: &SubjectId,
    format: PackageFormat,
    now: Timestamp,
    read: Reservation,
) -> Result<Response, ApiError> {
    respond(vault.subject_package(subject, now).await?, format, read).await
}

/// The response writing `reader`'s parts in `format`.
async fn respond(mut reader: PackageReader, format: PackageFormat, read: Reservation) -> Result<Response, ApiError> {
    let mut render = Renderer::new(format);
    // The head and the first page are read before answering: a store that fails at once is
    // answered with an error status, not a broken body.
    let mut first = String::new();
    for _ in 0..2 {
        if let Some(part) = reader.next_part().await? {
            render.part(&part, &mut first)?;
        }
    }
    // what was taken to admit the read becomes the first piece's place (never waited for:
    // the request is fulfilled)
    let first = read.first_piece(first.into_bytes());
    let (tx, rx) = tokio::sync::mpsc::channel(PARTS_IN_FLIGHT);
    tokio::spawn(write_parts(reader, render, tx, read));
    let body = PartsBody {
        first: Some(first),
        rest: rx,
    };
    let mut response = Response::new(Body::new(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    // Personal data: no cache keeps a copy.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if format == PackageFormat::Html {
        // Besides escaping every value: the page may run no script and load nothing.
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
        );
    }
    Ok(response)
}

/// Reads the remaining parts and sends each rendered; stops when the body is dropped (the
/// client went away) and sends the error that stops it otherwise.
async fn write_parts(
    mut reader: PackageReader,
    mut render: Renderer,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, VaultError>>,
    read: Reservation,
) {
    loop {
        let mut text = String::new();
        let next = match reader.next_part().await {
            Ok(Some(part)) => render.part(&part, &mut text).map(|()| Some(text)),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        let sent = match next {
            Ok(Some(text)) => {
                // (waits while the budget is full; the client going away ends the wait)
                let piece = tokio::select! {
                    piece = read.piece(text.into_bytes()) => piece,
                    () = tx.closed() => return,
                };
                tx.send(Ok(piece)).await
            }
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "a package failed while being written; the response is aborted");
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// The response body: the first rendered parts, then the rest as they are sent.
struct PartsBody {
    first: Option<Bytes>,
    rest: tokio::sync::mpsc::Receiver<Result<Bytes, VaultError>>,
}

impl hyper::body::Body for PartsBody {
    type Data = Bytes;
    type Error = VaultError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, VaultError>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(hyper::body::Frame::data(first))));
        }
        self.rest
            .poll_recv(cx)
            .map(|next| next.map(|chunk| chunk.map(hyper::body::Frame::data)))
    }
}

/// Writes parts in one format, remembering what the next part needs to know.
struct Renderer {
    format: PackageFormat,
    /// Items written so far in the current list (records, or access entries).
    written: usize,
    records: usize,
}

impl Renderer {
    fn new(format: PackageFormat) -> Self {
        Self {
            format,
            written: 0,
            records: 0,
        }
    }

    fn part(&mut self, part: &PackagePart, out: &mut String) -> Result<(), VaultError> {
        match self.format {
            PackageFormat::Json => self.json(part, out),
            PackageFormat::Html => {
                self.html(part, out);
                Ok(())
            }
        }
    }

    /// JSON, in the field order of `SubjectPackage`: the lists of records and of access
    /// entries are opened by the part before them and closed by the part after.
    fn json(&mut self, part: &PackagePart, out: &mut String) -> Result<(), VaultError> {
        match part {
            PackagePart::Head {
                subject_id,
                generated_at,
                controller,
            } => {
                out.push_str("{\"subject_id\":");
                out.push_str(&json(subject_id)?);
                out.push_str(",\"generated_at\":");
                out.push_str(&json(generated_at)?);
                out.push_str(",\"controller\":");
                out.push_str(&json(controller)?);
                out.push_str(",\"records\":[");
                self.written = 0;
            }
            PackagePart::Records(page) => self.json_items(page, out)?,
            PackagePart::Tokens(tokens) => {
                out.push_str("],\"tokens\":");
                out.push_str(&json(tokens)?);
            }
            PackagePart::Purposes(purposes) => {
                out.push_str(",\"purposes\":");
                out.push_str(&json(purposes)?);
            }
            PackagePart::ConsentHistory(history) => {
                out.push_str(",\"consent_history\":");
                out.push_str(&json(history)?);
                out.push_str(",\"access_history\":[");
                self.written = 0;
            }
            PackagePart::Access(page) => self.json_items(page, out)?,
            PackagePart::Rights(rights) => {
                out.push_str("],\"rights\":");
                out.push_str(&json(rights)?);
                out.push('}');
            }
        }
        Ok(())
    }

    fn json_items<T: serde::Serialize>(&mut self, items: &[T], out: &mut String) -> Result<(), VaultError> {
        for item in items {
            if self.written > 0 {
                out.push(',');
            }
            out.push_str(&json(item)?);
            self.written += 1;
        }
        Ok(())
    }

    fn html(&mut self, part: &PackagePart, out: &mut String) {
        match part {
            PackagePart::Head {
                subject_id,
                generated_at,
                controller,
            } => html_head(subject_id, generated_at, controller, out),
            PackagePart::Records(page) => {
                for record in page {
                    html_record(record, out);
                }
                self.records += page.len();
            }
            PackagePart::Tokens(tokens) => {
                if self.records == 0 {
                    out.push_str("<p>We hold no records about you.</p>\n");
                }
                html_tokens(tokens, out);
                out.push_str("</section>\n");
            }
            PackagePart::Purposes(purposes) => html_purposes(purposes, out),
            PackagePart::ConsentHistory(history) => {
                html_consents(history, out);
                out.push_str(
                    "<section aria-labelledby=\"access\">\n<h2 id=\"access\">Who used your data</h2>\n\
                     <p>Every time someone at our organization or one of our systems read, changed or tried to use \
                     your data, our audit log recorded it. Here is every entry about you.</p>\n",
                );
                self.written = 0;
            }
            PackagePart::Access(page) => {
                if self.written == 0 && !page.is_empty() {
                    out.push_str(
                        "<table>\n<thead><tr><th scope=\"col\">When</th><th scope=\"col\">Who</th>\
                         <th scope=\"col\">What</th><th scope=\"col\">Why (purpose)</th>\
                         <th scope=\"col\">Outcome</th><th scope=\"col\">Fields</th></tr></thead>\n<tbody>\n",
                    );
                }
                for entry in page {
                    html_access(entry, out);
                }
                self.written += page.len();
            }
            PackagePart::Rights(rights) => {
                if self.written == 0 {
                    out.push_str("<p>No one has used your data.</p>\n");
                } else {
                    out.push_str("</tbody>\n</table>\n");
                }
                out.push_str("</section>\n");
                html_rights(rights, out);
                out.push_str("</main>\n</body>\n</html>\n");
            }
        }
    }
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, VaultError> {
    serde_json::to_string(value).map_err(|e| VaultError::internal(&e))
}

/// `text` with the five characters that mean something in HTML replaced by their entities:
/// safe between tags and in quoted attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#111;background:#fff}\
h1{font-size:1.6rem}h2{font-size:1.3rem;margin-top:2rem;border-bottom:1px solid #ccc}h3{font-size:1.1rem}\
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}th,td{border:1px solid #bbb;padding:.3rem .5rem;text-align:left;vertical-align:top}\
th{background:#f0f0f0}td{overflow-wrap:anywhere}dt{font-weight:bold}dd{margin:0 0 .5rem 1rem}";

fn html_head(subject_id: &str, generated_at: &str, c: &PackageController, out: &mut String) {
    let org = esc(&c.name);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Your personal data held by {org}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <h1>Your personal data held by {org}</h1>\n\
         <p>This is a copy of all the personal data {org} holds about you (customer reference <strong>{}</strong>), \
         why we hold it, who we share it with, the choices you made, and who used it. It was prepared on {}.</p>\n\
         <section aria-labelledby=\"controller\">\n<h2 id=\"controller\">Who we are</h2>\n<dl>\n\
         <dt>Organization</dt><dd>{org} ({})</dd>\n<dt>Contact for privacy questions</dt><dd>{}</dd>\n",
        esc(subject_id),
        esc(generated_at),
        esc(&c.country),
        esc(&c.contact),
    );
    if let Some(dpo) = &c.dpo {
        let _ = writeln!(out, "<dt>Data protection officer</dt><dd>{}</dd>", esc(dpo));
    }
    let _ = write!(
        out,
        "<dt>Supervisory authority</dt><dd>{}</dd>\n</dl>\n</section>\n\
         <section aria-labelledby=\"records\">\n<h2 id=\"records\">Your data</h2>\n\
         <p>Each record we hold about you, with every value in it and why we collected it.</p>\n",
        esc(&c.supervisory_authority),
    );
}

fn html_record(r: &PackageRecord, out: &mut String) {
    let _ = write!(
        out,
        "<h3>{} record <code>{}</code></h3>\n<p>Created {}, last changed {}.</p>\n",
        esc(&capitalized(&r.collection)),
        esc(&r.record_id),
        esc(&r.created_at),
        esc(&r.updated_at),
    );
    if r.fields.is_empty() {
        out.push_str("<p>This record holds no values.</p>\n");
        return;
    }
    out.push_str(
        "<table>\n<thead><tr><th scope=\"col\">Field</th><th scope=\"col\">Value</th>\
         <th scope=\"col\">Kind of data</th><th scope=\"col\">Held for (purposes)</th></tr></thead>\n<tbody>\n",
    );
    for f in &r.fields {
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&f.name),
            esc(&f.value),
            esc(f.category.as_deref().unwrap_or("")),
            esc(&f.purposes.join(", ")),
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

/// The values held as tokens: named, with their count and dates (not shown: each is sealed to
/// its token, which the vault does not keep).
fn html_tokens(tokens: &[PackageTokens], out: &mut String) {
    if tokens.is_empty() {
        return;
    }
    out.push_str(
        "<h3>Values held as tokens</h3>\n<p>Some of your data is held as tokens: a system of ours keeps a \
         stand-in, and we keep the value locked to it, so we cannot show it here. Ask us and we will \
         tell you the values.</p>\n<table>\n<thead><tr><th scope=\"col\">Field</th><th scope=\"col\">Kind of data</th>\
         <th scope=\"col\">Held for (purpose)</th><th scope=\"col\">How many</th><th scope=\"col\">Since</th>\
         <th scope=\"col\">Last</th></tr></thead>\n<tbody>\n",
    );
    for t in tokens {
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\">{}.{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.collection),
            esc(&t.field),
            esc(t.category.as_deref().unwrap_or("")),
            esc(t.purpose.as_deref().unwrap_or("")),
            t.count,
            esc(&t.first_at),
            esc(&t.last_at),
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn html_purposes(purposes: &[PackagePurpose], out: &mut String) {
    out.push_str("<section aria-labelledby=\"purposes\">\n<h2 id=\"purposes\">Why we use your data</h2>\n");
    if purposes.is_empty() {
        out.push_str("<p>We use no data about you for any purpose.</p>\n");
    }
    for p in purposes {
        let _ = write!(
            out,
            "<h3>{}</h3>\n<dl>\n<dt>What for</dt><dd>{}</dd>\n<dt>Legal basis</dt><dd>{}</dd>\n\
             <dt>How long we keep it</dt><dd>{}</dd>\n<dt>Where it comes from</dt><dd>{}</dd>\n<dt>Who we share it with</dt><dd>",
            esc(&p.name),
            esc(&p.description),
            esc(&legal_basis(&p.legal_basis, p.legitimate_interest.as_deref())),
            esc(&retention(&p.retention.period, &p.retention.from)),
            esc(&capitalized(&p.source)),
        );
        if p.recipients.is_empty() {
            out.push_str("No one outside our organization.");
        } else {
            out.push_str("<ul>\n");
            for r in &p.recipients {
                let _ = write!(
                    out,
                    "<li>{} ({}, {})",
                    esc(&r.name),
                    esc(&r.role.replace('_', " ")),
                    esc(&r.country)
                );
                if let Some(s) = &r.safeguard {
                    let _ = write!(out, "; transfer safeguard: {}", esc(s));
                }
                out.push_str("</li>\n");
            }
            out.push_str("</ul>");
        }
        out.push_str("</dd>\n</dl>\n");
    }
    out.push_str("</section>\n");
}

fn html_consents(history: &[PackageConsent], out: &mut String) {
    out.push_str(
        "<section aria-labelledby=\"choices\">\n<h2 id=\"choices\">Your choices</h2>\n\
         <p>The consents you gave or withdrew, and your objections, opt-outs and restrictions, oldest first.</p>\n",
    );
    if history.is_empty() {
        out.push_str("<p>You have recorded no choices with us.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table>\n<thead><tr><th scope=\"col\">When</th><th scope=\"col\">Choice</th>\
         <th scope=\"col\">Purpose</th><th scope=\"col\">How</th><th scope=\"col\">Privacy notice version</th>\
         <th scope=\"col\">Recorded with it</th></tr></thead>\n<tbody>\n",
    );
    for c in history {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.at),
            esc(&choice(&c.kind, c.value)),
            esc(c.purpose.as_deref().unwrap_or("all purposes")),
            esc(&c.method.replace('_', " ")),
            esc(c.notice_version.as_deref().unwrap_or("")),
            esc(&recorded_with(c.evidence.as_ref())),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// A choice's evidence in words: the user agent it came from, and that the IP address was
/// kept as a keyed hash (shown too: the address itself never was).
fn recorded_with(evidence: Option<&serde_json::Value>) -> String {
    let Some(e) = evidence else {
        return String::new();
    };
    let mut parts = Vec::new();
    if let Some(ua) = e["user_agent"].as_str() {
        parts.push(format!("browser or app: {ua}"));
    }
    if let Some(hash) = e["ip_hash"].as_str() {
        parts.push(format!("your IP address as a keyed hash: {hash}"));
    }
    parts.join("; ")
}

fn html_access(a: &PackageAccess, out: &mut String) {
    let outcome = match (a.decision.as_str(), &a.reason) {
        ("allow", _) => "allowed".to_owned(),
        ("deny", Some(reason)) => format!("refused ({})", reason.replace('_', " ")),
        ("deny", None) => "refused".to_owned(),
        (other, _) => other.to_owned(),
    };
    let _ = writeln!(
        out,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(&a.at),
        esc(&a.principal),
        esc(&action(&a.action, a.collection.as_deref())),
        esc(a.purpose.as_deref().unwrap_or("")),
        esc(&outcome),
        esc(&a.fields.join(", ")),
    );
}

fn html_rights(r: &PackageRights, out: &mut String) {
    out.push_str("<section aria-labelledby=\"rights\">\n<h2 id=\"rights\">Your rights</h2>\n<ul>\n");
    for right in &r.rights {
        let _ = writeln!(
            out,
            "<li><strong>{}</strong> ({}): {}</li>",
            esc(&capitalized(&right.name.replace('_', " "))),
            esc(&right.law),
            esc(&right.explanation),
        );
    }
    let _ = write!(
        out,
        "</ul>\n<p>If you think we have not handled your data lawfully, you can complain to: <strong>{}</strong>.</p>\n</section>\n",
        esc(&r.complain_to),
    );
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn legal_basis(name: &str, interest: Option<&str>) -> String {
    let text = match name {
        "consent" => "Your consent (GDPR Art. 6(1)(a))",
        "contract" => "Needed for a contract with you (GDPR Art. 6(1)(b))",
        "legal_obligation" => "Required by law (GDPR Art. 6(1)(c))",
        "vital_interests" => "To protect someone's life (GDPR Art. 6(1)(d))",
        "public_task" => "A task in the public interest (GDPR Art. 6(1)(e))",
        "legitimate_interests" => "Our legitimate interests (GDPR Art. 6(1)(f))",
        other => other,
    };
    match interest {
        Some(interest) => format!("{text}: {interest}"),
        None => text.to_owned(),
    }
}

fn retention(period: &str, from: &str) -> String {
    if period.is_empty() {
        return "No retention period declared: until you withdraw consent, object, opt out or ask us to erase it"
            .to_owned();
    }
    let (n, unit) = period.split_at(period.len().saturating_sub(1));
    let unit = match (unit, n == "1") {
        ("d", true) => "day",
        ("d", false) => "days",
        ("m", true) => "month",
        ("m", false) => "months",
        ("y", true) => "year",
        ("y", false) => "years",
        _ => return period.to_owned(),
    };
    let from = match from {
        "collection" => "from when it was collected",
        "last_update" => "from its last change",
        "last_activity" => "from your last activity with us",
        "consent_withdrawn" => return format!("While you consent, and {n} {unit} after you withdraw your consent"),
        other => other,
    };
    format!("{n} {unit} {from}")
}

fn choice(kind: &str, value: bool) -> String {
    match (kind, value) {
        ("consent", true) => "Consent given",
        ("consent", false) => "Consent withdrawn",
        ("objection", true) => "Objected",
        ("objection", false) => "Objection lifted",
        ("sale_opt_out", true) => "Opted out of sale and sharing",
        ("sale_opt_out", false) => "Opted back in to sale and sharing",
        ("restriction", true) => "Processing restricted",
        ("restriction", false) => "Restriction lifted",
        (other, _) => other,
    }
    .to_owned()
}

fn action(action: &str, collection: Option<&str>) -> String {
    let what = match action {
        "record.create" => "created a record",
        "record.read" => "read a record",
        "record.list" => "read your records",
        "record.update" => "changed a record",
        "record.delete" => "deleted a record",
        "record.search" => "searched and found you",
        other => other,
    };
    match collection {
        Some(c) => format!("{what} ({c})"),
        None => what.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use axum::http::HeaderMap;
    use custodia_core::{Call, DataDir};
    use custodia_types::SubjectPackage;

    use super::*;

    const HOSTILE: &str = "<script>alert('x')</script> & \"quoted\"";

    /// A vault with two subjects: `s1` (a record whose name is hostile HTML, a consent, a
    /// read) and `s2` (a record).
    async fn vault() -> (tempfile::TempDir, Vault) {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let init = data.init(None, Timestamp(1)).await.unwrap();
        let vault = data.open(None).await.unwrap();
        let admin = vault.authenticate(&init.admin_token, Timestamp(2)).await.unwrap();
        let record = |subject: &str, purpose: &'static str, pairs: &[(&str, &str)]| {
            let subject = SubjectId::parse(subject).unwrap();
            let fields: BTreeMap<String, String> =
                pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            let (vault, admin) = (&vault, &admin);
            async move {
                vault
                    .create_record(
                        &Call::new(admin, purpose, Timestamp(10)),
                        &subject,
                        "customers",
                        &fields,
                    )
                    .await
                    .unwrap()
            }
        };
        let id = record(
            "s1",
            "order_fulfillment",
            &[("email", "a@example.com"), ("name", HOSTILE)],
        )
        .await;
        record("s1", "payment", &[("name", "A"), ("card_number", "4242424242424242")]).await;
        record("s1", "customer_support", &[("phone", "+447700900123")]).await;
        record(
            "s2",
            "order_fulfillment",
            &[("email", "b@example.net"), ("name", "Bob")],
        )
        .await;
        let consent = custodia_types::ConsentRequest {
            purpose: "marketing_email".into(),
            granted: true,
            notice_version: Some("v1".into()),
            method: "web_form".into(),
            evidence: None,
        };
        let s1 = SubjectId::parse("s1").unwrap();
        vault
            .record_consent(&admin, Timestamp(20), &s1, &consent)
            .await
            .unwrap();
        vault
            .get_record(
                &Call::new(&admin, "customer_support", Timestamp(30)),
                &s1,
                "customers",
                &id,
                None,
            )
            .await
            .unwrap();
        (dir, vault)
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// The response to `subject`'s package read `pages` records or entries at a time: its
    /// headers and its body.
    async fn streamed(vault: &Vault, subject: &str, format: PackageFormat, pages: i64) -> (HeaderMap, String) {
        let subject = SubjectId::parse(subject).unwrap();
        let reader = vault.subject_package(&subject, Timestamp(100)).await.unwrap();
        let response = respond(
            reader.with_page_sizes(pages, pages),
            format,
            crate::unsent::Unsent::new(1 << 20).reserve("t"),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers().clone();
        (headers, body(response).await)
    }

    /// The streamed JSON is, byte for byte, the serde encoding of the whole package: the
    /// portability format is exactly the `SubjectPackage` type, however it is paged.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streamed_json_is_the_package_type_byte_for_byte() {
        let (_dir, vault) = vault().await;
        let s1 = SubjectId::parse("s1").unwrap();
        let whole = vault
            .subject_package(&s1, Timestamp(100))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(whole.records.len(), 3);
        assert!(whole.access_history.len() >= 4);
        let expected = serde_json::to_string(&whole).unwrap();
        for pages in [1, 2, 1000] {
            let (headers, text) = streamed(&vault, "s1", PackageFormat::Json, pages).await;
            assert_eq!(text, expected, "pages of {pages}");
            assert_eq!(headers[header::CONTENT_TYPE], "application/json");
            assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        }
        let parsed: SubjectPackage = serde_json::from_str(&expected).unwrap();
        assert_eq!(parsed, whole);
        let value: serde_json::Value = serde_json::from_str(&expected).unwrap();
        let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "access_history",
                "consent_history",
                "controller",
                "generated_at",
                "purposes",
                "records",
                "rights",
                "subject_id",
                "tokens"
            ]
        );
        let values: Vec<&serde_json::Value> = value["records"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["fields"].as_array().unwrap())
            .map(|f| &f["value"])
            .collect();
        assert!(values.contains(&&serde_json::Value::from(HOSTILE)), "{values:?}");

        // A subject with nothing: empty lists, still the same shape.
        let empty = SubjectId::parse("nobody").unwrap();
        let whole = vault
            .subject_package(&empty, Timestamp(100))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let (_, text) = streamed(&vault, "nobody", PackageFormat::Json, 1).await;
        assert_eq!(text, serde_json::to_string(&whole).unwrap());
    }

    /// Every value is escaped: a hostile value comes out as inert text, and the page holds no
    /// script at all.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn html_escapes_every_value_and_runs_no_script() {
        let (_dir, vault) = vault().await;
        let (headers, html) = streamed(&vault, "s1", PackageFormat::Html, 1).await;
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert!(
            headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .starts_with("default-src 'none'")
        );
        assert!(!html.to_lowercase().contains("<script"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"),
            "{html}"
        );
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(html.ends_with("</html>\n"));
        for heading in [
            "<h1>Your personal data held by Example Shop Ltd</h1>",
            "<h2 id=\"controller\">Who we are</h2>",
            "<h2 id=\"records\">Your data</h2>",
            "<h2 id=\"purposes\">Why we use your data</h2>",
            "<h2 id=\"choices\">Your choices</h2>",
            "<h2 id=\"access\">Who used your data</h2>",
            "<h2 id=\"rights\">Your rights</h2>",
        ] {
            assert!(html.contains(heading), "no {heading}");
        }
        for text in [
            "a@example.com",
            "+447700900123",
            "Needed for a contract with you (GDPR Art. 6(1)(b))",
            "2 years from its last change",
            "Parcel Carrier Ltd (processor, GB)",
            "Consent given",
            "bootstrap-admin",
            "read a record (customers)",
            "Information Commissioner&#39;s Office (ICO)",
            "Provided by you",
        ] {
            assert!(html.contains(text), "no {text} in {html}");
        }
        assert!(!html.contains("b@example.net"), "another subject's data");
        // Tags balance: every opened table and section is closed.
        for tag in ["table", "section", "tbody", "dl", "ul"] {
            assert_eq!(
                html.matches(&format!("<{tag}")).count(),
                html.matches(&format!("</{tag}>")).count(),
                "<{tag}> unbalanced"
            );
        }

        let (_, empty) = streamed(&vault, "nobody", PackageFormat::Html, 1).await;
        assert!(empty.contains("We hold no records about you."));
        assert!(empty.contains("No one has used your data."));
        assert!(empty.contains("You have recorded no choices with us."));
        assert!(empty.ends_with("</html>\n"));
    }

    #[test]
    fn format_is_json_or_html() {
        assert_eq!(PackageFormat::parse("json").unwrap(), PackageFormat::Json);
        assert_eq!(PackageFormat::parse("html").unwrap(), PackageFormat::Html);
        let e = PackageFormat::parse("pdf").unwrap_err();
        assert_eq!(
            (e.status, e.code, e.field.as_deref()),
            (StatusCode::BAD_REQUEST, "invalid_format", Some("format"))
        );
    }

    #[test]
    fn retention_in_words() {
        assert_eq!(retention("2y", "last_update"), "2 years from its last change");
        assert_eq!(retention("1m", "collection"), "1 month from when it was collected");
        assert_eq!(
            retention("1y", "last_activity"),
            "1 year from your last activity with us"
        );
        assert_eq!(
            retention("30d", "consent_withdrawn"),
            "While you consent, and 30 days after you withdraw your consent"
        );
        assert!(retention("", "").starts_with("No retention period declared"));
    }
}
