//! Routes of retention (`custodia_core::{holds, review}`): legal holds, the retention review
//! report, and subject activity (what rules running from the last activity count from). The
//! sweeper itself runs as a job (`jobs.rs`) and as `custodia retention run`, not as a route.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use custodia_core::{Call, SubjectId, Timestamp};
use custodia_types::{ActivityReport, ErrorBody, Hold, HoldList, NewHold, ReleaseHold, RetentionReport};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, KeptTexts, TextJson};
use crate::{ApiError, AppState};

type AppResult<T> = Result<T, ApiError>;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/retention/holds", post(place_hold).get(list_holds))
        .route("/v1/retention/holds/{hold_id}/release", post(release_hold))
        .route("/v1/retention/report", get(retention_report))
        .route("/v1/subjects/{subject_id}/activity", post(report_activity))
}

#[utoipa::path(post, path = "/v1/retention/holds", tag = "retention",
    request_body = NewHold,
    responses((status = 201, description = "The hold is in force: nothing it covers is swept, erased or deleted until it is released", body = Hold),
              (status = 400, description = "Malformed input: both or neither of `subject_id` and `collection`, a bad subject id or reason", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not manage retention", body = ErrorBody),
              (status = 422, description = "Unknown collection, or a reason that holds personal data (`text_has_personal_data`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn place_hold(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    TextJson(body): TextJson<NewHold>,
) -> AppResult<(StatusCode, Json<Hold>)> {
    let hold = state.vault.place_hold(&caller, Timestamp::now(), &body).await?;
    Ok((StatusCode::CREATED, Json(hold)))
}

/// Which holds to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct HoldsQuery {
    /// Released holds too (default: only those in force).
    all: Option<bool>,
}

#[utoipa::path(get, path = "/v1/retention/holds", tag = "retention",
    params(HoldsQuery),
    responses((status = 200, description = "Legal holds, oldest first", body = HoldList),
              (status = 400, description = "Malformed query", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not manage retention", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_holds(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<HoldsQuery>,
) -> AppResult<Json<HoldList>> {
    Ok(Json(
        state
            .vault
            .list_holds(&caller, Timestamp::now(), q.all.unwrap_or(false))
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/retention/holds/{hold_id}/release", tag = "retention",
    params(("hold_id" = String, Path, description = "A hold id", pattern = "^hold_[0-9a-f]{32}$")),
    request_body = ReleaseHold,
    responses((status = 200, description = "Released: what it covered is swept, erased and deleted as the rules say again", body = Hold),
              (status = 400, description = "Malformed input: an empty or oversized reason", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not manage retention", body = ErrorBody),
              (status = 404, description = "No hold in force by that id (unknown, or released already)", body = ErrorBody),
              (status = 422, description = "A text with control or invisible characters (`invalid_text`), or one that holds personal data (`text_has_personal_data`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn release_hold(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(hold_id): ApiPath<String>,
    TextJson(body): TextJson<ReleaseHold>,
) -> AppResult<Json<Hold>> {
    Ok(Json(
        state
            .vault
            .release_hold(&caller, Timestamp::now(), &hold_id, &body.reason)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/retention/report", tag = "retention",
    responses((status = 200, description = "The retention review report: what is held per field and purpose, what expires within 30 and 90 days, what the registry leaves uncovered, the holds in force", body = RetentionReport),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not manage retention", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn retention_report(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
) -> AppResult<Json<RetentionReport>> {
    Ok(Json(state.vault.retention_report(&caller, Timestamp::now()).await?))
}

#[utoipa::path(post, path = "/v1/subjects/{subject_id}/activity", tag = "retention",
    params(("subject_id" = String, Path, description = "The data subject's opaque id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$")),
    request_body = ActivityReport,
    responses((status = 204, description = "Recorded: what the subject's purposes keep from its last activity is kept from now"),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not write under the purpose, or the subject's ledger does not permit it", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn report_activity(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(subject_id): ApiPath<String>,
    ApiJson(body): ApiJson<ActivityReport>,
) -> AppResult<StatusCode> {
    let subject = SubjectId::parse(&subject_id)?;
    if body.purpose.is_empty() {
        return Err(ApiError {
            field: Some("purpose".to_owned()),
            ..ApiError::new(
                StatusCode::BAD_REQUEST,
                "missing_purpose",
                "an activity is reported under a purpose (`purpose` in the body)",
            )
        });
    }
    state
        .vault
        .report_activity(&Call::new(&caller, &body.purpose, Timestamp::now()), &subject)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A hold's reasons (a case or matter reference) are kept with it, in the clear.
impl KeptTexts for NewHold {
    fn kept_texts(&self) -> Vec<(&'static str, &str)> {
        vec![("reason", &self.reason)]
    }
}

impl KeptTexts for ReleaseHold {
    fn kept_texts(&self) -> Vec<(&'static str, &str)> {
        vec![("reason", &self.reason)]
    }
}
