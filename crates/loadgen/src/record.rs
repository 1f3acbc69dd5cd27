//! The machine-readable record of one measured run (JSON lines, `schema_version` 2), the
//! provenance every record carries, and the merge of one run's records from several load
//! generators.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::Command;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use harness::DbKind;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};

use crate::engine::{ErrorCounts, LatencySummary, LoadModel};
use crate::soak::Integrity;
use crate::workload::{Mix, WorkloadKind};

pub const SCHEMA_VERSION: u32 = 2;

/// One measured run: a lone `loadgen run`, or one trial of a comparison's cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub schema_version: u32,
    /// Records that share a run id measured the same server at the same time from several
    /// load generators; `loadgen report` merges them into one.
    pub run_id: String,
    pub stack: String,
    /// `None` for a server loadgen did not start, whose database it does not know.
    pub db: Option<DbKind>,
    pub workload: WorkloadKind,
    /// Weights of a mixing workload (absent for the others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mix: Option<Mix>,
    /// The path of the `get` workload (absent for the others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub load_model: LoadModelKind,
    pub connections: usize,
    pub threads: usize,
    /// Open loop: requests per second asked for.
    pub target_rate: Option<f64>,
    /// Fixed request count instead of a duration, if one was asked for.
    pub fixed_requests: Option<u64>,
    pub duration_seconds: f64,
    pub warmup_seconds: f64,
    /// Tasks seeded for reads/updates/lists, and for deletes.
    pub seeded: usize,
    pub seeded_for_delete: usize,
    /// Server `--workers` and `--pool-size` (when loadgen started the server).
    pub server_workers: Option<usize>,
    pub server_pool_size: Option<usize>,
    /// The database across a network (a comparison's `RTTS:POOLS` phase); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_network: Option<DbNetwork>,
    /// The hops of a deployment scenario (`--deployment`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<Deployment>,
    /// Where the run sits in a comparison's randomized interleaved trials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<Trial>,
    pub results: Results,
    pub provenance: Provenance,
}

/// The database across a network: the round trip the delay proxy added between server and
/// database, and the connection pool the server was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DbNetwork {
    /// Microseconds added to every round trip (0: the database on the same loopback, no proxy).
    pub rtt_us: u64,
    /// The server's `--pool-size`.
    pub pool: usize,
}

impl DbNetwork {
    pub fn rtt_ms(self) -> f64 {
        self.rtt_us as f64 / 1000.0
    }

    /// `rtt=0.5ms pool=8`.
    pub fn label(self) -> String {
        format!("rtt={}ms pool={}", self.rtt_ms(), self.pool)
    }

    /// Little's law: a pool of `pool` connections, each busy at least one round trip per
    /// query, completes at most `pool / rtt` queries per second (`None` at no added round trip).
    pub fn query_bound(self) -> Option<f64> {
        (self.rtt_us > 0).then(|| self.pool as f64 / (self.rtt_us as f64 / 1e6))
    }
}

/// The hops of the deployment the published comparisons used, between the load generator,
/// the server and PostgreSQL: nginx in front of the server, pgbouncer behind it. The scenario
/// runs every combination, so each hop's cost shows as a difference from the direct run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Deployment {
    /// nginx as the server's reverse proxy (keep-alive upstream connections).
    pub nginx: bool,
    /// pgbouncer between the server and PostgreSQL, lending connections in this mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgbouncer: Option<harness::deploy::PoolMode>,
}

impl Deployment {
    /// The four combinations of the scenario, the direct run first, with pgbouncer in `mode`.
    pub fn all(mode: harness::deploy::PoolMode) -> [Self; 4] {
        [
            (false, None),
            (true, None),
            (false, Some(mode)),
            (true, Some(mode)),
        ]
        .map(|(nginx, pgbouncer)| Self { nginx, pgbouncer })
    }

