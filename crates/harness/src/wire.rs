//! HTTP/1.1 on the wire, for clients: requests serialised once into reusable buffers, and
//! responses parsed with `httparse` out of one reusable buffer per connection, with no
//! allocation per request on the usual path (the load generator's connections are as lean as
//! wrk's). One parser serves every client here: the async keep-alive [`Conn`] the load
//! generator drives, and the blocking connections of [`crate::client`] that the test suites use.
//!
//! [`Reader`] copes with responses split across reads, keeps bytes that arrive after the
//! current response for the next one, skips interim 1xx responses and decodes chunked bodies.

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// A response head larger than this is a protocol error (nothing here comes close).
pub const MAX_HEAD: usize = 64 * 1024;
/// More response headers than this is a protocol error.
const MAX_HEADERS: usize = 64;
/// Initial size of a connection's read buffer.
const INITIAL_BUF: usize = 8 * 1024;

/// Why an exchange failed.
#[derive(Debug)]
pub enum ExchangeError {
    /// Could not open the connection.
    Connect(io::Error),
    /// Reading or writing failed.
    Io(io::Error),
    /// The peer closed the connection before the response was complete.
    Closed,
    /// No complete response before the deadline (blocking reads only).
    TimedOut,
    /// The response was not valid HTTP/1.x.
    Protocol(&'static str),
}

impl std::fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "connect: {e}"),
            Self::Io(e) => write!(f, "i/o: {e}"),
            Self::Closed => f.write_str("connection closed before the response was complete"),
            Self::TimedOut => f.write_str("no complete response in time"),
            Self::Protocol(what) => write!(f, "malformed response: {what}"),
        }
    }
}

impl std::error::Error for ExchangeError {}

impl From<ExchangeError> for io::Error {
    fn from(err: ExchangeError) -> Self {
        match err {
            ExchangeError::Connect(e) | ExchangeError::Io(e) => e,
            ExchangeError::Closed => Self::new(io::ErrorKind::UnexpectedEof, err.to_string()),
            ExchangeError::TimedOut => Self::new(io::ErrorKind::TimedOut, err.to_string()),
            ExchangeError::Protocol(_) => Self::new(io::ErrorKind::InvalidData, err.to_string()),
        }
    }
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all (1xx, 204, 304, or the answer to a `HEAD`).
    Empty,
    /// `content-length: n`.
    Length(usize),
    /// `transfer-encoding: chunked`.
    Chunked,
    /// Neither: the body runs until the server closes the connection.
    UntilClose,
}

/// A parsed status line and the headers that decide the framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes of status line and headers, the blank line included.
    pub len: usize,
    pub framing: Framing,
    /// Whether the connection may carry another request after this response.
    pub keep_alive: bool,
}

/// Whether the comma-separated header value `v` lists `token` (case-insensitive).
fn has_token(v: &[u8], token: &[u8]) -> bool {
    v.split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

fn parse_decimal(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 18 {
        return None;
    }
    v.iter().try_fold(0usize, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + usize::from(b - b'0'))
    })
}

/// Parses a response head from the start of `buf`; `Ok(None)` means "need more bytes".
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, ExchangeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(ExchangeError::Protocol("head too large"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::Status) => return Err(ExchangeError::Protocol("bad status code")),
        Err(httparse::Error::Version) => {
            return Err(ExchangeError::Protocol("not an HTTP/1.x status line"));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ExchangeError::Protocol("too many headers"));
        }
        Err(_) => return Err(ExchangeError::Protocol("bad header line")),
    };
    let status = response
        .code
        .ok_or(ExchangeError::Protocol("bad status code"))?;
    let mut keep_alive = response.version == Some(1);
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let n = parse_decimal(header.value.trim_ascii())
                .ok_or(ExchangeError::Protocol("bad content-length"))?;
            if content_length.is_some_and(|c| c != n) {
                return Err(ExchangeError::Protocol("conflicting content-length"));
            }
            content_length = Some(n);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = has_token(header.value, b"chunked");
        } else if header.name.eq_ignore_ascii_case("connection") {
            if has_token(header.value, b"close") {
                keep_alive = false;
            } else if has_token(header.value, b"keep-alive") {
                keep_alive = true;
            }
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = content_length {
        Framing::Length(n)
    } else {
        keep_alive = false;
        Framing::UntilClose
    };
    Ok(Some(Head {
        status,
        len,
        framing,
        keep_alive,
    }))
}

