//! The `loadgen` command line: `run` one measurement, `matrix` the full comparison, `report` from records.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use harness::DbKind;
use harness::deploy::PoolMode;
use harness::server::ServerSpec;
use indicatif::{ProgressBar, ProgressStyle};
use loadgen::cell::{
    self, CellPlan, CellSummary, Contender, Context as CellContext, Design, Template,
};
use loadgen::engine::{LoadConfig, LoadModel};
use loadgen::measure::{self, MeasureOptions, TargetSpec};
use loadgen::monitor::Pinning;
use loadgen::record::{self, DbNetwork, Deployment, Provenance};
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
    /// The full comparison: cells of databases x workloads x connections, each measuring every
    /// server by randomized interleaved trials until its ratios' intervals are narrow enough
    Matrix(MatrixArgs),
    /// Render summary.md and SVG plots from a records.jsonl file alone
    Report(ReportArgs),
    /// The noise-free cost column: instructions per request of every server and workload on
    /// SQLite, counted under valgrind's callgrind, appended to OUT/cost.jsonl
    Cost(CostArgs),
    /// A TCP proxy that adds a round trip between a server and its database (what `matrix`
    /// starts for `--phase ...:RTTS:POOLS`); runs until its standard input closes
    DelayProxy(DelayProxyArgs),
}

