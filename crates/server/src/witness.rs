//! `custodia witness`: an independent verifier of a vault's audit log (C2SP tlog-witness). It
//! keeps, for each log key it is configured with, the newest checkpoint it cosigned, and
//! cosigns a new checkpoint only with a consistency proof that the new tree extends it
//! (`custodia_audit::witness` decides; this module is HTTP and durable state). Run it on
//! other hardware, under other administrators: someone who can write the vault's database
//! cannot make it forget what it saw.
//!
//! Routes:
//! - `POST /add-checkpoint`: C2SP tlog-witness; 200 with the cosignature line, 409 with the
//!   witness's size (`text/x.tlog.size`), 422 inconsistent, 403 not signed by a known log,
//!   404 unknown log, 400 malformed.
//! - `GET /checkpoint/{key id}`: the newest checkpoint cosigned for the log whose key id
//!   (8 hex digits) is given, as a cosigned note (a vault reads it when it starts); 204 when
//!   there is none yet, 404 when the witness has no log with that key.
//!
//! Also the vault's side: [`WitnessClient`] submits checkpoints and fetches the newest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use custodia_audit::Hash;
use custodia_audit::note::{NoteSigner, VerifierKey};
use custodia_audit::witness::{AddCheckpoint, WitnessError, Witnessed, add_checkpoint};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex;

/// The state file in the witness's directory.
pub const STATE_FILE: &str = "witness-state.json";

/// A running witness.
pub struct WitnessService {
    signer: NoteSigner,
    logs: Vec<VerifierKey>,
    state_path: PathBuf,
    /// Newest cosigned checkpoint per log key (its verifier key text).
    state: Mutex<BTreeMap<String, Witnessed>>,
}

impl WitnessService {
    /// Loads the witness's state from `dir` (empty when new).
    pub fn open(signer: NoteSigner, logs: Vec<VerifierKey>, dir: &Path) -> Result<Self, String> {
        let state_path = dir.join(STATE_FILE);
        let state = match std::fs::read_to_string(&state_path) {
            Ok(text) => parse_state(&text).map_err(|e| format!("{}: {e}", state_path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("{}: {e}", state_path.display())),
        };
        Ok(Self {
            signer,
            logs,
            state_path,
            state: Mutex::new(state),
        })
    }

    /// The witness's own verifier key (give it to the vault: `serve --witness-key`).
    #[must_use]
    pub fn verifier_key(&self) -> &VerifierKey {
        self.signer.verifier()
    }

    /// Decides a request and, on success, stores the new state durably before answering.
    pub async fn add(&self, body: &str, now_seconds: u64) -> Result<String, WitnessError> {
        let request = AddCheckpoint::parse(body)?;
        // The log is the configured key whose signature the note carries.
        let note =
            custodia_audit::note::Note::parse(&request.note).map_err(|e| WitnessError::Malformed(e.to_string()))?;
        let log = self.logs.iter().find(|k| k.verify(&note).is_ok()).ok_or_else(|| {
            if self
                .logs
                .iter()
                .any(|k| note.text().starts_with(&format!("{}\n", k.name())))
            {
                WitnessError::NotSigned
            } else {
                WitnessError::UnknownLog
            }
        })?;
        let mut state = self.state.lock().await;
        let name = log.to_string();
        let (witnessed, line) = add_checkpoint(log, state.get(&name), &request, &self.signer, now_seconds)?;
        let mut next = state.clone();
        next.insert(name, witnessed);
        write_state(&self.state_path, &next).map_err(|e| {
            tracing::error!(error = %e, "cannot store the witness state");
            WitnessError::Malformed("the witness cannot store its state".into())
        })?;
        *state = next;
        Ok(line)
    }

    /// The newest cosigned checkpoint of the log with this key id: `Err` when no configured
    /// log has that key, `Ok(None)` when it has none yet.
    pub async fn latest(&self, key_id: &str) -> Result<Option<String>, WitnessError> {
        let log = self
            .logs
            .iter()
            .find(|k| k.key_id_hex() == key_id)
            .ok_or(WitnessError::UnknownLog)?;
        Ok(self.state.lock().await.get(&log.to_string()).map(|w| w.note.clone()))
    }
}

fn parse_state(text: &str) -> Result<BTreeMap<String, Witnessed>, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for (key, v) in value["logs"].as_object().into_iter().flatten() {
        let root: Hash = v["root"]
            .as_str()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| r.as_slice().try_into().ok())
            .ok_or("a log's root is malformed")?;
        out.insert(
            key.clone(),
            Witnessed {
                size: v["size"].as_u64().ok_or("a log's size is malformed")?,
                root,
                note: v["note"].as_str().ok_or("a log's note is missing")?.to_owned(),
            },
        );
    }
    Ok(out)
}

