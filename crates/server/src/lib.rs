//! The Custodia HTTP API: thin axum handlers over [`custodia_core::Vault`], one JSON error
//! shape, bearer-token authentication and an OpenAPI document of every route.

mod api;
pub mod assess;
mod batch;
mod error;
mod extract;
mod incidents;
pub mod jobs;
pub mod metrics;
pub mod notify;
mod openapi;
mod operators;
pub mod package;
mod pii;
mod publish;
mod queue;
mod requests;
mod retention;
mod stall;
pub mod tls;
mod unsent;
mod web;
pub mod witness;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header::AUTHORIZATION;
use custodia_core::Vault;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use openapi::openapi_json;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub use publish::Publisher;
pub use web::Web;

/// Shared state of every handler.
pub struct AppState {
    pub vault: Vault,
    pub(crate) pii: pii::PiiState,
    /// Where signed checkpoints go besides the database.
    pub publisher: Publisher,
    /// The privacy notice and the preference center's words.
    pub(crate) web: Web,
    /// The root key rotation this server runs, if any.
    pub(crate) rotation: operators::Rotation,
    /// Its data directory and TLS, for the posture self-assessment.
    pub(crate) deployment: assess::Deployment,
    /// The OpenAPI documents it serves, told what its registry declares.
    pub(crate) openapi: openapi::Documents,
    /// Record lists and batch reads made and not yet read by their clients.
    pub(crate) record_answers: unsent::Unsent,
    /// Batch reads being read from the store at once (each may build some tens of MB).
    pub(crate) batch_reads: Arc<queue::Queue>,
}

/// What record lists and batch reads waiting for their readers may hold, in KiB.
const UNSENT_RECORDS_KIB: usize = 256 * 1024;
/// Batch reads read at once...
const BATCH_READS_AT_ONCE: usize = 4;
/// ...and those that may wait for their turn (beyond, 503).
const BATCH_READS_WAITING: usize = 32;

impl AppState {
    fn new(vault: Vault, publisher: Publisher, web: Web) -> Self {
        let pii = pii::PiiState::new(vault.redaction_key().expose());
        let openapi = openapi::for_registry(vault.registry(), pii.entity_names());
        Self {
            openapi,
            vault,
            pii,
            publisher,
            web,
            rotation: operators::Rotation::default(),
            deployment: assess::Deployment::default(),
            record_answers: unsent::Unsent::new(UNSENT_RECORDS_KIB),
            batch_reads: Arc::new(queue::Queue::new(
                BATCH_READS_AT_ONCE,
                BATCH_READS_WAITING,
                "batch reads are running or waiting",
            )),
        }
    }
}

/// Checks the vault's audit log against its checkpoints (in the database, in the checkpoint
/// log, at the witness) before anything is served, and signs and publishes a checkpoint of
/// whatever the log holds beyond them. An error names the first divergence: the server must
/// not start on a log that was truncated or rewritten.
/// `seal_access`: the operator's word that the rows that grant access, the training
/// completions and the purpose bindings found after the upgrade to schema version 23 or 24
/// are to be taken as they are (`serve --seal-access`); without it, such a start is refused.
pub async fn resume(
    vault: &Vault,
    publisher: &Publisher,
    seal_access: bool,
    record_registry: bool,
) -> Result<custodia_core::VerifyReport, Resumed> {
    let report = resume_log(vault, publisher).await.map_err(Resumed::Diverged)?;
    // an upgrade's work over rows already there, audited, only once the log it is audited
    // in was found whole, and signed below before anything is served
    vault
        .settle_upgrades(seal_access)
        .await
        .map_err(|e| Resumed::Upgrade(e.message))?;
    // which registry a server serves, and what changed in it since the last start (roles,
    // training, session lengths and alerts are in the file, not in the sealed database),
    // signed below with the rest
    if record_registry {
        let change = vault
            .record_registry(custodia_core::Timestamp::now())
            .await
            .map_err(|e| Resumed::Diverged(format!("recording the registry in the audit log: {e}")))?;
        if let custodia_core::RegistryChange::Sections(changed) = change
            && !changed.is_empty()
        {
            tracing::warn!(
                sections = %changed.join(","),
                "the registry changed since the last start (recorded in the audit log as registry.loaded)"
            );
        }
    }
    match vault.checkpoint(custodia_core::Timestamp::now()).await {
        Ok(Some(row)) => publisher.publish(vault, &row).await,
        Ok(None) => {}
        Err(e) => return Err(Resumed::Diverged(format!("signing a checkpoint at start: {e}"))),
    }
    Ok(report)
}

