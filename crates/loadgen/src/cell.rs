//! A comparison's cell, measured by randomized multiple interleaved trials (Abedi and Brecht,
//! ICPE 2017): every stack's server of the cell (one database, workload, load model and
//! connection count) runs at once on a clone of one seeded database, each pinned to the same
//! cores; round after round the load visits them one short trial each, in a new random order
//! every round. Drift of the machine then hits every stack alike, and each round gives one
//! paired ratio per stack ([`crate::stats`]). Rounds are added until every ratio's 95 %
//! interval is as narrow as asked, or the cell's time budget is spent; trials on a disturbed
//! machine (CPU steal, other processes) are redone, and kept in the records, marked.
//!
//! Each stack's trials are as short as its rate allows ([`Design::trial_length`]). On the
//! 2-core VMs this was built on, a trial's throughput varies mostly by the state the machine
//! happens to be in while it runs (most likely its host's other guests, whose load does not
//! show as steal: the same server measured 400 ms at a time varied 6-15 % from trial to
//! trial, where its 100 ms slices predicted 2.5-3.5 %), not by the trial's length; so four
//! 100 ms trials buy a narrower interval than one 400 ms trial.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use harness::DbKind;
use harness::db::FreshDb;
use harness::delay::ProxyProcess;
use harness::deploy::{Nginx, Pgbouncer};
use harness::rng::Rng;
use harness::server::{Server, ServerSpec};
use serde::{Deserialize, Serialize};

use crate::engine::{self, LoadConfig, LoadModel, Target};
use crate::measure::{self, About, MeasureOptions};
use crate::record::{self, DbNetwork, Deployment, Provenance, Record, Trial};
use crate::stats::{self, Interval};
use crate::workload::{SeededIds, Workload, WorkloadKind};

/// How the cells are measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Design {
    /// The longest measured part of a trial (a `delete` trial measures a fixed count
    /// instead); closed-loop cells of fast stacks take shorter ones ([`Design::trial_length`]).
    pub trial: Duration,
    /// The shortest measured part of a trial.
    pub shortest_trial: Duration,
    /// Load before each trial's measured part, not counted: this, or half the trial when
    /// that is shorter.
    pub trial_warmup: Duration,
    /// The requests a `delete` trial measures (each deletes a seeded task once).
    pub delete_requests: u64,
    /// Rounds before the intervals may stop the cell.
    pub min_rounds: u32,
    pub max_rounds: u32,
    /// No round starts once this much of the cell's time is spent.
    pub budget: Duration,
    /// The relative half-width every ratio's 95 % interval should reach (0.03 is ±3 %).
    pub target: f64,
    /// A disturbed trial is redone at most this many times (the last attempt counts).
    pub max_redos: u32,
    /// A trial is disturbed when steal, or other processes' CPU, exceeds this share of the
    /// machine's CPU time during its window.
    pub steal_limit: f64,
    pub other_limit: f64,
    /// The cell only probes capacity for an open-loop ladder: its trials are recorded but
    /// never counted.
    pub probe: bool,
}

impl Default for Design {
    fn default() -> Self {
        Self {
            trial: Duration::from_millis(400),
            shortest_trial: Duration::from_millis(100),
            trial_warmup: Duration::from_millis(100),
            delete_requests: 5000,
            min_rounds: 5,
            max_rounds: 200,
            budget: Duration::from_secs(45),
            target: 0.03,
            max_redos: 2,
            steal_limit: 0.05,
            other_limit: 0.10,
            probe: false,
        }
    }
}

/// Requests each connection of a stack completes in one trial, at least.
pub const COMPLETIONS_PER_CONNECTION: f64 = 25.0;

/// How a cell's counted trials are timed, chosen after its warm-up round.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Timing {
    trial: Duration,
    warmup: Duration,
    /// A `delete` trial's request count ([`delete_count`]).
    fixed: Option<u64>,
}

impl Design {
    /// A stack's trial in a closed-loop cell: long enough for each of its connections to
    /// complete [`COMPLETIONS_PER_CONNECTION`] requests at the rate the warm-up round saw (its
    /// mean latency is connections / throughput, by Little's law), so that a trial counts
    /// enough of its answers; at least [`Design::shortest_trial`], at most [`Design::trial`].
    /// Each stack's trials fit its own rate: a throughput is a rate whatever the window, and a
    /// slow stack beside fast ones no longer lengthens their trials, so a round is shorter and
    /// a cell gets more of them. Open-loop cells, whose trials must hold enough requests for
    /// their latency percentiles, and stacks without a usable warm-up rate take
    /// [`Design::trial`].
    fn trial_length(&self, model: LoadModel, connections: usize, rate: f64) -> Duration {
        if model != LoadModel::Closed || !(rate.is_finite() && rate > 0.0) {
            return self.trial;
        }
        let seconds = COMPLETIONS_PER_CONNECTION * connections.max(1) as f64 / rate;
        Duration::from_secs_f64(seconds.min(self.trial.as_secs_f64()))
            .clamp(self.shortest_trial.min(self.trial), self.trial)
    }

