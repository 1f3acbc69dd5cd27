//! How exact is the delay proxy ([`harness::delay`])? One client sends small messages to an echo
//! server and waits for each echo, directly and through the proxy set to add a round trip of
//! each setting, in alternating blocks so the machine's drift touches both alike. The proxy is
//! the one the comparison runs: `loadgen delay-proxy` of the benchmark build, in a process of
//! its own. The added round trip is the proxied median minus the direct median; the table gives
//! it beside the setting, with the spread of the proxied round trips and the CPU time the
//! proxy's process spent per round trip.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use harness::delay::ProxyProcess;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Added round trips to measure, in milliseconds, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "0.25,1,5")]
    settings: Vec<f64>,
    /// Round trips per setting, each way (direct and proxied)
    #[arg(long, default_value_t = 2000)]
    round_trips: usize,
    /// Blocks the round trips are split into, alternating direct and proxied
    #[arg(long, default_value_t = 10)]
    blocks: usize,
    /// Bytes per message
    #[arg(long, default_value_t = 64)]
    message_bytes: usize,
}

/// A connection sending one message at a time and timing its echo.
struct Pinger {
    stream: TcpStream,
    message: Vec<u8>,
    echo: Vec<u8>,
}

impl Pinger {
    fn connect(addr: SocketAddr, bytes: usize) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            message: vec![b'x'; bytes],
            echo: vec![0; bytes],
        })
    }

    /// `n` round trips, their times appended to `times`.
    fn round_trips(&mut self, n: usize, times: &mut Vec<Duration>) -> anyhow::Result<()> {
        for _ in 0..n {
            let sent = Instant::now();
            self.stream.write_all(&self.message)?;
            self.stream.read_exact(&mut self.echo)?;
            times.push(sent.elapsed());
        }
        Ok(())
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "an index within the slice"
    )]
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

pub fn accuracy(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.round_trips >= args.blocks && args.blocks > 0,
        "--round-trips must be at least --blocks, and --blocks at least 1"
    );
    let echo = harness::delay::echo_server()?;
    let loadgen = harness::cargo::build_measured()?.join("loadgen");
    let per_block = args.round_trips / args.blocks;
    println!(
        "Added round trip through `loadgen delay-proxy` (bench-release; setting = round trip \
         added, half each way), {} round trips of {} bytes each way per setting, in {} \
         alternating blocks",
        per_block * args.blocks,
        args.message_bytes,
        args.blocks
    );
    println!(
        "| setting µs | direct p50 µs | proxied p50 µs | added µs | error | proxied p99 - p50 µs | proxy CPU µs per round trip |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for &setting_ms in &args.settings {
        anyhow::ensure!(
            setting_ms.is_finite() && setting_ms >= 0.0,
            "a setting must be a number of milliseconds >= 0, not {setting_ms}"
        );
        let mut program = std::process::Command::new(&loadgen);
        program.args([
            "delay-proxy".to_owned(),
            format!("--upstream={echo}"),
            format!("--rtt-ms={setting_ms}"),
        ]);
        let proxy = ProxyProcess::spawn(program)?;
        let mut direct = Pinger::connect(echo, args.message_bytes)?;
        let mut proxied = Pinger::connect(proxy.addr(), args.message_bytes)?;
        // Warm-up: connections, the proxy's threads and its learnt sleep margin.
        direct.round_trips(per_block.min(100), &mut Vec::new())?;
        proxied.round_trips(per_block.min(100), &mut Vec::new())?;
        let (mut direct_times, mut proxied_times) = (Vec::new(), Vec::new());
        let proxy_cpu = || loadgen::monitor::cpu_seconds(Some(proxy.pid()));
        let cpu_before = proxy_cpu()?;
        for block in 0..args.blocks {
            if block % 2 == 0 {
                direct.round_trips(per_block, &mut direct_times)?;
                proxied.round_trips(per_block, &mut proxied_times)?;
            } else {
                proxied.round_trips(per_block, &mut proxied_times)?;
                direct.round_trips(per_block, &mut direct_times)?;
            }
        }
        let cpu = proxy_cpu()? - cpu_before;
        direct_times.sort();
        proxied_times.sort();
        let direct_p50 = micros(quantile(&direct_times, 0.5));
        let proxied_p50 = micros(quantile(&proxied_times, 0.5));
        let added = proxied_p50 - direct_p50;
        let wanted = setting_ms * 1000.0;
        let spread = micros(quantile(&proxied_times, 0.99)) - proxied_p50;
        let proxy_cpu = cpu * 1e6 / proxied_times.len() as f64;
        let error = if wanted > 0.0 {
            format!("{:+.1} %", (added / wanted - 1.0) * 100.0)
        } else {
            format!("{added:+.0} µs")
        };
        println!(
            "| {wanted:.0} | {direct_p50:.1} | {proxied_p50:.1} | {added:.1} | {error} | {spread:.1} | {proxy_cpu:.1} |"
        );
    }
    Ok(())
}