    /// `direct`, `nginx`, `pgbouncer(session)` or `nginx+pgbouncer(session)`.
    pub fn label(self) -> String {
        let pgbouncer = self.pgbouncer.map(|m| format!("pgbouncer({})", m.as_str()));
        match (self.nginx, pgbouncer) {
            (false, None) => "direct".to_owned(),
            (true, None) => "nginx".to_owned(),
            (false, Some(p)) => p,
            (true, Some(p)) => format!("nginx+{p}"),
        }
    }
}

/// A run's place in a comparison: one cell (database, workload, load, connections) runs its
/// stacks' servers side by side and switches the load among them in a random order each round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// The comparison (one `loadgen matrix` run) the trial belongs to.
    pub comparison: String,
    /// `sqlite read closed c=64`: the same for every trial of the cell.
    pub cell: String,
    /// The stack every other stack of the cell is compared with.
    pub baseline: String,
    /// 0 is the warm-up round, not counted.
    pub round: u32,
    /// Place in the round's order, 0 first.
    pub position: u32,
    /// Earlier attempts at this stack's trial of this round (disturbed ones are redone).
    pub attempt: u32,
    /// Why the trial does not count (the warm-up round, a disturbed machine), if it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discarded: Option<String>,
    /// The relative half-width the cell's 95 % intervals were run to reach (0.03 is ±3 %).
    pub target: f64,
}

impl Record {
    /// Whether the record counts in a comparison's statistics.
    pub fn counts(&self) -> bool {
        self.trial.as_ref().is_none_or(|t| t.discarded.is_none())
    }
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub requests: u64,
    pub ok: u64,
    pub errors: ErrorCounts,
    pub errors_total: u64,
    /// ok requests per second over the measured window.
    pub throughput: f64,
    /// All requests per second (open loop: compare with `target_rate`).
    pub achieved_rate: f64,
    pub late_sends: u64,
    /// The delete pool ran out and the run stopped early (not an error; the window is shorter).
    pub ids_exhausted: bool,
    pub measured_seconds: f64,
    /// Latency percentiles in microseconds.
    pub latency_us: LatencySummary,
    /// Every latency of the window: an HDR histogram (V2 format, deflate, base64), so any
    /// percentile can be recomputed and runs merged exactly ([`decode_histogram`]).
    pub histogram: String,
    /// ok answers per interval of the measured window.
    pub series: Series,
    /// The server's CPU and memory (when its pid is known).
    pub server: Option<ServerUsage>,
    pub requests_per_server_cpu_second: Option<f64>,
    pub loadgen: LoadgenUsage,
    /// What else ran on the machine during the window.
    pub noise: Noise,
    /// `None` when loadgen did not stop the server after the run.
    pub clean_shutdown: Option<bool>,
    /// `soak`: what the integrity check found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<Integrity>,
}

/// ok answers per `interval_ms` of a run's measured window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series {
    pub interval_ms: u64,
    pub ok: Vec<u64>,
}

/// A server's CPU and memory over a measured window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerUsage {
    pub cpu_seconds: Option<f64>,
    /// The highest VmRSS sampled during the window.
    pub peak_rss_bytes: Option<u64>,
    /// VmHWM at the end of the window (peak since the server started, seeding included).
    pub vmhwm_bytes: Option<u64>,
}

/// The load generator's own CPU use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadgenUsage {
    pub cpu_seconds: f64,
    /// Cores it could use (pinned set, capped by its threads).
    pub cores: usize,
    /// It used at least [`crate::measure::SATURATION_THRESHOLD`] of them, its pacing spins
    /// aside, or (open loop) it sent more than [`crate::measure::OWN_LATE_LIMIT`] of the sends
    /// late though their clients were free: it, not the server, may have set the pace.
    pub saturated: bool,
    /// Open loop: seconds of the window in which it spun to its sends' due times (waiting,
    /// not working). Absent in closed loop and in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pacing_seconds: Option<f64>,
    /// Open loop: late sends whose clients were free in time (its own delay; the rest of
    /// `late_sends` waited for a busy connection). Absent in closed loop and older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_own: Option<u64>,
}