    /// Each stack's counted trials' timing in a cell whose warm-up round saw `rates`.
    fn timings(&self, plan: &CellPlan, rates: &[f64]) -> Vec<Timing> {
        rates
            .iter()
            .map(|&rate| {
                let trial = self.trial_length(plan.model, plan.connections, rate);
                Timing {
                    trial,
                    warmup: self.trial_warmup.min(trial / 2),
                    fixed: (plan.workload == WorkloadKind::Delete)
                        .then(|| delete_count(rate, trial, self)),
                }
            })
            .collect()
    }

    /// A cell's budget when all cells share `total` (Kalibera and Jones: spend the time where
    /// the variance is): the time left over the cells left, at most [`Design::budget`] (all of
    /// which each cell gets without a total).
    pub fn share(&self, total: Option<Duration>, spent: Duration, cells_left: usize) -> Duration {
        match total {
            None => self.budget,
            Some(total) => {
                let left = u32::try_from(cells_left.max(1)).unwrap_or(u32::MAX);
                (total.saturating_sub(spent) / left).min(self.budget)
            }
        }
    }
}

/// One cell: what every stack in it is measured under.
#[derive(Debug, Clone, PartialEq)]
pub struct CellPlan {
    pub db: DbKind,
    pub workload: WorkloadKind,
    pub model: LoadModel,
    pub connections: usize,
    /// PostgreSQL across a network: every server reaches it through a delay proxy, with this
    /// pool size.
    pub network: Option<DbNetwork>,
    /// The deployment scenario's hops around every server of the cell.
    pub deployment: Option<Deployment>,
}

impl CellPlan {
    /// `sqlite read closed c=64`, `postgres mixed open@5000 c=64`,
    /// `postgres read closed c=64 rtt=2ms pool=8` or `postgres read closed c=64 nginx`.
    pub fn name(&self) -> String {
        let model = match self.model {
            LoadModel::Closed => "closed".to_owned(),
            LoadModel::Open { rate } => format!("open@{rate}"),
        };
        let network = self
            .network
            .map(|n| format!(" {}", n.label()))
            .unwrap_or_default();
        let deployment = self
            .deployment
            .map(|d| format!(" {}", d.label()))
            .unwrap_or_default();
        format!(
            "{} {} {model} c={}{network}{deployment}",
            self.db, self.workload, self.connections
        )
    }
}

/// The `loadgen` binary that runs delay proxies: this one, or, when the cells are run from a
/// test, the one built beside it.
fn loadgen_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the running binary")?;
    if exe.file_name().is_some_and(|n| n == "loadgen") {
        Ok(exe)
    } else {
        harness::cargo::sibling_binary("loadgen")
    }
}

/// What stands between a cell's server and its database, held for as long as the server
/// runs and stopped when dropped: a delay proxy in a process of its own
/// (`loadgen delay-proxy`), or pgbouncer.
#[derive(Debug)]
enum DatabaseHop {
    Delay(ProxyProcess),
    Pgbouncer(Pgbouncer),
}

impl DatabaseHop {
    /// Where the server connects instead of the database.
    fn addr(&self) -> std::net::SocketAddr {
        match self {
            Self::Delay(proxy) => proxy.addr(),
            Self::Pgbouncer(pgbouncer) => pgbouncer.addr(),
        }
    }
}

