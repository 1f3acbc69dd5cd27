//! The `loadgen` command line: `run` one measurement, `matrix` the full comparison, `report` from records.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use harness::DbKind;
use harness::server::ServerSpec;
use indicatif::{ProgressBar, ProgressStyle};
use loadgen::engine::{LoadConfig, LoadModel};
use loadgen::measure::{self, MeasureOptions, TargetSpec};
use loadgen::monitor::Pinning;
use loadgen::record::{self, Provenance};
use loadgen::workload::{Mix, Workload, WorkloadKind};

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    version,
    // A flag given twice takes its last value, so scripts' presets can be overridden.
    args_override_self = true,
    about = "Benchmarks the HTTP todo servers: closed/open-loop load, HDR latency, server CPU/RSS, JSON-lines records and reports"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One measurement: a server loadgen starts (--server), or any running one (--url)
    Run(RunArgs),
    /// The full comparison: servers x databases x workloads x connections x repetitions, interleaved
    Matrix(MatrixArgs),
    /// Render summary.md and SVG plots from a records.jsonl file alone
    Report(ReportArgs),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum PinMode {
    /// Pin server and loadgen to disjoint cores when there are at least two
    Auto,
    /// No pinning
    Off,
}

/// Settings shared by `run` and `matrix`.
#[derive(Args, Debug, Clone)]
struct CommonArgs {
    /// Open loop: requests per second on one global schedule (latency from scheduled send time)
    #[arg(long)]
    rate: Option<f64>,
    /// Runtime worker threads of the load generator [default: its cores]
    #[arg(long)]
    threads: Option<usize>,
    /// Warm-up phase, discarded (e.g. 3s, 500ms) [default: 3s; --quick: 1s]
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,
    /// Measured phase [default: 10s; --quick: 2s]
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Measure exactly this many requests instead of --duration
    #[arg(long)]
    requests: Option<u64>,
    /// Per-request timeout
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    timeout: Duration,
    /// Check the body shape of every n-th response per connection (1 = all)
    #[arg(long, default_value_t = 16)]
    check_every: u32,
    /// Open loop: a send later than this many ms after its scheduled time counts as late
    #[arg(long, default_value_t = 1.0)]
    late_ms: f64,
    /// Tasks pre-seeded for read/update/list/mixed [default: 10000; --quick: 1000]
    #[arg(long)]
    seed: Option<usize>,
    /// Extra tasks pre-seeded as the delete pool for delete/mixed (each id deleted at most once)
    #[arg(long, default_value_t = 50_000)]
    delete_seed: usize,
    /// Connections used for seeding
    #[arg(long, default_value_t = 8)]
    seed_connections: usize,
    /// Weights of the mixed and soak workloads [default: read=80,create=10,update=5,delete=5;
    /// soak: read=70,list=10,create=10,update=5,delete=5]
    #[arg(long)]
    mix: Option<Mix>,
    /// Server --workers [default: the server's core count]
    #[arg(long)]
    workers: Option<usize>,
    /// Server --pool-size [default: 2 x workers]
    #[arg(long)]
    pool_size: Option<usize>,
    /// CPU pinning of server and loadgen (auto: disjoint cores when there are >= 2)
    #[arg(long, value_enum, default_value_t = PinMode::Auto)]
    pin: PinMode,
    /// PostgreSQL admin URL used to create/drop a fresh database per run
    #[arg(
        long,
        env = "PG_ADMIN_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pg_admin_url: String,
    /// Seconds to wait for the start-up line and for /health
    #[arg(long, default_value_t = 30)]
    startup_timeout: u64,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Load a running server, like wrk: http://HOST:PORT/PATH (with the default workload, GET
    /// of PATH, any 2xx accepted)
    #[arg(long, conflicts_with = "server", required_unless_present = "server")]
    url: Option<String>,
    /// Start this server on a fresh database for the run: a binary's path, or a stack of the
    /// registry (axum-sqlx, ...: its bench-release build)
    #[arg(long)]
    server: Option<String>,
    /// The server's database: the fresh one --server gets; with --url, recorded only
    #[arg(long)]
    db: Option<DbKind>,
    /// Workload: hello, create, read, update, delete, list, mixed, sleep, fibonacci, soak (the
    /// mix with every answer and every acknowledged write checked), get (GET of --url's path)
    /// [default: get with --url, hello with --server]
    #[arg(long)]
    workload: Option<WorkloadKind>,
    /// Keep-alive connections (closed loop: virtual clients; open loop: the concurrency cap)
    #[arg(long, default_value_t = 10)]
    connections: usize,
    /// With --url: poll this path until it answers 2xx before the load (e.g. /health)
    #[arg(long, requires = "url")]
    health: Option<String>,
    /// With --url: the server's pid, to measure its CPU and RSS
    #[arg(long, requires = "url")]
    server_pid: Option<u32>,
    /// With --url: the stack name to record
    #[arg(long, default_value = "external")]
    stack: String,
    /// Repetition index to record
    #[arg(long, default_value_t = 0)]
    repetition: u32,
    /// Append the record as a JSON line to this file
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit non-zero unless every request succeeded, the server (if started) shut down cleanly
    /// and, for soak, the integrity check held
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct MatrixArgs {
    /// Servers, comma separated: stacks of the registry (their bench-release builds) or
    /// NAME=PATH [default: every stack of the registry]
    #[arg(long, value_delimiter = ',', value_parser = parse_server)]
    servers: Vec<(String, PathBuf)>,
    /// Databases
    #[arg(long, value_delimiter = ',', default_value = "sqlite")]
    dbs: Vec<DbKind>,
    /// Workloads
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "hello,create,read,update,delete"
    )]
    workloads: Vec<WorkloadKind>,
    /// Connection counts of the sweep [default: 1,10,64,256; --quick: 1,10,64]
    #[arg(long, value_delimiter = ',')]
    connections: Option<Vec<usize>>,
    /// Repetitions, interleaved across stacks [default: 3; --quick: 1]
    #[arg(long)]
    repetitions: Option<u32>,
    /// Short preset: 1 s warm-up, 2 s measure, 1 repetition, connections 1,10,64, 1000 seeded tasks
    #[arg(long)]
    quick: bool,
    /// Results directory (records.jsonl and command.txt are appended there as runs finish)
    #[arg(long, default_value = "results/latest")]
    out: PathBuf,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// The records (JSON lines) to render
    records: PathBuf,
    /// Output directory for summary.md and plots/
    #[arg(long)]
    out: PathBuf,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 10s or 500ms"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" | "min" => v * 60.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

