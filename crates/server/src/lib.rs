//! The Custodia HTTP API: thin axum handlers over [`custodia_core::Vault`], one JSON error
//! shape, bearer-token authentication and an OpenAPI document of every route.

mod api;
mod error;
mod extract;
mod openapi;

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

/// Shared state of every handler.
pub struct AppState {
    pub vault: Vault,
}

/// The application router.
pub fn router(vault: Vault) -> Router {
    let state = Arc::new(AppState { vault });
    api::routes()
        .fallback(error::not_found_fallback)
        .method_not_allowed_fallback(error::method_not_allowed_fallback)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(error::refuse_announced_oversize))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([AUTHORIZATION]))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    vault: Vault,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(vault))
        .with_graceful_shutdown(shutdown)
        .await
}