/// Writes the state to a temporary file, syncs it and renames it over the old one: a crash
/// leaves the old state or the new, never half of one.
fn write_state(path: &Path, state: &BTreeMap<String, Witnessed>) -> std::io::Result<()> {
    use std::io::Write;
    let logs: serde_json::Map<String, serde_json::Value> = state
        .iter()
        .map(|(k, w)| {
            (
                k.clone(),
                serde_json::json!({"size": w.size, "root": B64.encode(w.root), "note": w.note}),
            )
        })
        .collect();
    let text = serde_json::to_vec_pretty(&serde_json::json!({ "logs": logs }))?;
    let tmp = path.with_extension("json.tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(&text)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The witness's routes.
pub fn router(service: Arc<WitnessService>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add))
        .route("/checkpoint/{key_id}", get(latest))
        .layer(DefaultBodyLimit::max(custodia_audit::note::MAX_NOTE_LEN + 4096))
        .with_state(service)
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn add(State(service): State<Arc<WitnessService>>, body: String) -> Response {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match service.add(&body, now).await {
        Ok(line) => text(StatusCode::OK, "text/plain; charset=utf-8", line),
        Err(WitnessError::Conflict(size)) => text(StatusCode::CONFLICT, "text/x.tlog.size", format!("{size}\n")),
        Err(e) => {
            tracing::warn!(refusal = %e, "checkpoint refused");
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            text(status, "text/plain; charset=utf-8", format!("{e}\n"))
        }
    }
}

async fn latest(State(service): State<Arc<WitnessService>>, UrlPath(key_id): UrlPath<String>) -> Response {
    match service.latest(&key_id).await {
        Ok(Some(note)) => text(StatusCode::OK, "text/plain; charset=utf-8", note),
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "this witness does not witness a log with that key\n".into(),
        ),
    }
}

/// A vault's connection to its witness: `http://host:port` (the checkpoints are public and
/// the cosignatures are what is trusted, so the transport need not be).
#[derive(Debug, Clone)]
pub struct WitnessClient {
    url: String,
    authority: String,
    prefix: String,
    /// The witness's verifier key: its cosignatures are checked, never assumed.
    pub key: VerifierKey,
}

impl WitnessClient {
    pub fn new(url: &str, key: VerifierKey) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or("the witness URL must start with http://")?;
        let (authority, prefix) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        if authority.is_empty() {
            return Err("the witness URL has no host".into());
        }
        if !key.is_cosigner() {
            return Err(
                "the witness key must be a cosignature key (type 0x04), as `custodia witness` prints it".into(),
            );
        }
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            authority: authority.to_owned(),
            prefix: format!("/{}", prefix.trim_end_matches('/')).replace("//", "/"),
            key,
        })
    }

    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, route: &str) -> String {
        format!("{}{route}", self.prefix.trim_end_matches('/'))
    }

    async fn send(&self, method: &str, route: &str, body: String) -> Result<(u16, String), String> {
        let io = |e: &dyn std::fmt::Display| format!("witness {}: {e}", self.url);
        let connect = async {
            let stream = tokio::net::TcpStream::connect(&self.authority)
                .await
                .map_err(|e| io(&e))?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| io(&e))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let request = hyper::Request::builder()
                .method(method)
                .uri(self.path(route))
                .header("host", &self.authority)
                .header("content-type", "text/plain; charset=utf-8")
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| io(&e))?;
            let response = sender.send_request(request).await.map_err(|e| io(&e))?;
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await.map_err(|e| io(&e))?.to_bytes();
            Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), connect)
            .await
            .map_err(|_| io(&"no answer within 10 s"))?
    }

    /// The newest checkpoint the witness cosigned for the log `log_key`, checked: signed by
    /// the log and cosigned by the witness. `None` when it has none yet.
    pub async fn latest(&self, log_key: &VerifierKey) -> Result<Option<String>, WitnessFailure> {
        let (status, body) = self
            .send("GET", &format!("/checkpoint/{}", log_key.key_id_hex()), String::new())
            .await
            .map_err(WitnessFailure::Unreachable)?;
        match status {
            200 => {
                let bad =
                    |e: custodia_audit::note::NoteError| WitnessFailure::Refused(format!("witness {}: {e}", self.url));
                let note = custodia_audit::note::Note::parse(&body).map_err(bad)?;
                log_key.verify(&note).map_err(bad)?;
                self.key.verify(&note).map_err(bad)?;
                Ok(Some(body))
            }
            204 => Ok(None),
            404 => Err(WitnessFailure::Refused(format!(
                "the witness at {} does not witness a log with this vault's key ({log_key}): the signing key changed, or the witness is configured for another vault",
                self.url
            ))),
            other => Err(WitnessFailure::Unreachable(format!(
                "witness {} answered {other}",
                self.url
            ))),
        }
    }

    /// Submits a checkpoint. `Ok(Ok(line))`: cosigned; `Ok(Err(size))`: the witness is at
    /// another size (retry with a proof from there); `Err`: refused or unreachable.
    pub async fn submit(&self, request: &AddCheckpoint) -> Result<Result<String, u64>, WitnessFailure> {
        let (status, body) = self
            .send("POST", "/add-checkpoint", request.to_text())
            .await
            .map_err(WitnessFailure::Unreachable)?;
        match status {
            200 => Ok(Ok(body)),
            409 => body.trim().parse::<u64>().map(Err).map_err(|_| {
                WitnessFailure::Unreachable(format!("witness {} answered 409 without its size", self.url))
            }),
            422 => Err(WitnessFailure::Refused(format!(
                "the witness at {} refused the checkpoint: it is not consistent with the checkpoint the witness holds (the log was rewritten or truncated)",
                self.url
            ))),
            403 | 404 => Err(WitnessFailure::Refused(format!(
                "the witness at {} does not accept this vault's checkpoints ({status}): the signing key changed, or the witness is configured for another vault",
                self.url
            ))),
            other => Err(WitnessFailure::Unreachable(format!(
                "witness {} answered {other}: {}",
                self.url,
                body.trim().chars().take(200).collect::<String>()
            ))),
        }
    }
}

/// Why a witness exchange failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessFailure {
    /// The witness could not be asked (network, timeout, a 5xx): try again later.
    Unreachable(String),
    /// The witness answered that the log is not the one it witnessed: evidence of tampering.
    Refused(String),
}

impl std::fmt::Display for WitnessFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(why) | Self::Refused(why) => f.write_str(why),
        }
    }
}
