//! The load engine: virtual clients on keep-alive HTTP/1.1 connections ([`harness::wire`]),
//! closed or open loop, one HDR histogram per client merged at the end.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use harness::wire::write_request;
pub use harness::wire::{Conn, ExchangeError};

use crate::soak::Ledger;
use crate::workload::{
    Planned, RequestGen, SeededIds, Verdict, Workload, WorkloadKind, created_id,
};

/// Lowest and highest latency the histograms track, in microseconds (1 µs .. 60 s).
pub const HIST_LOW_US: u64 = 1;
pub const HIST_HIGH_US: u64 = 60_000_000;
pub const HIST_SIGFIG: u8 = 3;

/// The width of one bucket of a run's throughput series.
pub const SERIES_INTERVAL: Duration = Duration::from_millis(100);

/// A new, empty latency histogram with the engine's bounds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(HIST_LOW_US, HIST_HIGH_US, HIST_SIGFIG)
        .expect("static histogram bounds are valid")
}

/// Where the load goes: a socket address and the `Host` header to send.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
}

impl Target {
    pub fn from_addr(addr: SocketAddr) -> Self {
        Self {
            addr,
            host: addr.to_string(),
        }
    }

    /// Parses `http://HOST[:PORT][/PATH]` (plain HTTP only) and resolves the host.
    pub async fn from_url(url: &str) -> anyhow::Result<Self> {
        let (authority, _) = split_url(url)?;
        let with_port = if authority.contains(':') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addr = tokio::net::lookup_host(&with_port)
            .await
            .with_context(|| format!("cannot resolve {authority}"))?
            .next()
            .with_context(|| format!("{authority} resolves to no address"))?;
        Ok(Self {
            addr,
            host: authority.to_owned(),
        })
    }
}

/// `http://HOST[:PORT][/PATH]` as (authority, path); the path is `/` when absent.
pub fn split_url(url: &str) -> anyhow::Result<(&str, &str)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url:?}: only http:// URLs are supported"))?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    if authority.is_empty() {
        bail!("{url:?} has no host");
    }
    Ok((authority, path))
}

/// Polls `GET path` until it answers 2xx or `timeout` passes.
pub async fn wait_healthy(target: &Target, path: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match get_once(target, path, Duration::from_secs(2)).await {
            Ok((status, _)) if (200..300).contains(&status) => return Ok(()),
            Ok((status, body)) => format!("{status}: {}", harness::wire::excerpt(&body)),
            Err(err) => format!("{err:#}"),
        };
        if Instant::now() >= deadline {
            bail!("GET {path} did not answer 2xx within {timeout:?} (last: {last})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadModel {
    /// Each connection sends its next request when the previous answer arrives.
    Closed,
    /// Requests are due at `start + i / rate` on one global timetable.
    Open { rate: f64 },
}

impl LoadModel {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open { .. } => "open",
        }
    }

    pub const fn rate(self) -> Option<f64> {
        match self {
            Self::Closed => None,
            Self::Open { rate } => Some(rate),
        }
    }
}

/// Everything one load run needs.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub workload: Workload,
    pub model: LoadModel,
    /// Connections (virtual clients); in open loop the cap on concurrency.
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Measure exactly this many requests instead of `duration`.
    pub requests: Option<u64>,
    /// Per-request timeout (connect included).
    pub timeout: Duration,
    /// Check the body shape of every n-th response per connection (1 = every response).
    pub check_every: u32,
    /// An open-loop send that starts later than this after its scheduled time is "late".
    pub late_threshold: Duration,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            workload: Workload::new(WorkloadKind::Hello),
            model: LoadModel::Closed,
            connections: 10,
            warmup: Duration::from_secs(3),
            duration: Duration::from_secs(10),
            requests: None,
            timeout: Duration::from_secs(5),
            check_every: 16,
            late_threshold: Duration::from_millis(1),
        }
    }
}

