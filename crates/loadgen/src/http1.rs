//! A lean HTTP/1.1 keep-alive client: requests go out as pre-serialised bytes in one write,
//! answers are read into a reusable buffer and parsed just enough for the checks (status,
//! `content-length` or chunked framing, `connection: close`).
//!
//! The parser copes with answers split across reads and keeps bytes that arrive after the
//! current answer for the next one. No per-request allocation on the usual path.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Headers larger than this are a protocol error (nothing in this benchmark comes close).
const MAX_HEAD: usize = 64 * 1024;
/// Initial size of a connection's read buffer.
const INITIAL_BUF: usize = 8 * 1024;

/// Why an exchange failed.
#[derive(Debug)]
pub enum ExchangeError {
    /// Could not open the connection.
    Connect(io::Error),
    /// Reading or writing failed.
    Io(io::Error),
    /// The peer closed the connection before the answer was complete.
    Closed,
    /// The answer was not valid HTTP/1.x.
    Protocol(&'static str),
}

impl std::fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "connect: {e}"),
            Self::Io(e) => write!(f, "i/o: {e}"),
            Self::Closed => f.write_str("connection closed before the answer was complete"),
            Self::Protocol(what) => write!(f, "malformed answer: {what}"),
        }
    }
}

impl std::error::Error for ExchangeError {}

/// How the body of an answer is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all (1xx, 204, 304).
    Empty,
    /// `content-length: n`.
    Length(usize),
    /// `transfer-encoding: chunked`.
    Chunked,
    /// Neither: the body runs until the server closes the connection.
    UntilClose,
}

/// The parsed status line and the headers that matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes of status line and headers, the blank line included.
    pub len: usize,
    pub framing: Framing,
    /// Whether the connection may carry another request after this answer.
    pub keep_alive: bool,
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Whether the comma-separated header value `v` lists `token` (case-insensitive).
fn has_token(v: &[u8], token: &[u8]) -> bool {
    v.split(|&b| b == b',')
        .any(|t| trim(t).eq_ignore_ascii_case(token))
}

fn parse_decimal(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 18 {
        return None;
    }
    v.iter().try_fold(0usize, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + usize::from(b - b'0'))
    })
}

/// Where the head ends (just past the blank line), if it is all there.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = buf[from..].iter().position(|&b| b == b'\n') {
        let nl = from + i;
        // "\n\n" or "\n\r\n" ends the head.
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => from = nl + 1,
        }
    }
    None
}

/// Parses an answer's head from the start of `buf`; `Ok(None)` means "need more bytes".
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, ExchangeError> {
    let Some(len) = head_end(buf) else {
        if buf.len() > MAX_HEAD {
            return Err(ExchangeError::Protocol("head too large"));
        }
        // A wrong first byte fails now rather than after a timeout.
        if !b"HTTP/".starts_with(&buf[..buf.len().min(5)]) {
            return Err(ExchangeError::Protocol("not an HTTP/1.x status line"));
        }
        return Ok(None);
    };
    let mut lines = buf[..len].split(|&b| b == b'\n').map(|l| match l {
        [rest @ .., b'\r'] => rest,
        l => l,
    });
    let status_line = lines.next().unwrap_or_default();
    let (http10, rest) = match status_line {
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'1',
            b'.',
            minor,
            b' ',
            rest @ ..,
        ] => (*minor == b'0', rest),
        _ => return Err(ExchangeError::Protocol("not an HTTP/1.x status line")),
    };
    let status = match rest {
        [a, b, c, ..] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Err(ExchangeError::Protocol("bad status code")),
    };
    if rest.len() > 3 && rest[3] != b' ' {
        return Err(ExchangeError::Protocol("bad status code"));
    }
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut keep_alive = !http10;
    for line in lines.filter(|l| !l.is_empty()) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(ExchangeError::Protocol("header line without a colon"));
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_decimal(value).ok_or(ExchangeError::Protocol("bad content-length"))?;
            if content_length.is_some_and(|c| c != n) {
                return Err(ExchangeError::Protocol("conflicting content-length"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = has_token(value, b"chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            if has_token(value, b"close") {
                keep_alive = false;
            } else if has_token(value, b"keep-alive") {
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
        let Some(i) = buf[pos..].iter().position(|&b| b == b'\n') else {
            return if buf.len() - pos > 1024 {
                Err(ExchangeError::Protocol("chunk size line too long"))
            } else {
                Ok(None)
            };
        };
        let line = &buf[pos..pos + i];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // Chunk extensions (";name=value") are ignored.
        let digits = trim(line.split(|&b| b == b';').next().unwrap_or_default());
        if digits.is_empty() || digits.len() > 15 {
            return Err(ExchangeError::Protocol("bad chunk size"));
        }
        let mut size = 0usize;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(ExchangeError::Protocol("bad chunk size")),
            };
            size = size * 16 + usize::from(v);
        }
        pos += i + 1;
        if size == 0 {
            // Trailer fields, then the blank line.
            loop {
                let Some(i) = buf[pos..].iter().position(|&b| b == b'\n') else {
                    return Ok(None);
                };
                let line = &buf[pos..pos + i];
                pos += i + 1;
                if line.is_empty() || line == b"\r" {
                    return Ok(Some(pos));
                }
            }
        }
        let Some(data) = buf.get(pos..pos + size) else {
            return Ok(None);
        };
        out.extend_from_slice(data);
        pos += size;
        match buf.get(pos..pos + 2) {
            None => match buf.get(pos) {
                None | Some(b'\r') => return Ok(None),
                Some(b'\n') => pos += 1,
                Some(_) => return Err(ExchangeError::Protocol("chunk not followed by CRLF")),
            },
            Some(b"\r\n") => pos += 2,
            Some([b'\n', _]) => pos += 1,
            Some(_) => return Err(ExchangeError::Protocol("chunk not followed by CRLF")),
        }
    }
}