/// How a cell's server reaches its database: directly, through a delay proxy, or through
/// pgbouncer; the URL to give the server, and the hop.
fn database_route(db: &FreshDb, plan: &CellPlan) -> anyhow::Result<(String, Option<DatabaseHop>)> {
    let pgbouncer = plan.deployment.and_then(|d| d.pgbouncer);
    let network = plan.network.filter(|n| n.rtt_us > 0);
    if pgbouncer.is_none() && network.is_none() {
        return Ok((db.url().to_owned(), None));
    }
    anyhow::ensure!(
        db.kind() == DbKind::Postgres,
        "a delay proxy or pgbouncer stands in front of PostgreSQL (SQLite is a file)"
    );
    let upstream = harness::db::tcp_address(db.url())?;
    let hop = match (pgbouncer, network) {
        (Some(mode), None) => {
            let user = harness::db::user(db.url())?;
            DatabaseHop::Pgbouncer(Pgbouncer::start(upstream, &[&user], mode)?)
        }
        (None, Some(network)) => {
            let mut program = std::process::Command::new(loadgen_binary()?);
            program.args([
                "delay-proxy".to_owned(),
                format!("--upstream={upstream}"),
                format!("--rtt-ms={}", network.rtt_ms()),
            ]);
            DatabaseHop::Delay(ProxyProcess::spawn(program)?)
        }
        _ => anyhow::bail!("{}: a network and pgbouncer in one cell", plan.name()),
    };
    Ok((harness::db::with_address(db.url(), hop.addr())?, Some(hop)))
}

/// Why a capacity probe's trials do not count.
pub const PROBE: &str = "open-loop ladder probe";

/// The offered rates of an open-loop ladder: `steps` rates in a geometric progression from
/// 5 % to 130 % of `capacity` (the fastest stack's closed-loop throughput), each rounded to
/// two significant digits, so every stack gets the same absolute rates and the top ones
/// overload even the fastest.
pub fn ladder(capacity: f64, steps: usize) -> Vec<f64> {
    const LOW: f64 = 0.05;
    const HIGH: f64 = 1.3;
    let steps = steps.max(2);
    let ratio = (HIGH / LOW).powf(1.0 / (steps - 1) as f64);
    let mut rates: Vec<f64> = (0..steps)
        .map(|k| {
            let rate = capacity * LOW * ratio.powi(k as i32);
            let unit = 10f64.powi(rate.log10().floor() as i32 - 1);
            ((rate / unit).round() * unit).max(1.0)
        })
        .collect();
    rates.dedup();
    rates
}

/// Measures the closed-loop capacity of every stack in `plan` (one short round, recorded but
/// not counted) and returns each stack's throughput.
pub async fn probe_capacity(
    plan: &CellPlan,
    template: &Template,
    ctx: &Context<'_>,
) -> anyhow::Result<Vec<(String, f64)>> {
    let design = Design {
        min_rounds: 1,
        max_rounds: 1,
        probe: true,
        ..ctx.design.clone()
    };
    let plan = CellPlan {
        model: LoadModel::Closed,
        ..plan.clone()
    };
    run_cell(
        &plan,
        template,
        &Context {
            design: &design,
            ..*ctx
        },
        &|_, _| {},
    )
    .await?;
    let cell = plan.name();
    let mut probed: Vec<(String, f64)> = ctx
        .contenders
        .iter()
        .map(|c| (c.name.clone(), 0.0))
        .collect();
    for r in record::read_all(ctx.records)? {
        let Some(t) = r.trial.as_ref() else { continue };
        if t.cell == cell
            && t.comparison == ctx.run
            && t.discarded.as_deref() == Some(PROBE)
            && let Some((_, best)) = probed.iter_mut().find(|(name, _)| *name == r.stack)
        {
            *best = best.max(r.results.throughput);
        }
    }
    anyhow::ensure!(
        probed.iter().any(|(_, t)| *t > 0.0),
        "the probe of {cell} measured no throughput"
    );
    Ok(probed)
}

/// A stack of the comparison: its name and how to start its server.
#[derive(Debug, Clone)]
pub struct Contender {
    pub name: String,
    pub server: ServerSpec,
}

/// A seeded database every cell of its kind clones for each stack, so each starts from the
/// same bytes and no cell spends its time seeding.
#[derive(Debug)]
pub struct Template {
    pub db: FreshDb,
    /// Tasks for reads, updates and lists.
    pub ids: Vec<i64>,
    /// Tasks a delete may remove.
    pub delete_ids: Vec<i64>,
    pub seconds: f64,
}

