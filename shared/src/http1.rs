//! hyper's HTTP/1.1 server, as every stack built on hyper runs it (the axum stacks and
//! `server-hyper`): the accept loop, each connection with hyper's timer set (so that
//! [`crate::HEADER_READ_TIMEOUT`] bounds a client that trickles its headers and an idle
//! keep-alive connection alike) and wrapped in [`JsonParseErrors`], graceful shutdown within
//! [`crate::SHUTDOWN_GRACE`]; and the contract's HTTP-layer rules read from a request's head.

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;

use crate::error::ApiError;
use crate::parse_errors::JsonParseErrors;

/// The contract's HTTP-layer rules ([`crate::http_rules`]) for a request's head: the target as
/// sent, its `Host` headers and its transfer codings. The error is the 400 to answer.
pub fn check_head<B>(request: &Request<B>) -> Result<(), ApiError> {
    let uri = request.uri();
    let target = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let headers = request.headers();
    crate::http_rules::check_head(&crate::http_rules::Head::new(
        target.as_bytes(),
        headers.get_all(header::HOST).iter().count(),
        headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .map(HeaderValue::as_bytes),
    ))
}

/// Serves the services `service()` makes, one per connection, on `listener` until `stop`
/// resolves, then lets in-flight requests finish for up to [`crate::SHUTDOWN_GRACE`].
/// `nodelay` sets `TCP_NODELAY` on every connection.
///
/// This is `axum::serve` written out with hyper's own connection builder (axum's
/// `serve-with-hyper` example), because `axum::serve` offers no way to set hyper's options:
/// without a timer, hyper has no header-read timeout.
pub async fn serve<M, S, B>(
    listener: tokio::net::TcpListener,
    mut service: M,
    stop: impl Future<Output = ()>,
    nodelay: bool,
) where
    M: FnMut() -> S,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(crate::HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _remote)) => stream,
                // A connection that died before it was accepted: take the next one.
                Err(err) if matches!(
                    err.kind(),
                    std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                ) => continue,
                Err(err) => {
                    // Out of file descriptors or the like: back off as `axum::serve` does.
                    tracing::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        if nodelay && let Err(err) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {err}");
        }
        let stream = TokioIo::new(JsonParseErrors::new(stream));
        let connection = graceful.watch(http.serve_connection(stream, service()));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!("connection ended with an error: {err}");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(crate::SHUTDOWN_GRACE) => {
            tracing::warn!("in-flight requests still running after the grace period; stopping");
        }
    }
}