/// Why [`resume`] refused to go on.
#[derive(Debug)]
pub enum Resumed {
    /// The audit log does not match its checkpoints (the first divergence named).
    Diverged(String),
    /// An upgrade's work waits for the operator's word (what to do, said).
    Upgrade(String),
}

impl Resumed {
    /// The refusal as a command says it, `what` being what would not go on.
    #[must_use]
    pub fn refusal(&self, what: &str) -> String {
        match self {
            Self::Diverged(why) => {
                format!("the audit log does not match its checkpoints, so {what} will not continue it: {why}")
            }
            Self::Upgrade(why) => why.clone(),
        }
    }
}

/// [`resume`]'s check of the log against its checkpoints.
async fn resume_log(vault: &Vault, publisher: &Publisher) -> Result<custodia_core::VerifyReport, String> {
    let missing = publisher.missing_log(vault.store()).await?;
    if let Some(missing) = &missing {
        if !publisher.afresh() {
            return Err(missing.refusal());
        }
        // Left on, the option would let a deleted log begin again unnoticed.
        tracing::warn!(
            path = %missing.path().display(),
            tree_size = missing.tree_size(),
            "beginning a new checkpoint log over a database that has checkpoints (--new-checkpoint-log): remove the option now"
        );
    }
    let trusted = publisher.trusted(&vault.audit_verifier_key()).await?;
    let report = vault.resume_audit_log(trusted).await?;
    // and in the log itself, once it is found whole: a reset is no longer a line on stderr
    if let Some(missing) = missing {
        vault
            .record_checkpoint_log_begun(missing.tree_size(), custodia_core::Timestamp::now())
            .await
            .map_err(|e| format!("recording the new checkpoint log in the audit log: {e}"))?;
    }
    Ok(report)
}

/// How often the audit log is checkpointed (when it has new entries).
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The application router, its pages in English (the built-in words).
pub fn router(vault: Vault) -> Result<Router, String> {
    let web = Web::english(vault.registry())?;
    Ok(app(
        Arc::new(AppState::new(vault, Publisher::new(None, None), web)),
        false,
    ))
}

fn app(state: Arc<AppState>, https: bool) -> Router {
    api::routes()
        .merge(batch::routes())
        .merge(requests::routes())
        .merge(retention::routes())
        .merge(operators::routes())
        .merge(assess::routes())
        .merge(incidents::routes())
        .merge(web::routes())
        .merge(metrics::routes())
        .fallback(error::not_found_fallback)
        .method_not_allowed_fallback(error::method_not_allowed_fallback)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(stall::whole_body_in_time))
        .layer(axum::middleware::from_fn(error::refuse_announced_oversize))
        .layer(axum::middleware::from_fn(error::refuse_oversized_headers))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(SetSensitiveRequestHeadersLayer::new([AUTHORIZATION]))
        .layer(axum::middleware::map_response(move |r| security_headers(r, https)))
        .with_state(state)
}

