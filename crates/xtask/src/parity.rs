//! Is loadgen as fast a client as wrk? Both load `GET /` of one server (a stack's
//! benchmark-profile build, pinned to the first core with one worker) from the other core,
//! in interleaved rounds, at the same connection counts; the requests per second of each,
//! round by round, and the median ratio. A load generator slower than the server would
//! measure itself.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use harness::DbKind;
use harness::server::ServerSpec;

use crate::run;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The stack whose server is loaded
    #[arg(long, default_value = "axum-sqlx")]
    stack: String,
    /// Connection counts, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "10,64")]
    connections: Vec<usize>,
    /// Rounds (each: wrk and loadgen, alternating which goes first)
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds each measurement lasts
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

/// `Requests/sec:` of wrk's report.
fn wrk_rate(output: &str) -> Option<f64> {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
}

fn output_of(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {}", run::describe(cmd)))?;
    run::check_interrupted()?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            run::describe(cmd),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One wrk measurement: `GET /` over `connections`, one thread, on the client core.
fn wrk(url: &str, connections: usize, seconds: u64) -> anyhow::Result<f64> {
    // wrk has no warm-up of its own: it runs one second longer than loadgen measures.
    let text = output_of(
        Command::new("taskset")
            .args(["-c", "1", "wrk", "-t1"])
            .args([
                format!("-c{connections}"),
                format!("-d{}s", seconds + 1),
                url.to_owned(),
            ]),
    )?;
    wrk_rate(&text).with_context(|| format!("no Requests/sec in wrk's output: {text}"))
}

/// One loadgen measurement, the same load, its throughput read from its record.
fn loadgen(
    bin: &Path,
    url: &str,
    connections: usize,
    seconds: u64,
    record: &Path,
) -> anyhow::Result<f64> {
    let _ = std::fs::remove_file(record);
    output_of(
        Command::new("taskset")
            .args(["-c", "1"])
            .arg(bin)
            .args(["run", "--url", url, "--workload", "hello", "--threads", "1"])
            .args(["--connections", &connections.to_string()])
            .args(["--warmup", "1s", "--duration", &format!("{seconds}s")])
            .arg("--out")
            .arg(record),
    )?;
    let rec = loadgen::record::read_all(record)?
        .pop()
        .context("loadgen wrote no record")?;
    if rec.results.errors_total > 0 {
        bail!("loadgen saw {} errors", rec.results.errors_total);
    }
    Ok(rec.results.throughput)
}

pub fn parity(args: &Args) -> anyhow::Result<()> {
    let stack = harness::stacks::find(&args.stack)
        .with_context(|| format!("unknown stack {:?}", args.stack))?;
    if Command::new("wrk").arg("--version").output().is_err() {
        bail!("wrk is not installed (Debian: apt-get install wrk)");
    }
    let bin = harness::cargo::build_measured()?;
    let spec = ServerSpec {
        workers: 1,
        cores: Some("0".to_owned()),
        ..ServerSpec::new(stack.executable(&bin))
    };
    let mut server = spec.start(DbKind::Sqlite, None)?;
    server.wait_healthy(Duration::from_secs(30))?;
    let url = format!("http://{}/", server.addr());
    let record = harness::cargo::target_dir().join("parity-record.jsonl");
    println!(
        "GET / on {} (bench-release, 1 worker, core 0); clients on core 1, 1 thread, {} s each",
        stack.name, args.seconds
    );
    println!("| connections | round | wrk req/s | loadgen req/s | loadgen / wrk |");
    println!("|---:|---:|---:|---:|---:|");
    for &connections in &args.connections {
        let mut ratios = Vec::new();
        for round in 0..args.rounds {
            let measure_wrk = || wrk(&url, connections, args.seconds);
            let measure_loadgen = || {
                loadgen(
                    &bin.join("loadgen"),
                    &url,
                    connections,
                    args.seconds,
                    &record,
                )
            };
            let (w, l) = if round % 2 == 0 {
                let w = measure_wrk()?;
                (w, measure_loadgen()?)
            } else {
                let l = measure_loadgen()?;
                (measure_wrk()?, l)
            };
            ratios.push(l / w);
            println!(
                "| {connections} | {} | {w:.0} | {l:.0} | {:.2} |",
                round + 1,
                l / w
            );
        }
        println!(
            "connections {connections}: median loadgen / wrk = {:.2} over {} rounds",
            loadgen::stats::median(ratios),
            args.rounds
        );
    }
    let stopped = server.stop(Duration::from_secs(10))?;
    if !stopped.clean() {
        bail!("the server did not stop cleanly: {}", stopped.describe());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk() {
        let report = "Running 5s test @ http://127.0.0.1:1/\n  1 threads and 10 connections\nRequests/sec: 104806.18\nTransfer/sec:     13.09MB\n";
        assert_eq!(wrk_rate(report), Some(104_806.18));
        assert_eq!(wrk_rate("nothing"), None);
    }
}
