//! The pages people see (`custodia_transparency` renders them): the privacy notice
//! (`/privacy-notice`, `.md`, and `/v1/notice` as JSON), the record of processing
//! (`/v1/ropa`, `read_audit`), and the preference center a customer reaches through a link
//! the business's backend asks for (`POST /v1/subjects/{id}/portal-links`).
//!
//! The preference center works without JavaScript: plain forms, posted to the link's own
//! path, each with the link's CSRF token; a post from another site (`Sec-Fetch-Site`,
//! `Origin`) is refused before the token is looked at. Every page is sent with a strict
//! Content-Security-Policy (own stylesheet only, no script), `no-referrer` (the link is a
//! credential) and, for the customer's pages, `no-store`.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use custodia_core::{PortalChanges, PortalSession, PortalState, SubjectId, Timestamp, Vault, VaultError};
use custodia_registry::Registry;
use custodia_transparency::html::{
    self, ConsentToggle, HeldCategory, PortalView, Receipt, ReceiptConsent, ReceiptSale, RequestButton, SaleToggle,
};
use custodia_transparency::{Locale, Notice, NoticeText, Ropa, fill};
use custodia_types::{ErrorBody, NoticeVersion, NoticeVersions, PortalLinkRequest, PortalLinkResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, Gpc};
use crate::{ApiError, AppState};

type AppResult<T> = Result<T, ApiError>;

/// The longest form body the preference center reads.
const MAX_FORM: usize = 16 * 1024;

/// What the pages need that does not change while the server runs: the words, the notice
/// (rendered once), and the address links are made with.
pub struct Web {
    locale: Locale,
    /// The controller's time zone: the notice's "last updated" day is the controller's.
    zone: custodia_registry::Zone,
    /// Dated once the server knows when its version was first shown ([`Web::first_shown`]).
    notice: Notice,
    notice_html: String,
    notice_markdown: String,
    /// `https://privacy.example.com`: the base of preference center links. Without it, links
    /// are made from the `Host` the (authenticated) caller used.
    public_url: Option<String>,
    /// The origin (`scheme://host[:port]`) of `public_url`: forms posted from it are ours.
    public_origin: Option<String>,
    /// The server speaks HTTPS: links made from the caller's host use it.
    https: bool,
}

impl Web {
    /// The pages of `registry` in the words of `locale`.
    pub fn new(registry: &Registry, locale: Locale, public_url: Option<String>) -> Result<Self, String> {
        let notice = Notice::build(registry, &locale);
        let (notice_html, notice_markdown) = render_notice(&notice, &locale)?;
        Ok(Self {
            locale,
            zone: registry.organization.zone(),
            notice,
            notice_html,
            notice_markdown,
            public_origin: public_url.as_deref().and_then(origin_of),
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
            https: false,
        })
    }

    /// The same, for a server that speaks HTTPS.
    #[must_use]
    pub fn over_https(mut self, https: bool) -> Self {
        self.https = https;
        self
    }

    /// The pages in English, the built-in words (tests, and a registry in English).
    pub fn english(registry: &Registry) -> Result<Self, String> {
        let locale = Locale::english().map_err(|e| e.to_string())?;
        Self::new(registry, locale, None)
    }

    /// The notice and its pages (HTML, Markdown) dated the day of `shown_at` (Unix
    /// milliseconds) in the controller's time zone.
    fn dated(&self, shown_at: i64) -> Result<(Notice, String, String), String> {
        let notice = self.notice.clone().updated_on(self.zone.date_of(shown_at));
        let (html, markdown) = render_notice(&notice, &self.locale)?;
        Ok((notice, html, markdown))
    }

    /// The notice in force as it is kept for good (`custodia_core::Vault::publish_notice`),
    /// dated `now`: if its version is new, it is first shown now.
    pub fn notice_row(&self, now: Timestamp) -> Result<custodia_core::NoticeRow, String> {
        let (notice, html, _) = self.dated(now.0)?;
        Ok(custodia_core::NoticeRow {
            version: notice.version.clone(),
            language: self.locale.language.clone(),
            published_at: now.0,
            notice: serde_json::to_string(&notice).map_err(|e| e.to_string())?,
            html,
        })
    }