/// Decodes a chunked body from the start of `buf` into `out` (cleared first).
/// `Ok(Some(n))`: complete, `n` bytes of `buf` used (trailers included); `Ok(None)`: need more.
pub fn parse_chunked(buf: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, ExchangeError> {
    out.clear();
    let mut pos = 0;
    loop {
        let (used, size) = match httparse::parse_chunk_size(&buf[pos..]) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) if buf.len() - pos > 1024 => {
                return Err(ExchangeError::Protocol("chunk size line too long"));
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::InvalidChunkSize) => {
                return Err(ExchangeError::Protocol("bad chunk size"));
            }
        };
        pos += used;
        if size == 0 {
            // Trailer fields, then the blank line.
            let mut trailers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            return match httparse::parse_headers(&buf[pos..], &mut trailers) {
                Ok(httparse::Status::Complete((used, _))) => Ok(Some(pos + used)),
                Ok(httparse::Status::Partial) => Ok(None),
                Err(_) => Err(ExchangeError::Protocol("bad trailer")),
            };
        }
        let size = usize::try_from(size).map_err(|_| ExchangeError::Protocol("bad chunk size"))?;
        let Some(data) = buf.get(pos..pos.saturating_add(size)) else {
            return Ok(None);
        };
        out.extend_from_slice(data);
        pos += size;
        match buf.get(pos..pos + 2) {
            Some(b"\r\n") => pos += 2,
            Some([b'\n', _]) => pos += 1,
            Some(_) => return Err(ExchangeError::Protocol("chunk not followed by CRLF")),
            None => match buf.get(pos) {
                None | Some(b'\r') => return Ok(None),
                Some(b'\n') => pos += 1,
                Some(_) => return Err(ExchangeError::Protocol("chunk not followed by CRLF")),
            },
        }
    }
}

/// One complete response; its slices borrow the connection's buffers until the next exchange.
#[derive(Debug, PartialEq, Eq)]
pub struct Response<'a> {
    pub status: u16,
    /// The status line and headers as received (the blank line included).
    pub head: &'a [u8],
    pub body: &'a [u8],
    /// Whether the connection may be reused (false after `connection: close` or a body
    /// delimited by the server closing).
    pub keep_alive: bool,
}

impl Response<'_> {
    /// The response's headers as `(lower-case name, value)` pairs, in order.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        // The head was parsed once already; it parses again.
        let _ = response.parse(self.head);
        response
            .headers
            .iter()
            .take_while(|h| !h.name.is_empty())
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value.trim_ascii()).into_owned(),
                )
            })
            .collect()
    }
}

/// Where the parts of a complete response lie in the reader's buffers.
#[derive(Debug, Clone)]
struct Parsed {
    status: u16,
    head: Range<usize>,
    /// `None`: the decoded chunked body.
    body: Option<Range<usize>>,
    keep_alive: bool,
}

/// The receiving side of a connection: a reusable buffer and the response parser. It does no
/// I/O itself; [`Reader::read_async`] and [`Reader::read_blocking`] feed it.
#[derive(Debug)]
pub struct Reader {
    /// Always fully initialised; `start..end` holds received, unconsumed bytes.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Decoded chunked bodies.
    chunked: Vec<u8>,
    /// Bytes received over the reader's life.
    received: u64,
}

impl Default for Reader {
    fn default() -> Self {
        Self {
            buf: vec![0; INITIAL_BUF],
            start: 0,
            end: 0,
            chunked: Vec::new(),
            received: 0,
        }
    }
}

impl Reader {
    /// Received bytes not yet consumed by a response.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Every byte received so far.
    pub const fn received(&self) -> u64 {
        self.received
    }

