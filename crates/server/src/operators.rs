//! Operators (people) and the root key over HTTP: creation, enrolment, login and logout,
//! training attestations; key status, rotation (re-wrapping in the background while the
//! server keeps serving) and retirement.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use custodia_core::Timestamp;
use custodia_types::{
    AccessReview, BreakGlassGrant, BreakGlassRequest, ConfirmEnrolmentRequest, CreateOperatorRequest,
    CreateOperatorResponse, EnrolRequest, EnrolResponse, ErrorBody, KeyStatus, LoginRequest, LoginResponse,
    OperatorInfo, OperatorList, RotationProgress, TrainingRequest,
};
use zeroize::Zeroizing;

use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, KeptTexts, NoBody, TextJson};
use crate::{ApiError, AppState};

type AppResult<T> = Result<T, ApiError>;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/operators", post(create_operator).get(list_operators))
        .route("/v1/operators/enrol", post(enrol))
        .route("/v1/operators/enrol/confirm", post(confirm_enrolment))
        .route("/v1/operators/{operator_id}/training", post(record_training))
        .route("/v1/operators/{operator_id}/disable", post(disable_operator))
        .route("/v1/login", post(login))
        .route("/v1/break-glass", post(break_glass))
        .route("/v1/access-review", get(access_review))
        .route("/v1/logout", post(logout))
        .route("/v1/keys", get(key_status))
        .route("/v1/keys/rotate", post(rotate_keys))
        .route("/v1/keys/versions/{version}/retire", post(retire_key_version))
}

/// The rotation this server runs in the background, if one was started since it started.
#[derive(Default)]
pub(crate) struct Rotation(Mutex<Option<RotationProgress>>);

impl Rotation {
    fn get(&self) -> Option<RotationProgress> {
        self.0.lock().ok().and_then(|p| p.clone())
    }

    fn update(&self, f: impl FnOnce(&mut RotationProgress)) {
        if let Ok(mut slot) = self.0.lock()
            && let Some(progress) = slot.as_mut()
        {
            f(progress);
        }
    }

    /// Claims the slot for a new run; false while one is running.
    fn claim(&self, progress: RotationProgress) -> bool {
        let Ok(mut slot) = self.0.lock() else { return false };
        if slot.as_ref().is_some_and(|p| p.state == "running") {
            return false;
        }
        *slot = Some(progress);
        true
    }
}

#[utoipa::path(post, path = "/v1/operators", tag = "operators", request_body = CreateOperatorRequest,
    responses((status = 201, description = "Created; the enrolment code is shown once", body = CreateOperatorResponse),
              (status = 400, description = "Malformed body or name", body = ErrorBody),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Caller may not manage operators or grant a role", body = ErrorBody),
              (status = 409, description = "An operator of that name exists", body = ErrorBody),
              (status = 422, description = "Unknown role", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_operator(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<CreateOperatorRequest>,
) -> AppResult<(StatusCode, Json<CreateOperatorResponse>)> {
    let created = state
        .vault
        .create_operator(&caller, Timestamp::now(), &body.name, &body.roles)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateOperatorResponse {
            operator_id: created.operator_id,
            name: body.name,
            enrolment_code: created.enrolment_code.to_string(),
            enrolment_expires_at: created.enrolment_expires_at.to_rfc3339(),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/operators", tag = "operators",
    responses((status = 200, description = "Every operator with their training state", body = OperatorList),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Caller may not manage operators", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_operators(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
) -> AppResult<Json<OperatorList>> {
    Ok(Json(OperatorList {
        operators: state.vault.list_operators(&caller, Timestamp::now()).await?,
    }))
}

#[utoipa::path(post, path = "/v1/operators/enrol", tag = "operators", request_body = EnrolRequest,
    responses((status = 200, description = "Password set; add this TOTP secret to an authenticator, then confirm with a code", body = EnrolResponse),
              (status = 400, description = "Malformed body", body = ErrorBody),
              (status = 401, description = "Unknown name, wrong or expired enrolment code", body = ErrorBody),
              (status = 422, description = "The password is too weak", body = ErrorBody)))]
pub(crate) async fn enrol(
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<EnrolRequest>,
) -> AppResult<Json<EnrolResponse>> {
    let EnrolRequest {
        name,
        enrolment_code,
        password,
    } = body;
    let (uri, secret) = state
        .vault
        .enrol_operator(Timestamp::now(), &name, &enrolment_code, Zeroizing::new(password))
        .await?;
    Ok(Json(EnrolResponse {
        otpauth_uri: uri.to_string(),
        secret: secret.to_string(),
    }))
}

#[utoipa::path(post, path = "/v1/operators/enrol/confirm", tag = "operators", request_body = ConfirmEnrolmentRequest,
    responses((status = 204, description = "Enrolled: the operator may log in"),
              (status = 400, description = "Malformed body", body = ErrorBody),
              (status = 401, description = "Unknown name, wrong or expired enrolment code, or a code that does not match", body = ErrorBody),
              (status = 409, description = "No password set yet", body = ErrorBody)))]
