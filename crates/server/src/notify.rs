//! The HTTP side of Art. 19 notifications: [`HttpSender`] POSTs the notices the vault signed
//! (`custodia_core::Vault::deliver_notifications`, run by the `notifications` job).
//!
//! This build has no TLS client, so it delivers to `http://` webhooks on the local host only
//! (`localhost`, `127.0.0.1`, `[::1]`: a relay or a receiver beside the vault); an `https://`
//! webhook's attempts fail with the class `tls_unavailable` and are retried like any other
//! failure, so they go out once a build with TLS runs within the retry window.

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
    /// `https://`: needs TLS.
    Tls,
}

/// Parses a webhook URL: `http://` only to `localhost`, `127.0.0.1` or `[::1]` (with an
/// optional port), `https://` to anywhere; `None` for anything else (`http://localhost.evil`,
/// user info, fragments).
fn target(url: &str) -> Option<Target<'_>> {
    if url.starts_with("https://") {
        return Some(Target::Tls);
    }
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |at| rest.split_at(at));
    if path.contains('#') || authority.contains(['?', '#', '@']) {
        return None;
    }
    let (host, port) = match authority.strip_prefix("[::1]") {
        Some(port) => ("[::1]", port),
        None => authority.find(':').map_or((authority, ""), |at| authority.split_at(at)),
    };
    let port: u16 = match port.strip_prefix(':') {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => digits.parse().ok()?,
        None if port.is_empty() => 80,
        _ => return None,
    };
    if !["localhost", "127.0.0.1", "[::1]"].contains(&host) {
        return None;
    }
    Some(Target::Local {
        authority,
        connect: format!("{host}:{port}"),
        path,
    })
}

/// One POST, without a time limit (the caller sets it).
async fn post(hook: Webhook) -> SendOutcome {
    let (authority, connect, path) = match target(&hook.url) {
        Some(Target::Local {
            authority,
            connect,
            path,
        }) => (authority, connect, path),
        Some(Target::Tls) => return SendOutcome::Failed("tls_unavailable"),
        None => return SendOutcome::Failed("invalid_url"),
    };
    let Ok(stream) = tokio::net::TcpStream::connect(connect.as_str()).await else {
        return SendOutcome::Failed("connection");
    };
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
        .body(Full::new(Bytes::from(hook.body)));
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
