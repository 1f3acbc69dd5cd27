//! One measured run end to end: a fresh database and the server started on it
//! ([`harness::server`]), `/health`, seeding, warm-up, the measured window with CPU, memory
//! and machine noise watched ([`window`]), the `soak` integrity check, SIGTERM, and the
//! resulting [`Record`]. A comparison's cells ([`crate::cell`]) use [`window`] for each trial.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use harness::DbKind;
use harness::server::{Server, ServerSpec};

use crate::engine::{self, LoadConfig, LoadResult, Target};
use crate::monitor::{self, Pinning, RssSampler, SystemCpu};
use crate::record::{
    DbNetwork, Deployment, LoadModelKind, LoadgenUsage, Noise, Provenance, Record, Results,
    SCHEMA_VERSION, Series, ServerUsage, Trial, build_profile_of, encode_histogram, new_run_id,
    utc_now_rfc3339,
};
use crate::soak::{self, Integrity};
use crate::workload::{SeededIds, WorkloadKind};

/// Load generator CPU use (fraction of its cores) at or above which a run is flagged saturated.
pub const SATURATION_THRESHOLD: f64 = 0.9;

/// Open loop: the share of sends the load generator may itself send late (its clients free in
/// time) before a run is flagged saturated.
pub const OWN_LATE_LIMIT: f64 = 0.01;

/// Everything about a measurement except the target.
#[derive(Debug, Clone)]
pub struct MeasureOptions {
    pub load: LoadConfig,
    /// Worker threads of the runtime the caller runs this on (recorded, and caps the cores used).
    pub threads: usize,
    /// Tasks seeded for read/update/list/mixed.
    pub seed: usize,
    /// Extra tasks seeded as the delete pool for delete/mixed (each deleted at most once).
    pub delete_seed: usize,
    /// Connections used for seeding.
    pub seed_connections: usize,
    /// The run id to record (several load generators on one run share it); a new one if `None`.
    pub run_id: Option<String>,
    /// Cores given to the server and to this process (`None`: unpinned).
    pub pinning: Option<Pinning>,
    pub health_timeout: Duration,
    pub shutdown_grace: Duration,
}