impl Template {
    /// Starts `seeder`'s server on a fresh database of `kind`, creates `seed + delete_seed`
    /// tasks through the API, and stops it, keeping the database. (Every stack runs the same
    /// migrations, so any of them may seed it.)
    pub async fn create(
        kind: DbKind,
        seeder: &ServerSpec,
        pg_admin_url: Option<&str>,
        opts: &MeasureOptions,
    ) -> anyhow::Result<Self> {
        let started = Instant::now();
        let spec = seeder.clone();
        let admin = pg_admin_url.map(str::to_owned);
        let health = opts.health_timeout;
        let server = blocking(move || {
            let mut server = spec.start(kind, admin.as_deref())?;
            server.wait_healthy(health)?;
            Ok(server)
        })
        .await?;
        let target = Target::from_addr(server.addr());
        let seeded = engine::seed_tasks(
            &target,
            opts.seed + opts.delete_seed,
            opts.seed_connections,
            opts.load.timeout,
        )
        .await;
        let grace = opts.shutdown_grace;
        let (stopped, db) = blocking(move || server.stop_keeping_db(grace)).await?;
        let mut ids = seeded.context("seeding the template database")?;
        anyhow::ensure!(
            stopped.clean(),
            "the seeding server did not stop cleanly ({})",
            stopped.describe()
        );
        let db = db.context("the seeding server's database is its own")?;
        if let FreshDb::Postgres { url, .. } = &db {
            // Planner statistics for every clone, and no autovacuum pass in the middle of one.
            harness::db::psql(url, "VACUUM ANALYZE tasks")?;
        }
        let delete_ids = ids.split_off(opts.seed.min(ids.len()));
        Ok(Self {
            db,
            ids,
            delete_ids,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// Why a cell stopped adding rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// Every ratio's interval reached the target.
    Reached,
    /// The time budget was spent first.
    Budget,
    MaxRounds,
    /// The delete pool could not serve another round.
    DeletePool,
}

impl Stop {
    pub const fn describe(self) -> &'static str {
        match self {
            Self::Reached => "intervals reached the target",
            Self::Budget => "time budget spent",
            Self::MaxRounds => "round limit reached",
            Self::DeletePool => "delete pool spent",
        }
    }
}

/// What `cells.jsonl` says of one cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellSummary {
    pub cell: String,
    pub baseline: String,
    pub stacks: Vec<String>,
    /// Counted rounds (the warm-up round aside).
    pub rounds: u32,
    pub stop: Stop,
    pub target: f64,
    /// Wall time of the cell: servers started, rounds, servers stopped.
    pub seconds: f64,
    /// Disturbed trials that were redone.
    pub redone: u32,
    /// The measured part of the slowest stack's counted trials, in milliseconds
    /// ([`Design::trial_length`]); absent in summaries from before trials were fitted to the
    /// cell (all 400 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_ms: Option<f64>,
    /// ... of the fastest stack's; absent in summaries from before each stack's trials were
    /// fitted to its own rate (all as long as the slowest stack's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortest_trial_ms: Option<f64>,
    /// Stacks whose server did not exit cleanly on SIGTERM after the cell.
    pub unclean_shutdowns: Vec<String>,
    pub run: String,
}

/// A stack's server in a cell, and the tasks its trials use.
struct Running {
    name: String,
    server: Server,
    /// nginx in front of the server, stopped before it.
    front: Option<Nginx>,
    /// What stands in front of the server's database, stopped after the server.
    hop: Option<DatabaseHop>,
    target: Target,
    ids: Arc<SeededIds>,
    /// The most delete ids one trial used.
    most_deletes: usize,
}

/// Runs `f` on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("a blocking task panicked")?
}

/// Everything a cell needs besides its plan.
#[derive(Debug)]
pub struct Context<'a> {
    pub design: &'a Design,
    pub contenders: &'a [Contender],
    /// Index into `contenders` of the stack the others are compared with.
    pub baseline: usize,
    /// Load-generator settings (threads, pinning, timeouts); the load itself comes from the plan.
    pub options: &'a MeasureOptions,
    pub provenance: &'a Provenance,
    /// Trial records are appended here as they finish.
    pub records: &'a Path,
    /// A name for this comparison, shared by its cells' run ids.
    pub run: &'a str,
}

/// What a cell reports while it runs: (round, the widest interval so far).
pub type Progress<'p> = &'p dyn Fn(u32, Option<f64>);

