//! Slow peers. An answer waiting to be written holds its memory (a scan's answer can be tens
//! of megabytes) for as long as the connection lives, and a peer that never reads keeps it
//! alive for ever: a write that makes no progress for [`WRITE_STALL`] ends the connection
//! instead, as nginx's `send_timeout` does. Progress is the server's writes going through,
//! which the kernel's send buffer stands between the peer's reads and: the buffer is held
//! to [`SEND_BUFFER`] (Linux would grow it to megabytes, and then wake a writer only once a
//! third of it has drained), so that a peer reading some 4 KB a second or more is never cut.
//!
//! A peer that sends slowly is bounded too: a request's headers must arrive within
//! [`HEADER_READ`] (hyper's timer), its body within [`BODY_READ`] ([`whole_body_in_time`]),
//! and at most [`MAX_CONNECTIONS`] are open at once (more wait in the listen queue), at most
//! [`MAX_CONNECTIONS_PER_ADDRESS`] of them from one address.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// How long a write may wait for the peer to read before the connection is dropped.
pub(crate) const WRITE_STALL: Duration = Duration::from_secs(30);

/// The send buffer of each connection, in bytes (the kernel doubles it for its bookkeeping).
pub(crate) const SEND_BUFFER: usize = 256 * 1024;

/// How long a request's headers may take to arrive, and an idle connection may wait for
/// the next request's.
pub(crate) const HEADER_READ: Duration = Duration::from_secs(20);

/// The most a connection buffers of what it reads: a request's headers must fit.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;

/// How long a request's body may take to arrive, whole.
pub(crate) const BODY_READ: Duration = Duration::from_secs(60);

/// Connections served at once; more wait in the listen queue until one closes (each holds
/// buffers and a file descriptor: 20,000 idle ones took 1.7 GB and every descriptor).
pub(crate) const MAX_CONNECTIONS: usize = 1024;

/// Connections one address (an IPv6 /64) may hold at once: a client alone cannot take every
/// place, however it keeps its connections busy (a request every 19 s on each of 1,100 held
/// all 1,024). A reverse proxy pools far fewer.
pub(crate) const MAX_CONNECTIONS_PER_ADDRESS: usize = 256;

/// The connections open from each address.
#[derive(Clone, Default)]
pub(crate) struct PerAddress(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One connection's place among its address's, given back when the connection ends.
pub(crate) struct AddressPlace {
    open: PerAddress,
    key: IpAddr,
}

impl PerAddress {
    /// A place for a connection from `peer`, unless its address holds all it may.
    pub(crate) fn take(&self, peer: IpAddr) -> Option<AddressPlace> {
        let key = match peer.to_canonical() {
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
            v4 => v4,
        };
        let mut open = self.0.lock().ok()?;
        let n = open.entry(key).or_insert(0);
        if *n >= MAX_CONNECTIONS_PER_ADDRESS {
            return None;
        }
        *n += 1;
        Some(AddressPlace {
            open: self.clone(),
            key,
        })
    }
}

impl Drop for AddressPlace {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.0.lock()
            && let Some(n) = open.get_mut(&self.key)
        {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// A connection accepted, before it is served: its send buffer held to [`SEND_BUFFER`], its
/// writes under [`WRITE_STALL`].
pub(crate) fn guarded(tcp: tokio::net::TcpStream) -> WriteDeadline<tokio::net::TcpStream> {
    if let Err(e) = socket2::SockRef::from(&tcp).set_send_buffer_size(SEND_BUFFER) {
        tracing::debug!(error = %e, "setting a connection's send buffer failed");
    }
    WriteDeadline::new(tcp, WRITE_STALL)
}

/// Middleware: a request body that has not arrived whole within [`BODY_READ`] fails to read
/// (the extractor answers 400), however it trickles in.
pub(crate) async fn whole_body_in_time(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::Body::new(InTime::new(body));
    next.run(axum::extract::Request::from_parts(parts, body)).await
}

/// A body that fails once [`BODY_READ`] has passed.
struct InTime {
    body: axum::body::Body,
    deadline: Pin<Box<Sleep>>,
}

impl InTime {
    fn new(body: axum::body::Body) -> Self {
        Self {
            body,
            deadline: Box::pin(tokio::time::sleep(BODY_READ)),
        }
    }
}

impl hyper::body::Body for InTime {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(io::Error::new(
                io::ErrorKind::TimedOut,
                "the request body did not arrive in time",
            )))));
        }
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// `io` whose writes fail with [`io::ErrorKind::TimedOut`] once one has waited `limit`
/// without progress.
pub(crate) struct WriteDeadline<IO> {
    io: IO,
    limit: Duration,
    /// Armed by the first write that had to wait, dropped by any that went through.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<IO> WriteDeadline<IO> {
    pub(crate) fn new(io: IO, limit: Duration) -> Self {
        Self {
            io,
            limit,
            stalled: None,
        }
    }