fn parse_server(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) => Ok((name.to_owned(), PathBuf::from(path))),
        None => resolve_stack(s).map(|path| (s.to_owned(), path)),
    }
}

/// The bench-release binary of a stack of the registry.
fn resolve_stack(name: &str) -> Result<PathBuf, String> {
    let stack = harness::stacks::find(name).ok_or_else(|| {
        let known: Vec<&str> = harness::STACKS.iter().map(|s| s.name).collect();
        format!(
            "{name:?} is neither NAME=PATH nor a stack ({})",
            known.join(", ")
        )
    })?;
    Ok(harness::cargo::target_dir()
        .join(harness::cargo::BENCH_PROFILE)
        .join(stack.package))
}

fn main() {
    if let Err(err) = real_main() {
        eprintln!("loadgen: error: {err:#}");
        std::process::exit(1);
    }
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Report(args) => {
            let out = loadgen::report::render_report(&args.records, &args.out)?;
            println!(
                "wrote {} and {} plot(s)",
                out.summary.display(),
                out.plots.len()
            );
            Ok(())
        }
        Command::Run(args) => {
            let spawning = args.server.is_some();
            let pinning = setup_pinning(args.common.pin, spawning)?;
            let threads = threads_for(&args.common, pinning.as_ref());
            runtime(threads)?.block_on(run_cmd(args, pinning, threads))
        }
        Command::Matrix(args) => {
            let pinning = setup_pinning(args.common.pin, true)?;
            let threads = threads_for(&args.common, pinning.as_ref());
            runtime(threads)?.block_on(matrix_cmd(args, pinning, threads))
        }
    }
}

fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .context("building the tokio runtime")
}

