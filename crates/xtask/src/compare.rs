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
    /// More `loadgen matrix` flags (e.g. --target-percent 2 --cell-budget 60s)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    matrix_args: Vec<String>,
}

/// The comparison's groups of cells (`loadgen matrix --phase WORKLOADS:CONNECTIONS:DBS`).
const PHASES: [&str; 3] = [
    // The published todo benchmark's shape: ms per operation, 1 and 10 clients.
    "hello,create,read,update,delete:1,10:sqlite,postgres",
    // Under load: the concurrency sweep continues for the read-heavy and realistic mixes.
    "read,mixed:64,256:sqlite,postgres",
    // The I/O-wait and CPU probes of the Python-vs-Rust comparisons (no database work).
    "sleep,fibonacci:64:sqlite",
];

/// What the cells of the full comparison may take together (`loadgen matrix --budget`).
const MEASUREMENT_BUDGET: &str = "15m";

/// `--quick`: the todo shape on SQLite only, in short trials.
const QUICK_PHASES: [&str; 1] = ["hello,create,read,update,delete:1,10:sqlite"];

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
        cmd.args(["--workloads", "hello,read", "--runs", "2"]);
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
    let phases: &[&str] = if args.quick { &QUICK_PHASES } else { &PHASES };
    let mut matrix = std::process::Command::new(&loadgen);
    matrix.arg("matrix").arg("--out").arg(&out);
    if args.quick {
        matrix.arg("--quick");
    } else {
        // Time for all cells together, shared out as cells finish (a flag given after this
        // one, in the script's arguments, overrides it).
        matrix.args(["--budget", MEASUREMENT_BUDGET]);
    }
    for phase in phases {
        matrix.arg("--phase").arg(phase);
    }
    let measuring = std::time::Instant::now();
    run(matrix
        .args(&args.matrix_args)
        .env("PG_ADMIN_URL", &admin_url))?;
    println!("measurement: {:.0} s", measuring.elapsed().as_secs_f64());
    cost(&loadgen, &out, args.quick)?;
    if !args.quick {
        crate::reliability::reliability(&out)?;
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
