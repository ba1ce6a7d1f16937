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
use custodia_registry::{WebhookTarget, webhook_target};
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

/// The environment variable naming a PEM file of CA certificates webhooks are trusted
/// under (instead of the system's roots).
pub const WEBHOOK_CACERT_ENV: &str = "CUSTODIA_WEBHOOK_CACERT";

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
    match webhook_target(&hook.url) {
        Some(WebhookTarget::Local {
            authority,
            connect,
            path,
        }) => {
            let Ok(stream) = tokio::net::TcpStream::connect(connect.as_str()).await else {
                return SendOutcome::Failed("connection");
            };
            post_over(stream, authority, path, &hook).await
        }
        Some(WebhookTarget::Tls {
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
