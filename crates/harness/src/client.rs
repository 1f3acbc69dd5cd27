//! A deliberately small blocking HTTP/1.1 client over a plain `TcpStream`, so tests control
//! every byte: missing headers, invalid UTF-8, exact bodies, raw bytes that are not HTTP at
//! all. [`Request`] sends one request per connection (`connection: close`); [`KeepAlive`]
//! keeps one connection for many. Responses are parsed by [`crate::wire`].

use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::wire::{ExchangeError, Reader};

/// How long a connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`Request::send`] waits for a response.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// A response as received, owned.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// `(lower-case name, value)` pairs, in order.
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

impl From<crate::wire::Response<'_>> for Response {
    fn from(r: crate::wire::Response<'_>) -> Self {
        Self {
            status: r.status,
            headers: r.headers(),
            body: r.body.to_vec(),
        }
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

    /// The request line, e.g. `GET /tasks/1 HTTP/1.1`.
    pub fn line(&self) -> String {
        format!("{} {} HTTP/1.1", self.method, self.path)
    }

    /// The request's bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "{}\r\nhost: localhost\r\nconnection: close\r\n",
            self.line()
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

    /// Sends the request on a new connection and reads its response.
    pub fn send(&self, addr: SocketAddr) -> io::Result<Response> {
        send_raw(addr, &self.to_bytes(), self.method == "HEAD")
    }
}

/// Writes `raw` to a new connection and reads one whole response (`head`: it answers a HEAD).
/// A server may answer (413, 415) before reading the whole request and close: that is fine.
pub fn send_raw(addr: SocketAddr, raw: &[u8], head: bool) -> io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_write_timeout(Some(SEND_TIMEOUT))?;
    let _ = stream.write_all(raw);
    let mut reader = Reader::default();
    let response = reader.read_blocking(&mut stream, head, Instant::now() + SEND_TIMEOUT)?;
    Ok(response.into())
}

/// What became of a raw exchange that may be refused at the connection level.
#[derive(Debug)]
pub enum Reply {
    /// A complete response.
    Response(Response),
    /// The server closed (or reset) the connection without a complete response.
    Closed { received: u64 },
    /// Nothing complete arrived within the timeout and the connection is still open.
    TimedOut { received: u64 },
}

/// Writes `raw` on a new connection (write errors are ignored: a server may refuse early and
/// close) and reads until one complete response, the connection's end, or `timeout`.
pub fn exchange(addr: SocketAddr, raw: &[u8], timeout: Duration) -> io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_write_timeout(Some(timeout))?;
    let _ = stream.write_all(raw);
    read_reply(&mut stream, timeout)
}

/// Reads from `stream` until one complete response, the connection's end, or `timeout`.
/// A response that is not HTTP is an `InvalidData` error.
pub fn read_reply(stream: &mut TcpStream, timeout: Duration) -> io::Result<Reply> {
    let mut reader = Reader::default();
    let result = reader
        .read_blocking(stream, false, Instant::now() + timeout)
        .map(Response::from);
    let received = reader.received();
    match result {
        Ok(response) => Ok(Reply::Response(response)),
        Err(ExchangeError::Closed) => Ok(Reply::Closed { received }),
        Err(ExchangeError::TimedOut) => Ok(Reply::TimedOut { received }),
        Err(err) => Err(err.into()),
    }
}

/// One keep-alive connection to `addr`, opened on first use and again after the server closes
/// it (`connection: close`) or any failure.
#[derive(Debug)]
pub struct KeepAlive {
    addr: SocketAddr,
    timeout: Duration,
    conn: Option<(TcpStream, Reader)>,
    request: Vec<u8>,
    /// How many times a connection was opened.
    pub connects: u64,
}

impl KeepAlive {
    /// A connection whose connect and each exchange give up after `timeout`.
    pub const fn new(addr: SocketAddr, timeout: Duration) -> Self {
        Self {
            addr,
            timeout,
            conn: None,
            request: Vec::new(),
            connects: 0,
        }
    }

