//! Extractors that turn every malformed request into the JSON error shape, and the bearer
//! authentication of callers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, RawPathParams, Request};
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
        Ok(Self(parse_json(&body_bytes(req, state).await?)?))
    }
}

/// The free texts of a body that are kept in the clear, outside any subject's encryption (a
/// request's record, a legal hold, the audit log): an operator's words, which must name no
/// one. Each is `(field, text)`.
pub(crate) trait KeptTexts {
    fn kept_texts(&self) -> Vec<(&'static str, &str)>;
}

/// A JSON body ([`ApiJson`]) whose kept texts hold no personal data that the scanner finds
/// (422 `text_has_personal_data`, naming the field, never echoing the text).
pub(crate) struct TextJson<T>(pub T);

impl<T: DeserializeOwned + KeptTexts + Send> FromRequest<Arc<AppState>> for TextJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        // who asks, and where (their `Caller` ran first): a text refused is audited
        let who = req.extensions().get::<Authenticated>().map(|a| a.0.clone());
        let route = route_of(req.extensions());
        let ApiJson(body) = ApiJson::<T>::from_request(req, state).await?;
        for (field, text) in body.kept_texts() {
            // a version of the vault's own notice is its digest, whose hex digits can run like
            // a number (the example's notice was refused as the version it was consented to)
            if field == "notice_version"
                && text.starts_with("sha256-")
                && state.vault.notice_version(text).await.ok().flatten().is_some()
            {
                continue;
            }
            if let Err(e) = free_of_personal_data(state, text, field) {
                if let Some(who) = &who {
                    refused_text(state, who, field, &route).await?;
                }
                return Err(e);
            }
        }
        Ok(Self(body))
    }
}

/// The subject id in the route's path (`{subject_id}`), if it has one.
async fn path_subject(parts: &mut Parts, state: &Arc<AppState>) -> Option<String> {
    RawPathParams::from_request_parts(parts, state)
        .await
        .ok()
        .and_then(|params| {
            params
                .iter()
                .find(|(k, _)| *k == "subject_id")
                .map(|(_, v)| v.to_owned())
        })
}

/// The principal a request was authenticated as, for extractors that run after [`Caller`].
#[derive(Clone)]
pub(crate) struct Authenticated(pub(crate) custodia_core::Principal);

/// The route a request matched, as its path template (never the path: it holds ids).
fn route_of(extensions: &axum::http::Extensions) -> String {
    extensions
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "(no route)".to_owned(), |m| m.as_str().to_owned())
}

/// Audits a text refused for the personal data it holds (an audit failure fails the request,
/// as for every other decision).
async fn refused_text(
    state: &AppState,
    who: &custodia_core::Principal,
    field: &str,
    route: &str,
) -> Result<(), ApiError> {
    state
        .vault
        .audit_refused_text(who, custodia_core::Timestamp::now(), field, route)
        .await
        .map_err(ApiError::from)
}

/// A JSON body that may be left out (no body, as the document says of an optional one:
/// `required: false`, its schema an object): then `T::default()`. `null` is no such object
/// (refused as malformed).
pub(crate) struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.is_empty() {
            return Ok(Self(T::default()));
        }
        Ok(Self(parse_json(&bytes)?))
    }
}

/// The body of a route that takes none: nothing, `{}` or `null`; anything else
/// is refused (400 `unexpected_body`) before the route acts, so that a malformed call to a
/// route that rotates a key or disables an operator does nothing.
pub(crate) struct NoBody;

impl<S: Send + Sync> FromRequest<S> for NoBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        let empty_object =
            || serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes).is_ok_and(|m| m.is_empty());
        if left_out(&bytes) || empty_object() {
            Ok(Self)
        } else {
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unexpected_body",
                "this route takes no request body (send none, or `{}`)",
            ))
        }
    }
}

/// Whether a route that takes no body was sent none: nothing, or `null`.
/// White space alone is no JSON document: refused as malformed (schemathesis sends `\n` and
/// expects a 400), not read as a body left out.
fn left_out(bytes: &[u8]) -> bool {
    bytes.is_empty() || bytes.trim_ascii() == b"null"
}

/// The request body, at most `MAX_BODY_BYTES`.
async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e: BytesRejection| {
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
                format!(
                    "the request body could not be read whole (it must arrive within {} s)",
                    crate::stall::BODY_READ.as_secs()
                ),
            )
        }
    })
}

