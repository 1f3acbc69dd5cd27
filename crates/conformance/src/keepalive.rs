//! A small HTTP/1.1 client that keeps its connection open between requests (the soak driver's
//! client: many requests per connection, as real clients send them). It reconnects only when
//! the server closes the connection between responses (`connection: close`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::http::Response;

/// One keep-alive connection to `addr`, opened on first use.
#[derive(Debug)]
pub struct Connection {
    addr: SocketAddr,
    timeout: Duration,
    stream: Option<BufReader<TcpStream>>,
    /// How many times a connection was opened.
    pub connects: u64,
}

impl Connection {
    /// A connection whose connect, reads and writes each give up after `timeout`.
    pub const fn new(addr: SocketAddr, timeout: Duration) -> Self {
        Self {
            addr,
            timeout,
            stream: None,
            connects: 0,
        }
    }

    /// Sends one request (`body` as `application/json` when given) and reads its response.
    /// Any I/O failure drops the connection; the next request opens a new one.
    pub fn send(&mut self, method: &str, path: &str, json: Option<&[u8]>) -> io::Result<Response> {
        let result = self.exchange(method, path, json);
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    fn exchange(&mut self, method: &str, path: &str, json: Option<&[u8]>) -> io::Result<Response> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\n");
        if let Some(body) = json {
            head.push_str(&format!(
                "content-type: application/json\r\ncontent-length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(json.unwrap_or_default());

        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let tcp = TcpStream::connect_timeout(&self.addr, self.timeout)?;
                tcp.set_nodelay(true)?;
                tcp.set_read_timeout(Some(self.timeout))?;
                tcp.set_write_timeout(Some(self.timeout))?;
                self.connects += 1;
                self.stream.insert(BufReader::new(tcp))
            }
        };
        stream.get_mut().write_all(&bytes)?;
        let (response, close) = read_response(stream, method == "HEAD")?;
        if close {
            self.stream = None;
        }
        Ok(response)
    }
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

fn read_line(stream: &mut BufReader<TcpStream>) -> io::Result<String> {
    let mut line = String::new();
    if stream.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Reads one response; the flag says whether the server will close the connection after it.
fn read_response(stream: &mut BufReader<TcpStream>, head: bool) -> io::Result<(Response, bool)> {
    let status_line = read_line(stream)?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(stream)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let close = response
        .header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    if head || matches!(status, 204 | 304) || (100..200).contains(&status) {
        return Ok((response, close));
    }
    if response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let size_line = read_line(stream)?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| invalid(format!("bad chunk size {size_line:?}")))?;
            if size == 0 {
                // Trailers, then the blank line.
                while !read_line(stream)?.is_empty() {}
                break;
            }
            let start = response.body.len();
            response.body.resize(start + size, 0);
            stream.read_exact(&mut response.body[start..])?;
            if !read_line(stream)?.is_empty() {
                return Err(invalid("a chunk not followed by CRLF"));
            }
        }
    } else if let Some(length) = response.header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| invalid(format!("bad content-length {length:?}")))?;
        response.body.resize(length, 0);
        stream.read_exact(&mut response.body)?;
    } else {
        // Delimited by the end of the connection.
        stream.read_to_end(&mut response.body)?;
        return Ok((response, true));
    }
    Ok((response, close))
}
