//! The soak: loadgen's `soak` workload (the mixed workload with every client writing tasks of
//! its own and every answer checked byte for byte) against every stack on SQLite and
//! PostgreSQL, 60 s at 256 keep-alive connections by default, then every acknowledged write
//! read back. Zero errors required. The test suite runs the same for 3 s (`tests/soak.rs`).

use std::time::{Duration, Instant};

use anyhow::bail;
use harness::DbKind;
use harness::server::ServerSpec;
use loadgen::engine::LoadConfig;
use loadgen::measure::{self, MeasureOptions, TargetSpec};
use loadgen::record::Provenance;
use loadgen::workload::{Workload, WorkloadKind};

use crate::run;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// How long the load runs on each stack and database, in seconds
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Concurrent keep-alive connections
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Stacks, comma-separated [default: all]
    #[arg(long, value_delimiter = ',')]
    stacks: Vec<String>,
    /// Databases, comma-separated [default: sqlite,postgres]
    #[arg(long, value_delimiter = ',')]
    dbs: Vec<DbKind>,
}

pub fn soak(args: &Args) -> anyhow::Result<()> {
    let stacks = harness::stacks::select(&args.stacks).map_err(anyhow::Error::msg)?;
    let dbs = if args.dbs.is_empty() {
        DbKind::ALL.to_vec()
    } else {
        args.dbs.clone()
    };
    if !(1..=3600).contains(&args.duration) || !(1..=4096).contains(&args.connections) {
        bail!("--duration must be in 1..=3600 seconds and --connections in 1..=4096");
    }
    let (pg_url, _cluster) = run::test_postgres()?;
    run::build_test_binaries()?;
    let opts = MeasureOptions {
        load: LoadConfig {
            workload: Workload::new(WorkloadKind::Soak),
            connections: args.connections,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(args.duration),
            timeout: Duration::from_secs(30),
            ..LoadConfig::default()
        },
        threads: 2,
        ..MeasureOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.threads)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let mut failed = Vec::new();
    for stack in &stacks {
        for &db in &dbs {
            let target = TargetSpec::Spawn {
                server: ServerSpec::new(
                    stack.executable(&harness::cargo::target_dir().join("debug")),
                ),
                db,
                pg_admin_url: Some(pg_url.clone()),
            };
            let outcome =
                runtime.block_on(measure::measure(&opts, &target, &Provenance::collect()));
            run::check_interrupted()?;
            let passed = match outcome {
                Ok(measured) => {
                    let r = &measured.record.results;
                    println!("{}", measure::summarize(&measured.record));
                    if !measured.server_stderr.trim().is_empty() {
                        println!(
                            "  ! the server wrote to stderr: {}",
                            measured.server_stderr.trim()
                        );
                    }
                    r.errors_total == 0
                        && r.clean_shutdown == Some(true)
                        && r.integrity.as_ref().is_some_and(|i| i.holds())
                        && measured.server_stderr.trim().is_empty()
                }
                Err(err) => {
                    println!("{} on {db}: {err:#}", stack.name);
                    false
                }
            };
            println!(
                "{} {} on {db}",
                if passed { "PASS" } else { "FAIL" },
                stack.name
            );
            if !passed {
                failed.push(format!("{} on {db}", stack.name));
            }
        }
    }
    let runs = stacks.len() * dbs.len();
    println!(
        "soak: {} of {runs} passed in {} s",
        runs - failed.len(),
        started.elapsed().as_secs()
    );
    if !failed.is_empty() {
        bail!("soak failed: {}", failed.join(", "));
    }
    Ok(())
}