/// Measures one cell; its trial records are appended as they finish.
pub async fn run_cell(
    plan: &CellPlan,
    template: &Template,
    ctx: &Context<'_>,
    progress: Progress<'_>,
) -> anyhow::Result<CellSummary> {
    let started = Instant::now();
    let cell = plan.name();
    let design = ctx.design;
    let mut running = Vec::with_capacity(ctx.contenders.len());
    for contender in ctx.contenders {
        let db = FreshDb::clone_of(&template.db)?;
        let (url, hop) = database_route(&db, plan)?;
        let mut spec = contender.server.clone();
        if let Some(network) = plan.network {
            spec.pool_size = Some(network.pool);
        }
        let health = ctx.options.health_timeout;
        let server = blocking(move || {
            let mut server = spec.start_via(db, &url)?;
            server.wait_healthy(health)?;
            Ok(server)
        })
        .await
        .with_context(|| format!("starting {}", contender.name))?;
        let front = match plan.deployment {
            Some(d) if d.nginx => {
                // One nginx worker per server core (its `worker_processes auto`), on them.
                let (upstream, workers, cores) = (
                    server.addr(),
                    ctx.options
                        .pinning
                        .as_ref()
                        .map_or_else(|| crate::monitor::allowed_cores().len(), |p| p.server.len()),
                    contender.server.cores.clone(),
                );
                Some(
                    blocking(move || Nginx::start(upstream, workers, cores.as_deref()))
                        .await
                        .with_context(|| format!("starting nginx for {}", contender.name))?,
                )
            }
            _ => None,
        };
        running.push(Running {
            name: contender.name.clone(),
            target: Target::from_addr(front.as_ref().map_or(server.addr(), Nginx::addr)),
            server,
            front,
            hop,
            ids: Arc::new(SeededIds::new(
                template.ids.clone(),
                template.delete_ids.clone(),
            )),
            most_deletes: 0,
        });
    }
    let outcome = rounds(plan, &cell, &mut running, ctx, progress).await;
    let mut unclean = Vec::new();
    for r in running {
        let grace = ctx.options.shutdown_grace;
        let name = r.name.clone();
        let stopped = blocking(move || {
            drop(r.front);
            let stopped = r.server.stop(grace);
            drop(r.hop);
            stopped
        })
        .await?;
        if !stopped.clean() {
            unclean.push(name);
        }
    }
    let (rounds, stop, redone, timings) = outcome?;
    let trial_ms = |pick: fn(Duration, Duration) -> Duration| {
        timings
            .iter()
            .map(|t| t.trial)
            .reduce(pick)
            .map(|t| t.as_secs_f64() * 1e3)
    };
    Ok(CellSummary {
        cell,
        baseline: ctx.contenders[ctx.baseline].name.clone(),
        stacks: ctx.contenders.iter().map(|c| c.name.clone()).collect(),
        rounds,
        stop,
        target: design.target,
        seconds: started.elapsed().as_secs_f64(),
        redone,
        trial_ms: trial_ms(Duration::max),
        shortest_trial_ms: trial_ms(Duration::min),
        unclean_shutdowns: unclean,
        run: ctx.run.to_owned(),
    })
}

/// The warm-up round and the counted rounds; (rounds, why they stopped, trials redone, how
/// each stack's counted trials were timed).
async fn rounds(
    plan: &CellPlan,
    cell: &str,
    running: &mut [Running],
    ctx: &Context<'_>,
    progress: Progress<'_>,
) -> anyhow::Result<(u32, Stop, u32, Vec<Timing>)> {
    let design = ctx.design;
    let started = Instant::now();
    let mut rng = Rng::new(seed_of(cell));
    // Throughput of each counted trial, by round then stack.
    let mut table: Vec<Vec<f64>> = Vec::new();
    let mut redone = 0;
    let mut round_seconds = 0.0f64;
    // The warm-up round only wakes the servers up: its trials are short and timed. The rates
    // it sees set each stack's counted trials' length, and its delete trials' fixed count
    // (each id is deleted once, so the pool must last): about a trial's worth.
    let mut timings = vec![
        Timing {
            trial: design.trial_warmup,
            warmup: design.trial_warmup,
            fixed: None,
        };
        running.len()
    ];
    for round in 0..=design.max_rounds {
        let round_start = Instant::now();
        let mut order: Vec<usize> = (0..running.len()).collect();
        rng.shuffle(&mut order);
        let mut throughput = vec![0.0; running.len()];
        for (position, &i) in order.iter().enumerate() {
            let mut attempt = 0;
            loop {
                let rec = trial(
                    plan,
                    cell,
                    &mut running[i],
                    ctx,
                    round,
                    position,
                    attempt,
                    timings[i],
                )
                .await?;
                let disturbed = disturbance(&rec, design);
                let redo = round > 0 && disturbed.is_some() && attempt < design.max_redos;
                let mut rec = rec;
                if let Some(t) = rec.trial.as_mut() {
                    t.discarded = if round == 0 {
                        Some("warm-up round".to_owned())
                    } else if redo {
                        disturbed
                    } else if design.probe {
                        Some(PROBE.to_owned())
                    } else {
                        None
                    };
                }
                record::append(ctx.records, &rec)?;
                if redo {
                    redone += 1;
                    attempt += 1;
                    continue;
                }
                throughput[i] = rec.results.throughput;
                break;
            }
        }
        if round == 0 {
            timings = design.timings(plan, &throughput);
            continue;
        }
        table.push(throughput);
        round_seconds = round_seconds.max(round_start.elapsed().as_secs_f64());
        let widest = widest_interval(&table, ctx.baseline);
        progress(round, widest);
        let n = round;
        if n >= design.min_rounds && widest.is_some_and(|w| w <= design.target) {
            return Ok((n, Stop::Reached, redone, timings));
        }
        if n >= design.max_rounds {
            return Ok((n, Stop::MaxRounds, redone, timings));
        }
        let elapsed = started.elapsed().as_secs_f64();
        if n >= design.min_rounds && elapsed + round_seconds > design.budget.as_secs_f64() {
            return Ok((n, Stop::Budget, redone, timings));
        }
        if plan.workload.needs_delete_pool()
            && running
                .iter()
                .any(|r| r.ids.delete_ids.len() - r.ids.deletes_used() < 2 * r.most_deletes)
        {
            return Ok((n, Stop::DeletePool, redone, timings));
        }
    }
    unreachable!("the loop returns at max_rounds")
}