    /// Serves the notice saying it was last updated the day its version was first shown
    /// (`published_at` of the vault's record of versions, CCPA regulations §7011(e)(4)), as
    /// the copy kept of that version says.
    pub fn first_shown(&mut self, published_at: i64) -> Result<(), String> {
        let (notice, html, markdown) = self.dated(published_at)?;
        self.notice = notice;
        self.notice_html = html;
        self.notice_markdown = markdown;
        Ok(())
    }

    /// The notice's version: what consents given on the page refer to.
    #[must_use]
    pub fn notice_version(&self) -> &str {
        &self.notice.version
    }
}

/// The notice's page and its Markdown.
fn render_notice(notice: &Notice, locale: &Locale) -> Result<(String, String), String> {
    let text = NoticeText::new(notice, &locale.strings);
    let page = html::notice_page(&text).map_err(|e| format!("rendering the privacy notice: {e}"))?;
    Ok((page, text.to_markdown(&locale.strings.notice.markdown_note)))
}

/// The origin of an absolute URL: its scheme and authority, lowercased, without a path.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}").to_ascii_lowercase())
}

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/privacy-notice", get(notice_page))
        .route("/privacy-notice.md", get(notice_markdown))
        .route("/v1/notice", get(notice_json))
        .route("/v1/notice/versions", get(notice_versions))
        .route("/v1/notice/{version}", get(notice_version_json))
        .route("/privacy-notice/{version}", get(notice_version_page))
        .route("/v1/ropa", get(ropa))
        .route("/v1/subjects/{subject_id}/portal-links", post(create_portal_link))
        .route("/assets/custodia.css", get(stylesheet))
        .route("/portal/{token}", get(portal_page))
        .route("/portal/{token}/choices", post(portal_choices))
        .route("/portal/{token}/requests", post(portal_request))
        .route("/portal/{token}/receipt", get(portal_receipt_page))
        .route("/portal/{token}/receipt.json", get(portal_receipt_json))
}

/// The Content-Security-Policy of every page: nothing but this server's stylesheet, forms
/// posted only here, never framed.
const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A page with the headers of pages; `private` pages (a customer's) are never stored. The
/// defaults of every answer (nosniff, no-referrer, HSTS) come from `security_headers`.
pub(crate) fn page(status: StatusCode, content_type: &'static str, body: String, private: bool) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    let cache = if private { "no-store" } else { "no-cache" };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

const HTML: &str = "text/html; charset=utf-8";

async fn notice_page(State(state): State<Arc<AppState>>) -> Response {
    page(StatusCode::OK, HTML, state.web.notice_html.clone(), false)
}

async fn notice_markdown(State(state): State<Arc<AppState>>) -> Response {
    page(
        StatusCode::OK,
        "text/markdown; charset=utf-8",
        state.web.notice_markdown.clone(),
        false,
    )
}

#[utoipa::path(get, path = "/v1/notice", tag = "transparency",
    responses((status = 200, description = "The privacy notice as data (GDPR Art. 13/14, CCPA §1798.100): controller, purposes with legal bases, categories, recipients and transfers, retention, rights, sale/sharing, sensitive data; `version` is what consents refer to, `last_updated` the day this server first showed it. Public, as the notice is.", content_type = "application/json")))]
pub(crate) async fn notice_json(State(state): State<Arc<AppState>>) -> Response {
    Json(&state.web.notice).into_response()
}

#[utoipa::path(get, path = "/v1/notice/versions", tag = "transparency",
    responses((status = 200, description = "Every version of the notice this vault has shown, first published first (public)", body = NoticeVersions)))]
pub(crate) async fn notice_versions(State(state): State<Arc<AppState>>) -> AppResult<Json<NoticeVersions>> {
    let rows = state.vault.notice_versions().await?;
    Ok(Json(NoticeVersions {
        versions: rows
            .into_iter()
            .map(|r| NoticeVersion {
                version: r.version,
                language: r.language,
                published_at: Timestamp(r.published_at).to_rfc3339(),
            })
            .collect(),
    }))
}