/// One complete answer; `body` borrows the connection's buffers until the next exchange.
#[derive(Debug, PartialEq, Eq)]
pub struct Response<'a> {
    pub status: u16,
    pub body: &'a [u8],
    /// Whether the connection may be reused (false after `connection: close` or a body
    /// delimited by the server closing).
    pub keep_alive: bool,
}

/// The receiving side of a connection: a reusable buffer and the answer parser.
#[derive(Debug)]
pub struct Reader {
    /// Always fully initialised; `start..end` holds received, unconsumed bytes.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Decoded chunked bodies.
    chunked: Vec<u8>,
}

impl Default for Reader {
    fn default() -> Self {
        Self {
            buf: vec![0; INITIAL_BUF],
            start: 0,
            end: 0,
            chunked: Vec::new(),
        }
    }
}

impl Reader {
    /// Received bytes not yet consumed by an answer.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads more bytes; returns how many (0 at end of stream).
    async fn fill<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> io::Result<usize> {
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
        let n = stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// Reads one complete answer from `stream` (interim 1xx answers are skipped).
    pub async fn read_response<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<Response<'_>, ExchangeError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let head = loop {
            match parse_head(self.pending())? {
                Some(head) if head.status >= 200 => break head,
                Some(head) if head.status == 101 => {
                    return Err(ExchangeError::Protocol(
                        "unexpected 101 Switching Protocols",
                    ));
                }
                Some(interim) => {
                    self.start += interim.len;
                    continue;
                }
                None => {}
            }
            if self.fill(stream).await.map_err(ExchangeError::Io)? == 0 {
                return Err(ExchangeError::Closed);
            }
        };
        // Offsets are kept relative to `start`: `fill` may move the unconsumed bytes to the front.
        let status = head.status;
        let keep_alive = head.keep_alive;
        match head.framing {
            Framing::Empty => {
                self.start += head.len;
                Ok(Response {
                    status,
                    body: &[],
                    keep_alive,
                })
            }
            Framing::Length(n) => {
                while self.end - self.start - head.len < n {
                    if self.fill(stream).await.map_err(ExchangeError::Io)? == 0 {
                        return Err(ExchangeError::Closed);
                    }
                }
                let body_start = self.start + head.len;
                self.start = body_start + n;
                Ok(Response {
                    status,
                    body: &self.buf[body_start..body_start + n],
                    keep_alive,
                })
            }
            Framing::Chunked => loop {
                let body_start = self.start + head.len;
                if let Some(used) =
                    parse_chunked(&self.buf[body_start..self.end], &mut self.chunked)?
                {
                    self.start = body_start + used;
                    return Ok(Response {
                        status,
                        body: &self.chunked,
                        keep_alive,
                    });
                }
                if self.fill(stream).await.map_err(ExchangeError::Io)? == 0 {
                    return Err(ExchangeError::Closed);
                }
            },
            Framing::UntilClose => {
                while self.fill(stream).await.map_err(ExchangeError::Io)? > 0 {}
                let body_start = self.start + head.len;
                let end = self.end;
                self.start = end;
                Ok(Response {
                    status,
                    body: &self.buf[body_start..end],
                    keep_alive: false,
                })
            }
        }
    }
}

