//! Incidents over HTTP: the breach register, an incident's timeline and duties, the blast
//! radius, drafts of the notifications (Markdown), the log of notifications sent and
//! containment. Everything needs `manage_incidents` (see `core/src/incidents.rs`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use custodia_core::{Draft, Timestamp};
use custodia_types::{
    ContainmentRequest, ContainmentResponse, ErrorBody, Incident, IncidentEntryRequest, IncidentPhaseRequest,
    IncidentRegister, IncidentRiskRequest, NotificationSentRequest, OpenIncidentRequest, OpenIncidentResponse, Scope,
    ScopeRequest,
};

use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use crate::{ApiError, AppState};

type AppResult<T> = Result<T, ApiError>;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/incidents", post(open_incident).get(incident_register))
        .route("/v1/incidents/{incident_id}", get(incident))
        .route("/v1/incidents/{incident_id}/entries", post(add_entry))
        .route("/v1/incidents/{incident_id}/phase", post(set_phase))
        .route("/v1/incidents/{incident_id}/risk", post(assess_risk))
        .route("/v1/incidents/{incident_id}/scope", post(scope))
        .route("/v1/incidents/{incident_id}/notifications", post(notification_sent))
        .route("/v1/incidents/{incident_id}/containment", post(contain))
        .route("/v1/incidents/{incident_id}/drafts/authority", get(authority_draft))
        .route(
            "/v1/incidents/{incident_id}/drafts/subjects/{subject_id}",
            get(subject_draft),
        )
}