/// A stored notice version named by `version` (`sha256-` and 32 hex digits), or 404.
async fn stored_notice(state: &AppState, version: &str) -> AppResult<custodia_core::NoticeRow> {
    let well_formed = version.len() == 39
        && version
            .strip_prefix("sha256-")
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    let row = if well_formed {
        state.vault.notice_version(version).await?
    } else {
        None
    };
    row.ok_or_else(|| {
        VaultError::not_found(
            "notice_version_not_found",
            "no notice of that version was shown by this vault (versions look like sha256- and 32 hex digits; GET /v1/notice/versions lists them)",
        )
        .into()
    })
}

#[utoipa::path(get, path = "/v1/notice/{version}", tag = "transparency",
    params(("version" = String, Path, description = "A notice version", pattern = "^sha256-[0-9a-f]{32}$")),
    responses((status = 200, description = "That version of the notice, as data, as it was shown (public)", content_type = "application/json"),
              (status = 404, description = "No such version was shown", body = ErrorBody)))]
pub(crate) async fn notice_version_json(
    State(state): State<Arc<AppState>>,
    ApiPath(version): ApiPath<String>,
) -> AppResult<Response> {
    let row = stored_notice(&state, &version).await?;
    let mut r = (StatusCode::OK, row.notice).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

async fn notice_version_page(State(state): State<Arc<AppState>>, Path(version): Path<String>) -> Response {
    match stored_notice(&state, &version).await {
        Ok(row) => page(StatusCode::OK, HTML, row.html, false),
        Err(e) => error_page(&state.web, &e),
    }
}

/// The format of the record of processing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct RopaQuery {
    /// `json` (default) or `csv`.
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
}

#[utoipa::path(get, path = "/v1/ropa", tag = "transparency",
    params(RopaQuery),
    responses((status = 200, description = "The record of processing activities (GDPR Art. 30(1) a-g), one activity per purpose, as JSON or (`?format=csv`) CSV",
                content((serde_json::Value = "application/json"), (String = "text/csv"))),
              (status = 400, description = "Unknown format", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not read the audit log (`read_audit`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn ropa(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<RopaQuery>,
) -> AppResult<Response> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            return Err(VaultError::bad_request("invalid_format", "format must be json or csv")
                .with_field("format")
                .into());
        }
    };
    state.vault.read_record_of_processing(&caller, Timestamp::now()).await?;
    let record = Ropa::build(state.vault.registry(), state.web.notice_version());
    Ok(if csv {
        let mut r = (StatusCode::OK, record.to_csv()).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        r.headers_mut().insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"record-of-processing.csv\""),
        );
        r
    } else {
        Json(record).into_response()
    })
}