/// The machine during a window, from `/proc/stat` and `/proc/*/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Noise {
    /// The window's length times the machine's cores: all the CPU time there was.
    pub core_seconds: f64,
    /// CPU time the hypervisor gave to other guests.
    pub steal_seconds: f64,
    /// PostgreSQL's processes (all processes named `postgres`), with what stands between it
    /// and the server in a scenario (the delay proxy, pgbouncer).
    pub database_cpu_seconds: f64,
    /// Interrupt handling and kernel threads (packets, writeback, the journal): mostly work
    /// done for the measured requests. Absent in records made before it was recorded, whose
    /// `other_cpu_seconds` includes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_cpu_seconds: Option<f64>,
    /// The server's reverse proxy's processes (nginx, in the deployment scenario); absent
    /// where there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub front_cpu_seconds: Option<f64>,
    /// Busy CPU time of the other processes: everything but the server, its reverse proxy,
    /// the database, the load generator and the kernel's own work.
    pub other_cpu_seconds: f64,
}

impl Results {
    /// Reasons this result should be flagged in a table (empty when clean).
    pub fn flags(&self) -> Vec<Flag> {
        let mut f = Vec::new();
        if self.errors_total > 0 {
            f.push(Flag::Errors);
        }
        if self.loadgen.saturated {
            f.push(Flag::Saturated);
        }
        if self.clean_shutdown == Some(false) {
            f.push(Flag::UncleanShutdown);
        }
        if self.ids_exhausted {
            f.push(Flag::IdsExhausted);
        }
        if self.integrity.as_ref().is_some_and(|i| !i.holds()) {
            f.push(Flag::IntegrityBroken);
        }
        f
    }
}

/// The non-blank lines of a JSON-lines file with their 1-based numbers; a file that does not
/// exist has none (a results folder may lack `cells.jsonl`, `checks.jsonl` or `cost.jsonl`).
pub fn jsonl_lines(path: &Path) -> anyhow::Result<Vec<(usize, String)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| (i + 1, line.to_owned()))
        .collect())
}

/// A histogram as a record keeps it: HDR V2 with deflate, in base64.
pub fn encode_histogram(h: &Histogram<u64>) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| anyhow::anyhow!("serializing a histogram: {e:?}"))?;
    Ok(BASE64.encode(bytes))
}

/// The histogram a record keeps.
pub fn decode_histogram(text: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = BASE64
        .decode(text)
        .context("a histogram is not valid base64")?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("a histogram does not decode: {e:?}"))
}

/// One record from the records of one run measured by several load generators (same
/// `run_id`): counts and rates add up, histograms and series merge exactly, the window is the
/// longest of them.
pub fn merge(parts: &[Record]) -> anyhow::Result<Record> {
    let (first, rest) = parts.split_first().context("nothing to merge")?;
    let mut merged = first.clone();
    let mut histogram = decode_histogram(&first.results.histogram)?;
    for part in rest {
        anyhow::ensure!(
            part.run_id == first.run_id && part.stack == first.stack,
            "records of different runs ({} of {}, {} of {}) do not merge",
            first.run_id,
            first.stack,
            part.run_id,
            part.stack
        );
        let (m, p) = (&mut merged.results, &part.results);
        histogram
            .add(decode_histogram(&p.histogram)?)
            .context("histograms of different bounds")?;
        m.requests += p.requests;
        m.ok += p.ok;
        m.errors.add(&p.errors);
        m.errors_total += p.errors_total;
        m.throughput += p.throughput;
        m.achieved_rate += p.achieved_rate;
        m.late_sends += p.late_sends;
        m.ids_exhausted |= p.ids_exhausted;
        m.measured_seconds = m.measured_seconds.max(p.measured_seconds);
        if m.series.ok.len() < p.series.ok.len() {
            m.series.ok.resize(p.series.ok.len(), 0);
        }
        for (total, n) in m.series.ok.iter_mut().zip(&p.series.ok) {
            *total += n;
        }
        m.loadgen.cpu_seconds += p.loadgen.cpu_seconds;
        m.loadgen.cores += p.loadgen.cores;
        m.loadgen.saturated |= p.loadgen.saturated;
        merged.connections += part.connections;
        merged.threads += part.threads;
        merged.target_rate = merged.target_rate.zip(part.target_rate).map(|(a, b)| a + b);
    }
    let m = &mut merged.results;
    m.latency_us = LatencySummary::from_histogram(&histogram);
    m.histogram = encode_histogram(&histogram)?;
    m.requests_per_server_cpu_second = m
        .server
        .and_then(|s| s.cpu_seconds)
        .filter(|&c| c > 0.0)
        .map(|c| m.requests as f64 / c);
    Ok(merged)
}