    /// Room for the next read: unconsumed bytes move to the front, or the buffer grows.
    fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let grown = self.buf.len() * 2;
                self.buf.resize(grown, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    fn filled(&mut self, n: usize) {
        self.end += n;
        self.received += n as u64;
    }

    /// Takes one complete response off the buffered bytes, if they hold one. `eof`: the peer
    /// has closed (a body delimited by the close is then complete); `head_request`: the
    /// response answers a `HEAD` and has no body whatever its headers say.
    fn step(&mut self, eof: bool, head_request: bool) -> Result<Option<Parsed>, ExchangeError> {
        loop {
            let Some(head) = parse_head(self.pending())? else {
                return Ok(None);
            };
            if head.status == 101 {
                return Err(ExchangeError::Protocol(
                    "unexpected 101 Switching Protocols",
                ));
            }
            if head.status < 200 {
                // An interim response: skip it.
                self.start += head.len;
                continue;
            }
            let head_range = self.start..self.start + head.len;
            let body_start = head_range.end;
            let framing = if head_request {
                Framing::Empty
            } else {
                head.framing
            };
            let (body, end) = match framing {
                Framing::Empty => (Some(body_start..body_start), body_start),
                Framing::Length(n) if self.end - body_start >= n => {
                    (Some(body_start..body_start + n), body_start + n)
                }
                Framing::Length(_) => return Ok(None),
                Framing::Chunked => {
                    match parse_chunked(&self.buf[body_start..self.end], &mut self.chunked)? {
                        Some(used) => (None, body_start + used),
                        None => return Ok(None),
                    }
                }
                Framing::UntilClose if eof => (Some(body_start..self.end), self.end),
                Framing::UntilClose => return Ok(None),
            };
            self.start = end;
            return Ok(Some(Parsed {
                status: head.status,
                head: head_range,
                body,
                keep_alive: head.keep_alive && framing != Framing::UntilClose,
            }));
        }
    }

    /// Like [`Reader::step`], but a peer that closed before the response was complete is an
    /// error.
    fn next(&mut self, eof: bool, head_request: bool) -> Result<Option<Parsed>, ExchangeError> {
        match self.step(eof, head_request)? {
            None if eof => Err(ExchangeError::Closed),
            parsed => Ok(parsed),
        }
    }

    fn response(&self, parsed: Parsed) -> Response<'_> {
        Response {
            status: parsed.status,
            head: &self.buf[parsed.head],
            body: parsed.body.map_or(&self.chunked[..], |r| &self.buf[r]),
            keep_alive: parsed.keep_alive,
        }
    }

    /// Reads one complete response from `stream`.
    pub async fn read_async<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        head_request: bool,
    ) -> Result<Response<'_>, ExchangeError> {
        let mut eof = false;
        let parsed = loop {
            match self.next(eof, head_request)? {
                Some(parsed) => break parsed,
                None => {
                    let n = stream.read(self.spare()).await.map_err(ExchangeError::Io)?;
                    eof = n == 0;
                    self.filled(n);
                }
            }
        };
        Ok(self.response(parsed))
    }

    /// Reads one complete response from a blocking `stream` before `deadline` (the socket's
    /// read timeout is set to what is left). A connection reset counts as the end of the
    /// stream: whatever complete response arrived before it is returned.
    pub fn read_blocking(
        &mut self,
        stream: &mut std::net::TcpStream,
        head_request: bool,
        deadline: Instant,
    ) -> Result<Response<'_>, ExchangeError> {
        use std::io::Read as _;
        let mut eof = false;
        let parsed = loop {
            if let Some(parsed) = self.next(eof, head_request)? {
                break parsed;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ExchangeError::TimedOut);
            }
            stream
                .set_read_timeout(Some(left))
                .map_err(ExchangeError::Io)?;
            match stream.read(self.spare()) {
                Ok(n) => {
                    eof = n == 0;
                    self.filled(n);
                }
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(ExchangeError::TimedOut);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => eof = true,
            }
        };
        Ok(self.response(parsed))
    }
}

/// The start of a body, for an error message: its first line, at most 120 characters.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None if line.len() < text.trim_end().len() => format!("{line}…"),
        None => line.to_owned(),
    }
}

/// Serialises `METHOD path HTTP/1.1`, `host` and, with a body, its JSON content type and
/// length into `out` (cleared first): the requests every workload sends.
pub fn write_request(out: &mut Vec<u8>, method: &str, path: &str, host: &str, body: Option<&[u8]>) {
    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(body) = body {
        out.extend_from_slice(b"content-type: application/json\r\ncontent-length: ");
        write!(out, "{}", body.len()).expect("writing to a Vec cannot fail");
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body);
    } else {
        out.extend_from_slice(b"\r\n");
    }
}

