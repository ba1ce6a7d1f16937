//! The Custodia HTTP API: thin axum handlers over [`custodia_core::Vault`], one JSON error
//! shape, bearer-token authentication and an OpenAPI document of every route.

mod api;
mod error;
mod extract;
pub mod jobs;
pub mod notify;
mod openapi;
pub mod package;
mod pii;
mod publish;
mod requests;
mod retention;
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
}

impl AppState {
    fn new(vault: Vault, publisher: Publisher, web: Web) -> Self {
        let pii = pii::PiiState::new(vault.redaction_key().expose());
        Self {
            vault,
            pii,
            publisher,
            web,
        }
    }
}

/// Checks the vault's audit log against its checkpoints (in the database, in the checkpoint
/// log, at the witness) before anything is served, and signs and publishes a checkpoint of
/// whatever the log holds beyond them. An error names the first divergence: the server must
/// not start on a log that was truncated or rewritten.
pub async fn resume(vault: &Vault, publisher: &Publisher) -> Result<custodia_core::VerifyReport, String> {
    let trusted = publisher.trusted(&vault.audit_verifier_key()).await?;
    let report = vault.resume_audit_log(trusted).await?;
    match vault.checkpoint(custodia_core::Timestamp::now()).await {
        Ok(Some(row)) => publisher.publish(vault, &row).await,
        Ok(None) => {}
        Err(e) => return Err(format!("signing a checkpoint at start: {e}")),
    }
    Ok(report)
}

/// How often the audit log is checkpointed (when it has new entries).
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The application router, its pages in English (the built-in words).
pub fn router(vault: Vault) -> Result<Router, String> {
    let web = Web::english(vault.registry())?;
    Ok(app(Arc::new(AppState::new(vault, Publisher::new(None, None), web))))
}

fn app(state: Arc<AppState>) -> Router {
    api::routes()
        .merge(requests::routes())
        .merge(retention::routes())
        .merge(web::routes())
        .fallback(error::not_found_fallback)
        .method_not_allowed_fallback(error::method_not_allowed_fallback)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(error::refuse_announced_oversize))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetSensitiveRequestHeadersLayer::new([AUTHORIZATION]))
        .with_state(state)
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
/// signing a last checkpoint on the way out.
pub async fn serve(
    vault: Vault,
    publisher: Publisher,
    web: Web,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The notice shown from now on is kept for good, before anyone can consent under it.
    let notice = web
        .notice_row(custodia_core::Timestamp::now())
        .map_err(std::io::Error::other)?;
    if let Err(e) = vault.publish_notice(notice).await {
        return Err(std::io::Error::other(format!("recording the privacy notice: {e}")));
    }
    let state = Arc::new(AppState::new(vault, publisher, web));
    let runner = jobs::spawn(Arc::clone(&state));
    let served = axum::serve(listener, app(Arc::clone(&state)))
        .with_graceful_shutdown(shutdown)
        .await;
    runner.abort();
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