/// Merges the records that share a run id (several load generators on one run), keeping
/// the order of each run's first record.
pub fn merge_runs(records: Vec<Record>) -> anyhow::Result<Vec<Record>> {
    let mut order: Vec<String> = Vec::new();
    let mut by_run: std::collections::HashMap<String, Vec<Record>> = Default::default();
    for r in records {
        if !by_run.contains_key(&r.run_id) {
            order.push(r.run_id.clone());
        }
        by_run.entry(r.run_id.clone()).or_default().push(r);
    }
    order
        .iter()
        .map(|id| {
            let parts = &by_run[id];
            if parts.len() == 1 {
                Ok(parts[0].clone())
            } else {
                merge(parts)
            }
        })
        .collect()
}

/// A run id no other run has: the time, the host and the process.
pub fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{nanos:x}-{}-{}", host.trim(), std::process::id())
}

/// How a run paced its requests (the rate, for open loop, is `target_rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadModelKind {
    Closed,
    Open,
}

impl LoadModelKind {
    pub const fn of(model: LoadModel) -> Self {
        match model {
            LoadModel::Closed => Self::Closed,
            LoadModel::Open { .. } => Self::Open,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
        }
    }
}

/// Why a combination is marked in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    Errors,
    Saturated,
    UncleanShutdown,
    IdsExhausted,
    IntegrityBroken,
}

impl Flag {
    pub const ALL: [Self; 5] = [
        Self::Errors,
        Self::Saturated,
        Self::UncleanShutdown,
        Self::IdsExhausted,
        Self::IntegrityBroken,
    ];

    pub const fn marker(self) -> &'static str {
        match self {
            Self::Errors => "¹",
            Self::Saturated => "²",
            Self::UncleanShutdown => "³",
            Self::IdsExhausted => "⁴",
            Self::IntegrityBroken => "⁵",
        }
    }

    pub const fn meaning(self) -> &'static str {
        match self {
            Self::Errors => "some requests failed (errors by class are listed below)",
            Self::Saturated => {
                "the load generator was saturated (its CPU, or open-loop sends it made late itself): throughput is a lower bound, the run is not valid"
            }
            Self::UncleanShutdown => "the server did not exit with status 0 within 10 s of SIGTERM",
            Self::IdsExhausted => {
                "the delete pool ran out of seeded ids and the run stopped early (shorter window)"
            }
            Self::IntegrityBroken => {
                "the integrity check after the load failed: an acknowledged write was not found as written"
            }
        }
    }
}

/// Where and how a record was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Provenance {
    pub git_commit: Option<String>,
    pub git_dirty: Option<bool>,
    pub rustc: Option<String>,
    /// Cargo profile of the server binary, from its path (`target/<profile>/`).
    pub build_profile: Option<String>,
    pub cpu_model: Option<String>,
    /// The cores the load generator's process may run on (after its pinning).
    pub cores: usize,
    pub pinning: String,
    /// How idle cores waited: "poll" or "halt" ([`crate::monitor::cpu_idle`]); absent in
    /// records made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_idle: Option<String>,
    pub hostname: Option<String>,
    /// UTC, RFC 3339.
    pub date: String,
    pub command: String,
}

