//! The comparison (`scripts/compare.sh`): builds every server and loadgen once with the
//! benchmark profile, measures every cell of the comparison (`loadgen matrix`: all stacks'
//! servers side by side on clones of one seeded database, randomized interleaved trials until
//! the ratios' intervals are narrow enough; server and load generator on disjoint cores),
//! counts instructions per request under callgrind (`loadgen cost`), records the reliability
//! verdicts, and renders the report.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use harness::pg::{Cluster, Options};

use crate::run::{self, run};

/// `cargo xtask compare` options; anything else is passed to every `loadgen matrix` call.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A short smoke run of the same pipeline (SQLite, short trials; no reliability verdicts)
    #[arg(long)]
    quick: bool,
    /// Results folder [default: results/<date>-<host>, with -quick for --quick]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Scenarios measured after the comparison's cells, each with a time budget of its own
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<Scenario>,
    /// Measure the --scenarios alone: no comparison cells, cost column or reliability verdicts
    #[arg(long, requires = "scenarios")]
    scenarios_only: bool,
    /// More `loadgen matrix` flags (e.g. --target-percent 2 --cell-budget 60s)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    matrix_args: Vec<String>,
}

/// The comparison's groups of cells (`loadgen matrix --phase WORKLOADS:CONNECTIONS:DBS`).
const PHASES: [[&str; 2]; 3] = [
    // The published todo benchmark's shape: ms per operation, 1 and 10 clients.
    [
        "--phase",
        "hello,create,read,update,delete:1,10:sqlite,postgres",
    ],
    // Under load: the concurrency sweep continues for the read-heavy and realistic mixes.
    ["--phase", "read,mixed:64,256:sqlite,postgres"],
    // The I/O-wait and CPU probes of the Python-vs-Rust comparisons (no database work).
    ["--phase", "sleep,fibonacci:64:sqlite"],
];

/// What the cells of the full comparison may take together (`loadgen matrix --budget`).
const MEASUREMENT_BUDGET: &str = "15m";

/// Latency at the same offered rates for every stack, up to past the fastest one's capacity
/// (`loadgen matrix --open-ladder`), measured after the cells on a budget of its own. Its
/// 36 cells (4 probes, 32 rates) at the cells' 5 rounds each took 14 minutes of an 8-minute
/// budget; what a rung shows is its merged latency histogram, so 3 rounds do.
const LADDERS: [[&str; 2]; 2] = [
    ["--open-ladder", "read,mixed:64:sqlite,postgres"],
    ["--min-rounds", "3"],
];
const LADDER_BUDGET: &str = "8m";

/// `--quick`: the todo shape on SQLite only, in short trials, and a short ladder.
const QUICK_PHASES: [[&str; 2]; 1] = [["--phase", "hello,create,read,update,delete:1,10:sqlite"]];
const QUICK_LADDERS: [[&str; 2]; 1] = [["--open-ladder", "read:64:sqlite"]];

/// A scenario beyond the comparison's cells (`--scenarios`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// PostgreSQL across a network: `read` at 64 connections with 0, 0.5, 2 and 10 ms added
    /// to every round trip to the database (a delay proxy) and pools of 2, 8 and 32
    Network,
    /// The deployment the published comparisons used: `read` on PostgreSQL at 1 and 64
    /// connections, each server direct, behind nginx, in front of pgbouncer (session pooling),
    /// and both (Debian: apt-get install nginx pgbouncer)
    Deployment,
}

impl Scenario {
    /// Its phase (`loadgen matrix --phase`) and time budget, full and `--quick`.
    const fn plan(self, quick: bool) -> (&'static str, &'static str) {
        match (self, quick) {
            (Self::Network, false) => ("read:64:postgres:0,0.5,2,10:2,8,32", "8m"),
            (Self::Network, true) => ("read:64:postgres:0,2:8", "1m"),
            (Self::Deployment, false) => ("read:1,64:postgres:deployment", "6m"),
            (Self::Deployment, true) => ("read:8:postgres:deployment", "1m"),
        }
    }
}

/// `results/<date>-<host>[-quick]`.
fn default_out(quick: bool) -> PathBuf {
    let date = loadgen::record::utc_now_rfc3339();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let suffix = if quick { "-quick" } else { "" };
    harness::cargo::workspace_root().join(format!(
        "results/{}-{}{suffix}",
        &date[..10],
        host.trim()
    ))
}

