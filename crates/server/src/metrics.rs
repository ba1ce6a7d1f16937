//! Prometheus: every request counted and timed by its route's template ([`track`]), and the
//! metrics served at `GET /metrics` to a caller with `read_metrics` ([`read_metrics`]), or to
//! anyone on a listener of their own ([`serve_metrics_only`], `custodia serve --metrics-listen`).
//! What may be a label is [`custodia_metrics`]'s rule: never a path, a subject or a value.

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use custodia_core::Timestamp;
use custodia_types::ErrorBody;

use crate::extract::Caller;
use crate::{ApiError, AppState};

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/metrics", get(read_metrics))
}

/// Counts and times each request under its method, route template and status.
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let route = custodia_metrics::route_label(request.extensions().get::<MatchedPath>().map(MatchedPath::as_str));
    let response = next.run(request).await;
    custodia_metrics::http_request(
        method.as_str(),
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

#[utoipa::path(get, path = "/metrics", tag = "operators",
    responses((status = 200, description = "Operational metrics in the OpenMetrics text format Prometheus scrapes: requests by route template and status, latency histograms, gate decisions by action, purpose and decision, consent changes, audit appends and checkpoint age, store commit batches, scanner bytes and findings by entity. No subject id, value, key or principal is ever a label. Each reading is audited.", content_type = "application/openmetrics-text"),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "The caller's roles lack `read_metrics`", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn read_metrics(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    let text = state.vault.read_metrics(&caller, Timestamp::now()).await?;
    Ok(exposition(text))
}

/// Serves `GET /metrics` alone, to anyone, on `listener`: a listen address of its own
/// (`custodia serve --metrics-listen`), for the monitoring network only. Not audited: it
/// decides nothing and answers no one in particular. Runs until the task is dropped.
pub async fn serve_metrics_only(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, metrics_only()).await
}

fn metrics_only() -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|| async { exposition(custodia_metrics::render(Timestamp::now().0)) }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "only /metrics is served here\n") })
}

fn exposition(text: String) -> Response {
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(custodia_metrics::CONTENT_TYPE),
    );
    response
}
