//! The contract's JSON error for requests hyper's own parser refuses. hyper answers a request
//! it cannot parse (a malformed request line or header: 400; a target over 64 KiB: 414;
//! headers over its limits: 431) by itself, before any service runs, with a canned empty
//! response, and offers no hook to change it. This connection wrapper recognises that canned
//! response on its way out and writes the contract's answer instead: the same status, with
//! `content-type: application/json` and `{"error":"<sentence>"}`. Every stack that serves its
//! connections with hyper wraps them in it (the axum stacks and `server-hyper`).
//!
//! Recognising it is reliable because the canned response is always the last thing hyper
//! writes on a connection, it has no body and no `content-type` (every response of the app has
//! one), and, the wrapper not offering vectored writes, hyper hands each write its whole
//! unflushed output, so the canned head arrives whole, at the end of one write.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use crate::error::{ApiError, ErrorKind};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The statuses hyper answers on its own, and the error each becomes.
fn kind_of(status: u16) -> Option<ErrorKind> {
    match status {
        400 => Some(ErrorKind::BadRequest),
        414 => Some(ErrorKind::UriTooLong),
        431 => Some(ErrorKind::HeadersTooLarge),
        _ => None,
    }
}

/// Where hyper's canned response to an unparsable request starts in `buf`, and its status:
/// a complete response head at the very end of `buf`, of one of the statuses of [`kind_of`],
/// whose headers are only `connection`, `content-length: 0` and `date`.
pub fn canned_error(buf: &[u8]) -> Option<(usize, u16)> {
    if !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let start = buf
        .windows(9)
        .rposition(|w| w == b"HTTP/1.1 " || w == b"HTTP/1.0 ")?;
    let mut headers = [httparse::EMPTY_HEADER; 8];
    let mut response = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(len)) = response.parse(&buf[start..]) else {
        return None;
    };
    let status = response.code?;
    let canned = start + len == buf.len()
        && kind_of(status).is_some()
        && response.headers.iter().all(|h| {
            h.name.eq_ignore_ascii_case("connection")
                || h.name.eq_ignore_ascii_case("date")
                || (h.name.eq_ignore_ascii_case("content-length") && h.value == b"0")
        });
    canned.then_some((start, status))
}

/// The contract's answer for a request refused with `status`.
fn json_response(status: u16) -> Vec<u8> {
    let error = ApiError::of(kind_of(status).unwrap_or(ErrorKind::BadRequest));
    let body = error.body();
    let reason = match status {
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        _ => "Bad Request",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        crate::APPLICATION_JSON,
        body.len()
    )
    .into_bytes()
}

/// A connection that turns hyper's canned parse-error responses into the contract's.
#[derive(Debug)]
pub struct JsonParseErrors<IO> {
    io: IO,
    /// The replacement being written, and how much of it is out.
    pending: Option<(Vec<u8>, usize)>,
}

impl<IO> JsonParseErrors<IO> {
    /// Wraps a freshly accepted connection.
    pub const fn new(io: IO) -> Self {
        Self { io, pending: None }
    }
}

impl<IO: AsyncWrite + Unpin> JsonParseErrors<IO> {
    /// Writes out the replacement, if any.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            if *written == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for JsonParseErrors<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for JsonParseErrors<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        match canned_error(buf) {
            // What came before it goes out first.
            Some((start, _)) if start > 0 => Pin::new(&mut this.io).poll_write(cx, &buf[..start]),
            Some((_, status)) => {
                this.pending = Some((json_response(status), 0));
                Poll::Ready(Ok(buf.len()))
            }
            None => Pin::new(&mut this.io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_only_the_canned_responses() {
        let canned = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Mon, 23 Nov 2026 22:42:52 GMT\r\n\r\n";
        assert_eq!(canned_error(canned), Some((0, 400)));
        let after = [
            &b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nOK"[..],
            canned,
        ]
        .concat();
        assert_eq!(canned_error(&after), Some((66, 400)));
        let too_long = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(canned_error(too_long), Some((0, 414)));
        for app in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"[..],
            b"HTTP/1.1 204 No Content\r\ndate: x\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        ] {
            assert_eq!(canned_error(app), None, "{}", String::from_utf8_lossy(app));
        }
    }

    #[test]
    fn the_answer_is_the_contracts() {
        let text = String::from_utf8(json_response(431)).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
        assert!(
            text.contains("content-type: application/json\r\n"),
            "{text}"
        );
        assert!(
            text.ends_with(&ApiError::of(ErrorKind::HeadersTooLarge).body()),
            "{text}"
        );
    }
}
