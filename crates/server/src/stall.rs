//! Connections whose peer stops reading. An answer waiting to be written holds its memory
//! (a scan's answer can be tens of megabytes) for as long as the connection lives, and a
//! peer that never reads keeps it alive for ever: a write that makes no progress for
//! [`WRITE_STALL`] ends the connection instead, as nginx's `send_timeout` does. A slow but
//! reading peer is never cut: each write that goes through starts the clock again.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// How long a write may wait for the peer to read before the connection is dropped.
pub(crate) const WRITE_STALL: Duration = Duration::from_secs(30);

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

/// The plain-HTTP listener, its connections under [`WRITE_STALL`].
pub(crate) struct Listener(pub(crate) tokio::net::TcpListener);

impl axum::serve::Listener for Listener {
    type Io = WriteDeadline<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's own accept, which waits out errors such as too many open files
        let (tcp, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (WriteDeadline::new(tcp, WRITE_STALL), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