/// The cost column (`loadgen cost`), skipped with a warning where valgrind is missing.
fn cost(loadgen: &Path, out: &Path, quick: bool) -> anyhow::Result<()> {
    if std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "xtask: valgrind is not installed, so the instructions-per-request column is left \
             out (Debian: apt-get install valgrind)"
        );
        return Ok(());
    }
    let counting = std::time::Instant::now();
    let mut cmd = std::process::Command::new(loadgen);
    cmd.arg("cost").arg("--out").arg(out);
    if quick {
        // Each counted request waits 20 ms for the server to settle: a smoke run counts few.
        cmd.args([
            "--workloads",
            "hello,read",
            "--runs",
            "2",
            "--requests",
            "100",
            "--warmup",
            "50",
            "--seed",
            "200",
        ]);
    }
    run(&mut cmd)?;
    println!("cost column: {:.0} s", counting.elapsed().as_secs_f64());
    Ok(())
}

pub fn compare(args: &Args) -> anyhow::Result<()> {
    let out = args.out.clone().unwrap_or_else(|| default_out(args.quick));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let invoked: Vec<String> = std::env::args()
        .skip(1)
        .map(|a| harness::cargo::portable(&a))
        .collect();
    loadgen::record::append_line(
        &out.join("command.txt"),
        &format!(
            "{}  cargo xtask {}",
            loadgen::record::utc_now_rfc3339(),
            invoked.join(" ")
        ),
    )?;
    std::fs::write(out.join("machine.txt"), crate::machine::describe())?;

    let bin = harness::cargo::build_measured()?;
    let loadgen = bin.join("loadgen");
    // PostgreSQL: PG_ADMIN_URL names a cluster where databases may be created; otherwise a
    // throwaway one with PostgreSQL's durable defaults, on the server's cores, lives as long
    // as the run.
    let (admin_url, _cluster) = match std::env::var("PG_ADMIN_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            // The database shares the server's cores, so the load generator's stay its own.
            let cores = loadgen::monitor::Pinning::auto().map(|p| p.server_list());
            let cluster = Cluster::start(Options {
                cores,
                ..Options::BENCHMARK
            })?;
            (cluster.url(), Some(cluster))
        }
    };
    if !args.scenarios_only {
        let phases: &[[&str; 2]] = if args.quick { &QUICK_PHASES } else { &PHASES };
        // The full run's cells share a time budget; --quick has its own short preset.
        let budget = (!args.quick).then_some(MEASUREMENT_BUDGET);
        matrix(
            &loadgen,
            &out,
            &admin_url,
            args,
            phases,
            budget,
            "measurement",
        )?;
        let (ladders, budget): (&[[&str; 2]], _) = if args.quick {
            (&QUICK_LADDERS, None)
        } else {
            (&LADDERS, Some(LADDER_BUDGET))
        };
        matrix(
            &loadgen,
            &out,
            &admin_url,
            args,
            ladders,
            budget,
            "open-loop ladder",
        )?;
    }
    for &scenario in &args.scenarios {
        let (phase, budget) = scenario.plan(args.quick);
        let name = format!("scenario {}", format!("{scenario:?}").to_lowercase());
        matrix(
            &loadgen,
            &out,
            &admin_url,
            args,
            &[["--phase", phase]],
            Some(budget),
            &name,
        )?;
    }
    if !args.scenarios_only {
        cost(&loadgen, &out, args.quick)?;
        if !args.quick {
            crate::reliability::reliability(&out)?;
        }
    }
    run::check_interrupted()?;
    run(std::process::Command::new(&loadgen)
        .arg("report")
        .arg(out.join("records.jsonl"))
        .arg("--out")
        .arg(&out))?;
    println!("results: {}", out.join("summary.md").display());
    Ok(())
}

/// One `loadgen matrix` run of `phases` into `out`, with the script's extra matrix flags last
/// (so they override these), on a time `budget` if one is given.
fn matrix(
    loadgen: &Path,
    out: &Path,
    admin_url: &str,
    args: &Args,
    phases: &[[&str; 2]],
    budget: Option<&str>,
    what: &str,
) -> anyhow::Result<()> {
    let mut matrix = std::process::Command::new(loadgen);
    matrix.arg("matrix").arg("--out").arg(out);
    if args.quick {
        matrix.arg("--quick");
    }
    if let Some(budget) = budget {
        matrix.args(["--budget", budget]);
    }
    for flag_and_value in phases {
        matrix.args(flag_and_value);
    }
    let measuring = std::time::Instant::now();
    run(matrix
        .args(&args.matrix_args)
        .env("PG_ADMIN_URL", admin_url))?;
    println!("{what}: {:.0} s", measuring.elapsed().as_secs_f64());
    Ok(())
}