/// One async keep-alive HTTP/1.1 connection.
#[derive(Debug)]
pub struct Conn {
    stream: tokio::net::TcpStream,
    reader: Reader,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Result<Self, ExchangeError> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(ExchangeError::Connect)?;
        stream.set_nodelay(true).map_err(ExchangeError::Connect)?;
        Ok(Self {
            stream,
            reader: Reader::default(),
        })
    }

    /// Whether the server has closed this idle connection (or sent something unasked).
    ///
    /// Cheap: without a readiness event from the reactor this makes no system call.
    pub fn is_stale(&mut self) -> bool {
        if !self.reader.pending().is_empty() {
            return true;
        }
        let mut probe = [0u8; 1];
        !matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Writes one pre-serialised request and reads the whole response.
    pub async fn send(&mut self, request: &[u8]) -> Result<Response<'_>, ExchangeError> {
        self.stream
            .write_all(request)
            .await
            .map_err(ExchangeError::Io)?;
        self.reader.read_async(&mut self.stream, false).await
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt as _;

    use super::*;

    type Answer = (u16, Vec<u8>, bool);

    /// Feeds `wire` to a fresh reader in pieces of `piece` bytes and collects every response
    /// (status, body, keep-alive) until the stream ends.
    async fn read_all(wire: &[u8], piece: usize) -> (Vec<Answer>, Option<String>) {
        let (mut client, mut server) = tokio::io::duplex(64);
        let data = wire.to_vec();
        let writer = tokio::spawn(async move {
            for chunk in data.chunks(piece.max(1)) {
                server.write_all(chunk).await.unwrap();
                server.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        let mut reader = Reader::default();
        let mut out = Vec::new();
        let mut err = None;
        loop {
            let got = reader
                .read_async(&mut client, false)
                .await
                .map(|r| (r.status, r.body.to_vec(), r.keep_alive));
            match got {
                Ok(answer) => {
                    let keep = answer.2;
                    out.push(answer);
                    if !keep {
                        break;
                    }
                }
                Err(ExchangeError::Closed) if reader.pending().is_empty() => break,
                Err(e) => {
                    err = Some(e.to_string());
                    break;
                }
            }
        }
        writer.await.unwrap();
        (out, err)
    }

    fn ok(status: u16, body: &str) -> Answer {
        (status, body.as_bytes().to_vec(), true)
    }

    /// Every piece size from byte-by-byte to all at once gives the same responses.
    async fn check(wire: &str, expected: &[Answer]) {
        for piece in [1, 2, 3, 5, 7, 16, 64, wire.len()] {
            let (got, err) = read_all(wire.as_bytes(), piece).await;
            assert_eq!(err, None, "piece {piece}: {wire:?}");
            assert_eq!(got, expected, "piece {piece}: {wire:?}");
        }
    }

    #[tokio::test]
    async fn responses_are_framed() {
        let hello = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
        let cases: [(&str, Vec<Answer>); 7] = [
            // Sized, then two responses back to back: the second arrives with (or inside) the
            // first's last read.
            (hello, vec![ok(200, "Hello, World!")]),
            (
                &format!("{hello}HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{{}}"),
                vec![ok(200, "Hello, World!"), ok(404, "{}")],
            ),
            // Empty bodies: length 0, 204 and 304 whatever their headers say.
            (
                concat!(
                    "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
                    "HTTP/1.1 204 No Content\r\n\r\n",
                    "HTTP/1.1 304 Not Modified\r\ncontent-length: 10\r\n\r\n",
                    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK",
                ),
                vec![ok(200, ""), ok(204, ""), ok(304, ""), ok(200, "OK")],
            ),
            // Chunked, with extensions, trailers and `gzip, chunked`.
            (
                concat!(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                    "5\r\nHello\r\n8;ext=1\r\n, World!\r\n0\r\n\r\n",
                    "HTTP/1.1 201 Created\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
                    "A\r\n0123456789\r\n0\r\nx-trailer: y\r\n\r\n",
                    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
                ),
                vec![ok(200, "Hello, World!"), ok(201, "0123456789"), ok(200, "")],
            ),
            // An interim 100 is skipped; `connection: close` ends reuse.
            (
                concat!(
                    "HTTP/1.1 100 Continue\r\n\r\n",
                    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK",
                    "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\ncontent-length: 4\r\n\r\nboom",
                ),
                vec![ok(200, "OK"), (500, b"boom".to_vec(), false)],
            ),
            // No length at all: the body runs until the server closes.
            (
                "HTTP/1.1 200 OK\r\n\r\nuntil close",
                vec![(200, b"until close".to_vec(), false)],
            ),
            // HTTP/1.0 closes unless it says keep-alive.
            (
                "HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nA\
                 HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 1\r\n\r\nA",
                vec![(200, b"A".to_vec(), false)],
            ),
        ];
        for (wire, expected) in &cases {
            check(wire, expected).await;
        }
        let keeps = "HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 1\r\n\r\nA";
        check(keeps, &[ok(200, "A")]).await;
    }

    #[tokio::test]
    async fn truncated_and_malformed_responses_fail() {
        let cases = [
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\nHello",
                "connection closed",
            ),
            ("HTTP/1.1 200 OK\r\ncontent-le", "connection closed"),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nHel",
                "connection closed",
            ),
            ("SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x status line"),
            ("HTTP/1.1 2x0 OK\r\n\r\n", "bad status code"),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
                "bad content-length",
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
                "conflicting content-length",
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
                "bad chunk size",
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nAB\r\n0\r\n\r\n",
                "chunk not followed by CRLF",
            ),
        ];
        for (wire, expected) in cases {
            for piece in [1, wire.len()] {
                let (got, err) = read_all(wire.as_bytes(), piece).await;
                assert!(got.is_empty(), "{wire:?}: {got:?}");
                let err = err.unwrap_or_default();
                assert!(err.contains(expected), "{wire:?} (piece {piece}): {err}");
            }
        }
    }

    #[test]
    fn heads_are_parsed() {
        let head = parse_head(
            b"HTTP/1.1 201 Created\r\nLocation: /tasks/1\r\nContent-Length: 5\r\n\r\nxx",
        )
        .unwrap()
        .unwrap();
        let expected = Head {
            status: 201,
            len: 63,
            framing: Framing::Length(5),
            keep_alive: true,
        };
        assert_eq!(head, expected);
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n").unwrap(), None);
        assert_eq!(parse_head(b"HTT").unwrap(), None);
        // A reason-less status line and LF-only line ends are accepted.
        let head = parse_head(b"HTTP/1.1 204\nX: y\n\n").unwrap().unwrap();
        let parts = (head.status, head.len, head.framing);
        assert_eq!(parts, (204, 19, Framing::Empty));
    }

    #[test]
    fn headers_and_head_requests() {
        let wire = b"HTTP/1.1 200 OK\r\nX-A: b \r\nContent-Length: 5\r\n\r\n";
        let mut reader = Reader::default();
        reader.spare()[..wire.len()].copy_from_slice(wire);
        reader.filled(wire.len());
        // The answer to a HEAD has no body, whatever its content-length says.
        let parsed = reader.step(false, true).unwrap().unwrap();
        let response = reader.response(parsed);
        assert_eq!((response.status, response.body), (200, &b""[..]));
        let expected = [("x-a", "b"), ("content-length", "5")].map(|(n, v)| (n.into(), v.into()));
        assert_eq!(response.headers(), expected);
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt(b"{\"error\":\"x\"}"), "{\"error\":\"x\"}");
        assert_eq!(excerpt(b"<html>\n<body>"), "<html>…");
        assert_eq!(
            excerpt("é".repeat(200).as_bytes()),
            format!("{}…", "é".repeat(120))
        );
    }

    #[test]
    fn requests_are_serialised() {
        let mut out = Vec::new();
        write_request(&mut out, "POST", "/tasks", "h:1", Some(b"{}"));
        let expected = "POST /tasks HTTP/1.1\r\nhost: h:1\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(out, expected.as_bytes());
        write_request(&mut out, "GET", "/", "h", None);
        assert_eq!(out, b"GET / HTTP/1.1\r\nhost: h\r\n\r\n");
    }

    /// A real socket: the server closes an idle keep-alive connection, which `is_stale` notices.
    #[tokio::test]
    async fn idle_close_is_noticed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"GET / HTTP/1.1\r\n"));
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK")
                .await
                .unwrap();
            // Then close while the client is idle.
        });
        let mut conn = Conn::connect(addr).await.unwrap();
        let resp = conn
            .send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!((resp.status, resp.body), (200, &b"OK"[..]));
        server.await.unwrap();
        let give_up = Instant::now() + std::time::Duration::from_secs(5);
        while !conn.is_stale() {
            assert!(Instant::now() < give_up, "close not noticed");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // A request on the closed connection fails as closed or as an i/o error.
        let err = conn
            .send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap_err();
        assert!(
            matches!(err, ExchangeError::Closed | ExchangeError::Io(_)),
            "{err}"
        );
    }
}
