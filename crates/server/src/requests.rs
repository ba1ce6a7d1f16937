//! Routes of data subject requests: the work queue and its steps (`custodia_core::rights`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use custodia_core::{Fulfilled, Timestamp};
use custodia_types::{
    ErasureReceipt, ErrorBody, FulfilRequest, NewSubjectRequest, ReasonRequest, SubjectRequestList, SubjectRequestView,
    VerifyRequest,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::extract::{ApiPath, ApiQuery, Caller, KeptTexts, OptionalJson, TextJson};
use crate::package::PackageFormat;
use crate::{ApiError, AppState};

type AppResult<T> = Result<T, ApiError>;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/requests", post(create_request).get(list_requests))
        .route("/v1/requests/{request_id}", get(get_request))
        .route("/v1/requests/{request_id}/verify", post(verify_request))
        .route("/v1/requests/{request_id}/extend", post(extend_request))
        .route("/v1/requests/{request_id}/deny", post(deny_request))
        .route("/v1/requests/{request_id}/fulfil", post(fulfil_request))
}

#[utoipa::path(post, path = "/v1/requests", tag = "requests",
    request_body = NewSubjectRequest,
    responses((status = 201, description = "Opened, with its deadlines", body = SubjectRequestView),
              (status = 400, description = "Malformed input: unknown type or jurisdiction, a bad date or text", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not fulfil requests", body = ErrorBody),
              (status = 409, description = "A request of this type from the portal is already open for the subject (`request_open`)", body = ErrorBody),
              (status = 422, description = "The jurisdiction grants no request of this type (`right_not_granted`); a received_at in the future or more than a year ago; a text with invisible characters; a text that holds personal data (`text_has_personal_data`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_request(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    TextJson(body): TextJson<NewSubjectRequest>,
) -> AppResult<(StatusCode, Json<SubjectRequestView>)> {
    let view = state.vault.create_request(&caller, Timestamp::now(), &body).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The work queue's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct QueueQuery {
    /// `open` (default: received, verifying, in_progress, extended) or one status.
    #[param(pattern = "^(open|received|verifying|in_progress|extended|completed|denied)$")]
    status: Option<String>,
    /// Only requests due before this time (RFC 3339).
    due_before: Option<String>,
}

#[utoipa::path(get, path = "/v1/requests", tag = "requests",
    params(QueueQuery),
    responses((status = 200, description = "Requests, soonest due first; `overdue` flags those past their deadline", body = SubjectRequestList),
              (status = 400, description = "Malformed filter", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not fulfil requests", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_requests(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<QueueQuery>,
) -> AppResult<Json<SubjectRequestList>> {
    let due_before = match q.due_before.as_deref() {
        None => None,
        Some(text) => Some(Timestamp::parse_rfc3339(text).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "`due_before` must be an RFC 3339 time",
            )
        })?),
    };
    Ok(Json(
        state
            .vault
            .list_requests(&caller, Timestamp::now(), q.status.as_deref(), due_before)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/requests/{request_id}", tag = "requests",
    params(("request_id" = String, Path)),
    responses((status = 200, description = "The request, its deadlines, verification and notices", body = SubjectRequestView),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not fulfil requests", body = ErrorBody),
              (status = 404, description = "No such request", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_request(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<SubjectRequestView>> {
    Ok(Json(state.vault.get_request(&caller, Timestamp::now(), &id).await?))
}

#[utoipa::path(post, path = "/v1/requests/{request_id}/verify", tag = "requests",
    params(("request_id" = String, Path)),
    request_body = VerifyRequest,
    responses((status = 200, description = "Verification recorded", body = SubjectRequestView),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not fulfil requests", body = ErrorBody),
              (status = 404, description = "No such request", body = ErrorBody),
              (status = 409, description = "Closed, or already verified", body = ErrorBody),
              (status = 422, description = "A text with control or invisible characters (`invalid_text`), or one that holds personal data (`text_has_personal_data`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn verify_request(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    TextJson(body): TextJson<VerifyRequest>,
) -> AppResult<Json<SubjectRequestView>> {
    Ok(Json(
        state
            .vault
            .verify_request(&caller, Timestamp::now(), &id, &body)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/requests/{request_id}/extend", tag = "requests",
    params(("request_id" = String, Path)),
    request_body = ReasonRequest,
    responses((status = 200, description = "Deadline extended", body = SubjectRequestView),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not fulfil requests", body = ErrorBody),
              (status = 404, description = "No such request", body = ErrorBody),
              (status = 409, description = "Closed, already extended, not extendable, or too late", body = ErrorBody),
              (status = 422, description = "A text with control or invisible characters (`invalid_text`), or one that holds personal data (`text_has_personal_data`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn extend_request(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    TextJson(body): TextJson<ReasonRequest>,
) -> AppResult<Json<SubjectRequestView>> {
    Ok(Json(
        state
            .vault
            .extend_request(&caller, Timestamp::now(), &id, &body.reason)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/requests/{request_id}/deny", tag = "requests",
    params(("request_id" = String, Path)),
    request_body = ReasonRequest,
    responses((status = 200, description = "Denied; the view names the authority to complain to", body = SubjectRequestView),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not fulfil requests", body = ErrorBody),
              (status = 404, description = "No such request", body = ErrorBody),
              (status = 409, description = "Closed", body = ErrorBody),
              (status = 422, description = "A text with control or invisible characters (`invalid_text`), or one that holds personal data (`text_has_personal_data`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn deny_request(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    TextJson(body): TextJson<ReasonRequest>,
) -> AppResult<Json<SubjectRequestView>> {
    Ok(Json(
        state
            .vault
            .deny_request(&caller, Timestamp::now(), &id, &body.reason)
            .await?,
    ))
}

/// How an access or portability package is rendered.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct FulfilQuery {
    /// `json` (default; portability, Art. 20) or `html` (a readable page).
    #[param(pattern = "^(json|html)$")]
    format: Option<String>,
}

#[utoipa::path(post, path = "/v1/requests/{request_id}/fulfil", tag = "requests",
    params(("request_id" = String, Path), FulfilQuery),
    request_body(content = Option<FulfilRequest>, description = "Rectification: `corrections`; objection: `purposes` (optional). Others: `{}` or no body."),
    responses((status = 200, description = "Access/portability: the subject's package (JSON or HTML); erasure: the signed receipt (ErasureReceipt); others: the request",
                content((custodia_types::FulfilAnswer = "application/json"), (String = "text/html"))),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not fulfil requests", body = ErrorBody),
              (status = 404, description = "No such request, or a record to correct", body = ErrorBody),
              (status = 409, description = "Closed, not verified, the subject was erased, or a legal hold keeps the subject from erasure (`legal_hold`)", body = ErrorBody),
              (status = 422, description = "A correction names an unknown field or an invalid value; `corrections` or `purposes` given for another type of request (`not_for_this_type`)", body = ErrorBody),
              (status = 503, description = "Answers not yet read by their clients fill the server's budget: nothing was done; try again shortly", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn fulfil_request(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<FulfilQuery>,
    OptionalJson(body): OptionalJson<FulfilRequest>,
) -> AppResult<Response> {
    let format = PackageFormat::parse(q.format.as_deref().unwrap_or("json"))?;
    let now = Timestamp::now();
    // a package is answered within the budget of answers unsent: refused before the request
    // is fulfilled (given once) when the budget has no room
    let read = state
        .record_answers
        .reserve_before(&caller.id, custodia_core::Page::MAX_LIST_BYTES)?;
    Ok(match state.vault.fulfil_request(&caller, now, &id, &body).await? {
        Fulfilled::Request(view) => Json(view).into_response(),
        Fulfilled::Erasure(receipt) => Json::<ErasureReceipt>(receipt).into_response(),
        Fulfilled::Package(subject, _) => {
            crate::package::package_response(&state.vault, &subject, format, now, read).await?
        }
    })
}

impl KeptTexts for NewSubjectRequest {
    fn kept_texts(&self) -> Vec<(&'static str, &str)> {
        self.verified_by.iter().map(|v| ("verified_by", v.as_str())).collect()
    }
}

impl KeptTexts for VerifyRequest {
    fn kept_texts(&self) -> Vec<(&'static str, &str)> {
        vec![("verified_by", &self.verified_by)]
    }
}

/// Extension and denial reasons are told to the requester and kept with the request.
impl KeptTexts for ReasonRequest {
    fn kept_texts(&self) -> Vec<(&'static str, &str)> {
        vec![("reason", &self.reason)]
    }
}