#[derive(Args, Debug)]
struct DelayProxyArgs {
    /// Where the database listens (HOST:PORT)
    #[arg(long)]
    upstream: std::net::SocketAddr,
    /// Round trip added, in milliseconds (half each way)
    #[arg(long)]
    rtt_ms: f64,
    /// Each chunk's one-way delay varies uniformly by up to this many milliseconds
    #[arg(long, default_value_t = 0.0)]
    jitter_ms: f64,
    /// Where to listen (port 0: a free one, printed)
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum PinMode {
    /// Pin server and loadgen to disjoint cores when there are at least two
    Auto,
    /// No pinning
    Off,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum IdleMode {
    /// Idle cores poll: the kernel's CPU latency limit held at 0 µs while loadgen runs
    Poll,
    /// The machine's own idle setting (on a VM, idle cores halt and wake through the hypervisor)
    Halt,
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
    /// Warm-up phase, discarded (e.g. 3s, 500ms) [default: run 3s; matrix: 100ms per trial
    /// or half a shorter trial, --quick 50ms]
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,
    /// Measured phase [default: run 10s; matrix: at most 400ms per trial (see
    /// --shortest-trial), --quick 200ms]
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Measure exactly this many requests instead of --duration (run only: matrix trials are
    /// timed, delete trials counted by --delete-requests)
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
    /// Extra tasks pre-seeded as the delete pool for delete/mixed (each id deleted at most
    /// once) [default: run 50000; matrix 100000, --quick 10000]
    #[arg(long)]
    delete_seed: Option<usize>,
    /// Connections used for seeding
    #[arg(long, default_value_t = 8)]
    seed_connections: usize,
    /// Weights of the mixed and soak workloads [default: read=80,create=10,update=5,delete=5;
    /// soak: read=70,list=10,create=10,update=5,delete=5]
    #[arg(long)]
    mix: Option<Mix>,
    /// Server --workers [default: what each server's documentation recommends for the
    /// server's cores: one per core, (2 x cores) + 1 for gunicorn's sync workers]
    #[arg(long)]
    workers: Option<usize>,
    /// Server --pool-size [default: 2 x --workers, or 2 per server core]
    #[arg(long)]
    pool_size: Option<usize>,
    /// CPU pinning of server and loadgen (auto: disjoint cores when there are >= 2)
    #[arg(long, value_enum, default_value_t = PinMode::Auto)]
    pin: PinMode,
    /// How idle cores wait while loadgen measures: halt (the machine's own setting) or poll
    /// (the kernel's CPU latency limit held at 0 µs, so no request waits for a halted core to
    /// wake; needs root to write /dev/cpu_dma_latency). On a VM polling cuts one-connection
    /// latency but can slow busy cores whose host threads share a physical core. Recorded in
    /// every record
    #[arg(long, value_enum, default_value_t = IdleMode::Halt)]
    cpu_idle: IdleMode,
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
    /// The run id to record: give several load generators on one run the same id, and
    /// `loadgen report` merges their records [default: a new one]
    #[arg(long)]
    run_id: Option<String>,
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
    /// The server every other one is compared with [default: the first]
    #[arg(long)]
    baseline: Option<String>,
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
    /// Connection counts [default: 1,10,64,256; --quick: 1,10]
    #[arg(long, value_delimiter = ',')]
    connections: Option<Vec<usize>>,
    /// A group of cells, WORKLOADS:CONNECTIONS:DBS (e.g. read,mixed:64,256:sqlite,postgres);
    /// repeat for more groups. Replaces --workloads, --connections and --dbs; one seeded
    /// template per database serves every group. WORKLOADS:CONNECTIONS:postgres:RTTS:POOLS
    /// puts PostgreSQL across a network: a cell per round trip added in milliseconds (0: none)
    /// and server pool size (e.g. read:64:postgres:0,0.5,2,10:2,8,32).
    /// WORKLOADS:CONNECTIONS:postgres:deployment runs the deployment the published comparisons
    /// used: a cell each for the server direct, behind nginx, in front of pgbouncer (session
    /// pooling), and both
    #[arg(long, value_parser = parse_phase)]
    phase: Vec<Phase>,
    /// An open-loop ladder, WORKLOADS:CONNECTIONS:DBS (e.g. read,mixed:64:sqlite,postgres),
    /// measured after the phases: per workload, connection count and database, a short
    /// closed-loop probe of every stack, then one cell per offered rate, the same rates for
    /// every stack, from 5 % to 130 % of the fastest stack's probed throughput. Given without
    /// --phase, the ladders are all that is measured
    #[arg(long, value_parser = parse_phase)]
    open_ladder: Vec<Phase>,
    /// Rates per open-loop ladder [default: 8; --quick: 3]
    #[arg(long)]
    ladder_steps: Option<usize>,
    /// The most requests a delete trial measures (a fixed count, so the pool of seeded tasks
    /// lasts: a trial's worth at the warm-up round's rate, up to this)
    #[arg(long, default_value_t = 5000)]
    delete_requests: u64,
    /// Rounds every cell runs before its intervals may stop it [default: 5; --quick: 2]
    #[arg(long)]
    min_rounds: Option<u32>,
    /// Rounds no cell goes beyond [default: 200; --quick: 3]
    #[arg(long)]
    max_rounds: Option<u32>,
    /// The shortest measured part of a trial: in a closed-loop cell, each stack's trials are
    /// as long as it needs for each connection to complete 25 requests (at its warm-up
    /// round's rate), between this and --duration
    #[arg(long, value_parser = parse_duration, default_value = "100ms")]
    shortest_trial: Duration,
    /// A cell starts no new round after this much time (e.g. 45s) [default: 45s, or 60s with
    /// --budget; --quick: 5s]
    #[arg(long, value_parser = parse_duration)]
    cell_budget: Option<Duration>,
    /// The time all cells together may take (e.g. 15m): each cell gets the time left divided
    /// by the cells left (at most --cell-budget), so time a quick cell saves goes to the rest
    #[arg(long, value_parser = parse_duration)]
    budget: Option<Duration>,
    /// Run each cell until every ratio's 95 % interval is within +-this percent
    #[arg(long, default_value_t = 3.0)]
    target_percent: f64,
    /// A trial is redone (at most twice) when CPU steal exceeds this percent of the machine's
    /// CPU time during it
    #[arg(long, default_value_t = 5.0)]
    steal_limit_percent: f64,
    /// ... or when other processes (not the server, the database or loadgen) used more than
    /// this percent of it
    #[arg(long, default_value_t = 10.0)]
    other_limit_percent: f64,
    /// Short preset: trials of at most 50 ms + 200 ms, 2-3 rounds, connections 1,10, 1000
    /// seeded tasks
    #[arg(long)]
    quick: bool,
    /// Results directory (records.jsonl, cells.jsonl and command.txt are appended there as
    /// trials finish)
    #[arg(long, default_value = "results/latest")]
    out: PathBuf,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct CostArgs {
    /// Servers, comma separated: stacks of the registry (their bench-release builds) or
    /// NAME=PATH [default: every Rust stack of the registry]
    #[arg(long, value_delimiter = ',', value_parser = parse_server)]
    servers: Vec<(String, PathBuf)>,
    /// Workloads, in the order they run on one server [default: hello,read,list,update,create,mixed,delete]
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<WorkloadKind>,
    /// Requests counted per workload, sent one at a time
    #[arg(long, default_value_t = 300)]
    requests: usize,
    /// Requests sent before the counters are zeroed
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Tasks created through the API before the first workload
    #[arg(long, default_value_t = 1000)]
    seed: usize,
    /// Fresh server processes every count is taken in (the report gives their median and spread)
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The pause before each counted request (e.g. 20ms, 0s): a request that finds the server
    /// still finishing the last one varies its count from process to process
    #[arg(long, value_parser = parse_duration, default_value = "20ms")]
    settle: Duration,
    /// Server processes counted at once [default: the cores]
    #[arg(long)]
    jobs: Option<usize>,
    /// How each server's threads take turns: run-to-block (each process on a core of its own
    /// at real-time priority, so counts repeat; needs root or CAP_SYS_NICE) or shared (the
    /// kernel's ordinary scheduling; counts vary by process) [default: run-to-block where
    /// allowed, else shared with a warning]
    #[arg(long)]
    schedule: Option<loadgen::cost::Schedule>,
    /// Results directory: cost.jsonl and command.txt are appended there, callgrind's dumps go
    /// to OUT/callgrind/
    #[arg(long, default_value = "results/latest")]
    out: PathBuf,
    /// The valgrind program
    #[arg(long, default_value = "valgrind")]
    valgrind: String,
    /// The callgrind_control program
    #[arg(long, default_value = "callgrind_control")]
    callgrind_control: String,
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

/// What the matrix measures, in order: a cell, or an open-loop ladder, which becomes one cell
/// per rate once a probe of its closed-loop cell has found the stacks' capacity.
enum Planned {
    Cell(CellPlan),
    Ladder(CellPlan),
    /// One rate of a ladder, measuring only the stacks that can hold some rate of it.
    Rung(CellPlan, Vec<String>),
}

impl Phase {
    /// Every cell of the group under `model`.
    fn cells(&self, model: LoadModel) -> impl Iterator<Item = CellPlan> + '_ {
        self.workloads.iter().flat_map(move |&workload| {
            self.connections.iter().flat_map(move |&connections| {
                self.dbs.iter().flat_map(move |&db| {
                    self.networks.iter().flat_map(move |&network| {
                        self.deployments.iter().map(move |&deployment| CellPlan {
                            db,
                            workload,
                            model,
                            connections,
                            network,
                            deployment,
                        })
                    })
                })
            })
        })
    }
}

impl Planned {
    const fn plan(&self) -> &CellPlan {
        match self {
            Self::Cell(plan) | Self::Ladder(plan) | Self::Rung(plan, _) => plan,
        }
    }
}

/// The stacks a ladder's rungs measure: those whose probed closed-loop throughput reaches its
/// lowest rate (a stack below it holds none of the rungs, and its trials would only measure
/// an overload), and the baseline always; the others, each with its probed throughput.
fn ladder_stacks(
    probed: &[(String, f64)],
    lowest_rate: f64,
    baseline: &str,
) -> (Vec<String>, Vec<(String, f64)>) {
    let (kept, left_out): (Vec<_>, Vec<_>) = probed
        .iter()
        .cloned()
        .partition(|(name, throughput)| *throughput >= lowest_rate || name == baseline);
    (kept.into_iter().map(|(name, _)| name).collect(), left_out)
}

/// A group of cells: every workload x connection count x database.
#[derive(Debug, Clone)]
struct Phase {
    workloads: Vec<WorkloadKind>,
    connections: Vec<usize>,
    dbs: Vec<DbKind>,
    /// Each cell of the group once per entry; `[None]` for the database on the loopback.
    networks: Vec<Option<DbNetwork>>,
    /// Each cell of the group once per entry; `[None]` for no hops around the server.
    deployments: Vec<Option<Deployment>>,
}

fn parse_phase(s: &str) -> Result<Phase, String> {
    fn list<T: std::str::FromStr>(part: &str, what: &str) -> Result<Vec<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        part.split(',')
            .map(|v| v.trim().parse().map_err(|e| format!("{what} {v:?}: {e}")))
            .collect()
    }
    let parts: Vec<&str> = s.split(':').collect();
    let (workloads, connections, dbs, network, hops) = match parts[..] {
        [w, c, d] => (w, c, d, None, None),
        [w, c, d, hops] => (w, c, d, None, Some(hops)),
        [w, c, d, rtts, pools] => (w, c, d, Some((rtts, pools)), None),
        _ => {
            return Err(format!(
                "{s:?} is not WORKLOADS:CONNECTIONS:DBS (e.g. read,mixed:64,256:sqlite,postgres), \
                 WORKLOADS:CONNECTIONS:postgres:RTTS:POOLS (e.g. read:64:postgres:0,2:8,32) \
                 or WORKLOADS:CONNECTIONS:postgres:deployment"
            ));
        }
    };
    let dbs: Vec<DbKind> = list(dbs, "database")?;
    let deployments = match hops {
        None => vec![None],
        Some(hops) => {
            // Session pooling: transaction pooling needs every driver to stop keeping
            // statements prepared across transactions, which pgbouncer 1.18 does not track
            // (sqlx 0.8 names a new statement per query even with its cache off).
            if hops != "deployment" {
                return Err(format!("{s:?}: {hops:?} is not `deployment`"));
            }
            if dbs != [DbKind::Postgres] {
                return Err(format!(
                    "{s:?}: the deployment's pgbouncer stands in front of PostgreSQL alone"
                ));
            }
            Deployment::all(PoolMode::Session).map(Some).to_vec()
        }
    };
    let networks = match network {
        None => vec![None],
        Some((rtts, pools)) => {
            if dbs != [DbKind::Postgres] {
                return Err(format!(
                    "{s:?}: round trips and pools are for PostgreSQL alone (SQLite is a file)"
                ));
            }
            let rtts: Vec<f64> = list(rtts, "round trip (ms)")?;
            let pools: Vec<usize> = list(pools, "pool size")?;
            let mut networks = Vec::new();
            for &rtt in &rtts {
                if !(rtt.is_finite() && (0.0..=10_000.0).contains(&rtt)) {
                    return Err(format!("round trip {rtt}: milliseconds from 0 to 10000"));
                }
                for &pool in &pools {
                    if pool == 0 {
                        return Err("a pool size is at least 1".to_owned());
                    }
                    networks.push(Some(DbNetwork {
                        rtt_us: (rtt * 1000.0).round() as u64,
                        pool,
                    }));
                }
            }
            networks
        }
    };
    Ok(Phase {
        workloads: list(workloads, "workload")?,
        connections: list(connections, "connection count")?,
        dbs,
        networks,
        deployments,
    })
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
    Ok(stack.executable(&harness::cargo::target_dir().join(harness::cargo::BENCH_PROFILE)))
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
            let _idle = hold_idle(args.common.cpu_idle);
            let spawning = args.server.is_some();
            let pinning = setup_pinning(args.common.pin, spawning)?;
            let threads = threads_for(&args.common, pinning.as_ref());
            runtime(threads)?.block_on(run_cmd(args, pinning, threads))
        }
        Command::Matrix(args) => {
            let _idle = hold_idle(args.common.cpu_idle);
            let pinning = setup_pinning(args.common.pin, true)?;
            let threads = threads_for(&args.common, pinning.as_ref());
            runtime(threads)?.block_on(matrix_cmd(args, pinning, threads))
        }
        Command::Cost(args) => cost_cmd(&args),
        Command::DelayProxy(args) => {
            let millis = |v: f64, what: &str| {
                anyhow::ensure!(
                    v.is_finite() && v >= 0.0,
                    "{what} must be a number of milliseconds >= 0, not {v}"
                );
                Ok(Duration::from_secs_f64(v / 1000.0))
            };
            let delay = harness::delay::Delay {
                one_way: millis(args.rtt_ms, "--rtt-ms")? / 2,
                jitter: millis(args.jitter_ms, "--jitter-ms")?,
            };
            harness::delay::serve(args.listen, args.upstream, delay)
        }
    }
}

/// The servers given, or every stack of the registry (of the `runtimes` given); each must be
/// a built file.
fn servers_or_registry(
    given: &[(String, PathBuf)],
    runtimes: &[harness::Runtime],
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let servers = if given.is_empty() {
        harness::STACKS
            .iter()
            .filter(|s| runtimes.contains(&s.runtime))
            .map(|s| parse_server(s.name).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()?
    } else {
        given.to_vec()
    };
    for (name, path) in &servers {
        if !path.is_file() {
            bail!(
                "server {name}: {} is not a file (build it first, e.g. cargo build --profile bench-release)",
                path.display()
            );
        }
    }
    Ok(servers)
}

fn cost_cmd(args: &CostArgs) -> anyhow::Result<()> {
    use loadgen::cost::{self, CostOptions, Schedule};
    let started = std::time::Instant::now();
    // Instructions are counted for the Rust stacks: an interpreter under callgrind takes
    // minutes to start, and its cost does not split by crate.
    let servers = servers_or_registry(&args.servers, &[harness::Runtime::Rust])?;
    anyhow::ensure!(
        args.requests > 0 && args.runs > 0,
        "--requests and --runs must be at least 1"
    );
    let valgrind = cost::valgrind_version(&args.valgrind)?;
    let schedule = match args.schedule {
        Some(schedule) => {
            schedule
                .available()
                .with_context(|| format!("--schedule {}", schedule.name()))?;
            schedule
        }
        None => match Schedule::RunToBlock.available() {
            Ok(()) => Schedule::RunToBlock,
            Err(err) => {
                eprintln!(
                    "loadgen: warning: cannot run the servers at real-time priority ({err:#}); \
                     counting with --schedule shared, whose counts vary from process to process \
                     by up to several percent (the records say so)"
                );
                Schedule::Shared
            }
        },
    };
    let dir = args.out.join("callgrind");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    record::append_line(
        &args.out.join("command.txt"),
        &format!(
            "{}  {}",
            record::utc_now_rfc3339(),
            harness::cargo::portable_command_line()
        ),
    )?;
    let opts = CostOptions {
        workloads: if args.workloads.is_empty() {
            cost::WORKLOADS.to_vec()
        } else {
            args.workloads.clone()
        },
        warmup: args.warmup,
        requests: args.requests,
        seed: args.seed,
        runs: args.runs,
        settle: args.settle,
        invocation: record::utc_now_rfc3339(),
        dir,
        valgrind: args.valgrind.clone(),
        callgrind_control: args.callgrind_control.clone(),
        schedule,
        git_commit: Provenance::collect().git_commit,
    };
    // Every (server, run) is a process of its own; runs of one server go at different times.
    let processes: Vec<(&String, &PathBuf, usize)> = (1..=opts.runs)
        .flat_map(|run| {
            servers
                .iter()
                .map(move |(name, binary)| (name, binary, run))
        })
        .collect();
    let cores = loadgen::monitor::allowed_cores();
    let jobs = args
        .jobs
        .unwrap_or(cores.len())
        .clamp(1, processes.len().max(1));
    let path = args.out.join("cost.jsonl");
    eprintln!(
        "counting {} server(s) x {} workload(s) x {} run(s) under {valgrind}, {jobs} processes at \
         a time, scheduled {}: {} warm-up + {} counted requests each, the counted ones {} ms \
         apart; appending to {}",
        servers.len(),
        opts.workloads.len(),
        opts.runs,
        opts.schedule.name(),
        opts.warmup,
        opts.requests,
        opts.settle.as_millis(),
        path.display()
    );
    let queue = std::sync::Mutex::new(processes.into_iter());
    let written = std::sync::Mutex::new(());
    let failures: Vec<anyhow::Error> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|job| {
                // With run-to-block, each job's processes have a core of their own.
                let core = cores.get(job % cores.len().max(1)).copied().unwrap_or(0);
                let (queue, written, opts, path) = (&queue, &written, &opts, &path);
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    loop {
                        let next = queue
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .next();
                        let Some((name, binary, run)) = next else {
                            break;
                        };
                        let counted = cost::count_stack(opts, name, binary, (run, core), |rec| {
                            let _guard = written
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                            eprintln!(
                                "  {:<14} {:<8} run {}: {:>10.0} instructions per request{}",
                                rec.stack,
                                rec.workload,
                                rec.run,
                                rec.per_request,
                                if rec.errors > 0 {
                                    format!(" ({} errors: void)", rec.errors)
                                } else {
                                    String::new()
                                }
                            );
                            let line =
                                serde_json::to_string(rec).expect("a cost record serialises");
                            if let Err(err) = record::append_line(path, &line) {
                                eprintln!("loadgen: error: {err:#}");
                            }
                        });
                        if let Err(err) = counted {
                            failures.push(err.context(format!("server {name}, run {run}")));
                        }
                    }
                    failures
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    eprintln!("cost: {:.0} s", started.elapsed().as_secs_f64());
    if let Some(first) = failures.into_iter().next() {
        return Err(first);
    }
    Ok(())
}

fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .context("building the tokio runtime")
}

/// Keeps idle cores polling for as long as the returned guard lives (`--cpu-idle poll`).
fn hold_idle(mode: IdleMode) -> Option<loadgen::monitor::IdlePolling> {
    if mode == IdleMode::Halt {
        return None;
    }
    let device = std::path::Path::new(loadgen::monitor::CPU_LATENCY_DEVICE);
    match loadgen::monitor::IdlePolling::request(device) {
        Ok(guard) => Some(guard),
        Err(err) => {
            eprintln!(
                "loadgen: warning: cannot keep idle cores polling ({err:#}); measuring with the \
                 machine's idle setting, so latency at low concurrency includes the cores' \
                 wake-up time (recorded as cpu_idle: halt)"
            );
            None
        }
    }
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

/// What `run` and `matrix` default to where the flags are silent.
struct Defaults {
    warmup: Duration,
    duration: Duration,
    seed: usize,
    delete_seed: usize,
}

const RUN_DEFAULTS: Defaults = Defaults {
    warmup: Duration::from_secs(3),
    duration: Duration::from_secs(10),
    seed: 10_000,
    delete_seed: 50_000,
};

const MATRIX_DEFAULTS: Defaults = Defaults {
    warmup: Duration::from_millis(100),
    duration: Duration::from_millis(400),
    seed: 10_000,
    delete_seed: 100_000,
};

const QUICK_DEFAULTS: Defaults = Defaults {
    warmup: Duration::from_millis(50),
    duration: Duration::from_millis(200),
    seed: 1000,
    delete_seed: 10_000,
};

fn load_config(
    common: &CommonArgs,
    workload: WorkloadKind,
    path: &str,
    connections: usize,
    defaults: &Defaults,
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
        warmup: common.warmup.unwrap_or(defaults.warmup),
        duration: common.duration.unwrap_or(defaults.duration),
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
    defaults: &Defaults,
) -> MeasureOptions {
    MeasureOptions {
        load,
        threads,
        seed: common.seed.unwrap_or(defaults.seed),
        delete_seed: common.delete_seed.unwrap_or(defaults.delete_seed),
        seed_connections: common.seed_connections.max(1),
        run_id: None,
        pinning,
        health_timeout: Duration::from_secs(common.startup_timeout),
        shutdown_grace: Duration::from_secs(10),
    }
}

/// How `name` (a stack of the registry, or a server given by path) is started: `--workers`,
/// or as many workers as its documentation recommends for the server's cores; `--pool-size`,
/// or two connections per core (per worker when `--workers` is given).
fn server_spec(
    common: &CommonArgs,
    name: &str,
    binary: PathBuf,
    pinning: Option<&Pinning>,
) -> ServerSpec {
    let cores = pinning
        .map_or_else(
            || loadgen::monitor::allowed_cores().len(),
            |p| p.server.len(),
        )
        .max(1);
    let recommended = harness::stacks::find(name).map_or(harness::Workers::PerCore, |s| s.workers);
    let workers = common
        .workers
        .unwrap_or_else(|| recommended.for_cores(cores))
        .max(1);
    ServerSpec {
        workers,
        pool_size: Some(
            common
                .pool_size
                .unwrap_or(2 * common.workers.unwrap_or(cores))
                .max(1),
        ),
        cores: pinning.map(Pinning::server_list),
        startup_timeout: Duration::from_secs(common.startup_timeout),
        ..ServerSpec::new(binary)
    }
}

fn warn_if_flagged(rec: &record::Record) {
    let r = &rec.results;
    if r.loadgen.saturated {
        let own_late = r
            .loadgen
            .late_own
            .map_or_else(String::new, |n| format!(", {n} sends it made late itself"));
        eprintln!(
            "loadgen: warning: the load generator was saturated ({:.2} CPU-s on {} core(s) in {:.2} s{own_late}); this run measures loadgen, not the server",
            r.loadgen.cpu_seconds, r.loadgen.cores, r.measured_seconds
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
    let load = load_config(
        &args.common,
        workload,
        &path,
        args.connections,
        &RUN_DEFAULTS,
    );
    let mut opts = measure_options(&args.common, load, threads, pinning.clone(), &RUN_DEFAULTS);
    opts.run_id = args.run_id.clone();
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
                server: server_spec(&args.common, server, binary, pinning.as_ref()),
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

/// The trial timings `loadgen matrix` starts from, `--quick` or not.
const fn matrix_defaults(quick: bool) -> &'static Defaults {
    if quick {
        &QUICK_DEFAULTS
    } else {
        &MATRIX_DEFAULTS
    }
}

/// The measurement design of `loadgen matrix`'s flags; with none, [`Design::default`] (tested).
fn design_of(args: &MatrixArgs) -> Design {
    let defaults = matrix_defaults(args.quick);
    let full = Design::default();
    let min_rounds = args
        .min_rounds
        .unwrap_or(if args.quick { 2 } else { full.min_rounds })
        .max(2);
    Design {
        trial: args.common.duration.unwrap_or(defaults.duration),
        shortest_trial: args.shortest_trial,
        trial_warmup: args.common.warmup.unwrap_or(defaults.warmup),
        delete_requests: args.delete_requests.max(1),
        min_rounds,
        max_rounds: args
            .max_rounds
            .unwrap_or(if args.quick { 3 } else { full.max_rounds })
            .max(min_rounds),
        budget: args.cell_budget.unwrap_or(match () {
            () if args.quick => Duration::from_secs(5),
            () if args.budget.is_some() => Duration::from_secs(60),
            () => full.budget,
        }),
        target: args.target_percent / 100.0,
        max_redos: full.max_redos,
        steal_limit: args.steal_limit_percent / 100.0,
        other_limit: args.other_limit_percent / 100.0,
        probe: false,
    }
}

async fn matrix_cmd(
    args: MatrixArgs,
    pinning: Option<Pinning>,
    threads: usize,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let defaults = matrix_defaults(args.quick);
    // The default group stands in only when no group of either kind is given.
    let phases = if args.phase.is_empty() && args.open_ladder.is_empty() {
        vec![Phase {
            workloads: args.workloads.clone(),
            connections: args.connections.clone().unwrap_or_else(|| {
                if args.quick {
                    vec![1, 10]
                } else {
                    vec![1, 10, 64, 256]
                }
            }),
            dbs: args.dbs.clone(),
            networks: vec![None],
            deployments: vec![None],
        }]
    } else {
        args.phase.clone()
    };
    let mut dbs: Vec<DbKind> = phases
        .iter()
        .chain(&args.open_ladder)
        .flat_map(|p| p.dbs.clone())
        .collect();
    dbs.sort();
    dbs.dedup();
    let servers = servers_or_registry(
        &args.servers,
        &[harness::Runtime::Rust, harness::Runtime::Python],
    )?;
    let baseline = match &args.baseline {
        None => 0,
        Some(b) => servers
            .iter()
            .position(|(n, _)| n == b)
            .with_context(|| format!("--baseline {b} is not one of the servers being compared"))?,
    };
    let design = design_of(&args);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let records_path = args.out.join("records.jsonl");
    let cells_path = args.out.join("cells.jsonl");
    let command_line = harness::cargo::portable_command_line();
    record::append_line(
        &args.out.join("command.txt"),
        &format!("{}  {command_line}", record::utc_now_rfc3339()),
    )?;

    let contenders: Vec<Contender> = servers
        .iter()
        .map(|(name, path)| Contender {
            name: name.clone(),
            server: server_spec(&args.common, name, path.clone(), pinning.as_ref()),
        })
        .collect();
    // The load of each trial comes from its cell; these are the rest of the settings.
    let base_load = load_config(&args.common, WorkloadKind::Hello, "/", 1, defaults);
    let options = measure_options(&args.common, base_load, threads, pinning.clone(), defaults);
    let mut templates = Vec::new();
    for &db in &dbs {
        eprintln!(
            "seeding a {db} template: {} + {} tasks through {}'s API ...",
            options.seed, options.delete_seed, contenders[baseline].name
        );
        let template = Template::create(
            db,
            &contenders[baseline].server,
            Some(&args.common.pg_admin_url),
            &options,
        )
        .await
        .with_context(|| format!("seeding the {db} template"))?;
        eprintln!("  seeded in {:.1} s", template.seconds);
        templates.push((db, template));
    }
    let model = args
        .common
        .rate
        .map_or(LoadModel::Closed, |rate| LoadModel::Open { rate });
    let mut plans: Vec<Planned> = phases
        .iter()
        .flat_map(|p| p.cells(model))
        .map(Planned::Cell)
        .collect();
    let steps = args
        .ladder_steps
        .unwrap_or(if args.quick { 3 } else { 8 })
        .max(2);
    for phase in &args.open_ladder {
        anyhow::ensure!(
            phase.networks == [None] && phase.deployments == [None],
            "an open-loop ladder has no round trips, pools or deployment"
        );
        // Each ladder starts from its closed-loop cell, which the probe measures.
        plans.extend(phase.cells(LoadModel::Closed).map(Planned::Ladder));
    }
    let cells_in = |plans: &[Planned]| -> usize {
        plans
            .iter()
            .map(|p| match p {
                Planned::Cell(_) | Planned::Rung(..) => 1,
                Planned::Ladder(_) => steps,
            })
            .sum()
    };
    let run = record::new_run_id();
    let provenance = Provenance::collect();
    let ctx = CellContext {
        design: &design,
        contenders: &contenders,
        baseline,
        options: &options,
        provenance: &provenance,
        records: &records_path,
        run: &run,
    };
    let pb = ProgressBar::new(cells_in(&plans) as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{bar:30.cyan/blue} {pos}/{len} cells [{elapsed_precise} elapsed, ETA {eta_precise}] {msg}",
        )
        .context("progress template")?,
    );
    let mut failures = 0usize;
    let measuring = std::time::Instant::now();
    let mut cells = 0usize;
    let mut next = 0usize;
    while next < plans.len() {
        let template = &templates
            .iter()
            .find(|(db, _)| *db == plans[next].plan().db)
            .expect("a template per database")
            .1;
        let (plan, only) = match &plans[next] {
            Planned::Cell(plan) => (plan.clone(), None),
            Planned::Rung(plan, stacks) => (plan.clone(), Some(stacks.clone())),
            Planned::Ladder(probe) => {
                let probe = probe.clone();
                pb.set_message(format!("{} · probing capacity", probe.name()));
                let expanded = match cell::probe_capacity(&probe, template, &ctx).await {
                    Ok(probed) => {
                        let capacity = probed.iter().map(|(_, t)| *t).fold(0.0, f64::max);
                        let rates = cell::ladder(capacity, steps);
                        let lowest = rates.first().copied().unwrap_or(0.0);
                        let (kept, left_out) =
                            ladder_stacks(&probed, lowest, &contenders[baseline].name);
                        pb.suspend(|| {
                            println!(
                                "{}: fastest {} ok req/s; open-loop rates {}",
                                probe.name(),
                                loadgen::report::thousands(capacity),
                                rates
                                    .iter()
                                    .map(|&r| loadgen::report::thousands(r))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            );
                            for (name, throughput) in &left_out {
                                println!(
                                    "  {name} left out of the ladder: it served {} ok req/s, under its lowest rate",
                                    loadgen::report::thousands(*throughput)
                                );
                            }
                        });
                        rates
                            .into_iter()
                            .map(|rate| {
                                Planned::Rung(
                                    CellPlan {
                                        model: LoadModel::Open { rate },
                                        ..probe.clone()
                                    },
                                    kept.clone(),
                                )
                            })
                            .collect()
                    }
                    Err(err) => {
                        failures += 1;
                        pb.suspend(|| {
                            eprintln!("loadgen: error: probing {}: {err:#}", probe.name());
                        });
                        Vec::new()
                    }
                };
                plans.splice(next..=next, expanded);
                pb.set_length((cells + cells_in(&plans[next..])) as u64);
                continue;
            }
        };
        next += 1;
        cells += 1;
        let name = plan.name();
        let cell_design = Design {
            budget: design.share(
                args.budget,
                measuring.elapsed(),
                cells_in(&plans[next - 1..]),
            ),
            ..design.clone()
        };
        // A rung measures its stacks alone, the baseline (always among them) still the baseline.
        let rung: Option<Vec<Contender>> = only.map(|names| {
            contenders
                .iter()
                .filter(|c| names.contains(&c.name))
                .cloned()
                .collect()
        });
        let ctx = match &rung {
            Some(measured) => CellContext {
                design: &cell_design,
                contenders: measured,
                baseline: measured
                    .iter()
                    .position(|c| c.name == contenders[baseline].name)
                    .unwrap_or(0),
                ..ctx
            },
            None => CellContext {
                design: &cell_design,
                ..ctx
            },
        };
        pb.set_message(name.clone());
        let progress = |round: u32, widest: Option<f64>| {
            let widest = widest.map_or_else(|| "-".to_owned(), |w| format!("±{:.1} %", 100.0 * w));
            pb.set_message(format!(
                "{name} · round {round} · widest interval {widest} (target ±{} %)",
                args.target_percent
            ));
        };
        match cell::run_cell(&plan, template, &ctx, &progress).await {
            Ok(summary) => {
                record::append_line(&cells_path, &serde_json::to_string(&summary)?)?;
                pb.suspend(|| println!("{}", describe_cell(&summary, &records_path)));
            }
            Err(err) => {
                failures += 1;
                pb.suspend(|| eprintln!("loadgen: error: {name}: {err:#}"));
            }
        }
        pb.inc(1);
    }
    pb.finish_with_message("done");
    println!(
        "{cells} cells in {:.0} s; records: {} (render with: loadgen report {} --out {})",
        started.elapsed().as_secs_f64(),
        records_path.display(),
        records_path.display(),
        args.out.display()
    );
    if failures > 0 {
        bail!("{failures} cell(s) failed; see the errors above");
    }
    Ok(())
}

/// A cell's outcome in a few lines: how it stopped and each stack's ratio to the baseline.
fn describe_cell(summary: &CellSummary, records_path: &Path) -> String {
    let mut out = format!(
        "{}: {} rounds{} in {:.0} s, {}{}",
        summary.cell,
        summary.rounds,
        match (summary.shortest_trial_ms, summary.trial_ms) {
            (Some(short), Some(long)) if short < long =>
                format!(" of {short:.0}-{long:.0} ms trials"),
            (_, Some(long)) => format!(" of {long:.0} ms trials"),
            (_, None) => String::new(),
        },
        summary.seconds,
        summary.stop.describe(),
        if summary.redone > 0 {
            format!(", {} disturbed trial(s) redone", summary.redone)
        } else {
            String::new()
        }
    );
    let records = record::read_all(records_path).unwrap_or_default();
    let analysis = loadgen::report::analyse_cell(&records, &summary.cell, &summary.run);
    for line in analysis {
        out += &format!("\n  {line}");
    }
    for stack in &summary.unclean_shutdowns {
        out += &format!("\n  ! {stack} did not exit cleanly on SIGTERM");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server settings `loadgen matrix` starts `name` with, given `flags`, on one core.
    fn started_with(name: &str, flags: &[&str]) -> (usize, Option<usize>) {
        let args = matrix_args(flags);
        let pinning = Pinning {
            server: vec![0],
            loadgen: vec![1],
        };
        let spec = server_spec(&args.common, name, PathBuf::from("server"), Some(&pinning));
        (spec.workers, spec.pool_size)
    }

    fn matrix_args(flags: &[&str]) -> MatrixArgs {
        let cli = Cli::try_parse_from(["loadgen", "matrix"].iter().chain(flags)).unwrap();
        let Command::Matrix(args) = cli.command else {
            unreachable!("parsed as matrix")
        };
        args
    }

    #[test]
    fn the_matrix_flags_default_to_the_default_design() {
        assert_eq!(design_of(&matrix_args(&[])), Design::default());
        let quick = design_of(&matrix_args(&["--quick"]));
        assert_eq!((quick.min_rounds, quick.max_rounds), (2, 3));
        let capped = design_of(&matrix_args(&["--min-rounds", "9", "--max-rounds", "4"]));
        assert_eq!((capped.min_rounds, capped.max_rounds), (9, 9));
    }

    #[test]
    fn the_shortest_trial_help_states_the_requests_per_connection() {
        let help = <Cli as clap::CommandFactory>::command()
            .find_subcommand_mut("matrix")
            .and_then(|m| {
                m.get_arguments()
                    .find(|a| a.get_id() == "shortest_trial")
                    .and_then(|a| a.get_help().map(ToString::to_string))
            })
            .expect("matrix has --shortest-trial");
        let requests = format!("{} requests", loadgen::cell::COMPLETIONS_PER_CONNECTION);
        assert!(help.contains(&requests), "{help:?} should say {requests}");
    }

    #[test]
    fn a_ladder_leaves_out_the_stacks_that_cannot_hold_its_lowest_rate() {
        let probed = [
            ("fast".to_owned(), 20_000.0),
            ("slow".to_owned(), 600.0),
            ("base".to_owned(), 500.0),
            ("edge".to_owned(), 1_000.0),
        ];
        let (kept, left_out) = ladder_stacks(&probed, 1_000.0, "base");
        assert_eq!(kept, ["fast", "base", "edge"], "the baseline stays");
        assert_eq!(left_out, [("slow".to_owned(), 600.0)]);
    }

    #[test]
    fn each_server_gets_the_workers_its_documentation_recommends() {
        let sync = harness::STACKS
            .iter()
            .find(|s| s.workers == harness::Workers::TwicePerCorePlusOne)
            .expect("the registry has a sync-worker stack");
        let other = harness::STACKS
            .iter()
            .find(|s| s.workers == harness::Workers::PerCore)
            .expect("the registry has a stack with a worker per core");
        // One server core: three sync workers, one of the others; two connections per core.
        assert_eq!(started_with(sync.name, &[]), (3, Some(2)));
        assert_eq!(started_with(other.name, &[]), (1, Some(2)));
        assert_eq!(started_with("./some/server", &[]), (1, Some(2)));
        // --workers and --pool-size hold for every server.
        assert_eq!(started_with(sync.name, &["--workers", "2"]), (2, Some(4)));
        assert_eq!(started_with(other.name, &["--workers", "2"]), (2, Some(4)));
        assert_eq!(started_with(sync.name, &["--pool-size", "5"]), (3, Some(5)));
    }

    #[test]
    fn phases_put_postgres_across_a_network() {
        let plain = parse_phase("read,mixed:64,256:sqlite,postgres").unwrap();
        assert_eq!(plain.workloads.len() * plain.connections.len(), 4);
        assert_eq!(plain.networks, [None]);

        let across = parse_phase("read:64:postgres:0,0.5:2,32").unwrap();
        let cells: Vec<(u64, usize)> = across
            .networks
            .iter()
            .map(|n| n.map(|n| (n.rtt_us, n.pool)).unwrap())
            .collect();
        assert_eq!(cells, [(0, 2), (0, 32), (500, 2), (500, 32)]);

        for bad in [
            "read:64:sqlite:1:8",
            "read:64:postgres:-1:8",
            "read:64:postgres:1:0",
            "read:64:postgres:1",
            "read:64",
        ] {
            assert!(parse_phase(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deployment_phases_run_every_combination_of_hops() {
        let phase = parse_phase("read:1,64:postgres:deployment").unwrap();
        assert_eq!(phase.networks, [None]);
        let labels: Vec<String> = phase
            .deployments
            .iter()
            .map(|d| d.unwrap().label())
            .collect();
        assert_eq!(
            labels,
            [
                "direct",
                "nginx",
                "pgbouncer(session)",
                "nginx+pgbouncer(session)"
            ]
        );
        assert_eq!(phase.cells(LoadModel::Closed).count(), 8);
        for bad in [
            "read:64:sqlite:deployment",
            "read:64:postgres:deploy",
            "read:64:postgres:deployment=transaction",
        ] {
            assert!(parse_phase(bad).is_err(), "{bad}");
        }
    }
}
