//! A small HTTP/1.1 client over hyper with one kept-alive connection, for `custodia bench`
//! and the integration tests (which include this file).

use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// One persistent connection to the server.
pub struct Connection {
    /// What the `Host` header says.
    host: String,
    sender: SendRequest<Full<Bytes>>,
}

/// A response: status and body bytes.
pub struct Reply {
    pub status: u16,
    #[allow(dead_code, reason = "read by the integration tests (the web pages' headers)")]
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Self::over(stream, addr.to_string()).await
    }

    /// A connection over TLS to `addr`, whose certificate must name `host` (`authority` is
    /// what the `Host` header says: the host and its port).
    pub async fn open_tls(
        addr: SocketAddr,
        host: &str,
        authority: &str,
        connector: &tokio_rustls::TlsConnector,
    ) -> std::io::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(std::io::Error::other)?;
        let tls = connector.connect(name, stream).await?;
        Self::over(tls, authority.to_owned()).await
    }

    async fn over<S>(stream: S, host: String) -> std::io::Result<Self>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { host, sender })
    }

    /// Sends one request; `body` is sent as JSON when present.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> std::io::Result<Reply> {
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.host.as_str());
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(std::io::Error::other)?;
        self.sender.ready().await.map_err(std::io::Error::other)?;
        let response = self.sender.send_request(request).await.map_err(std::io::Error::other)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        Ok(Reply { status, headers, body })
    }
}