/// Failed requests by class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    /// Could not open a connection.
    pub connect: u64,
    /// The connection broke while a request was in flight.
    pub io: u64,
    /// No complete answer within the per-request timeout.
    pub timeout: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    /// A status other than the expected one that is neither 4xx nor 5xx.
    pub status_other: u64,
    /// Expected status, but the (sampled) body had the wrong shape.
    pub body_mismatch: u64,
}

impl ErrorCounts {
    pub const fn total(&self) -> u64 {
        self.connect
            + self.io
            + self.timeout
            + self.status_4xx
            + self.status_5xx
            + self.status_other
            + self.body_mismatch
    }

    pub const fn add(&mut self, o: &Self) {
        self.connect += o.connect;
        self.io += o.io;
        self.timeout += o.timeout;
        self.status_4xx += o.status_4xx;
        self.status_5xx += o.status_5xx;
        self.status_other += o.status_other;
        self.body_mismatch += o.body_mismatch;
    }
}

/// `connect 0, io 0, timeout 0, 4xx 0, 5xx 0, other status 0, body mismatch 0`.
impl std::fmt::Display for ErrorCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "connect {}, io {}, timeout {}, 4xx {}, 5xx {}, other status {}, body mismatch {}",
            self.connect,
            self.io,
            self.timeout,
            self.status_4xx,
            self.status_5xx,
            self.status_other,
            self.body_mismatch
        )
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub max: u64,
    pub mean: f64,
}

impl LatencySummary {
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// The outcome of one load run (measured phase only).
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Requests attempted in the measured phase (ok + every error class).
    pub requests: u64,
    pub ok: u64,
    pub errors: ErrorCounts,
    /// Open loop: sends that started more than `late_threshold` after their scheduled time.
    pub late_sends: u64,
    /// Open loop: wall time in the measured phase during which clients spun to their sends'
    /// due times (the load generator's CPU then waited rather than worked).
    pub pacing_seconds: f64,
    /// Open loop: late sends whose client was free before their time: the load generator,
    /// not a busy connection, made them late.
    pub late_own: u64,
    /// The workload ran out of seeded ids (delete pool spent) and stopped early.
    pub ids_exhausted: bool,
    /// From the start of the measured phase until its last request completed.
    pub measured_seconds: f64,
    /// ok requests per second.
    pub throughput: f64,
    /// All requests per second (compare with the target rate in open loop).
    pub achieved_rate: f64,
    pub target_rate: Option<f64>,
    pub latency: LatencySummary,
    /// Every answered (or timed-out) request's latency, in µs.
    pub histogram: Histogram<u64>,
    /// ok answers per [`SERIES_INTERVAL`] of the measured phase, from its start.
    pub series: Vec<u64>,
    pub measure_start: Instant,
    pub measure_end: Instant,
    /// `soak`: what every client wrote, for the integrity check.
    pub ledgers: Vec<Ledger>,
}

/// A per-client request timeout that re-arms its timer only when needed: the deadline is
/// pushed to `send + 1.1 × timeout` only once it falls before `send + timeout`, so a request
/// times out after between 1× and 1.1× the timeout, and the timer wheel is touched about
/// every `timeout / 10` instead of on every request.
struct Deadline {
    sleep: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
}

impl Deadline {
    fn new(timeout: Duration) -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep(timeout + timeout / 10)),
            timeout,
        }
    }

    /// Runs `fut`, or gives up once the request sent at `send_at` is past its timeout.
    async fn run<F: Future>(&mut self, send_at: Instant, fut: F) -> Option<F::Output> {
        let due = send_at + self.timeout;
        if self.sleep.deadline().into_std() < due {
            self.sleep.as_mut().reset((due + self.timeout / 10).into());
        }
        tokio::select! {
            biased;
            out = fut => Some(out),
            () = self.sleep.as_mut() => None,
        }
    }
}

/// One GET on a fresh connection (health checks and probes): status and body.
pub async fn get_once(
    target: &Target,
    path: &str,
    timeout: Duration,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let fut = async {
        let mut conn = Conn::connect(target.addr).await?;
        let mut req = Vec::new();
        write_request(&mut req, "GET", path, &target.host, None);
        let resp = conn.send(&req).await?;
        Ok::<_, ExchangeError>((resp.status, resp.body.to_vec()))
    };
    Ok(tokio::time::timeout(timeout, fut)
        .await
        .context("timed out")??)
}

