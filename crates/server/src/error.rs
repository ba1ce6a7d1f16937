//! Every error leaves as `{"error": {"code", "message", "field"?}}` with a fitting status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use custodia_core::{ErrorKind, VaultError};
use custodia_types::{ErrorBody, ErrorDetail};

/// An error answered to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        let status = match e.kind {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self {
            status,
            code: e.code,
            message: e.message,
            field: e.field,
        }
    }
}

impl ApiError {
    /// The status and the body's `error` (also one item's outcome in a batch).
    pub(crate) fn detail(self) -> (StatusCode, ErrorDetail) {
        let detail = ErrorDetail {
            code: self.code.to_owned(),
            message: self.message,
            field: self.field,
        };
        (self.status, detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error) = self.detail();
        let mut response = (status, Json(ErrorBody { error })).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// Refuses a body whose announced length is over the limit before reading any of it (bodies
/// without a length are cut off by `DefaultBodyLimit` while being read).
pub(crate) async fn refuse_announced_oversize(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let announced = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > crate::MAX_BODY_BYTES as u64) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {} bytes", crate::MAX_BODY_BYTES),
        )
        .into_response();
    }
    next.run(request).await
}

/// 431 for a request whose headers (names and values, with their separators) pass
/// [`crate::stall::MAX_HEADER_BYTES`]: hyper's own bound on the buffer it reads a head into
/// lets through what one more read brings (a single header of 112 KiB was answered).
pub(crate) async fn refuse_oversized_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if bytes > crate::stall::MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request's headers are larger than {} bytes",
                crate::stall::MAX_HEADER_BYTES
            ),
        )
        .into_response();
    }
    next.run(request).await
}

pub(crate) async fn not_found_fallback() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such route; see /openapi.json")
}

pub(crate) async fn method_not_allowed_fallback() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method; see /openapi.json",
    )
}