/// The requests of a stack's delete trial: its warm-up rate times its trial's length, at
/// least 100 and at most `delete_requests`.
fn delete_count(warmup_rate: f64, trial: Duration, design: &Design) -> u64 {
    let requests = if warmup_rate.is_finite() {
        warmup_rate.max(0.0) * trial.as_secs_f64()
    } else {
        0.0
    };
    (requests as u64).clamp(100, design.delete_requests.max(100))
}

/// A deterministic order for a cell's rounds (so a rerun visits the stacks alike).
fn seed_of(cell: &str) -> u64 {
    cell.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The widest relative half-width among the non-baseline stacks' ratios.
fn widest_interval(table: &[Vec<f64>], baseline: usize) -> Option<f64> {
    let stacks = table.first()?.len();
    let mut widest: Option<f64> = None;
    for s in (0..stacks).filter(|&s| s != baseline) {
        let pairs: Vec<(f64, f64)> = table.iter().map(|row| (row[s], row[baseline])).collect();
        let w = stats::paired_ratio(&pairs).map_or(f64::INFINITY, |i: Interval| i.half_width());
        widest = Some(widest.map_or(w, |x: f64| x.max(w)));
    }
    widest
}

/// Why a trial's machine was too busy to count it, if it was.
fn disturbance(rec: &Record, design: &Design) -> Option<String> {
    disturbance_of(
        &rec.results.noise,
        design,
        1.0 / crate::monitor::clock_ticks(),
    )
}

/// `tick` is the kernel's CPU-time unit (10 ms): `/proc` counts whole ticks, so a short
/// window's steal is off by up to one tick, and other processes' CPU (a difference of five
/// such counts) by up to five; a trial is disturbed only beyond a limit by more than that.
/// (Without the margin, one tick of steal in a 100 ms trial on 2 cores reads as 5 %.)
fn disturbance_of(noise: &crate::record::Noise, design: &Design, tick: f64) -> Option<String> {
    if noise.core_seconds <= 0.0 {
        return None;
    }
    let steal = noise.steal_seconds / noise.core_seconds;
    let other = noise.other_cpu_seconds / noise.core_seconds;
    let over =
        |seconds: f64, limit: f64, ticks: f64| seconds > limit * noise.core_seconds + ticks * tick;
    if over(noise.steal_seconds, design.steal_limit, 1.0) {
        Some(format!(
            "disturbed: CPU steal {:.1} % of the window",
            100.0 * steal
        ))
    } else if over(noise.other_cpu_seconds, design.other_limit, 5.0) {
        Some(format!(
            "disturbed: other processes used {:.1} % of the CPU",
            100.0 * other
        ))
    } else {
        None
    }
}

/// One stack's trial in a round.
#[allow(
    clippy::too_many_arguments,
    reason = "where the trial sits: cell, stack, round, position, attempt"
)]
async fn trial(
    plan: &CellPlan,
    cell: &str,
    stack: &mut Running,
    ctx: &Context<'_>,
    round: u32,
    position: usize,
    attempt: u32,
    timing: Timing,
) -> anyhow::Result<Record> {
    let design = ctx.design;
    let load = LoadConfig {
        workload: Workload::new(plan.workload),
        model: plan.model,
        connections: plan.connections,
        warmup: timing.warmup,
        duration: timing.trial,
        requests: timing.fixed,
        ..ctx.options.load.clone()
    };
    let before = stack.ids.deletes_used();
    let outcome = measure::window(
        &load,
        &stack.target,
        Some(stack.server.pid()),
        stack.ids.clone(),
    )
    .await;
    let (result, monitor) = outcome.with_context(|| {
        format!(
            "{} in {cell}; server stderr:\n{}",
            stack.name,
            stack.server.stderr().trim_end()
        )
    })?;
    if !stack.server.is_running() {
        anyhow::bail!(
            "{} exited during {cell}; stderr:\n{}",
            stack.name,
            stack.server.stderr().trim_end()
        );
    }
    stack.most_deletes = stack.most_deletes.max(stack.ids.deletes_used() - before);
    let mut provenance = ctx.provenance.clone();
    provenance.build_profile = record::build_profile_of(&binary_of(&stack.name, ctx));
    let startup = stack.server.startup();
    let about = About {
        // The comparison's name for it (two copies of one binary may be compared: an A/A run).
        stack: stack.name.clone(),
        db: Some(plan.db),
        server_workers: startup.workers,
        server_pool_size: startup.pool,
        db_network: plan.network,
        deployment: plan.deployment,
        clean_shutdown: None,
        run_id: format!("{}/{cell}/{round}/{}/{attempt}", ctx.run, stack.name),
        trial: Some(Trial {
            comparison: ctx.run.to_owned(),
            cell: cell.to_owned(),
            baseline: ctx.contenders[ctx.baseline].name.clone(),
            round,
            position: position as u32,
            attempt,
            discarded: None,
            target: design.target,
        }),
        provenance,
    };
    let opts = MeasureOptions {
        load,
        ..ctx.options.clone()
    };
    measure::build_record(&opts, &result, monitor, about)
}

