//! The comparison (`scripts/compare.sh`): builds every server and loadgen once with the
//! benchmark profile, drives each stack under the same load in phases (`loadgen matrix`:
//! interleaved repetitions, a fresh database and server per run, server and load generator on
//! disjoint cores), records the reliability verdicts, and renders the report.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use harness::pg::{Cluster, Options};

use crate::run::{self, run};

/// `cargo xtask compare` options; anything else is passed to every `loadgen matrix` call.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A short smoke run of the same pipeline (about 3 minutes; no reliability verdicts)
    #[arg(long)]
    quick: bool,
    /// Results folder [default: results/<date>-<host>, with -quick for --quick]
    #[arg(long)]
    out: Option<PathBuf>,
    /// More `loadgen matrix` flags, overriding the presets (e.g. --repetitions 5 --duration 10s)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    matrix_args: Vec<String>,
}

/// One phase of the comparison: a `loadgen matrix` call.
struct Phase {
    workloads: &'static str,
    connections: &'static str,
    dbs: &'static str,
}

impl Phase {
    fn args(&self) -> [&'static str; 6] {
        [
            "--workloads",
            self.workloads,
            "--connections",
            self.connections,
            "--dbs",
            self.dbs,
        ]
    }
}

/// The published todo benchmark's shape: ms per operation, 1 and 10 clients.
const TODO_SHAPE: Phase = Phase {
    workloads: "hello,create,read,update,delete",
    connections: "1,10",
    dbs: "sqlite,postgres",
};

/// The full comparison's phases. Each runs its repetitions interleaved across the stacks.
const PHASES: [Phase; 3] = [
    TODO_SHAPE,
    // Under load: the concurrency sweep continues for the read-heavy and realistic mixes.
    Phase {
        workloads: "read,mixed",
        connections: "64,256",
        dbs: "sqlite,postgres",
    },
    // The I/O-wait and CPU probes of the Python-vs-Rust comparisons (no database work).
    Phase {
        workloads: "sleep,fibonacci",
        connections: "64",
        dbs: "sqlite",
    },
];

const PRESET: [&str; 10] = [
    "--warmup",
    "1s",
    "--duration",
    "3s",
    "--repetitions",
    "3",
    "--seed",
    "2000",
    "--delete-seed",
    "30000",
];
const QUICK_PRESET: [&str; 10] = [
    "--warmup",
    "500ms",
    "--duration",
    "1s",
    "--repetitions",
    "1",
    "--seed",
    "1000",
    "--delete-seed",
    "10000",
];

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

fn append_line(path: &Path, line: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(file, "{line}").with_context(|| format!("writing {}", path.display()))
}

pub fn compare(args: &Args) -> anyhow::Result<()> {
    let out = args.out.clone().unwrap_or_else(|| default_out(args.quick));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let invoked: Vec<String> = std::env::args().skip(1).collect();
    append_line(
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
    // throwaway one with PostgreSQL's durable defaults lives as long as the run.
    let (admin_url, _cluster) = match std::env::var("PG_ADMIN_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let cluster = Cluster::start(Options::BENCHMARK)?;
            (cluster.url(), Some(cluster))
        }
    };
    let (phases, preset): (&[Phase], _) = if args.quick {
        (&[TODO_SHAPE], QUICK_PRESET)
    } else {
        (&PHASES, PRESET)
    };
    for phase in phases {
        run(std::process::Command::new(&loadgen)
            .arg("matrix")
            .arg("--out")
            .arg(&out)
            .args(preset)
            .args(phase.args())
            .args(&args.matrix_args)
            .env("PG_ADMIN_URL", &admin_url))?;
    }
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