/// Pins this process before any runtime thread exists (threads inherit the affinity).
fn setup_pinning(mode: PinMode, spawning: bool) -> anyhow::Result<Option<Pinning>> {
    if mode == PinMode::Off || !spawning {
        return Ok(None);
    }
    let Some(pinning) = Pinning::auto() else {
        return Ok(None);
    };
    pinning.apply_to_self()?;
    Ok(Some(pinning))
}

fn threads_for(common: &CommonArgs, pinning: Option<&Pinning>) -> usize {
    common
        .threads
        .unwrap_or_else(|| {
            pinning.map_or_else(
                || loadgen::monitor::allowed_cores().len(),
                |p| p.loadgen.len(),
            )
        })
        .max(1)
}

fn load_config(
    common: &CommonArgs,
    workload: WorkloadKind,
    path: &str,
    connections: usize,
    quick: bool,
) -> LoadConfig {
    LoadConfig {
        workload: Workload {
            kind: workload,
            mix: common.mix.unwrap_or_else(|| workload.default_mix()),
            path: path.to_owned(),
        },
        model: common
            .rate
            .map_or(LoadModel::Closed, |rate| LoadModel::Open { rate }),
        connections,
        warmup: common
            .warmup
            .unwrap_or(Duration::from_secs(if quick { 1 } else { 3 })),
        duration: common
            .duration
            .unwrap_or(Duration::from_secs(if quick { 2 } else { 10 })),
        requests: common.requests,
        timeout: common.timeout,
        check_every: common.check_every.max(1),
        late_threshold: Duration::from_secs_f64(common.late_ms.max(0.0) / 1000.0),
    }
}

fn measure_options(
    common: &CommonArgs,
    load: LoadConfig,
    threads: usize,
    pinning: Option<Pinning>,
    quick: bool,
) -> MeasureOptions {
    MeasureOptions {
        load,
        threads,
        seed: common.seed.unwrap_or(if quick { 1000 } else { 10_000 }),
        delete_seed: common.delete_seed,
        seed_connections: common.seed_connections.max(1),
        repetition: 0,
        pinning,
        health_timeout: Duration::from_secs(common.startup_timeout),
        shutdown_grace: Duration::from_secs(10),
    }
}

fn server_spec(common: &CommonArgs, binary: PathBuf, pinning: Option<&Pinning>) -> ServerSpec {
    let workers = common
        .workers
        .unwrap_or_else(|| {
            pinning.map_or_else(
                || loadgen::monitor::allowed_cores().len(),
                |p| p.server.len(),
            )
        })
        .max(1);
    ServerSpec {
        workers,
        pool_size: Some(common.pool_size.unwrap_or(2 * workers).max(1)),
        cores: pinning.map(Pinning::server_list),
        startup_timeout: Duration::from_secs(common.startup_timeout),
        ..ServerSpec::new(binary)
    }
}

fn warn_if_flagged(rec: &record::Record) {
    if rec.results.loadgen_saturated {
        eprintln!(
            "loadgen: warning: the load generator was CPU-saturated ({:.2} CPU-s on {} core(s) in {:.2} s); this run measures loadgen, not the server",
            rec.results.loadgen_cpu_seconds,
            rec.results.loadgen_cores,
            rec.results.measured_seconds
        );
    }
}

async fn run_cmd(args: RunArgs, pinning: Option<Pinning>, threads: usize) -> anyhow::Result<()> {
    let (workload, path) = match &args.url {
        Some(url) => (
            args.workload.unwrap_or(WorkloadKind::Get),
            loadgen::engine::split_url(url)?.1.to_owned(),
        ),
        None => (args.workload.unwrap_or(WorkloadKind::Hello), "/".to_owned()),
    };
    let load = load_config(&args.common, workload, &path, args.connections, false);
    let mut opts = measure_options(&args.common, load, threads, pinning.clone(), false);
    opts.repetition = args.repetition;
    let spec = match (&args.url, &args.server) {
        (Some(url), _) => TargetSpec::Url {
            url: url.clone(),
            stack: args.stack.clone(),
            server_pid: args.server_pid,
            health: args.health.clone(),
            db: args.db,
        },
        (None, Some(server)) => {
            let binary = if Path::new(server).is_file() {
                PathBuf::from(server)
            } else {
                resolve_stack(server).map_err(anyhow::Error::msg)?
            };
            if !binary.is_file() {
                bail!(
                    "{} is not built yet (cargo build --profile bench-release -p <package>)",
                    binary.display()
                );
            }
            TargetSpec::Spawn {
                server: server_spec(&args.common, binary, pinning.as_ref()),
                db: args.db.unwrap_or(DbKind::Sqlite),
                pg_admin_url: Some(args.common.pg_admin_url.clone()),
            }
        }
        (None, None) => bail!("give --url or --server"),
    };
    let provenance = Provenance::collect();
    let rec = measure::measure(&opts, &spec, &provenance).await?.record;
    println!("{}", measure::summarize(&rec));
    warn_if_flagged(&rec);
    if let Some(out) = &args.out {
        record::append(out, &rec)?;
        println!("appended the record to {}", out.display());
    }
    let r = &rec.results;
    if args.strict
        && (r.errors_total > 0
            || r.clean_shutdown == Some(false)
            || r.integrity.as_ref().is_some_and(|i| !i.holds()))
    {
        bail!("--strict: the run had errors, an unclean shutdown or a broken integrity check");
    }
    Ok(())
}

