//! The HTTP side of Art. 19 notifications: [`HttpSender`] POSTs the notices the vault signed
//! (`custodia_core::Vault::deliver_notifications`, run by the `notifications` job).
//!
//! Webhooks are `https://` (rustls; the system's roots, or the PEM file
//! `CUSTODIA_WEBHOOK_CACERT` names), or `http://` to the local host only (`localhost`,
//! `127.0.0.1`, `[::1]`: a relay or a receiver beside the vault). A certificate that does not
//! verify is a failure of class `tls`, retried like any other.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use custodia_core::{NOTIFICATION_ID_HEADER, SIGNATURE_HEADER, SendOutcome, Webhook, WebhookSender};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// How long a receiver has to answer a notice.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends notices over HTTP/1.1, one connection each, within [`SEND_TIMEOUT`]; follows no
/// redirect, and reads only the answer's status.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpSender;

impl WebhookSender for HttpSender {
    fn send(&self, hook: Webhook) -> Pin<Box<dyn Future<Output = SendOutcome> + Send + 'static>> {
        Box::pin(async move {
            tokio::time::timeout(SEND_TIMEOUT, post(hook))
                .await
                .unwrap_or(SendOutcome::Failed("timeout"))
        })
    }
}

/// Where a webhook URL points, if this build can send to it.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    /// `http://` to the local host: the authority as written (the `Host` header), the
    /// address to connect to, and the path.
    Local {
        authority: &'a str,
        connect: String,
        path: &'a str,
    },
    /// `https://`: the authority as written, the host the certificate must name, the address
    /// to connect to, and the path.
    Tls {
        authority: &'a str,
        host: &'a str,
        connect: String,
        path: &'a str,
    },
}

/// The environment variable naming a PEM file of CA certificates webhooks are trusted
/// under (instead of the system's roots).
pub const WEBHOOK_CACERT_ENV: &str = "CUSTODIA_WEBHOOK_CACERT";

/// Parses a webhook URL: `http://` only to `localhost`, `127.0.0.1` or `[::1]` (with an
/// optional port), `https://` to anywhere; `None` for anything else (`http://localhost.evil`,
/// user info, fragments).
fn target(url: &str) -> Option<Target<'_>> {
    let (tls, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return None,
    };
    let (authority, path) = rest.find('/').map_or((rest, "/"), |at| rest.split_at(at));
    if path.contains('#') || authority.is_empty() || authority.contains(['?', '#', '@']) {
        return None;
    }
    let (host, port) = match authority.find(']') {
        Some(end) if authority.starts_with('[') => authority.split_at(end + 1),
        _ => authority.find(':').map_or((authority, ""), |at| authority.split_at(at)),
    };
    let port: u16 = match port.strip_prefix(':') {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => digits.parse().ok()?,
        None if port.is_empty() => {
            if tls {
                443
            } else {
                80
            }
        }
        _ => return None,
    };
    if host.is_empty() {
        return None;
    }
    let connect = format!("{host}:{port}");
    if tls {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        return Some(Target::Tls {
            authority,
            host,
            connect,
            path,
        });
    }
    if !["localhost", "127.0.0.1", "[::1]"].contains(&host) {
        return None;
    }
    Some(Target::Local {
        authority,
        connect,
        path,
    })
}

/// The TLS client of webhook deliveries, made once.
fn connector() -> Result<tokio_rustls::TlsConnector, &'static str> {
    static CONNECTOR: std::sync::OnceLock<Result<tokio_rustls::TlsConnector, String>> = std::sync::OnceLock::new();
    match CONNECTOR.get_or_init(|| crate::tls::client_connector(WEBHOOK_CACERT_ENV)) {
        Ok(connector) => Ok(connector.clone()),
        Err(e) => {
            tracing::error!(error = %e, "webhook TLS client");
            Err("tls")
        }
    }
}

/// One POST, without a time limit (the caller sets it).
async fn post(hook: Webhook) -> SendOutcome {
    match target(&hook.url) {
        Some(Target::Local {
            authority,
            connect,
            path,
        }) => {
            let Ok(stream) = tokio::net::TcpStream::connect(connect.as_str()).await else {
                return SendOutcome::Failed("connection");
            };
            post_over(stream, authority, path, &hook).await
        }
        Some(Target::Tls {
            authority,
            host,
            connect,
            path,
        }) => {
            let connector = match connector() {
                Ok(connector) => connector,
                Err(class) => return SendOutcome::Failed(class),
            };
            let Ok(name) = rustls::pki_types::ServerName::try_from(host.to_owned()) else {
                return SendOutcome::Failed("invalid_url");
            };
            let Ok(stream) = tokio::net::TcpStream::connect(connect.as_str()).await else {
                return SendOutcome::Failed("connection");
            };
            let Ok(stream) = connector.connect(name, stream).await else {
                return SendOutcome::Failed("tls");
            };
            post_over(stream, authority, path, &hook).await
        }
        None => SendOutcome::Failed("invalid_url"),
    }
}

/// The POST itself, over a connected stream (plain or TLS).
async fn post_over<S>(stream: S, authority: &str, path: &str, hook: &Webhook) -> SendOutcome
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await else {
        return SendOutcome::Failed("connection");
    };
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = hyper::Request::builder()
        .method("POST")
        .uri(path)
        .header("host", authority)
        .header("content-type", "application/json")
        .header("user-agent", "custodia")
        .header(SIGNATURE_HEADER, &hook.signature)
        .header(NOTIFICATION_ID_HEADER, hook.notification_id.to_string())
        .body(Full::new(Bytes::from(hook.body.clone())));
    let outcome = match request {
        Ok(request) => match sender.send_request(request).await {
            Ok(response) => SendOutcome::Status(response.status().as_u16()),
            Err(_) => SendOutcome::Failed("connection"),
        },
        Err(_) => SendOutcome::Failed("invalid_url"),
    };
    driver.abort();
    outcome
}

#[cfg(test)]
mod tests;
