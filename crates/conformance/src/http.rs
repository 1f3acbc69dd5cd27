//! A deliberately small HTTP/1.1 client over a plain `TcpStream`, so tests control every byte:
//! missing headers, invalid UTF-8, exact bodies. One request per connection (`connection: close`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response as received.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A request to send; build with [`Request::new`] and the chained setters.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Request {
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body (and its `content-length`), with no content type.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets a body with `content-type: application/json`.
    pub fn json(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("content-type", "application/json").body(body)
    }

    /// The request's bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "{} {} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n",
            self.method, self.path
        );
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = &self.body {
            out.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(self.body.as_deref().unwrap_or_default());
        bytes
    }

    pub fn send(&self, addr: SocketAddr) -> io::Result<Response> {
        send_raw(addr, &self.to_bytes(), self.method == "HEAD")
    }
}

/// Writes `raw` to a new connection and reads the whole response.
pub fn send_raw(addr: SocketAddr, raw: &[u8], head: bool) -> io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    // A server may answer (413, 415) before reading the whole body and close; that is fine.
    let _ = stream.write_all(raw);
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::ConnectionReset && !received.is_empty() => {}
        Err(err) => return Err(err),
    }
    parse(&received, head)
}

/// What became of a raw exchange that may be refused at the connection level.
#[derive(Debug)]
pub enum Reply {
    /// A complete response.
    Response(Response),
    /// The server closed (or reset) the connection without a complete response.
    Closed { received: usize },
    /// Nothing complete arrived within the timeout and the connection is still open.
    TimedOut { received: usize },
}

/// Writes `raw` on a new connection (write errors are ignored: a server may refuse early and
/// close) and reads until one complete response, the connection's end, or `timeout`.
pub fn exchange(addr: SocketAddr, raw: &[u8], timeout: Duration) -> io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_write_timeout(Some(timeout))?;
    let _ = stream.write_all(raw);
    read_reply(&mut stream, timeout)
}

/// Reads from `stream` until one complete response, the connection's end, or `timeout`.
pub fn read_reply(stream: &mut TcpStream, timeout: Duration) -> io::Result<Reply> {
    let deadline = std::time::Instant::now() + timeout;
    let mut received = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(Reply::TimedOut {
                received: received.len(),
            });
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(ended(&received)),
            Ok(n) => {
                received.extend_from_slice(&buf[..n]);
                if let Some(response) = complete(&received) {
                    return Ok(Reply::Response(response));
                }
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(Reply::TimedOut {
                    received: received.len(),
                });
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Ok(ended(&received)),
        }
    }
}

/// The connection ended: a response sent before the end still counts.
fn ended(received: &[u8]) -> Reply {
    match parse(received, false) {
        Ok(response) => Reply::Response(response),
        Err(_) => Reply::Closed {
            received: received.len(),
        },
    }
}

/// The response in `bytes` once its headers and (sized or chunked) body are all there.
fn complete(bytes: &[u8]) -> Option<Response> {
    let response = parse(bytes, false).ok()?;
    let sized = response.header("content-length").is_some()
        || response.header("transfer-encoding").is_some();
    (sized || matches!(response.status, 204 | 304)).then_some(response)
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// Parses one HTTP/1.1 response (content-length, chunked, or read-to-close bodies).
pub fn parse(bytes: &[u8], head: bool) -> io::Result<Response> {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of headers"))?;
    let head_text =
        std::str::from_utf8(&bytes[..end]).map_err(|_| invalid("headers are not UTF-8"))?;
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &bytes[end + 4..];
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if head || status == 204 || status == 304 {
        return Ok(response);
    }
    response.body = if response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)?
    } else if let Some(length) = response.header("content-length") {
        let length: usize = length.parse().map_err(|_| invalid("bad content-length"))?;
        rest.get(..length)
            .ok_or_else(|| invalid("body shorter than content-length"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(response)
}

fn dechunk(mut rest: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("bad chunk"))?;
        let size_text =
            std::str::from_utf8(&rest[..line_end]).map_err(|_| invalid("bad chunk size"))?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| invalid("bad chunk size"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(rest.get(..size).ok_or_else(|| invalid("truncated chunk"))?);
        rest = rest
            .get(size + 2..)
            .ok_or_else(|| invalid("truncated chunk"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sized_chunked_and_empty_bodies() {
        let sized = parse(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nX-A: b\r\n\r\nhi",
            false,
        )
        .unwrap();
        assert_eq!(
            (sized.status, sized.body.as_slice(), sized.header("x-a")),
            (200, &b"hi"[..], Some("b"))
        );
        let chunked = parse(b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n", false).unwrap();
        assert_eq!(chunked.body, b"abc");
        let empty = parse(b"HTTP/1.1 204 No Content\r\n\r\n", false).unwrap();
        assert!(empty.body.is_empty());
        assert!(parse(b"HTTP/1.1 200 OK\r\n", false).is_err());
    }

    #[test]
    fn requests_carry_length_and_type() {
        let raw = Request::new("POST", "/tasks").json("{}").to_bytes();
        let text = String::from_utf8(raw).unwrap();
        assert!(text.starts_with("POST /tasks HTTP/1.1\r\n"));
        assert!(text.contains("content-type: application/json\r\n"));
        assert!(text.ends_with("content-length: 2\r\n\r\n{}"));
    }
}