/// The headers every answer carries unless its route set its own: answers may hold personal
/// data, so nothing stores them, sniffs them, frames them or loads anything from them; under
/// TLS, browsers are told to come back only over HTTPS.
async fn security_headers(mut response: axum::response::Response, https: bool) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let h = response.headers_mut();
    let defaults = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in defaults {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// How long open connections may go on once shutdown is asked for: a client that keeps one
/// open (a request it never finishes sending) must not keep the server from stopping and
/// signing its last checkpoint.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown`, then lets open connections finish for at most
/// [`DRAIN`]. With `certificates`, over TLS only (a plain-HTTP request gets no answer), the
/// certificate reloaded when its files change. Either way each connection is under the
/// bounds of [`stall`]: at most [`stall::MAX_CONNECTIONS`] at once, headers within
/// [`stall::HEADER_READ`], writes that wait [`stall::WRITE_STALL`] for the peer cut off.
async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    certificates: Option<Arc<tls::Certificates>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use std::time::Duration;
    let acceptor = match &certificates {
        None => None,
        Some(c) => Some(tokio_rustls::TlsAcceptor::from(
            c.server_config().map_err(std::io::Error::other)?,
        )),
    };
    let reloader = certificates.map(|certificates| {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(tls::RELOAD_EVERY);
            loop {
                every.tick().await;
                certificates.reload_if_changed();
            }
        })
    });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let open = Arc::new(tokio::sync::Semaphore::new(stall::MAX_CONNECTIONS));
    let per_address = stall::PerAddress::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let place = tokio::select! {
            place = Arc::clone(&open).acquire_owned() => place.map_err(std::io::Error::other)?,
            () = &mut shutdown => break,
        };
        let (tcp, address_place) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => match per_address.take(peer.ip()) {
                    Some(place) => (stall::guarded(tcp), place),
                    // its address holds all it may: closed at once (never logged: an
                    // address is personal data)
                    None => continue,
                },
                Err(e) => {
                    // out of file descriptors, most likely: wait rather than spin
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _places = (place, address_place);
            let http = {
                let mut b = hyper::server::conn::http1::Builder::new();
                b.timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(stall::HEADER_READ)
                    // a request's headers in at most this (431 beyond): a connection trickling
                    // an endless header holds 64 KiB, not hyper's default of ~400
                    .max_buf_size(stall::MAX_HEADER_BYTES);
                b
            };
            let Some(acceptor) = acceptor else {
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = watcher
                    .watch(http.serve_connection(hyper_util::rt::TokioIo::new(tcp), service))
                    .await;
                return;
            };
            // A handshake that does not finish in time (or is not TLS) is dropped; one that
            // refused the client's certificate says why (a v1 certificate, or one without
            // `clientAuth`, failed every connection with nothing in the log).
            let stream = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    if let Some(rustls::Error::InvalidCertificate(why)) =
                        e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    {
                        // the reason's kind alone: its details may carry what the certificate
                        // names (a person's name or address in a client certificate)
                        let written = format!("{why:?}");
                        let kind = written.split(['{', ' ']).next().unwrap_or_default();
                        tracing::info!(reason = kind, "a client certificate was refused in the TLS handshake");
                    }
                    return;
                }
                Err(_) => return,
            };
            // The client certificate the connection presented (verified against the
            // client CAs by the handshake), for every request on it.
            let presented = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|cert| extract::ClientCert(sha256_of(cert.as_ref())));
            let service = hyper_util::service::TowerToHyperService::new(app.layer(axum::Extension(presented)));
            let _ = watcher
                .watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service))
                .await;
        });
    }
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!(seconds = DRAIN.as_secs(), "connections still open at shutdown: closed");
    }
    Ok(())
}

/// SHA-256 of a DER certificate.
fn sha256_of(der: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A request's log span: the method and the route's template, never the URI itself (its
/// path holds subject ids, its query whatever a caller typed).
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("(no route)", axum::extract::MatchedPath::as_str);
    tracing::debug_span!("request", method = %request.method(), route)
}

/// Serves the API on `listener` until `shutdown` completes, running the periodic [`jobs`]
/// (among them a checkpoint of the audit log every [`CHECKPOINT_EVERY`] while it grows), and
/// signing a last checkpoint on the way out. `deployment` is where it runs, for the
/// assessment (`GET /v1/assessment`).
pub async fn serve(
    vault: Vault,
    publisher: Publisher,
    web: Web,
    tls: Option<Arc<tls::Certificates>>,
    mut deployment: assess::Deployment,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The notice shown from now on is kept for good, before anyone can consent under it.
    let mut web = web;
    let now = custodia_core::Timestamp::now();
    let notice = web.notice_row(now).map_err(std::io::Error::other)?;
    let version = notice.version.clone();
    if let Err(e) = vault.publish_notice(notice).await {
        return Err(std::io::Error::other(format!("recording the privacy notice: {e}")));
    }
    // Dated the day this version was first shown: today, or the day an earlier start (or
    // another node) first showed it.
    let first_shown = match vault.notice_version(&version).await {
        Ok(row) => row.map_or(now.0, |r| r.published_at),
        Err(e) => return Err(std::io::Error::other(format!("reading the privacy notice back: {e}"))),
    };
    web.first_shown(first_shown).map_err(std::io::Error::other)?;
    deployment.tls = tls.as_ref().map(|c| c.files().clone());
    let mut state = AppState::new(vault, publisher, web);
    state.deployment = deployment;
    let state = Arc::new(state);
    let runner = jobs::spawn(Arc::clone(&state));
    let https = tls.is_some();
    let served = serve_connections(listener, app(Arc::clone(&state), https), tls, shutdown).await;
    runner.stop().await;
    if let Err(e) = state
        .vault
        .flush_authentication_failures(custodia_core::Timestamp::now())
        .await
    {
        tracing::error!(error = %e, "writing the last failed authentications failed");
    }
    match state.vault.checkpoint(custodia_core::Timestamp::now()).await {
        Ok(Some(row)) => state.publisher.publish(&state.vault, &row).await,
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "final audit checkpoint failed"),
    }
    served
}