/// Creates `count` tasks through the API over `concurrency` connections; returns their ids.
pub async fn seed_tasks(
    target: &Target,
    count: usize,
    concurrency: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<i64>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let concurrency = concurrency.clamp(1, count);
    let ids = Arc::new(SeededIds::default());
    let mut handles = Vec::with_capacity(concurrency);
    for c in 0..concurrency {
        let share = count / concurrency + usize::from(c < count % concurrency);
        let mut generator = RequestGen::new(
            Workload::new(WorkloadKind::Create),
            ids.clone(),
            &target.host,
            c as u64,
            concurrency as u64,
        )?;
        let addr = target.addr;
        handles.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(share);
            let mut conn: Option<Conn> = None;
            for _ in 0..share {
                let planned = generator.next_request().expect("create never runs out");
                if conn.is_none() {
                    conn = Some(
                        tokio::time::timeout(timeout, Conn::connect(addr))
                            .await
                            .context("connect timed out")??,
                    );
                }
                let c = conn.as_mut().expect("just connected");
                let resp = tokio::time::timeout(timeout, c.send(planned.request))
                    .await
                    .context("seeding request timed out")??;
                let body = resp.body;
                if resp.status != 201 {
                    bail!(
                        "seeding POST /tasks answered {}: {}",
                        resp.status,
                        String::from_utf8_lossy(body)
                    );
                }
                out.push(created_id(body).with_context(|| {
                    format!(
                        "seeding POST /tasks answered a body without an id: {}",
                        String::from_utf8_lossy(body)
                    )
                })?);
                if !resp.keep_alive {
                    conn = None;
                }
            }
            Ok(out)
        }));
    }
    let mut all = Vec::with_capacity(count);
    for h in handles {
        all.extend(h.await.context("seeding task panicked")??);
    }
    Ok(all)
}

struct Shared {
    cfg: LoadConfig,
    target: Target,
    start: Instant,
    measure_start: Instant,
    /// `None` in fixed-count mode.
    measure_end: Option<Instant>,
    stop: AtomicBool,
    /// Closed loop, fixed-count mode: measured requests started so far.
    issued: AtomicU64,
    /// Open loop: the next ticket on the global timetable.
    ticket: AtomicU64,
    /// Open loop: tickets that fall into the warm-up.
    warm_tickets: u64,
    /// Open loop: the time clients spent spinning to their sends' due times.
    pacer: Pacer,
    /// Open loop: measured sends that a free client sent late (the load generator's delay).
    late_own: AtomicU64,
}

/// How long before a send's due time the runtime's timer hands over to spinning. tokio's timer
/// ticks per millisecond, so a sleep ends up to a millisecond (and a wake-up) late: alone it
/// made a 500 req/s timetable's sends leave about 0.8 ms late. The last stretch is spent
/// yielding to the runtime until the moment comes, so a send leaves within microseconds of
/// it while the other connections' answers are still read.
const SPIN_AHEAD: Duration = Duration::from_micros(2_500);

/// The wall time during which at least one client spun in the measured phase: CPU the load
/// generator spends waiting, not working, so it does not count towards its saturation.
#[derive(Default)]
struct Pacer(std::sync::Mutex<PacerState>);

#[derive(Default)]
struct PacerState {
    spinning: usize,
    since: Option<Instant>,
    total: Duration,
}

impl Pacer {
    /// Waits until `due`: a coarse sleep, then a spin; `counted` spins add to [`Self::spun`].
    /// Returns how late it came back (the load generator's own delay, not the server's).
    async fn wait_until(&self, due: Instant, counted: bool) -> Duration {
        if let Some(coarse) = due.checked_sub(SPIN_AHEAD)
            && coarse > Instant::now()
        {
            tokio::time::sleep_until(coarse.into()).await;
        }
        let now = Instant::now();
        if now >= due {
            return now - due;
        }
        if counted {
            self.enter();
        }
        while Instant::now() < due {
            tokio::task::yield_now().await;
        }
        if counted {
            self.leave();
        }
        Instant::now().saturating_duration_since(due)
    }

