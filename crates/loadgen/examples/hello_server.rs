//! A trivial, fast HTTP/1.1 keep-alive server (`Hello, World!` for every request) for comparing
//! loadgen's raw throughput with wrk: `cargo run --release -p loadgen --example hello_server -- 127.0.0.1:8099 1`.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 13\r\n\r\nHello, World!";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:8099".to_owned());
    let threads: usize = args.next().map_or(Ok(1), |t| t.parse())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind(&bind).await?;
        println!(
            "listening on http://{} (stack=hello-raw, db=none, workers={threads}, pool=0)",
            listener.local_addr()?
        );
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(serve(stream));
        }
    })
}

/// Answers every complete request head in the buffer (pipelining-safe; bodies are not expected).
async fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 16 * 1024];
    let mut filled = 0;
    let mut out = Vec::with_capacity(4096);
    loop {
        match stream.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
        let mut start = 0;
        while let Some(end) = buf[start..filled].windows(4).position(|w| w == b"\r\n\r\n") {
            out.extend_from_slice(RESPONSE);
            start += end + 4;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if filled == buf.len() {
            return;
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}