    /// Sends one request (`json` as an `application/json` body when given) and reads its
    /// response.
    pub fn send(&mut self, method: &str, path: &str, json: Option<&[u8]>) -> io::Result<Response> {
        crate::wire::write_request(&mut self.request, method, path, "localhost", json);
        let result = self.exchange(method == "HEAD");
        if !matches!(&result, Ok((_, true))) {
            self.conn = None;
        }
        result.map(|(response, _)| response)
    }

    fn exchange(&mut self, head: bool) -> io::Result<(Response, bool)> {
        let (stream, reader) = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let stream = TcpStream::connect_timeout(&self.addr, self.timeout)?;
                stream.set_nodelay(true)?;
                stream.set_write_timeout(Some(self.timeout))?;
                self.connects += 1;
                self.conn.insert((stream, Reader::default()))
            }
        };
        stream.write_all(&self.request)?;
        let response = reader.read_blocking(stream, head, Instant::now() + self.timeout)?;
        let keep_alive = response.keep_alive;
        Ok((response.into(), keep_alive))
    }
}

/// A canned server, for tests: on 127.0.0.1 and a free port, it answers the first read of
/// every connection with `answer`, keeps the connection open for `hold`, then closes it.
pub fn canned_server(answer: &'static [u8], hold: Duration) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("bound");
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut buf);
            let _ = stream.write_all(answer);
            std::thread::sleep(hold);
        }
    });
    addr
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_shot(answer: &'static [u8], hold: bool) -> SocketAddr {
        let hold = if hold {
            Duration::from_secs(2)
        } else {
            Duration::ZERO
        };
        canned_server(answer, hold)
    }

    #[test]
    fn requests_carry_length_and_type() {
        let raw = Request::new("POST", "/tasks").json("{}").to_bytes();
        let text = String::from_utf8(raw).unwrap();
        assert!(text.starts_with("POST /tasks HTTP/1.1\r\n"));
        assert!(text.contains("content-type: application/json\r\n"));
        assert!(text.ends_with("content-length: 2\r\n\r\n{}"));
    }

    #[test]
    fn replies_are_responses_closes_or_timeouts() {
        let addr = one_shot(
            b"HTTP/1.1 201 Created\r\nLocation: /tasks/1\r\ncontent-length: 2\r\n\r\nhi",
            false,
        );
        let response = Request::new("GET", "/").send(addr).unwrap();
        assert_eq!((response.status, response.text()), (201, "hi".into()));
        assert_eq!(response.header("location"), Some("/tasks/1"));
        let addr = one_shot(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nhalf", false);
        let reply = exchange(addr, b"GET / HTTP/1.1\r\n\r\n", Duration::from_secs(5)).unwrap();
        assert!(matches!(reply, Reply::Closed { received: 42 }), "{reply:?}");
        let addr = one_shot(b"HTTP/1.1 200", true);
        let reply = exchange(addr, b"GET / HTTP/1.1\r\n\r\n", Duration::from_millis(300)).unwrap();
        assert!(
            matches!(reply, Reply::TimedOut { received: 12 }),
            "{reply:?}"
        );
        let addr = one_shot(b"SSH-2.0-OpenSSH\r\n\r\n", false);
        assert!(exchange(addr, b"GET / HTTP/1.1\r\n\r\n", Duration::from_secs(5)).is_err());
    }

    #[test]
    fn keep_alive_reconnects_after_a_close() {
        let addr = one_shot(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK", false);
        let mut conn = KeepAlive::new(addr, Duration::from_secs(5));
        for _ in 0..3 {
            // The server closes after each response; the next request opens a new connection.
            let outcome = conn.send("GET", "/", None);
            if let Ok(response) = outcome {
                assert_eq!(response.text(), "OK");
            }
        }
        assert!(conn.connects >= 2, "{}", conn.connects);
    }
}