impl Default for MeasureOptions {
    fn default() -> Self {
        Self {
            load: LoadConfig::default(),
            threads: 1,
            seed: 10_000,
            delete_seed: 50_000,
            seed_connections: 8,
            run_id: None,
            pinning: None,
            health_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    /// Start this server binary on a fresh database for the run and stop it afterwards.
    Spawn {
        server: ServerSpec,
        db: DbKind,
        pg_admin_url: Option<String>,
    },
    /// An already-running server at `url` (`http://HOST:PORT[/PATH]`); CPU/RSS only if its pid
    /// is given; `health` is a path polled until it answers 2xx before the load starts.
    Url {
        url: String,
        stack: String,
        server_pid: Option<u32>,
        health: Option<String>,
        db: Option<DbKind>,
    },
}

/// One measurement: its record, the engine's raw result (histogram included), and what the
/// server wrote to stderr when loadgen started it.
#[derive(Debug)]
pub struct Measurement {
    pub record: Record,
    pub result: LoadResult,
    pub server_stderr: String,
}

/// Measures one combination.
pub async fn measure(
    opts: &MeasureOptions,
    spec: &TargetSpec,
    provenance: &Provenance,
) -> anyhow::Result<Measurement> {
    let run_id = opts.run_id.clone().unwrap_or_else(new_run_id);
    match spec {
        TargetSpec::Spawn {
            server,
            db,
            pg_admin_url,
        } => {
            let (spec, db, admin) = (server.clone(), *db, pg_admin_url.clone());
            let health_timeout = opts.health_timeout;
            let started = tokio::task::spawn_blocking(move || -> anyhow::Result<Server> {
                let mut started = spec.start(db, admin.as_deref())?;
                started.wait_healthy(health_timeout)?;
                Ok(started)
            })
            .await
            .context("starting the server panicked")??;
            let target = Target::from_addr(started.addr());
            let outcome = run_phases(opts, &target, Some(started.pid())).await;
            let stack = started.startup().stack.clone();
            let server_stderr = started.stderr();
            let (workers, pool) = (started.startup().workers, started.startup().pool);
            let grace = opts.shutdown_grace;
            let stopped = tokio::task::spawn_blocking(move || started.stop(grace))
                .await
                .context("stopping the server panicked")??;
            let (result, monitor) = outcome.with_context(|| {
                format!(
                    "measuring {stack}; server stderr:\n{}",
                    server_stderr.trim_end()
                )
            })?;
            let mut provenance = provenance.clone();
            provenance.build_profile = build_profile_of(&server.binary);
            let about = About {
                stack,
                db: Some(db),
                server_workers: workers,
                server_pool_size: pool,
                db_network: None,
                deployment: None,
                clean_shutdown: Some(stopped.clean()),
                run_id,
                trial: None,
                provenance,
            };
            Ok(Measurement {
                record: build_record(opts, &result, monitor, about)?,
                result,
                server_stderr,
            })
        }
        TargetSpec::Url {
            url,
            stack,
            server_pid,
            health,
            db,
        } => {
            let target = Target::from_url(url).await?;
            if let Some(path) = health {
                engine::wait_healthy(&target, path, opts.health_timeout).await?;
            }
            let (result, monitor) = run_phases(opts, &target, *server_pid).await?;
            let about = About {
                stack: stack.clone(),
                db: *db,
                server_workers: None,
                server_pool_size: None,
                db_network: None,
                deployment: None,
                clean_shutdown: None,
                run_id,
                trial: None,
                provenance: provenance.clone(),
            };
            Ok(Measurement {
                record: build_record(opts, &result, monitor, about)?,
                result,
                server_stderr: String::new(),
            })
        }
    }
}

/// What a window observed besides the load: the server's CPU and memory, the load
/// generator's CPU, and the rest of the machine.
#[derive(Debug, Clone, Default)]
pub struct Monitor {
    pub server: Option<ServerUsage>,
    pub loadgen_cpu_seconds: f64,
    pub noise: Noise,
    pub seeded: usize,
    pub seeded_for_delete: usize,
    /// `soak`: the integrity check after the load.
    pub integrity: Option<Integrity>,
}

/// The counters read at both ends of a measured window.
struct Snapshot {
    server_cpu: Option<f64>,
    own_cpu: f64,
    system: SystemCpu,
    processes: monitor::ProcessCpu,
    at: Instant,
}

impl Snapshot {
    /// The machine now, and the CPU of the server's processes (`server`, its process tree).
    fn take(server: Option<&[u32]>) -> Self {
        Self {
            server_cpu: server.and_then(|tree| monitor::tree_cpu_seconds(tree).ok()),
            own_cpu: monitor::cpu_seconds(None).unwrap_or(0.0),
            system: SystemCpu::read().unwrap_or_default(),
            processes: monitor::ProcessCpu::read(DATABASE_PROCESSES, FRONT_PROCESSES),
            at: Instant::now(),
        }
    }
}

/// The command names of the processes whose CPU a window records as the database's:
/// PostgreSQL's, the proxy that puts it across a network, and pgbouncer in front of it.
const DATABASE_PROCESSES: &[&str] = &[
    "postgres",
    harness::delay::PROCESS_NAME,
    harness::deploy::PGBOUNCER_PROCESS,
];

/// The command names of the processes whose CPU a window records as the server's reverse
/// proxy's (nginx, in the deployment scenario).
const FRONT_PROCESSES: &[&str] = &[harness::deploy::NGINX_PROCESS];

/// The seeded tasks a workload needs, created through the API.
pub async fn seed(opts: &MeasureOptions, target: &Target) -> anyhow::Result<SeededIds> {
    let kind = opts.load.workload.kind;
    let seed = if kind.needs_seed() { opts.seed } else { 0 };
    let delete_seed = if kind.needs_delete_pool() {
        opts.delete_seed
    } else {
        0
    };
    let mut all = engine::seed_tasks(
        target,
        seed + delete_seed,
        opts.seed_connections,
        opts.load.timeout,
    )
    .await
    .context("seeding tasks")?;
    let delete_ids = all.split_off(seed.min(all.len()));
    Ok(SeededIds::new(all, delete_ids))
}

/// Seeds, then measures one window ([`window`]).
pub async fn run_phases(
    opts: &MeasureOptions,
    target: &Target,
    pid: Option<u32>,
) -> anyhow::Result<(LoadResult, Monitor)> {
    let ids = Arc::new(seed(opts, target).await?);
    window(&opts.load, target, pid, ids).await
}

/// Warm-up and the measured window of `load` on `target` with the `ids` given, the server's
/// CPU and memory and the machine's noise sampled over exactly the measured window; then,
/// for `soak`, every acknowledged write read back.
pub async fn window(
    load: &LoadConfig,
    target: &Target,
    pid: Option<u32>,
    ids: Arc<SeededIds>,
) -> anyhow::Result<(LoadResult, Monitor)> {
    let start = Instant::now() + Duration::from_millis(20);
    let measure_start = start + load.warmup;
    let watch = tokio::spawn(async move {
        tokio::time::sleep_until(measure_start.into()).await;
        // The server's processes (uvicorn's workers, say), found once for the whole window.
        let tree = pid.map(monitor::process_tree);
        let sampler = tree
            .clone()
            .map(|tree| RssSampler::start(tree, Duration::from_millis(50)));
        (Snapshot::take(tree.as_deref()), sampler, tree)
    });
    let mut result = engine::run(load, target, ids.clone(), start).await?;
    let (before, sampler, tree) = watch.await.context("monitor task panicked")?;
    let after = Snapshot::take(tree.as_deref());
    let peak = match sampler {
        Some(s) => Some(s.finish().await),
        None => None,
    };
    let server_cpu = before
        .server_cpu
        .zip(after.server_cpu)
        .map(|(a, b)| (b - a).max(0.0));
    let loadgen_cpu = (after.own_cpu - before.own_cpu).max(0.0);
    let database_cpu = (after.processes.database - before.processes.database).max(0.0);
    let front_cpu = (after.processes.front - before.processes.front).max(0.0);
    // Interrupts and kernel threads work for whatever runs, the measured requests first.
    let kernel_cpu = (after.system.interrupts - before.system.interrupts
        + after.processes.kernel_threads
        - before.processes.kernel_threads)
        .max(0.0);
    let busy = after.system.busy - before.system.busy;
    let cores = monitor::allowed_cores().len().max(1) as f64;
    let noise = Noise {
        core_seconds: after.at.duration_since(before.at).as_secs_f64() * cores,
        steal_seconds: (after.system.steal - before.system.steal).max(0.0),
        database_cpu_seconds: database_cpu,
        kernel_cpu_seconds: Some(kernel_cpu),
        front_cpu_seconds: (front_cpu > 0.0).then_some(front_cpu),
        other_cpu_seconds: (busy
            - server_cpu.unwrap_or(0.0)
            - loadgen_cpu
            - database_cpu
            - front_cpu
            - kernel_cpu)
            .max(0.0),
    };
    let mut monitor = Monitor {
        server: tree.as_deref().map(|tree| ServerUsage {
            cpu_seconds: server_cpu,
            peak_rss_bytes: peak.filter(|&p| p > 0),
            vmhwm_bytes: monitor::status_kb_field(tree, "VmHWM"),
        }),
        loadgen_cpu_seconds: loadgen_cpu,
        noise,
        seeded: ids.ids.len(),
        seeded_for_delete: ids.delete_ids.len(),
        integrity: None,
    };
    if load.workload.kind == WorkloadKind::Soak {
        let ledgers = std::mem::take(&mut result.ledgers);
        monitor.integrity = Some(soak::verify(target, ledgers, load.timeout).await);
    }
    Ok((result, monitor))
}

/// Cores this process can actually keep busy: its pinned (or allowed) cores, capped by its threads.
pub fn loadgen_cores(opts: &MeasureOptions) -> usize {
    let available = opts
        .pinning
        .as_ref()
        .map_or_else(|| monitor::allowed_cores().len(), |p| p.loadgen.len());
    available.min(opts.threads.max(1)).max(1)
}

/// What a record says about the run besides its load and results.
#[derive(Debug, Clone)]
pub struct About {
    pub stack: String,
    pub db: Option<DbKind>,
    pub server_workers: Option<usize>,
    pub server_pool_size: Option<usize>,
    pub db_network: Option<DbNetwork>,
    pub deployment: Option<Deployment>,
    pub clean_shutdown: Option<bool>,
    pub run_id: String,
    pub trial: Option<Trial>,
    pub provenance: Provenance,
}

/// The record of one window.
pub fn build_record(
    opts: &MeasureOptions,
    r: &LoadResult,
    m: Monitor,
    about: About,
) -> anyhow::Result<Record> {
    let cores = loadgen_cores(opts);
    // Spinning to a send's due time keeps a core busy without working: it does not count. In
    // open loop, sends the load generator itself made late say so more directly.
    let saturated = m.loadgen_cpu_seconds - r.pacing_seconds
        >= SATURATION_THRESHOLD * r.measured_seconds * cores as f64
        || r.late_own as f64 > OWN_LATE_LIMIT * r.requests as f64;
    let mut provenance = about.provenance;
    provenance.pinning = opts
        .pinning
        .as_ref()
        .map_or_else(|| "off".to_owned(), Pinning::describe);
    provenance.cpu_idle = crate::monitor::cpu_idle();
    provenance.date = utc_now_rfc3339();
    let load = &opts.load;
    Ok(Record {
        schema_version: SCHEMA_VERSION,
        run_id: about.run_id,
        stack: about.stack,
        db: about.db,
        workload: load.workload.kind,
        mix: load.workload.kind.mixes().then_some(load.workload.mix),
        path: (load.workload.kind == WorkloadKind::Get).then(|| load.workload.path.clone()),
        load_model: LoadModelKind::of(load.model),
        connections: load.connections,
        threads: opts.threads,
        target_rate: load.model.rate(),
        fixed_requests: load.requests,
        duration_seconds: load.duration.as_secs_f64(),
        warmup_seconds: load.warmup.as_secs_f64(),
        seeded: m.seeded,
        seeded_for_delete: m.seeded_for_delete,
        server_workers: about.server_workers,
        server_pool_size: about.server_pool_size,
        db_network: about.db_network,
        deployment: about.deployment,
        trial: about.trial,
        results: Results {
            requests: r.requests,
            ok: r.ok,
            errors: r.errors,
            errors_total: r.errors.total(),
            throughput: r.throughput,
            achieved_rate: r.achieved_rate,
            late_sends: r.late_sends,
            ids_exhausted: r.ids_exhausted,
            measured_seconds: r.measured_seconds,
            latency_us: r.latency,
            histogram: encode_histogram(&r.histogram)?,
            series: Series {
                interval_ms: engine::SERIES_INTERVAL.as_millis() as u64,
                ok: r.series.clone(),
            },
            server: m.server,
            requests_per_server_cpu_second: m
                .server
                .and_then(|s| s.cpu_seconds)
                .filter(|&c| c > 0.0)
                .map(|c| r.requests as f64 / c),
            loadgen: LoadgenUsage {
                cpu_seconds: m.loadgen_cpu_seconds,
                cores,
                saturated,
                pacing_seconds: load.model.rate().map(|_| r.pacing_seconds),
                late_own: load.model.rate().map(|_| r.late_own),
            },
            noise: m.noise,
            clean_shutdown: about.clean_shutdown,
            integrity: m.integrity,
        },
        provenance,
    })
}

/// A few human-readable lines about one record.
pub fn summarize(rec: &Record) -> String {
    let r = &rec.results;
    let l = &r.latency_us;
    let mut s = format!(
        "{stack} {db} {workload} {model} c={conns}{rate}: {ok} ok / {req} requests in {secs:.2}s = {tp:.0} ok req/s",
        stack = rec.stack,
        db = rec.db.map_or("unknown database", DbKind::name),
        workload = rec.workload,
        model = rec.load_model.name(),
        conns = rec.connections,
        rate = rec
            .target_rate
            .map_or_else(String::new, |t| format!(" rate={t}")),
        ok = r.ok,
        req = r.requests,
        secs = r.measured_seconds,
        tp = r.throughput,
    );
    if let Some(target) = rec.target_rate {
        s += &format!(
            "\n  achieved {:.1} req/s of {target} target, {} late sends",
            r.achieved_rate, r.late_sends
        );
    }
    s += &format!(
        "\n  latency µs: p50 {} p90 {} p99 {} p99.9 {} max {} mean {:.1}",
        l.p50, l.p90, l.p99, l.p99_9, l.max, l.mean
    );
    s += &format!("\n  errors: {} ({})", r.errors_total, r.errors);
    if let Some(server) = r.server
        && let Some(cpu) = server.cpu_seconds
    {
        s += &format!(
            "\n  server: {cpu:.2} CPU-s, {} req/CPU-s, peak RSS {}",
            r.requests_per_server_cpu_second
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.0}")),
            server.peak_rss_bytes.map_or_else(
                || "-".to_owned(),
                |b| format!("{:.1} MiB", b as f64 / 1048576.0)
            ),
        );
    }
    s += &format!(
        "\n  loadgen: {:.2} CPU-s on {} core(s){}",
        r.loadgen.cpu_seconds,
        r.loadgen.cores,
        if r.loadgen.saturated {
            " — SATURATED"
        } else {
            ""
        }
    );
    if let Some(clean) = r.clean_shutdown {
        s += &format!(
            ", server shutdown {}",
            if clean { "clean" } else { "NOT clean" }
        );
    }
    if let Some(i) = &r.integrity {
        s += &format!(
            "\n  integrity: {} — acknowledged {} creates, {} updates, {} deletes; {} wrong answers during the load; \
             read back with {} requests: {} checks passed, {} failed",
            if i.holds() { "holds" } else { "BROKEN" },
            i.acked_creates,
            i.acked_updates,
            i.acked_deletes,
            i.load_problems,
            i.requests,
            i.passed,
            i.failed
        );
        for line in &i.samples {
            s += &format!("\n  ! {line}");
        }
    }
    if r.ids_exhausted {
        s += "\n  note: the delete pool ran out of seeded ids; the run stopped early (raise --delete-seed)";
    }
    s
}