async fn matrix_cmd(
    args: MatrixArgs,
    pinning: Option<Pinning>,
    threads: usize,
) -> anyhow::Result<()> {
    let quick = args.quick;
    let connections = args.connections.clone().unwrap_or_else(|| {
        if quick {
            vec![1, 10, 64]
        } else {
            vec![1, 10, 64, 256]
        }
    });
    let repetitions = args.repetitions.unwrap_or(if quick { 1 } else { 3 }).max(1);
    let servers = if args.servers.is_empty() {
        harness::STACKS
            .iter()
            .map(|s| parse_server(s.name).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()?
    } else {
        args.servers.clone()
    };
    for (name, path) in &servers {
        if !path.is_file() {
            bail!(
                "server {name}: {} is not a file (build it first, e.g. cargo build --profile bench-release)",
                path.display()
            );
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let records_path = args.out.join("records.jsonl");
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(args.out.join("command.txt"))?;
        writeln!(f, "{}  {command_line}", record::utc_now_rfc3339())?;
    }

    // rep → workload → connections → db → stack: drift hits every stack alike.
    let mut plan = Vec::new();
    for rep in 0..repetitions {
        for &workload in &args.workloads {
            for &conns in &connections {
                for &db in &args.dbs {
                    for (name, path) in &servers {
                        plan.push((rep, workload, conns, db, name.clone(), path.clone()));
                    }
                }
            }
        }
    }
    let pb = ProgressBar::new(plan.len() as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{bar:30.cyan/blue} {pos}/{len} [{elapsed_precise} elapsed, ETA {eta_precise}] {msg}",
        )
        .context("progress template")?,
    );
    let provenance = Provenance::collect();
    let mut failures = 0usize;
    for (rep, workload, conns, db, name, path) in plan {
        pb.set_message(format!(
            "rep {} · {name} · {db} · {workload} · c={conns}",
            rep + 1
        ));
        let load = load_config(&args.common, workload, "/", conns, quick);
        let mut opts = measure_options(&args.common, load, threads, pinning.clone(), quick);
        opts.repetition = rep;
        let spec = TargetSpec::Spawn {
            server: server_spec(&args.common, path, pinning.as_ref()),
            db,
            pg_admin_url: Some(args.common.pg_admin_url.clone()),
        };
        match measure::measure(&opts, &spec, &provenance).await {
            Ok(measured) => {
                let rec = measured.record;
                record::append(&records_path, &rec)?;
                pb.suspend(|| {
                    println!("{}", measure::summarize(&rec));
                    warn_if_flagged(&rec);
                });
            }
            Err(err) => {
                failures += 1;
                pb.suspend(|| {
                    eprintln!(
                        "loadgen: error: {name} {db} {workload} c={conns} rep {}: {err:#}",
                        rep + 1
                    )
                });
            }
        }
        pb.inc(1);
    }
    pb.finish_with_message("done");
    println!(
        "records: {} (render with: loadgen report {} --out {})",
        records_path.display(),
        records_path.display(),
        args.out.display()
    );
    if failures > 0 {
        bail!("{failures} combination(s) failed; see the errors above");
    }
    Ok(())
}