    /// What a write returns through the deadline: done (the clock stops), or waiting (the
    /// clock runs, and the task is woken when it runs out as well as when the peer reads).
    fn through<T>(&mut self, cx: &mut Context<'_>, write: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if write.is_ready() {
            self.stalled = None;
            return write;
        }
        let limit = self.limit;
        let clock = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match clock.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer read nothing of the answer in time",
            ))),
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for WriteDeadline<IO> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<IO> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let write = Pin::new(&mut this.io).poll_write(cx, buf);
        this.through(cx, write)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let write = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.through(cx, write)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flush = Pin::new(&mut this.io).poll_flush(cx);
        this.through(cx, flush)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let shutdown = Pin::new(&mut this.io).poll_shutdown(cx);
        this.through(cx, shutdown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A body that never finishes arriving fails once [`BODY_READ`] has passed, and not
    /// before; one that arrives is read as it is.
    #[tokio::test(start_paused = true)]
    async fn a_body_must_arrive_in_time() -> Result<(), String> {
        use http_body_util::BodyExt;
        /// A body whose next bytes never come.
        struct Trickle;
        impl hyper::body::Body for Trickle {
            type Data = axum::body::Bytes;
            type Error = axum::Error;
            fn poll_frame(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
                Poll::Pending
            }
        }
        let start = tokio::time::Instant::now();
        let late = InTime::new(axum::body::Body::new(Trickle)).collect().await;
        assert!(late.is_err());
        assert_eq!(start.elapsed(), BODY_READ);
        let whole = InTime::new(axum::body::Body::from("{}"))
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        assert_eq!(whole.to_bytes(), "{}");
        Ok(())
    }

    /// One address holds at most its share of places, an IPv6 /64 counting as one address;
    /// a place closed is given back.
    #[test]
    fn one_address_holds_its_share_only() {
        let open = PerAddress::default();
        let one: IpAddr = [203, 0, 113, 7].into();
        let held: Vec<_> = (0..MAX_CONNECTIONS_PER_ADDRESS)
            .filter_map(|_| open.take(one))
            .collect();
        assert_eq!(held.len(), MAX_CONNECTIONS_PER_ADDRESS);
        assert!(open.take(one).is_none());
        assert!(open.take([203, 0, 113, 8].into()).is_some(), "another address");
        // the same address written as IPv4-mapped IPv6
        assert!(
            open.take("::ffff:203.0.113.7".parse::<IpAddr>().unwrap_or(one))
                .is_none()
        );
        drop(held);
        assert!(open.take(one).is_some());
        let a: IpAddr = "2001:db8::1".parse().unwrap_or(one);
        let b: IpAddr = "2001:db8::ffff:1".parse().unwrap_or(one);
        let held: Vec<_> = (0..MAX_CONNECTIONS_PER_ADDRESS).filter_map(|_| open.take(a)).collect();
        assert_eq!(held.len(), MAX_CONNECTIONS_PER_ADDRESS);
        assert!(open.take(b).is_none(), "the same /64");
    }

    /// A peer that reads nothing: the write waiting on it fails once the limit has passed
    /// with no progress, and not before.
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_reads_is_cut_off() -> Result<(), String> {
        let (ours, _peer) = tokio::io::duplex(64);
        let mut io = WriteDeadline::new(ours, Duration::from_secs(30));
        let start = tokio::time::Instant::now();
        let written = io.write_all(&[b'x'; 1024]).await;
        assert_eq!(written.err().map(|e| e.kind()), Some(io::ErrorKind::TimedOut));
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        Ok(())
    }

    /// A peer reading slowly, a little every 20 seconds (never 30 without progress), gets the
    /// whole answer however long it takes.
    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_gets_everything() -> Result<(), String> {
        let (ours, mut peer) = tokio::io::duplex(64);
        let mut io = WriteDeadline::new(ours, Duration::from_secs(30));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = [0u8; 64];
            loop {
                tokio::time::sleep(Duration::from_secs(20)).await;
                match peer.read(&mut chunk).await {
                    Ok(0) | Err(_) => return got,
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                }
            }
        });
        let start = tokio::time::Instant::now();
        io.write_all(&[b'x'; 1024]).await.map_err(|e| e.to_string())?;
        io.shutdown().await.map_err(|e| e.to_string())?;
        drop(io);
        let got = reader.await.map_err(|e| e.to_string())?;
        assert_eq!(got.len(), 1024);
        assert!(start.elapsed() > Duration::from_secs(30 * 4));
        Ok(())
    }
}