pub(crate) async fn confirm_enrolment(
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<ConfirmEnrolmentRequest>,
) -> AppResult<StatusCode> {
    state
        .vault
        .confirm_enrolment(Timestamp::now(), &body.name, &body.enrolment_code, &body.code)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/login", tag = "operators", request_body = LoginRequest,
    responses((status = 200, description = "A session token", body = LoginResponse),
              (status = 400, description = "Malformed body", body = ErrorBody),
              (status = 401, description = "Invalid name, password or code (a code works once)", body = ErrorBody),
              (status = 429, description = "Locked after repeated failures, until the time given", body = ErrorBody)))]
pub(crate) async fn login(
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> AppResult<Json<LoginResponse>> {
    let LoginRequest { name, password, code } = body;
    let session = state
        .vault
        .login(Timestamp::now(), &name, Zeroizing::new(password), &code)
        .await?;
    Ok(Json(LoginResponse {
        operator_id: session.operator_id,
        token: session.token.to_string(),
        expires_at: session.expires_at.to_rfc3339(),
        training_due: session.training_due,
    }))
}

#[utoipa::path(post, path = "/v1/logout", tag = "operators",
    responses((status = 204, description = "The session ended"),
              (status = 400, description = "A request body (the route takes none)", body = ErrorBody),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 422, description = "The caller is an API key, not a session (`not_a_session`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn logout(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    _: NoBody,
) -> AppResult<StatusCode> {
    state.vault.logout(&caller, Timestamp::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/operators/{operator_id}/training", tag = "operators", request_body = TrainingRequest,
    params(("operator_id" = String, Path, description = "Operator id (`opr_...`) or name")),
    responses((status = 200, description = "Recorded; the operator's state", body = OperatorInfo),
              (status = 400, description = "Malformed body", body = ErrorBody),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Caller may not manage operators, or attests their own training", body = ErrorBody),
              (status = 404, description = "No such operator", body = ErrorBody),
              (status = 422, description = "Unknown course, or a completion in the future", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn record_training(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(operator_id): ApiPath<String>,
    ApiJson(body): ApiJson<TrainingRequest>,
) -> AppResult<Json<OperatorInfo>> {
    let completed_at = body
        .completed_at
        .as_deref()
        .map(|t| {
            Timestamp::parse_rfc3339(t).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_completed_at",
                    "completed_at must be an RFC 3339 time such as 2026-11-30T09:00:00Z",
                )
            })
        })
        .transpose()?;
    Ok(Json(
        state
            .vault
            .record_training(&caller, Timestamp::now(), &operator_id, &body.course, completed_at)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/operators/{operator_id}/disable", tag = "operators",
    params(("operator_id" = String, Path, description = "Operator id (`opr_...`) or name")),
    responses((status = 204, description = "Disabled; their sessions ended"),
              (status = 400, description = "A request body (the route takes none)", body = ErrorBody),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Caller may not manage operators or grant their roles", body = ErrorBody),
              (status = 404, description = "No such operator", body = ErrorBody),
              (status = 409, description = "Already disabled", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn disable_operator(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(operator_id): ApiPath<String>,
    _: NoBody,
) -> AppResult<StatusCode> {
    state
        .vault
        .disable_operator(&caller, Timestamp::now(), &operator_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/break-glass", tag = "operators", request_body = BreakGlassRequest,
    responses((status = 201, description = "The role is the session's until `expires_at`; loud: flagged in the audit log and in access reviews", body = BreakGlassGrant),
              (status = 400, description = "Malformed body or reason", body = ErrorBody),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Not an operator's session, or a role the registry does not allow for break-glass", body = ErrorBody),
              (status = 409, description = "A grant is already active in this session (`break_glass_active`)", body = ErrorBody),
              (status = 422, description = "Minutes out of range, or a reason that is blank, too long, holds invisible characters or personal data", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn break_glass(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    TextJson(body): TextJson<BreakGlassRequest>,
) -> AppResult<(StatusCode, Json<BreakGlassGrant>)> {
    let now = Timestamp::now();
    let row = state
        .vault
        .break_glass(&caller, now, &body.role, &body.reason, body.minutes)
        .await?;
    let alert = serde_json::json!({
        "kind": "break_glass",
        "grant_id": row.grant_id,
        "operator_id": row.operator_id,
        "operator": caller.name,
        "role": row.role,
        "reason": row.reason,
        "expires_at": Timestamp(row.expires_at).to_rfc3339(),
        "at": now.to_rfc3339(),
    });
    if let Some(hook) = state.vault.alert(now, &alert)? {
        send_alert(hook);
    }
    Ok((
        StatusCode::CREATED,
        Json(BreakGlassGrant {
            grant_id: row.grant_id,
            operator_id: row.operator_id,
            role: row.role,
            reason: row.reason,
            started_at: Timestamp(row.started_at).to_rfc3339(),
            expires_at: Timestamp(row.expires_at).to_rfc3339(),
        }),
    ))
}

/// Sends an alert in the background, trying again after 2, 4, 8 and 16 seconds (the audit
/// log holds the record either way); a failure is logged at each attempt.
pub(crate) fn send_alert(hook: custodia_core::Webhook) {
    use custodia_core::WebhookSender;
    tokio::spawn(async move {
        for attempt in 0..5u32 {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_secs(1 << attempt)).await;
            }
            match crate::notify::HttpSender.send(hook.clone()).await {
                custodia_core::SendOutcome::Status(status) if (200..300).contains(&status) => return,
                outcome => tracing::error!(
                    ?outcome,
                    attempt,
                    "an alert could not be delivered to [operators] alert_webhook"
                ),
            }
        }
    });
}

/// The period of an access review.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReviewPeriod {
    /// Start, RFC 3339 (default: 30 days before `to`).
    #[param(format = DateTime)]
    from: Option<String>,
    /// End, RFC 3339, exclusive (default: now).
    #[param(format = DateTime)]
    to: Option<String>,
}

#[utoipa::path(get, path = "/v1/access-review", tag = "operators", params(ReviewPeriod),
    responses((status = 200, description = "Per principal: purposes, collections, subjects, denials, break-glass, unused permissions, stale keys", body = AccessReview),
              (status = 400, description = "Malformed period", body = ErrorBody),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 422, description = "`from` not before `to`", body = ErrorBody),
              (status = 403, description = "Caller may not read the audit log", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn access_review(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiQuery(period): ApiQuery<ReviewPeriod>,
) -> AppResult<Json<AccessReview>> {
    let now = Timestamp::now();
    let (from, to) = review_period(period.from.as_deref(), period.to.as_deref(), now)?;
    Ok(Json(state.vault.access_review(&caller, now, from, to).await?))
}

/// An access review's period from optional RFC 3339 bounds: by default the 30 days to now.
pub(crate) fn review_period(
    from: Option<&str>,
    to: Option<&str>,
    now: Timestamp,
) -> Result<(Timestamp, Timestamp), ApiError> {
    let parse = |name: &str, text: Option<&str>| {
        text.map(|t| {
            Timestamp::parse_rfc3339(t).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_period",
                    format!("`{name}` must be an RFC 3339 time such as 2026-11-01T00:00:00Z"),
                )
            })
        })
        .transpose()
    };
    let to = parse("to", to)?.unwrap_or(now);
    let from = parse("from", from)?.unwrap_or(Timestamp(to.0 - 30 * 86_400_000));
    Ok((from, to))
}

#[utoipa::path(get, path = "/v1/keys", tag = "keys",
    responses((status = 200, description = "Root key versions, what each wraps, and a running rotation", body = KeyStatus),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Caller may not manage keys", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn key_status(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
) -> AppResult<Json<KeyStatus>> {
    // The progress is read first: a rotation it calls done has committed its last batch
    // before the counts below are read.
    let rotation = state.rotation.get();
    let mut status = state.vault.read_key_status(&caller, Timestamp::now()).await?;
    status.rotation = rotation;
    Ok(Json(status))
}

#[utoipa::path(post, path = "/v1/keys/rotate", tag = "keys",
    responses((status = 202, description = "A new root key version is in force (or an unfinished rotation resumes); every key is being re-wrapped in the background", body = KeyStatus),
              (status = 400, description = "A request body (the route takes none)", body = ErrorBody),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Caller may not manage keys", body = ErrorBody),
              (status = 409, description = "A rotation is running, or the key source cannot add a version", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn rotate_keys(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    _: NoBody,
) -> AppResult<(StatusCode, Json<KeyStatus>)> {
    let now = Timestamp::now();
    let placeholder = RotationProgress {
        to_version: 0,
        state: "running".into(),
        rewrapped: 0,
        started_at: now.to_rfc3339(),
        error: None,
    };
    let started = state
        .vault
        .start_rotation(&caller, now, || state.rotation.claim(placeholder))
        .await;
    let (version, _) = match started {
        Ok(v) => v,
        // Refused before the slot was claimed (403), or the slot was taken (409): the running
        // rotation's progress stays as it is.
        Err(e) if e.code == "rotation_running" || e.kind == custodia_core::ErrorKind::Forbidden => {
            return Err(e.into());
        }
        Err(e) => {
            state.rotation.update(|p| {
                p.state = "failed".into();
                p.error = Some(e.message.clone());
            });
            return Err(e.into());
        }
    };
    state.rotation.update(|p| p.to_version = version);
    let background = Arc::clone(&state);
    tokio::spawn(async move { rewrap_all(&background).await });
    let rotation = state.rotation.get();
    let mut status = state.vault.key_status(now).await?;
    status.rotation = rotation;
    Ok((StatusCode::ACCEPTED, Json(status)))
}

/// Re-wraps every subject key, batch by batch, noting progress for `GET /v1/keys`.
async fn rewrap_all(state: &AppState) {
    let done = state
        .vault
        .rewrap_all(|batch| state.rotation.update(|p| p.rewrapped += batch.rewrapped))
        .await;
    match done {
        Ok(_) => {
            tracing::info!("root key rotation finished: every key is wrapped under the current version");
            state.rotation.update(|p| p.state = "done".into());
        }
        Err(e) => {
            tracing::error!(error = %e, "root key rotation stopped; rotate again to resume");
            state.rotation.update(|p| {
                p.state = "failed".into();
                p.error = Some(e.message.clone());
            });
        }
    }
}

#[utoipa::path(post, path = "/v1/keys/versions/{version}/retire", tag = "keys",
    params(("version" = u32, Path, description = "Root key version")),
    responses((status = 200, description = "Retired: removed from the key source", body = KeyStatus),
              (status = 400, description = "Malformed version; a request body (the route takes none)", body = ErrorBody),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Caller may not manage keys", body = ErrorBody),
              (status = 404, description = "No such version", body = ErrorBody),
              (status = 409, description = "The current version, or one still wrapping keys, or a key source custodia cannot change", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn retire_key_version(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(version): ApiPath<u32>,
    _: NoBody,
) -> AppResult<Json<KeyStatus>> {
    Ok(Json(state.vault.retire_key(&caller, Timestamp::now(), version).await?))
}

/// A break-glass reason goes into the audit log and the alert.
impl KeptTexts for BreakGlassRequest {
    fn kept_texts(&self) -> Vec<(&'static str, &str)> {
        vec![("reason", &self.reason)]
    }
}