/// One keep-alive HTTP/1.1 connection.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    reader: Reader,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Result<Self, ExchangeError> {
        let stream = TcpStream::connect(addr)
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

    /// Writes one pre-serialised request and reads the whole answer.
    pub async fn send(&mut self, request: &[u8]) -> Result<Response<'_>, ExchangeError> {
        self.stream
            .write_all(request)
            .await
            .map_err(ExchangeError::Io)?;
        self.reader.read_response(&mut self.stream).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` to a fresh reader in pieces of `piece` bytes and collects every answer
    /// (status, body, keep-alive) until the stream ends.
    async fn read_all(wire: &[u8], piece: usize) -> (Vec<(u16, Vec<u8>, bool)>, Option<String>) {
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
                .read_response(&mut client)
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

    fn ok(status: u16, body: &str) -> (u16, Vec<u8>, bool) {
        (status, body.as_bytes().to_vec(), true)
    }

    /// Every piece size from byte-by-byte to all at once gives the same answers.
    async fn check(wire: &str, expected: &[(u16, Vec<u8>, bool)]) {
        for piece in [1, 2, 3, 5, 7, 16, 64, wire.len()] {
            let (got, err) = read_all(wire.as_bytes(), piece).await;
            assert_eq!(err, None, "piece {piece}: {wire:?}");
            assert_eq!(got, expected, "piece {piece}: {wire:?}");
        }
    }

    #[tokio::test]
    async fn content_length_split_and_pipelined() {
        let one = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
        check(one, &[ok(200, "Hello, World!")]).await;
        // Two answers back to back: the second arrives with (or inside) the first's last read.
        let two = format!("{one}HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{{}}");
        check(&two, &[ok(200, "Hello, World!"), ok(404, "{}")]).await;
    }

    #[tokio::test]
    async fn empty_bodies() {
        let wire = concat!(
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 204 No Content\r\n\r\n",
            "HTTP/1.1 204 No Content\r\ndate: x\r\n\r\n",
            "HTTP/1.1 304 Not Modified\r\ncontent-length: 10\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK",
        );
        check(
            wire,
            &[
                ok(200, ""),
                ok(204, ""),
                ok(204, ""),
                ok(304, ""),
                ok(200, "OK"),
            ],
        )
        .await;
    }

    #[tokio::test]
    async fn chunked_bodies() {
        let wire = concat!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "5\r\nHello\r\n8;ext=1\r\n, World!\r\n0\r\n\r\n",
            "HTTP/1.1 201 Created\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
            "A\r\n0123456789\r\n0\r\nx-trailer: y\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        );
        check(
            wire,
            &[ok(200, "Hello, World!"), ok(201, "0123456789"), ok(200, "")],
        )
        .await;
    }

    #[tokio::test]
    async fn connection_close_and_interim_answers() {
        // An interim 100 is skipped; `connection: close` ends reuse.
        let wire = concat!(
            "HTTP/1.1 100 Continue\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK",
            "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\ncontent-length: 4\r\n\r\nboom",
        );
        check(wire, &[ok(200, "OK"), (500, b"boom".to_vec(), false)]).await;
        // No length at all: the body runs until the server closes.
        check(
            "HTTP/1.1 200 OK\r\n\r\nuntil close",
            &[(200, b"until close".to_vec(), false)],
        )
        .await;
        // HTTP/1.0 closes unless it says keep-alive.
        check(
            "HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nA",
            &[(200, b"A".to_vec(), false)],
        )
        .await;
        check(
            "HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 1\r\n\r\nA",
            &[ok(200, "A")],
        )
        .await;
    }

    #[tokio::test]
    async fn truncated_and_malformed_answers_fail() {
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
        assert_eq!(
            head,
            Head {
                status: 201,
                len: 63,
                framing: Framing::Length(5),
                keep_alive: true
            }
        );
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n").unwrap(), None);
        assert_eq!(parse_head(b"HTT").unwrap(), None);
        // A bare reason-less status line and LF-only line ends are accepted.
        let head = parse_head(b"HTTP/1.1 204\nX: y\n\n").unwrap().unwrap();
        assert_eq!(
            (head.status, head.len, head.framing),
            (204, 19, Framing::Empty)
        );
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
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !conn.is_stale() {
            assert!(std::time::Instant::now() < give_up, "close not noticed");
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