#[utoipa::path(post, path = "/v1/subjects/{subject_id}/portal-links", tag = "transparency",
    params(("subject_id" = String, Path, description = "The data subject's opaque id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$")),
    request_body = PortalLinkRequest,
    responses((status = 201, description = "A signed, short-lived link to the subject's preference center", body = PortalLinkResponse),
              (status = 400, description = "Malformed input: bad subject id, ttl out of range, unknown jurisdiction", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not issue portal links (`issue_portal_links`)", body = ErrorBody),
              (status = 422, description = "The registry has no jurisdiction", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_portal_link(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(subject_id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PortalLinkRequest>,
) -> AppResult<(StatusCode, Json<PortalLinkResponse>)> {
    let subject = SubjectId::parse(&subject_id)?;
    let link = state
        .vault
        .issue_portal_link(
            &caller,
            Timestamp::now(),
            &subject,
            body.ttl_seconds,
            body.jurisdiction.as_deref(),
        )
        .await?;
    let base = match &state.web.public_url {
        Some(url) => url.clone(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)))
                .unwrap_or("localhost");
            let scheme = if state.web.https { "https" } else { "http" };
            format!("{scheme}://{host}")
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(PortalLinkResponse {
            url: format!("{base}/portal/{}", link.token),
            expires_at: link.expires_at.to_rfc3339(),
        }),
    ))
}

async fn stylesheet() -> Response {
    let mut r = page(
        StatusCode::OK,
        "text/css; charset=utf-8",
        html::STYLESHEET.to_owned(),
        false,
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

/// A refusal or an error as a page in the registry's language (the customer's pages speak
/// HTML, not the API's JSON).
fn error_page(web: &Web, e: &ApiError) -> Response {
    let p = &web.locale.strings.portal;
    let (id, message) = match e.code {
        "portal_link_invalid" => ("link-error", p.link_invalid.clone()),
        "portal_link_expired" => ("link-error", p.link_expired.clone()),
        "portal_link_revoked" => ("link-error", p.link_revoked.clone()),
        "csrf_token_mismatch" | "cross_site_form" | "notice_changed" => ("form-error", p.form_expired.clone()),
        // No form was sent: the address names no version this vault showed.
        "notice_version_not_found" => ("notice-version-unknown", p.notice_version_unknown.clone()),
        _ if e.status.is_client_error() => ("form-error", fill(&p.bad_form, &[("reason", &e.message)])),
        _ => ("server-error", e.message.clone()),
    };
    match html::message_page(&web.locale.language, &p.error_title, id, &message) {
        Ok(body) => page(e.status, HTML, body, true),
        Err(_) => page(e.status, "text/plain; charset=utf-8", message, true),
    }
}

/// Runs a page handler, turning its error into an error page.
fn or_error_page(web: &Web, result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(|e| error_page(web, &e))
}

fn render(result: Result<String, html::RenderError>) -> Result<String, ApiError> {
    result.map_err(|e| ApiError::from(VaultError::internal(&e)))
}

async fn open(vault: &Vault, token: &str) -> Result<PortalSession, ApiError> {
    Ok(vault.open_portal(token, Timestamp::now()).await?)
}

async fn portal_page(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
    Gpc(gpc): Gpc,
) -> Response {
    let web = &state.web;
    // `?saved=N` after a change (N entries recorded); anything else in the query is ignored.
    let saved = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "saved")
        .and_then(|(_, v)| v.parse::<u32>().ok());
    let status = saved.map(|n| {
        if n == 0 {
            web.locale.strings.portal.unchanged.clone()
        } else {
            web.locale.strings.portal.saved.clone()
        }
    });
    let shown = async {
        let session = open(&state.vault, &token).await?;
        show_portal(&state, &session, &token, gpc, status).await
    };
    or_error_page(web, shown.await)
}

/// The page of an opened link.
async fn show_portal(
    state: &AppState,
    session: &PortalSession,
    token: &str,
    gpc: bool,
    status: Option<String>,
) -> Result<Response, ApiError> {
    let portal = state.vault.portal_state(session, Timestamp::now(), gpc, false).await?;
    let view = portal_view(state, session, &portal, token, gpc, status)?;
    let body = render(html::portal_page(
        &view,
        &state.vault.registry().organization.name,
        &state.web.locale.language,
        &state.web.locale.strings,
    ))?;
    Ok(page(StatusCode::OK, HTML, body, true))
}

fn portal_view(
    state: &AppState,
    session: &PortalSession,
    portal: &PortalState,
    token: &str,
    gpc: bool,
    status: Option<String>,
) -> Result<PortalView, ApiError> {
    let registry = state.vault.registry();
    let t = &state.web.locale.strings;
    let description = |purpose: &str| {
        registry
            .purpose(purpose)
            .map_or_else(|| purpose.to_owned(), |p| p.description.clone())
    };
    Ok(PortalView {
        base: format!("/portal/{token}"),
        csrf: state.vault.portal_csrf_token(session)?,
        notice_version: state.web.notice_version().to_owned(),
        expires_at: readable_time(session.expires_at),
        held: portal
            .held
            .iter()
            .map(|(category, purposes)| HeldCategory {
                label: t.category(category),
                // Listed in one sentence: each without its full stop.
                purposes: purposes
                    .iter()
                    .map(|p| description(p).trim_end_matches('.').to_owned())
                    .collect(),
            })
            .collect(),
        consents: portal
            .consents
            .iter()
            .map(|c| ConsentToggle {
                purpose: c.purpose.clone(),
                description: description(&c.purpose),
                granted: c.granted.unwrap_or(false) && !c.outdated,
                outdated: c.outdated,
            })
            .collect(),
        sale: portal.sale.as_ref().map(|s| SaleToggle {
            opted_out: s.opted_out,
            gpc,
        }),
        status,
        receipt: portal.last_seq.is_some(),
        restricted: portal.restricted,
        objected: portal
            .objected
            .iter()
            .map(|p| description(p).trim_end_matches('.').to_owned())
            .collect(),
        requests: custodia_core::portal_requests(registry, &session.jurisdiction)
            .into_iter()
            // a restriction in force is not offered again
            .filter(|k| !(portal.restricted && *k == custodia_registry::RequestType::Restriction))
            .filter_map(|k| {
                Some(RequestButton {
                    kind: k.as_str(),
                    label: t.portal.request_label(k)?.to_owned(),
                })
            })
            .collect(),
    })
}

/// An instant as people read it: `2026-12-02 15:39 UTC`.
fn readable_time(t: Timestamp) -> String {
    let text = t.to_rfc3339();
    match (text.get(..10), text.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => text,
    }
}

/// A form post: refuses one sent from another site (the browser says so in
/// `Sec-Fetch-Site`, or its `Origin` is not the page's) or without the link's CSRF token (both
/// audited), then returns the form's fields in order.
async fn read_form(
    web: &Web,
    vault: &Vault,
    session: &PortalSession,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, ApiError> {
    let fetched_cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|site| !matches!(site.as_bytes(), b"same-origin" | b"none"));
    // The page's own origin: the public address, or (without one, or behind a proxy that
    // keeps it) the host the browser asked for.
    // `Origin: null` is what a browser sends from a page with `Referrer-Policy: no-referrer`
    // (ours): it says nothing, and `Sec-Fetch-Site` and the CSRF token decide.
    let foreign_origin = headers.get(header::ORIGIN).is_some_and(|origin| {
        let origin = origin.to_str().unwrap_or_default().to_ascii_lowercase();
        if origin == "null" {
            return false;
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let same_host = origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host));
        !same_host && web.public_origin.as_deref() != Some(origin.as_str())
    });
    if body.len() > MAX_FORM {
        return Err(VaultError::bad_request("form_too_large", "the form is too large").into());
    }
    let fields: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let csrf = fields.iter().find(|(k, _)| k == "csrf").map_or("", |(_, v)| v.as_str());
    vault
        .check_portal_form(session, Timestamp::now(), csrf, fetched_cross_site || foreign_origin)
        .await?;
    Ok(fields)
}

async fn portal_choices(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    Gpc(gpc): Gpc,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let web = &state.web;
    or_error_page(web, save_choices(&state, &token, gpc, &headers, &body).await)
}

async fn save_choices(
    state: &AppState,
    token: &str,
    gpc: bool,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let session = open(&state.vault, token).await?;
    let fields = read_form(&state.web, &state.vault, &session, headers, body).await?;
    let values = |name: &'static str| fields.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str());
    // The version the customer was shown must be the one in force: a notice that changed
    // while the page was open is shown again before anything is recorded.
    if values("notice_version").next() != Some(state.web.notice_version()) {
        return Err(VaultError::new(
            custodia_core::ErrorKind::Conflict,
            "notice_changed",
            "the privacy notice changed since the page was shown; open the page again",
        )
        .into());
    }
    let checked: std::collections::BTreeSet<&str> = values("consent").collect();
    let mut changes = PortalChanges {
        gpc,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        ..PortalChanges::default()
    };
    for shown in values("shown") {
        changes.consents.insert(shown.to_owned(), checked.contains(shown));
    }
    if let Some(unshown) = checked.iter().find(|c| !changes.consents.contains_key(**c)) {
        return Err(VaultError::bad_request(
            "invalid_form",
            // (a name not shaped like a purpose's is not repeated: it could be anything typed)
            format!(
                "consent {} was not offered on the page",
                custodia_core::quoted_name(unshown, false)
            ),
        )
        .into());
    }
    if values("sale_shown").next().is_some() {
        changes.sale_opt_out = Some(values("sale_opt_out").next().is_some());
    }
    let saved = state
        .vault
        .portal_choose(&session, Timestamp::now(), &changes, state.web.notice_version())
        .await?;
    let mut r = StatusCode::SEE_OTHER.into_response();
    let location = HeaderValue::from_str(&format!("/portal/{token}?saved={saved}"))
        .map_err(|e| ApiError::from(VaultError::internal(&e)))?;
    r.headers_mut().insert(header::LOCATION, location);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(r)
}

async fn portal_request(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let web = &state.web;
    or_error_page(web, open_request(&state, &token, &headers, &body).await)
}

async fn open_request(state: &AppState, token: &str, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    let session = open(&state.vault, token).await?;
    let fields = read_form(&state.web, &state.vault, &session, headers, body).await?;
    let kind = fields.iter().find(|(k, _)| k == "type").map_or("", |(_, v)| v.as_str());
    let (request, _existing) = state.vault.portal_request(&session, Timestamp::now(), kind).await?;
    let p = &state.web.locale.strings.portal;
    let kind_label = request
        .kind
        .parse()
        .ok()
        .and_then(|k| p.request_label(k))
        .unwrap_or(&request.kind);
    let status = fill(
        &p.request_sent,
        &[
            ("kind", kind_label),
            ("request_id", &request.request_id),
            ("due", request.due_at.get(..10).unwrap_or(&request.due_at)),
        ],
    );
    show_portal(state, &session, token, false, Some(status)).await
}

/// The receipt of the link's subject.
async fn receipt(state: &AppState, token: &str) -> Result<Receipt, ApiError> {
    let session = open(&state.vault, token).await?;
    let now = Timestamp::now();
    let portal = state.vault.portal_state(&session, now, false, true).await?;
    let registry = state.vault.registry();
    let org = &registry.organization;
    Ok(Receipt {
        receipt_id: Receipt::id_for(portal.subject.as_str(), portal.last_seq.unwrap_or(0)),
        controller: org.name.clone(),
        controller_contact: org.contact.clone(),
        subject_id: portal.subject.as_str().to_owned(),
        issued_at: now.to_rfc3339(),
        notice_version: state.web.notice_version().to_owned(),
        consents: portal
            .consents
            .iter()
            .map(|c| ReceiptConsent {
                purpose: c.purpose.clone(),
                description: registry
                    .purpose(&c.purpose)
                    .map_or_else(String::new, |p| p.description.clone()),
                granted: c.granted,
                at: c.at.map(Timestamp::to_rfc3339),
                method: c.method.clone(),
                notice_version: c.notice_version.clone(),
            })
            .collect(),
        sale_opt_out: portal.sale.as_ref().map(|s| ReceiptSale {
            opted_out: s.opted_out,
            at: s.at.map(Timestamp::to_rfc3339),
            method: s.method.clone(),
        }),
    })
}

async fn portal_receipt_page(State(state): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    let web = &state.web;
    let result = async {
        let r = receipt(&state, &token).await?;
        let body = render(html::receipt_page(&r, &web.locale.language, &web.locale.strings))?;
        Ok(page(StatusCode::OK, HTML, body, true))
    }
    .await;
    or_error_page(web, result)
}

async fn portal_receipt_json(State(state): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    let web = &state.web;
    let result = async {
        let r = receipt(&state, &token).await?;
        let body = serde_json::to_string_pretty(&r).map_err(|e| ApiError::from(VaultError::internal(&e)))?;
        let mut response = page(StatusCode::OK, "application/json", body, true);
        response.headers_mut().insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"consent-receipt.json\""),
        );
        Ok(response)
    }
    .await;
    or_error_page(web, result)
}