/// One JSON value of type `T`; malformed JSON, wrong types and unknown keys are 400s.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body is an object. serde would also fill a struct from an array, field by field
    // in order (`[null, null]`), which the documented schema does not allow.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "invalid JSON body: it must be a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // Read with the path to where it failed, so that the message names the place
    // (`items[3].fields`), not only a line and column.
    let first = match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => de.end().map(|()| v).map_err(|e| (String::new(), e)),
        Err(e) => Err((shown_path(e.path()), e.into_inner())),
    };
    let first = match first {
        // JSON has one number type: `3.0` is an integer to JSON Schema (and to the document),
        // not to serde. A second reading with such numbers made integers, only on failure.
        Err((path, e)) if e.classify() == serde_json::error::Category::Data => integral_again(bytes).ok_or((path, e)),
        other => other,
    };
    first.map_err(|(path, e)| {
        // serde_json's message names the key or type at fault and the position, not values.
        let at = if path.is_empty() {
            String::new()
        } else {
            format!(" at `{path}`")
        };
        let mut error = ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("invalid JSON body{at}: {}", json_error(&e)),
        );
        // (the place in `field` too, as other refusals name theirs)
        error.field = (!path.is_empty()).then_some(path);
        error
    })
}

/// Where in a body a value is, as `items[3].fields.email`: keys only as the no-echo rule
/// allows names ([`custodia_core::nameable`], else `(name withheld)`), indexes as they are.
fn shown_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        let name = match segment {
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                continue;
            }
            Segment::Map { key } | Segment::Enum { variant: key } if custodia_core::nameable(key, false) => key,
            Segment::Map { .. } | Segment::Enum { .. } => custodia_core::WITHHELD_NAME,
            Segment::Unknown => "?",
        };
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(name);
    }
    out
}

/// The body read again with every integral float (`3.0`, `-0.0`) an integer; `None` if none
/// was, or if it still does not fit `T`.
fn integral_again<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    fn integral(value: &mut serde_json::Value) -> bool {
        match value {
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                    // Exact: below 2^53 every integer is a float and back.
                    #[allow(clippy::cast_possible_truncation)]
                    let i = f as i64;
                    *n = i.into();
                    true
                }
                _ => false,
            },
            serde_json::Value::Array(items) => items.iter_mut().fold(false, |any, v| integral(v) | any),
            serde_json::Value::Object(map) => map.values_mut().fold(false, |any, v| integral(v) | any),
            _ => false,
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if !integral(&mut value) {
        return None;
    }
    T::deserialize(value).ok()
}

/// A message for a JSON error that never echoes input values.
fn json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            format!("malformed JSON at line {} column {}", e.line(), e.column())
        }
        Category::Data => {
            // serde_json appends " at line L column C" to data errors.
            let msg = e.to_string();
            let what = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(what, _)| what);
            format!("{} at line {} column {}", serde_message(what), e.line(), e.column())
        }
    }
}

/// A serde data error's message that repeats no input: an unknown key or variant is named
/// only by the one rule of [`custodia_core::quoted_name`] (a lower-case identifier, else "an
/// unknown field"), and the values of "invalid type" and "invalid value" are dropped. The
/// "expected ..." part comes from the schema. Anything else is a fixed text.
fn serde_message(msg: &str) -> String {
    // The expected part is the text after the last ", expected ": input comes before it.
    let expected = |rest: &str| {
        rest.rsplit_once(", expected ")
            .map(|(_, expected)| format!("; expected {expected}"))
            .unwrap_or_default()
    };
    for (prefix, what) in [("unknown field `", "field"), ("unknown variant `", "variant")] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            let name = rest
                .rsplit_once("`, expected ")
                .map_or(rest.trim_end_matches('`'), |(n, _)| n);
            let shown = if custodia_core::nameable(name, false) {
                format!("unknown {what} `{name}`")
            } else if what == "field" {
                custodia_core::UNKNOWN_FIELD.to_owned()
            } else {
                "an unknown variant".to_owned()
            };
            return format!("{shown}{}", expected(rest));
        }
    }
    if msg.starts_with("invalid type") || msg.starts_with("invalid value") {
        let expected = msg.rsplit_once(", expected ").map_or("another type", |(_, e)| e);
        return format!("wrong type: expected {expected}");
    }
    // Messages that hold only schema names and numbers.
    let schema_only = [
        "missing field `",
        "duplicate field `",
        "invalid length ",
        "a key is given twice",
    ];
    if schema_only.iter().any(|p| msg.starts_with(p)) {
        return msg.to_owned();
    }
    // a number parameter that is not one (the parameter is named beside it)
    let not_a_number = [
        "invalid digit found in string",
        "cannot parse integer from empty string",
        "invalid float literal",
    ];
    if not_a_number.contains(&msg) {
        return "expected a whole number".to_owned();
    }
    if msg.starts_with("number too large") || msg.starts_with("number too small") {
        return "expected a whole number within range".to_owned();
    }
    "a value does not fit the expected shape".to_owned()
}