    fn enter(&self) {
        let mut state = self.0.lock().expect("pacer lock");
        if state.spinning == 0 {
            state.since = Some(Instant::now());
        }
        state.spinning += 1;
    }

    fn leave(&self) {
        let mut state = self.0.lock().expect("pacer lock");
        state.spinning -= 1;
        if state.spinning == 0
            && let Some(since) = state.since.take()
        {
            state.total += since.elapsed();
        }
    }

    fn spun(&self) -> Duration {
        self.0.lock().expect("pacer lock").total
    }
}

struct Stats {
    hist: Histogram<u64>,
    /// ok answers per [`SERIES_INTERVAL`] since the measured phase began.
    series: Vec<u64>,
    requests: u64,
    ok: u64,
    errors: ErrorCounts,
    late: u64,
    last_done: Option<Instant>,
}

impl Stats {
    fn new() -> Self {
        Self {
            hist: new_histogram(),
            series: Vec::new(),
            requests: 0,
            ok: 0,
            errors: ErrorCounts::default(),
            late: 0,
            last_done: None,
        }
    }

    fn record_latency(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        self.hist.saturating_record(us);
    }

    /// Counts an ok answer `since` the measured phase began in its series bucket.
    fn count_ok(&mut self, since: Duration) {
        self.ok += 1;
        let bucket = (since.as_nanos() / SERIES_INTERVAL.as_nanos()) as usize;
        if self.series.len() <= bucket {
            self.series.resize(bucket + 1, 0);
        }
        self.series[bucket] += 1;
    }

    fn add(&mut self, o: &Self) {
        self.hist.add(&o.hist).expect("histograms share bounds");
        if self.series.len() < o.series.len() {
            self.series.resize(o.series.len(), 0);
        }
        for (total, n) in self.series.iter_mut().zip(&o.series) {
            *total += n;
        }
        self.requests += o.requests;
        self.ok += o.ok;
        self.errors.add(&o.errors);
        self.late += o.late;
        self.last_done = self.last_done.max(o.last_done);
    }
}

/// Runs the warm-up and the measured phase; the timetable starts at `start`
/// (pass `Instant::now()`, or a moment shortly ahead so a monitor can align with it).
pub async fn run(
    cfg: &LoadConfig,
    target: &Target,
    ids: Arc<SeededIds>,
    start: Instant,
) -> anyhow::Result<LoadResult> {
    if cfg.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if let LoadModel::Open { rate } = cfg.model
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number");
    }
    let measure_start = start + cfg.warmup;
    let measure_end = cfg.requests.is_none().then(|| measure_start + cfg.duration);
    let warm_tickets = match cfg.model {
        LoadModel::Open { rate } => (cfg.warmup.as_secs_f64() * rate).ceil() as u64,
        LoadModel::Closed => 0,
    };
    let shared = Arc::new(Shared {
        cfg: cfg.clone(),
        target: target.clone(),
        start,
        measure_start,
        measure_end,
        stop: AtomicBool::new(false),
        issued: AtomicU64::new(0),
        ticket: AtomicU64::new(0),
        warm_tickets,
        pacer: Pacer::default(),
        late_own: AtomicU64::new(0),
    });
    let mut handles = Vec::with_capacity(cfg.connections);
    for i in 0..cfg.connections {
        let generator = RequestGen::new(
            cfg.workload.clone(),
            ids.clone(),
            &target.host,
            i as u64,
            cfg.connections as u64,
        )?;
        handles.push(tokio::spawn(client(shared.clone(), generator)));
    }
    let mut total = Stats::new();
    let mut ledgers = Vec::new();
    for h in handles {
        let (s, generator) = h.await.context("a virtual client panicked")?;
        ledgers.extend(generator.into_ledger());
        total.add(&s);
    }
    let now = Instant::now();
    let end = match measure_end {
        // A run that stopped early (ids ran out) ends with its last answer.
        Some(end) if shared.stop.load(Ordering::Relaxed) => {
            total.last_done.unwrap_or(now).min(end).max(measure_start)
        }
        Some(end) => total.last_done.unwrap_or(end).max(end),
        None => total.last_done.unwrap_or(now),
    };
    let measured_seconds = end
        .saturating_duration_since(measure_start)
        .as_secs_f64()
        .max(1e-9);
    Ok(LoadResult {
        requests: total.requests,
        ok: total.ok,
        errors: total.errors,
        late_sends: total.late,
        pacing_seconds: shared.pacer.spun().as_secs_f64(),
        late_own: shared.late_own.load(Ordering::Relaxed),
        ids_exhausted: ids.exhausted(),
        measured_seconds,
        throughput: total.ok as f64 / measured_seconds,
        achieved_rate: total.requests as f64 / measured_seconds,
        target_rate: cfg.model.rate(),
        latency: LatencySummary::from_histogram(&total.hist),
        histogram: total.hist,
        series: total.series,
        measure_start,
        measure_end: end,
        ledgers,
    })
}