#[utoipa::path(post, path = "/v1/incidents", tag = "incidents", request_body = OpenIncidentRequest,
    responses((status = 201, description = "Opened; the notification clocks run from `aware_at`", body = OpenIncidentResponse),
              (status = 400, description = "Malformed body, text or time", body = ErrorBody),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 422, description = "`aware_at` in the future or more than ten years ago", body = ErrorBody),
              (status = 403, description = "Caller may not manage incidents", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn open_incident(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<OpenIncidentRequest>,
) -> AppResult<(StatusCode, Json<OpenIncidentResponse>)> {
    let opened = state.vault.open_incident(&caller, Timestamp::now(), &body).await?;
    Ok((StatusCode::CREATED, Json(opened)))
}

#[utoipa::path(get, path = "/v1/incidents", tag = "incidents",
    responses((status = 200, description = "The breach register: every incident, notified or not (GDPR Art. 33(5))", body = IncidentRegister),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Caller may not manage incidents", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn incident_register(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
) -> AppResult<Json<IncidentRegister>> {
    Ok(Json(state.vault.incident_register(&caller, Timestamp::now()).await?))
}

/// The incident as answered, with the collections now in read-only mode.
async fn answer(state: &AppState, incident: Incident) -> AppResult<Json<Incident>> {
    Ok(Json(state.vault.incident_with_modes(incident).await?))
}

#[utoipa::path(get, path = "/v1/incidents/{incident_id}", tag = "incidents",
    params(("incident_id" = String, Path, description = "inc_ and 32 hex digits")),
    responses((status = 200, description = "The incident: timeline, tasks, duties with their countdowns, latest scope", body = Incident),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Caller may not manage incidents", body = ErrorBody),
              (status = 404, description = "No such incident", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn incident(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(incident_id): ApiPath<String>,
) -> AppResult<Json<Incident>> {
    let incident = state.vault.incident(&caller, Timestamp::now(), &incident_id).await?;
    answer(&state, incident).await
}

#[utoipa::path(post, path = "/v1/incidents/{incident_id}/entries", tag = "incidents", request_body = IncidentEntryRequest,
    params(("incident_id" = String, Path, description = "inc_ and 32 hex digits")),
    responses((status = 200, description = "Added to the timeline", body = Incident),
              (status = 400, description = "Malformed entry", body = ErrorBody),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Caller may not manage incidents", body = ErrorBody),
              (status = 404, description = "No such incident or task", body = ErrorBody),
              (status = 409, description = "The task is already done", body = ErrorBody),
              (status = 422, description = "A text with control or invisible characters (`invalid_text`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn add_entry(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(incident_id): ApiPath<String>,
    ApiJson(body): ApiJson<IncidentEntryRequest>,
) -> AppResult<Json<Incident>> {
    let incident = state
        .vault
        .add_incident_entry(&caller, Timestamp::now(), &incident_id, &body)
        .await?;
    answer(&state, incident).await
}

#[utoipa::path(post, path = "/v1/incidents/{incident_id}/phase", tag = "incidents", request_body = IncidentPhaseRequest,
    params(("incident_id" = String, Path, description = "inc_ and 32 hex digits")),
    responses((status = 200, description = "Moved (NIST SP 800-61 phases)", body = Incident),
              (status = 400, description = "Unknown phase", body = ErrorBody),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Caller may not manage incidents", body = ErrorBody),
              (status = 404, description = "No such incident", body = ErrorBody),
              (status = 422, description = "A text with control or invisible characters (`invalid_text`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn set_phase(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(incident_id): ApiPath<String>,
    ApiJson(body): ApiJson<IncidentPhaseRequest>,
) -> AppResult<Json<Incident>> {
    let incident = state
        .vault
        .set_incident_phase(&caller, Timestamp::now(), &incident_id, &body)
        .await?;
    answer(&state, incident).await
}

#[utoipa::path(post, path = "/v1/incidents/{incident_id}/risk", tag = "incidents", request_body = IncidentRiskRequest,
    params(("incident_id" = String, Path, description = "inc_ and 32 hex digits")),
    responses((status = 200, description = "Assessed; the duties follow", body = Incident),
              (status = 400, description = "Unknown risk or missing reason", body = ErrorBody),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Caller may not manage incidents", body = ErrorBody),
              (status = 404, description = "No such incident", body = ErrorBody),
              (status = 422, description = "A text with control or invisible characters (`invalid_text`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn assess_risk(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(incident_id): ApiPath<String>,
    ApiJson(body): ApiJson<IncidentRiskRequest>,
) -> AppResult<Json<Incident>> {
    let incident = state
        .vault
        .assess_incident_risk(&caller, Timestamp::now(), &incident_id, &body)
        .await?;
    answer(&state, incident).await
}

#[utoipa::path(post, path = "/v1/incidents/{incident_id}/scope", tag = "incidents", request_body = ScopeRequest,
    params(("incident_id" = String, Path, description = "inc_ and 32 hex digits")),
    responses((status = 200, description = "The blast radius from the audit log: subjects, categories, records, forms, jurisdictions", body = Scope),
              (status = 400, description = "Malformed period or names", body = ErrorBody),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Caller may not manage incidents", body = ErrorBody),
              (status = 404, description = "No such incident", body = ErrorBody),
              (status = 422, description = "Unknown collection, unknown principal, or nothing named (`invalid_scope`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn scope(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(incident_id): ApiPath<String>,
    ApiJson(body): ApiJson<ScopeRequest>,
) -> AppResult<Json<Scope>> {
    Ok(Json(
        state
            .vault
            .incident_scope(&caller, Timestamp::now(), &incident_id, &body)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/incidents/{incident_id}/notifications", tag = "incidents", request_body = NotificationSentRequest,
    params(("incident_id" = String, Path, description = "inc_ and 32 hex digits")),
    responses((status = 200, description = "Recorded as sent", body = Incident),
              (status = 400, description = "Malformed time or reference", body = ErrorBody),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Caller may not manage incidents", body = ErrorBody),
              (status = 404, description = "No such incident", body = ErrorBody),
              (status = 422, description = "Not a law of the organization, or nobody that law notifies; sent_at in the future or before aware_at (`invalid_time`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn notification_sent(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(incident_id): ApiPath<String>,
    ApiJson(body): ApiJson<NotificationSentRequest>,
) -> AppResult<Json<Incident>> {
    let incident = state
        .vault
        .record_notification(&caller, Timestamp::now(), &incident_id, &body)
        .await?;
    answer(&state, incident).await
}

#[utoipa::path(post, path = "/v1/incidents/{incident_id}/containment", tag = "incidents", request_body = ContainmentRequest,
    params(("incident_id" = String, Path, description = "inc_ and 32 hex digits")),
    responses((status = 200, description = "Done and recorded on the timeline", body = ContainmentResponse),
              (status = 202, description = "Root key rotation started (re-wrapping runs in the background)", body = ContainmentResponse),
              (status = 400, description = "Unknown action or missing target", body = ErrorBody),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Caller may not manage incidents, or not what the action needs", body = ErrorBody),
              (status = 404, description = "No such incident, principal or operator", body = ErrorBody),
              (status = 409, description = "Nothing to change, or a rotation is running", body = ErrorBody),
              (status = 422, description = "Unknown collection", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn contain(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(incident_id): ApiPath<String>,
    ApiJson(body): ApiJson<ContainmentRequest>,
) -> AppResult<(StatusCode, Json<ContainmentResponse>)> {
    let now = Timestamp::now();
    if body.action != "rotate_root_key" {
        let done = state.vault.contain(&caller.0, now, &incident_id, &body).await?;
        return Ok((StatusCode::OK, Json(done)));
    }
    // The rotation runs in this server's background; refused first if there is no incident
    // or the caller may not manage incidents, or if a target is given (it has none: a target
    // would be ignored, as if it had been acted on).
    state.vault.incident(&caller.0, now, &incident_id).await?;
    if body.target.is_some() {
        return Err(ApiError::from(
            custodia_core::VaultError::bad_request(
                "target_not_taken",
                "rotate_root_key takes no target: it rotates the vault's one root key",
            )
            .with_field("target"),
        ));
    }
    let Caller(principal) = &caller;
    let principal = principal.clone();
    let (_, Json(status)) =
        crate::operators::rotate_keys(State(Arc::clone(&state)), caller, crate::extract::NoBody).await?;
    let done = format!(
        "Root key rotation to version {} started: every subject key is re-wrapped in the background",
        status
            .rotation
            .as_ref()
            .map_or(status.current_version, |r| r.to_version)
    );
    state
        .vault
        .record_containment(&principal, now, &incident_id, &done)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ContainmentResponse {
            action: body.action,
            target: None,
            done,
        }),
    ))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DraftQuery {
    /// The breach law whose authority is notified (default: the first of the
    /// organization's laws with one).
    law: Option<String>,
}

fn markdown(text: String) -> Response {
    ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], text).into_response()
}

#[utoipa::path(get, path = "/v1/incidents/{incident_id}/drafts/authority", tag = "incidents",
    params(("incident_id" = String, Path, description = "inc_ and 32 hex digits"), DraftQuery),
    responses((status = 200, description = "A draft of the notification to the authority (GDPR Art. 33(3) contents), Markdown, from the data directory's incident-templates/authority.md or the built-in one", content_type = "text/markdown"),
              (status = 400, description = "Malformed query", body = ErrorBody),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Caller may not manage incidents", body = ErrorBody),
              (status = 404, description = "No such incident", body = ErrorBody),
              (status = 422, description = "No such duty, or the template is invalid", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn authority_draft(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(incident_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<DraftQuery>,
) -> AppResult<Response> {
    let text = state
        .vault
        .incident_draft(
            &caller,
            Timestamp::now(),
            &incident_id,
            Draft::Authority(query.law.as_deref()),
        )
        .await?;
    Ok(markdown(text))
}

#[utoipa::path(get, path = "/v1/incidents/{incident_id}/drafts/subjects/{subject_id}", tag = "incidents",
    params(("incident_id" = String, Path, description = "inc_ and 32 hex digits"),
           ("subject_id" = String, Path, description = "A subject the latest scope found", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$")),
    responses((status = 200, description = "A draft of the letter to one person affected (GDPR Art. 34(2), plain language), Markdown", content_type = "text/markdown"),
              (status = 400, description = "Malformed subject id", body = ErrorBody),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Caller may not manage incidents", body = ErrorBody),
              (status = 404, description = "No such incident, or the subject is not in its scope", body = ErrorBody),
              (status = 409, description = "No scope computed yet", body = ErrorBody),
              (status = 422, description = "The template is invalid", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn subject_draft(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath((incident_id, subject_id)): ApiPath<(String, String)>,
) -> AppResult<Response> {
    let text = state
        .vault
        .incident_draft(&caller, Timestamp::now(), &incident_id, Draft::Subject(&subject_id))
        .await?;
    Ok(markdown(text))
}