/// Path parameters, with a JSON error when they cannot be decoded.
pub(crate) struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| Self(v))
            // The rejection's text can quote the path; it is not repeated.
            .map_err(|_: PathRejection| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", "the path could not be decoded")
            })
    }
}

/// Query parameters; unknown or malformed ones are 400s naming the parameter.
pub(crate) struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Read as axum's `Query` reads it, with the path to where it failed, so that the
        // message names the parameter (`from`: "invalid digit found in string" alone did not).
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(Self).map_err(|e| {
            let text = serde_message(&e.inner().to_string());
            if text.contains("missing field `purpose`") {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "missing_purpose",
                    "every data call must name a purpose (`purpose` query parameter)",
                );
            }
            let at = shown_path(e.path());
            let message = if at.is_empty() || at == "?" {
                format!("invalid query: {text}")
            } else {
                format!("invalid query parameter `{at}`: {text}")
            };
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message)
        })
    }
}

/// SHA-256 of the client certificate the request's TLS connection presented (mTLS).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientCert(pub [u8; 32]);

/// The authenticated caller, from `Authorization: Bearer <api key>`.
pub(crate) struct Caller(pub Principal);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    /// Every 401 is noted for the audit log by the key id presented (never the secret).
    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let caller = Self::authenticate(parts, state).await;
        if let Err(e) = &caller
            && e.status == StatusCode::UNAUTHORIZED
        {
            let presented = parts
                .headers
                .get(axum::http::header::AUTHORIZATION)
                .map(|h| h.to_str().unwrap_or_default().trim_start_matches("Bearer ").trim());
            state
                .vault
                .authentication_failed(presented, custodia_core::Timestamp::now());
        }
        caller
    }
}

impl Caller {
    async fn authenticate(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        if parts.headers.get_all(axum::http::header::AUTHORIZATION).iter().count() > 1 {
            // one key: a proxy adding its own behind the client's would lend it the client's,
            // or the other way round, depending on which one is read (review)
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_authorization",
                "Authorization is sent more than once",
            ));
        }
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
        let presented = parts
            .extensions
            .get::<Option<ClientCert>>()
            .copied()
            .flatten()
            .map(|c| c.0);
        let mut principal = state
            .vault
            .authenticate_over(token, custodia_core::Timestamp::now(), presented.as_ref())
            .await?;
        if parts.headers.get_all("custodia-justification").iter().count() > 1 {
            // one reason, recorded as given: a second would be dropped unseen
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_justification",
                "Custodia-Justification is sent more than once",
            ));
        }
        if principal.operator.is_some()
            && let Some(value) = parts.headers.get("custodia-justification").cloned()
        {
            // (the subject in the route's path: a reason naming it would put its id in the
            // clear into every entry of the call, where the log names subjects by keyed digest)
            let subject = path_subject(parts, state).await;
            let given = justification(state, &value, subject.as_deref());
            if let Err(e) = &given
                && e.code == "text_has_personal_data"
            {
                refused_text(state, &principal, "justification", &route_of(&parts.extensions)).await?;
            }
            if let Some(session) = principal.operator.as_mut() {
                session.justification = Some(given?);
            }
        }
        if let Some(context) = parts.headers.get("custodia-context") {
            // each once: a second header would be read one way here and maybe another by
            // whatever signed or passed on the first
            for name in ["custodia-context", "custodia-context-signature"] {
                if parts.headers.get_all(name).iter().count() > 1 {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_context",
                        format!("{name} is sent more than once"),
                    ));
                }
            }
            let text = |name: &str, v: &axum::http::HeaderValue| {
                v.to_str().map(str::to_owned).map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_context",
                        format!("{name} must be printable ASCII"),
                    )
                })
            };
            let context = text("Custodia-Context", context)?;
            let signature = match parts.headers.get("custodia-context-signature") {
                Some(v) => Some(text("Custodia-Context-Signature", v)?),
                None => None,
            };
            // A signed context is bound to the subject in the route's path.
            let subject = path_subject(parts, state).await;
            principal.context = state
                .vault
                .accept_context(
                    &principal,
                    custodia_core::Timestamp::now(),
                    &context,
                    signature.as_deref(),
                    subject.as_deref(),
                )
                .await?;
        }
        parts.extensions.insert(Authenticated(principal.clone()));
        Ok(Self(principal))
    }
}