/// Builds a runtime with `threads` workers and runs [`run`] on it (for callers without a runtime).
pub fn run_blocking(
    cfg: &LoadConfig,
    target: &Target,
    ids: Arc<SeededIds>,
    threads: usize,
) -> anyhow::Result<LoadResult> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(run(cfg, target, ids, Instant::now()))
}

/// What a client should do next.
enum Next {
    Stop,
    /// Send now; measured or not; scheduled time (open loop).
    Go {
        measuring: bool,
        scheduled: Option<Instant>,
    },
}

impl Shared {
    async fn next(&self) -> Next {
        if self.stop.load(Ordering::Relaxed) {
            return Next::Stop;
        }
        match self.cfg.model {
            LoadModel::Closed => {
                let now = Instant::now();
                let measuring = now >= self.measure_start;
                match (self.measure_end, self.cfg.requests) {
                    (Some(end), _) if now >= end => return Next::Stop,
                    (None, Some(n))
                        if measuring && self.issued.fetch_add(1, Ordering::Relaxed) >= n =>
                    {
                        return Next::Stop;
                    }
                    _ => {}
                }
                Next::Go {
                    measuring,
                    scheduled: None,
                }
            }
            LoadModel::Open { rate } => {
                let i = self.ticket.fetch_add(1, Ordering::Relaxed);
                if let Some(n) = self.cfg.requests
                    && i >= self.warm_tickets + n
                {
                    return Next::Stop;
                }
                let scheduled = self.start + Duration::from_secs_f64(i as f64 / rate);
                if self.measure_end.is_some_and(|end| scheduled >= end) {
                    return Next::Stop;
                }
                let measuring = match self.cfg.requests {
                    Some(_) => i >= self.warm_tickets,
                    None => scheduled >= self.measure_start,
                };
                if scheduled > Instant::now() {
                    let late = self.pacer.wait_until(scheduled, measuring).await;
                    if measuring && late > self.cfg.late_threshold {
                        self.late_own.fetch_add(1, Ordering::Relaxed);
                    }
                    if self.stop.load(Ordering::Relaxed) {
                        return Next::Stop;
                    }
                }
                Next::Go {
                    measuring,
                    scheduled: Some(scheduled),
                }
            }
        }
    }
}