fn binary_of(name: &str, ctx: &Context<'_>) -> PathBuf {
    ctx.contenders
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.server.binary.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_share_the_time_left_up_to_their_own_budget() {
        let design = Design {
            budget: Duration::from_secs(60),
            ..Design::default()
        };
        let s = Duration::from_secs;
        assert_eq!(design.share(None, s(500), 3), s(60));
        // 600 s left for 20 cells: 30 s each; a quick cell leaves more for the rest.
        assert_eq!(design.share(Some(s(900)), s(300), 20), s(30));
        assert_eq!(design.share(Some(s(900)), s(100), 10), s(60));
        assert_eq!(design.share(Some(s(900)), s(1000), 2), Duration::ZERO);
    }
    use crate::record::Noise;

    #[test]
    fn ladders_climb_geometrically_past_the_capacity() {
        let rates = ladder(20_000.0, 8);
        assert_eq!(rates.len(), 8);
        assert_eq!(rates[0], 1_000.0);
        assert_eq!(*rates.last().unwrap(), 26_000.0);
        for pair in rates.windows(2) {
            let step = pair[1] / pair[0];
            assert!((1.5..1.7).contains(&step), "{rates:?}");
        }
        // Two significant digits, and never below one request per second.
        assert_eq!(ladder(123.0, 2), [6.2, 160.0]);
        assert!(ladder(1.0, 4).iter().all(|&r| r >= 1.0));
    }

    #[test]
    fn cells_are_named_by_what_they_hold() {
        let plan = CellPlan {
            db: DbKind::Sqlite,
            workload: WorkloadKind::Read,
            model: LoadModel::Closed,
            connections: 64,
            network: None,
            deployment: None,
        };
        assert_eq!(plan.name(), "sqlite read closed c=64");
        assert_eq!(seed_of(&plan.name()), seed_of("sqlite read closed c=64"));
        assert_ne!(seed_of(&plan.name()), seed_of("sqlite read closed c=10"));
        let across = CellPlan {
            db: DbKind::Postgres,
            network: Some(DbNetwork {
                rtt_us: 500,
                pool: 8,
            }),
            ..plan.clone()
        };
        assert_eq!(across.name(), "postgres read closed c=64 rtt=0.5ms pool=8");
        let behind = CellPlan {
            db: DbKind::Postgres,
            deployment: Some(Deployment {
                nginx: true,
                pgbouncer: Some(harness::deploy::PoolMode::Session),
            }),
            ..plan
        };
        assert_eq!(
            behind.name(),
            "postgres read closed c=64 nginx+pgbouncer(session)"
        );
    }

    #[test]
    fn the_widest_interval_decides() {
        // Baseline is stack 0; stack 1 is steady, stack 2 noisy.
        let table = vec![
            vec![100.0, 110.0, 90.0],
            vec![102.0, 112.0, 80.0],
            vec![98.0, 108.0, 99.0],
        ];
        let steady = stats::paired_ratio(&[(110.0, 100.0), (112.0, 102.0), (108.0, 98.0)])
            .unwrap()
            .half_width();
        let widest = widest_interval(&table, 0).unwrap();
        assert!(widest > steady, "{widest} vs {steady}");
        assert_eq!(widest_interval(&[], 0), None);
    }

    #[test]
    fn delete_trials_last_about_a_trial() {
        let design = Design {
            trial: Duration::from_millis(500),
            delete_requests: 5000,
            ..Design::default()
        };
        let trial = design.trial;
        assert_eq!(delete_count(4000.0, trial, &design), 2000);
        assert_eq!(delete_count(50_000.0, trial, &design), 5000);
        assert_eq!(delete_count(10.0, trial, &design), 100);
        assert_eq!(delete_count(f64::NAN, trial, &design), 100);
    }

    #[test]
    fn each_stack_trials_as_short_as_its_rate_allows() {
        let design = Design::default();
        let ms = Duration::from_millis;
        let closed = LoadModel::Closed;
        // One connection at 1,000 req/s: 25 answers take 25 ms, so the shortest trial.
        assert_eq!(design.trial_length(closed, 1, 1_000.0), ms(100));
        // 64 connections at 8,000 req/s: 64 x 25 / 8,000 s = 200 ms.
        assert_eq!(design.trial_length(closed, 64, 8_000.0), ms(200));
        // ... at 600 req/s it would take 2.7 s: the longest trial.
        assert_eq!(design.trial_length(closed, 64, 600.0), ms(400));
        // No usable rate, or open loop: the longest trial.
        assert_eq!(design.trial_length(closed, 64, 0.0), ms(400));
        assert_eq!(design.trial_length(closed, 64, f64::NAN), ms(400));
        let open = LoadModel::Open { rate: 1000.0 };
        assert_eq!(design.trial_length(open, 64, 40_000.0), ms(400));
        // In one cell a fast stack's trials stay short beside a slow one's; the warm-up is
        // half a short trial, at most the design's; a delete trial counts its own trial's worth.
        let plan = CellPlan {
            db: DbKind::Sqlite,
            workload: WorkloadKind::Delete,
            model: closed,
            connections: 10,
            network: None,
            deployment: None,
        };
        assert_eq!(
            design.timings(&plan, &[20_000.0, 500.0]),
            [
                Timing {
                    trial: ms(100),
                    warmup: ms(50),
                    fixed: Some(2000)
                },
                Timing {
                    trial: ms(400),
                    warmup: ms(100),
                    fixed: Some(200)
                }
            ]
        );
    }

    #[test]
    fn a_busy_machine_disturbs_a_trial() {
        let design = Design::default();
        let verdict = |steal: f64, other: f64| {
            let noise = Noise {
                core_seconds: 2.0,
                steal_seconds: steal,
                database_cpu_seconds: 0.9,
                kernel_cpu_seconds: Some(0.3),
                front_cpu_seconds: None,
                other_cpu_seconds: other,
            };
            disturbance_of(&noise, &design, 0.01)
        };
        assert_eq!(verdict(0.0, 0.0), None);
        assert_eq!(verdict(0.09, 0.19), None, "under both limits");
        // Within the ticks /proc may be off by: 1 of steal, 5 of other processes' CPU.
        assert_eq!(verdict(0.109, 0.249), None, "within a count's rounding");
        assert_eq!(
            verdict(0.2, 0.0).as_deref(),
            Some("disturbed: CPU steal 10.0 % of the window")
        );
        assert_eq!(
            verdict(0.0, 0.3).as_deref(),
            Some("disturbed: other processes used 15.0 % of the CPU")
        );
        let idle = Noise::default();
        assert_eq!(disturbance_of(&idle, &design, 0.01), None);
        // A 100 ms trial on 2 cores: one tick of steal is 5 % of it, but not a disturbance.
        let short = |steal: f64| Noise {
            core_seconds: 0.2,
            steal_seconds: steal,
            ..Noise::default()
        };
        assert_eq!(disturbance_of(&short(0.01), &design, 0.01), None);
        assert_eq!(
            disturbance_of(&short(0.03), &design, 0.01).as_deref(),
            Some("disturbed: CPU steal 15.0 % of the window")
        );
    }
}