/// An operator's `Custodia-Justification`: one printable line of at most 200 characters
/// that holds no personal data (the audit log keeps it; a ticket number, not a name).
fn justification(state: &AppState, value: &axum::http::HeaderValue, subject: Option<&str>) -> Result<String, ApiError> {
    let text = value.to_str().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_justification",
            "Custodia-Justification must be printable ASCII",
        )
    })?;
    let text = custodia_core::check_justification(text)?;
    free_of_personal_data(state, &text, "justification")?;
    let names_subject = subject.is_some_and(|id| {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
            .any(|word| word.eq_ignore_ascii_case(id))
            || custodia_core::names_subject(&text, id)
    });
    if names_subject {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "text_has_personal_data",
            "the justification names the subject of the call, and the audit log keeps it in the clear (it names subjects by keyed digest): give a ticket number instead",
        );
        e.field = Some("justification".to_owned());
        return Err(e);
    }
    Ok(text)
}

/// Refuses a text an operator gives (`what`: `justification`, `reason`, `verified_by`)
/// that holds personal data: it is kept in the clear (the audit log, a request's record).
fn free_of_personal_data(state: &AppState, text: &str, what: &str) -> Result<(), ApiError> {
    if state.pii.holds_personal_data(text) {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "text_has_personal_data",
            format!(
                "the {what} holds personal data (a name, an email address, a number..., or letters of several scripts in one word), and it is kept in the clear: give a reference (a ticket number) or a description instead"
            ),
        );
        e.field = Some(what.to_owned());
        return Err(e);
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::parse_json;
    use custodia_types::{ConsentRequest, IncidentEntryRequest};

    #[test]
    fn integral_floats_are_integers_and_nested_objects_are_objects() {
        let entry: IncidentEntryRequest =
            parse_json(br#"{"kind": "task_done", "task": 3.0}"#).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(entry.task, Some(3));
        assert!(parse_json::<IncidentEntryRequest>(br#"{"kind": "task_done", "task": 3.5}"#).is_err());
        assert!(parse_json::<IncidentEntryRequest>(br#"{"kind": "task_done", "task": 1e300}"#).is_err());
        let refused = parse_json::<ConsentRequest>(
            br#"{"purpose": "x", "granted": false, "method": "api", "evidence": [null, null]}"#,
        );
        let message = format!("{:?}", refused.err());
        assert!(message.contains("expected an object"), "{message}");
    }

    /// A body's error names where it is, an item by its index, and withholds keys the no-echo
    /// rule withholds.
    #[test]
    fn errors_name_the_place_without_echoing_keys() {
        let message = |body: &str| match parse_json::<custodia_types::BatchCreateRequest>(body.as_bytes()) {
            Ok(_) => panic!("{body} was accepted"),
            Err(e) => format!("{e:?}"),
        };
        let item = r#"{"subject_id": "c1", "collection": "customers", "fields": {"email": "a@example.com"}}"#;
        let m = message(&format!(
            r#"{{"purpose": "p", "items": [{item}, {{"subject_id": "c2", "collection": "customers", "fields": {{"email": 5}}}}]}}"#
        ));
        assert!(m.contains("at `items[1].fields.email`: wrong type"), "{m}");
        let m = message(&format!(
            r#"{{"purpose": "p", "items": [{item}, {item}, {{"subject_id": "c3", "collection": "customers", "fields": {{}}, "nope": 1}}]}}"#
        ));
        assert!(m.contains("at `items[2].nope`: unknown field `nope`"), "{m}");
        let m = message(
            r#"{"purpose": "p", "items": [{"subject_id": "c1", "collection": "customers", "fields": {"Ada Lovelace": 7}}]}"#,
        );
        assert!(
            m.contains("at `items[0].fields.(name withheld)`") && !m.contains("Ada"),
            "{m}"
        );
        let m = match parse_json::<custodia_types::SearchRequest>(
            br#"{"collection": "customers", "field": "email", "value": "x", "purpose": "p", "limit": "10"}"#,
        ) {
            Ok(_) => panic!("a string limit was accepted"),
            Err(e) => format!("{e:?}"),
        };
        assert!(m.contains("at `limit`: wrong type"), "{m}");
    }
}
