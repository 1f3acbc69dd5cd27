//! A tiny HTTP/1.1 keep-alive test server on a raw tokio listener, scripted per request.

#![allow(
    dead_code,
    reason = "each test file uses a different part of this module"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server answers to one request.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// Hold the answer until this moment (a stall).
    pub delay_until: Option<Instant>,
    /// Close the connection after this answer: with `connection: close`, or (`Some(false)`)
    /// silently, as a server whose keep-alive timer ran out would.
    pub close: Option<bool>,
}

impl Reply {
    pub fn new(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.as_bytes().to_vec(),
            delay_until: None,
            close: None,
        }
    }
}

/// Called with the 1-based number of the request across all connections, its method and path.
pub type Handler = Arc<dyn Fn(u64, &str, &str) -> Reply + Send + Sync>;

/// Serves `handler` on 127.0.0.1 on a free port until the runtime ends.
pub async fn serve(handler: Handler) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let counter = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection(stream, handler.clone(), counter.clone()));
        }
    });
    addr
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn connection(mut stream: TcpStream, handler: Handler, counter: Arc<AtomicU64>) {
    stream.set_nodelay(true).ok();
    let mut buf = Vec::with_capacity(4096);
    let mut tmp = [0u8; 4096];
    loop {
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let content_length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + content_length {
            match stream.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
        buf.drain(..head_end + content_length);
        let mut first = head.lines().next().unwrap_or_default().split(' ');
        let method = first.next().unwrap_or_default().to_owned();
        let path = first.next().unwrap_or_default().to_owned();
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let reply = handler(n, &method, &path);
        if let Some(t) = reply.delay_until {
            tokio::time::sleep_until(t.into()).await;
        }
        let mut out = format!(
            "HTTP/1.1 {} X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{}\r\n",
            reply.status,
            reply.body.len(),
            if reply.close == Some(true) {
                "connection: close\r\n"
            } else {
                ""
            }
        )
        .into_bytes();
        out.extend_from_slice(&reply.body);
        if stream.write_all(&out).await.is_err() || reply.close.is_some() {
            return;
        }
    }
}