/// One virtual client: one connection (re-opened when it breaks), its own histogram and counters.
async fn client(shared: Arc<Shared>, mut generator: RequestGen) -> (Stats, RequestGen) {
    let cfg = &shared.cfg;
    let mut stats = Stats::new();
    let mut conn: Option<Conn> = None;
    let mut sent: u64 = 0;
    let check_every = u64::from(cfg.check_every.max(1));
    let mut deadline = Deadline::new(cfg.timeout);
    // Nobody sends before the timetable starts (the caller may have set it slightly ahead).
    tokio::time::sleep_until(shared.start.into()).await;
    loop {
        let Next::Go {
            measuring,
            scheduled,
        } = shared.next().await
        else {
            break;
        };
        let Some(Planned {
            op,
            request,
            expect_id,
        }) = generator.next_request()
        else {
            shared.stop.store(true, Ordering::Relaxed);
            break;
        };
        // A keep-alive connection the server closed while it was idle is replaced silently.
        if conn.as_mut().is_some_and(Conn::is_stale) {
            conn = None;
        }
        if conn.is_none() {
            match tokio::time::timeout(cfg.timeout, Conn::connect(shared.target.addr)).await {
                Ok(Ok(c)) => conn = Some(c),
                Ok(Err(_)) | Err(_) => {
                    if measuring {
                        stats.requests += 1;
                        stats.errors.connect += 1;
                        stats.last_done = Some(Instant::now());
                    }
                    if scheduled.is_none() && cfg.requests.is_none() {
                        // Closed loop on a timer: back off instead of spinning on a dead port.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    continue;
                }
            }
        }
        if scheduled.is_none() {
            // Closed loop: let every client whose answer arrived in this batch of readiness
            // events read it before any sends again (wrk's read-all-then-write-all rhythm);
            // the server then gets its next requests in bursts and serves them faster. The
            // yield comes before `send_at`, so it adds nothing to the measured latency.
            tokio::task::yield_now().await;
        }
        let c = conn.as_mut().expect("connected above");
        let send_at = Instant::now();
        let origin = scheduled.unwrap_or(send_at);
        if measuring && send_at.saturating_duration_since(origin) > cfg.late_threshold {
            stats.late += 1;
        }
        let outcome = deadline.run(send_at, c.send(request)).await;
        let done = Instant::now();
        // Judge while the response still borrows the connection; drop the connection after.
        let sample = measuring && sent.is_multiple_of(check_every);
        let (result, keep) = match outcome {
            None => {
                generator.lost("no answer within the timeout");
                (Outcome::Timeout, false)
            }
            Some(Err(err)) => {
                generator.lost(&err.to_string());
                (Outcome::Io, false)
            }
            Some(Ok(resp)) => (
                Outcome::Judged(generator.check(op, expect_id, &resp, sample)),
                resp.keep_alive,
            ),
        };
        if !keep {
            conn = None;
        }
        if !measuring {
            continue;
        }
        stats.requests += 1;
        stats.last_done = Some(done);
        if result != Outcome::Io {
            stats.record_latency(done - origin);
        }
        match result {
            Outcome::Judged(Verdict::Ok) => {
                stats.count_ok(done.saturating_duration_since(shared.measure_start));
            }
            Outcome::Timeout => stats.errors.timeout += 1,
            Outcome::Io => stats.errors.io += 1,
            Outcome::Judged(Verdict::Status4xx) => stats.errors.status_4xx += 1,
            Outcome::Judged(Verdict::Status5xx) => stats.errors.status_5xx += 1,
            Outcome::Judged(Verdict::StatusOther) => stats.errors.status_other += 1,
            Outcome::Judged(Verdict::BodyMismatch) => stats.errors.body_mismatch += 1,
        }
        if !matches!(result, Outcome::Timeout | Outcome::Io) {
            sent += 1;
        }
    }
    (stats, generator)
}

/// How one exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// No complete response within the timeout.
    Timeout,
    /// The connection broke.
    Io,
    /// A response, judged by the workload.
    Judged(Verdict),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the timer and the machine do, a paced send never leaves before its time, and
    /// every spin that began has ended.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_paced_send_never_leaves_early() {
        let pacer = Pacer::default();
        for ahead_us in [0, 40, 700, 1_600, 3_000] {
            let due = Instant::now() + Duration::from_micros(ahead_us);
            pacer.wait_until(due, true).await;
            assert!(
                Instant::now() >= due,
                "left before a send due in {ahead_us} µs"
            );
        }
        let state = pacer.0.lock().unwrap();
        assert_eq!(state.spinning, 0);
        assert!(state.since.is_none());
    }
}