impl Provenance {
    /// Collects everything but the per-run fields (`build_profile`, `pinning`, `cpu_idle`,
    /// `date`).
    pub fn collect() -> Self {
        let git = |args: &[&str]| run_text("git", args);
        let git_commit = git(&["rev-parse", "HEAD"]);
        let git_dirty = git_commit
            .as_ref()
            .and_then(|_| {
                git(&[
                    "--no-optional-locks",
                    "status",
                    "--porcelain",
                    "--untracked-files=no",
                ])
            })
            .map(|s| !s.is_empty())
            .or_else(|| git_commit.as_ref().map(|_| false));
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
        });
        Self {
            git_commit,
            git_dirty,
            rustc: run_text("rustc", &["--version"]),
            build_profile: None,
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            pinning: "off".to_owned(),
            cpu_idle: None,
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_owned()),
            date: utc_now_rfc3339(),
            command: harness::cargo::portable_command_line(),
        }
    }
}

/// `git status` prints nothing for a clean tree, so an empty output is `Some("")`.
fn run_text(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The cargo profile a binary was built with, from `.../target/<profile>/<name>`.
pub fn build_profile_of(binary: &Path) -> Option<String> {
    let parts: Vec<_> = binary
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let i = parts.iter().rposition(|p| p == "target")?;
    let rest = &parts[i + 1..parts.len().checked_sub(1)?];
    // target/<profile>/bin or target/<triple>/<profile>/bin
    match rest {
        [profile] => Some(profile.clone()),
        [_triple, profile] => Some(profile.clone()),
        _ => None,
    }
    .map(|p| if p == "debug" { "dev".to_owned() } else { p })
}

/// Now, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_rfc3339(secs)
}

/// Formats seconds since the Unix epoch as RFC 3339 UTC (civil-from-days, proleptic Gregorian).
pub fn format_rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Appends one record as a JSON line and flushes it (so a crash loses nothing written).
pub fn append(path: &Path, record: &Record) -> anyhow::Result<()> {
    append_line(path, &serde_json::to_string(record)?)
}

/// Appends one line to a results file (records, cells, verdicts, counts, commands), creating
/// the file and its folder if needed, and syncs it so a crash loses nothing already measured.
pub fn append_line(path: &Path, line: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(format!("{line}\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    file.sync_data().ok();
    Ok(())
}

/// Reads every record of a JSON-lines file (blank lines skipped; other schema versions refused).
pub fn read_all(path: &Path) -> anyhow::Result<Vec<Record>> {
    #[derive(Deserialize)]
    struct Version {
        schema_version: u32,
    }
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        let version: Version = serde_json::from_str(&line)
            .with_context(|| format!("{}: not a loadgen record", at()))?;
        anyhow::ensure!(
            version.schema_version == SCHEMA_VERSION,
            "{}: schema_version {} (this loadgen reads {SCHEMA_VERSION}; re-run the measurement)",
            at(),
            version.schema_version
        );
        let record: Record = serde_json::from_str(&line)
            .with_context(|| format!("{}: not a loadgen record", at()))?;
        out.push(record);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
        ];
        for (secs, date) in cases {
            assert_eq!(format_rfc3339(secs), date);
        }
    }

    #[test]
    fn infers_build_profiles() {
        let cases = [
            ("/w/target/bench-release/server-axum", Some("bench-release")),
            ("/w/target/debug/server-axum", Some("dev")),
            (
                "/w/target/x86_64-unknown-linux-gnu/release/s",
                Some("release"),
            ),
            ("/usr/bin/server", None),
        ];
        for (path, expected) in cases {
            assert_eq!(
                build_profile_of(Path::new(path)).as_deref(),
                expected,
                "{path}"
            );
        }
    }
}
