//! Extractors that turn every malformed request into the JSON error shape, and the bearer
//! authentication of callers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use custodia_core::Principal;
use serde::de::DeserializeOwned;

use crate::{ApiError, AppState};

/// A JSON body; malformed JSON, wrong types and unknown keys are 400s naming the problem.
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e: BytesRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("request body is larger than {} bytes", crate::MAX_BODY_BYTES),
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    "the request body could not be read",
                )
            }
        })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = T::deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
            .map_err(|e| {
                // serde_json's message names the key or type at fault and the position, not values.
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    format!("invalid JSON body: {}", json_error(&e)),
                )
            })?;
        Ok(Self(value))
    }
}

/// A message for a JSON error that never echoes input values.
fn json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            format!("malformed JSON at line {} column {}", e.line(), e.column())
        }
        // Data errors read like "unknown field `x`, expected one of ..." or
        // "invalid type: integer `5`, expected a string"; drop any quoted input after
        // "invalid value"/"invalid type" to keep values out of messages.
        Category::Data => {
            let msg = e.to_string();
            if msg.starts_with("invalid type") || msg.starts_with("invalid value") {
                let expected = msg
                    .split(", expected ")
                    .nth(1)
                    .and_then(|rest| rest.split(" at line ").next())
                    .unwrap_or("another type");
                format!(
                    "wrong type at line {} column {}: expected {expected}",
                    e.line(),
                    e.column()
                )
            } else {
                msg
            }
        }
    }
}

/// Path parameters, with a JSON error when they cannot be decoded.
pub(crate) struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| Self(v))
            .map_err(|e: PathRejection| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))
    }
}

/// Query parameters; unknown or malformed ones are 400s naming the parameter.
pub(crate) struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|e: QueryRejection| {
                let text = e.body_text();
                if text.contains("missing field `purpose`") {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "missing_purpose",
                        "every data call must name a purpose (`purpose` query parameter)",
                    )
                } else {
                    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", text)
                }
            })
    }
}

/// The authenticated caller, from `Authorization: Bearer <api key>`.
pub(crate) struct Caller(pub Principal);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "missing Authorization: Bearer <api key> header",
            )
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "the Authorization header must be `Bearer <api key>`",
                )
            })?;
        let mut principal = state.vault.authenticate(token, custodia_core::Timestamp::now()).await?;
        if let Some(context) = parts.headers.get("custodia-context") {
            let text = context.to_str().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_context",
                    "Custodia-Context must be a JSON object",
                )
            })?;
            principal.context = state.vault.parse_context(text)?;
        }
        Ok(Self(principal))
    }
}

/// Whether the request carries a Global Privacy Control signal (`Sec-GPC: 1`).
pub(crate) struct Gpc(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for Gpc {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let on = parts
            .headers
            .get("sec-gpc")
            .is_some_and(|v| v.as_bytes().trim_ascii() == b"1");
        Ok(Self(on))
    }
}
