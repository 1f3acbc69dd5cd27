//! Server management: fresh databases, spawning a server binary (optionally pinned), waiting for
//! `/health`, CPU/RSS monitoring from `/proc`, and SIGTERM shutdown with an exit-status check.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::engine::{Target, get_once};

/// Which database a server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbKind {
    Sqlite,
    Postgres,
}

impl DbKind {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

impl std::str::FromStr for DbKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" | "pg" => Ok(Self::Postgres),
            _ => bail!("unknown database {s:?} (expected sqlite or postgres)"),
        }
    }
}

impl std::fmt::Display for DbKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A database created for one run and removed afterwards.
#[derive(Debug)]
pub enum FreshDb {
    /// A new file in a temporary directory (removed with it).
    Sqlite { dir: tempfile::TempDir, url: String },
    /// `CREATE DATABASE loadgen_<random>` via `psql`; dropped on [`FreshDb::drop_now`] or drop.
    Postgres {
        admin_url: String,
        name: String,
        url: String,
        dropped: bool,
    },
}

impl FreshDb {
    /// Creates a fresh database. `pg_admin_url` is required for PostgreSQL.
    pub fn create(kind: DbKind, pg_admin_url: Option<&str>) -> anyhow::Result<Self> {
        match kind {
            DbKind::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("loadgen-")
                    .tempdir()
                    .context("creating a temp dir")?;
                let url = format!("sqlite://{}", dir.path().join("todo.db").display());
                Ok(Self::Sqlite { dir, url })
            }
            DbKind::Postgres => {
                let admin_url = pg_admin_url
                    .context("PostgreSQL needs an admin URL (--pg-admin-url or PG_ADMIN_URL), e.g. postgres://postgres@127.0.0.1:5432/postgres")?
                    .to_owned();
                let name = format!("loadgen_{:016x}", random_u64());
                psql(&admin_url, &format!("CREATE DATABASE {name}"))?;
                let url = replace_db_name(&admin_url, &name)?;
                Ok(Self::Postgres {
                    admin_url,
                    name,
                    url,
                    dropped: false,
                })
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url, .. } => url,
        }
    }

    pub const fn kind(&self) -> DbKind {
        match self {
            Self::Sqlite { .. } => DbKind::Sqlite,
            Self::Postgres { .. } => DbKind::Postgres,
        }
    }

    /// Drops a PostgreSQL database now (SQLite files go with their temp dir).
    pub fn drop_now(&mut self) -> anyhow::Result<()> {
        if let Self::Postgres {
            admin_url,
            name,
            dropped,
            ..
        } = self
            && !*dropped
        {
            *dropped = true;
            psql(
                admin_url,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )?;
        }
        Ok(())
    }

    /// The SQLite directory (for tests and diagnostics).
    pub fn sqlite_dir(&self) -> Option<&Path> {
        match self {
            Self::Sqlite { dir, .. } => Some(dir.path()),
            Self::Postgres { .. } => None,
        }
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        if let Err(err) = self.drop_now() {
            eprintln!("loadgen: warning: {err:#}");
        }
    }
}

fn psql(admin_url: &str, sql: &str) -> anyhow::Result<()> {
    let out = std::process::Command::new("psql")
        .args([admin_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .context("running psql (is the PostgreSQL client installed?)")?;
    if !out.status.success() {
        bail!(
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// `postgres://u@h:5432/postgres?x=y` with the database name replaced.
pub fn replace_db_name(url: &str, name: &str) -> anyhow::Result<String> {
    let scheme_end = url.find("://").context("database URL has no scheme")? + 3;
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    Ok(format!("{}/{name}{query}", &base[..authority_end]))
}

/// A random-enough 64-bit number from the clock and pid (no RNG dependency needed).
pub fn random_u64() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut rng = crate::workload::Rng::new((nanos as u64) ^ (u64::from(std::process::id()) << 32));
    rng.next_u64()
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub binary: PathBuf,
    pub workers: usize,
    pub pool_size: usize,
    /// Cores for `taskset -c` (e.g. "0" or "0-1"); `None` runs unpinned.
    pub cores: Option<String>,
    pub startup_timeout: Duration,
}

/// The parsed start-up line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListeningLine {
    pub addr: SocketAddr,
    pub stack: String,
    pub db: String,
}

/// Parses `listening on http://ADDR (stack=NAME, db=..., workers=W, pool=P)`.
pub fn parse_listening_line(line: &str) -> anyhow::Result<ListeningLine> {
    let rest = line
        .trim()
        .strip_prefix("listening on http://")
        .with_context(|| format!("unexpected start-up line {line:?}"))?;
    let (addr, tail) = rest.split_once(' ').unwrap_or((rest, ""));
    let addr: SocketAddr = addr
        .parse()
        .with_context(|| format!("bad address {addr:?} in start-up line"))?;
    let field = |key: &str| {
        tail.trim_start_matches('(')
            .trim_end_matches(')')
            .split(',')
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_owned())
    };
    Ok(ListeningLine {
        addr,
        stack: field("stack").with_context(|| format!("no stack= in start-up line {line:?}"))?,
        db: field("db").unwrap_or_default(),
    })
}

/// Keeps the last 64 KiB of what a child writes.
#[derive(Debug, Clone, Default)]
pub struct OutputTail(Arc<Mutex<VecDeque<u8>>>);

impl OutputTail {
    const CAP: usize = 64 * 1024;

    fn push(&self, bytes: &[u8]) {
        let mut q = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        q.extend(bytes);
        let excess = q.len().saturating_sub(Self::CAP);
        q.drain(..excess);
    }

    pub fn text(&self) -> String {
        let q = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        String::from_utf8_lossy(&q.iter().copied().collect::<Vec<_>>()).into_owned()
    }
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    child: Child,
    pub pid: u32,
    pub target: Target,
    pub line: ListeningLine,
    pub stderr: OutputTail,
}

/// How the server stopped.
#[derive(Debug, Clone)]
pub struct Shutdown {
    /// Exited with status 0 within the grace period after SIGTERM.
    pub clean: bool,
    pub status: String,
}

impl ServerHandle {
    /// Starts `spec.binary --bind 127.0.0.1:0 --database-url URL --workers W --pool-size P`
    /// (under `taskset -c CORES` if pinned) and waits for its start-up line.
    pub async fn start(spec: &ServerSpec, database_url: &str) -> anyhow::Result<Self> {
        let mut cmd = match &spec.cores {
            Some(cores) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cores).arg(&spec.binary);
                c
            }
            None => Command::new(&spec.binary),
        };
        cmd.args(["--bind", "127.0.0.1:0", "--database-url", database_url])
            .arg("--workers")
            .arg(spec.workers.to_string())
            .arg("--pool-size")
            .arg(spec.pool_size.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", spec.binary.display()))?;
        let pid = child.id().context("server exited immediately")?;
        let stderr = OutputTail::default();
        if let Some(mut err) = child.stderr.take() {
            let tail = stderr.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    tail.push(&buf[..n]);
                }
            });
        }
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(spec.startup_timeout, lines.next_line()).await;
        let fail = |child: &mut Child, why: String| {
            let _ = child.start_kill();
            why
        };
        let line = match first {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) | Ok(Err(_)) => {
                let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
                // Give the stderr reader a moment to collect the last words.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let status = match status {
                    Ok(Ok(s)) => s.to_string(),
                    _ => "still running".to_owned(),
                };
                bail!(fail(
                    &mut child,
                    format!(
                        "{} closed stdout without a start-up line ({status}); stderr:\n{}",
                        spec.binary.display(),
                        stderr.text().trim_end()
                    )
                ));
            }
            Err(_) => bail!(fail(
                &mut child,
                format!(
                    "{} printed no start-up line within {:?}; stderr:\n{}",
                    spec.binary.display(),
                    spec.startup_timeout,
                    stderr.text().trim_end()
                )
            )),
        };
        let parsed = match parse_listening_line(&line) {
            Ok(p) => p,
            Err(err) => bail!(fail(
                &mut child,
                format!("{err:#}; stderr:\n{}", stderr.text().trim_end())
            )),
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            pid,
            target: Target::from_addr(parsed.addr),
            line: parsed,
            stderr,
        })
    }

    /// Polls `GET /health` until it answers 200 (or the server dies, or `timeout` passes).
    pub async fn wait_healthy(&mut self, timeout: Duration) -> anyhow::Result<()> {
        wait_healthy(&self.target, timeout, Some(&mut self.child), &self.stderr).await
    }

    /// SIGTERM, then waits up to `grace` for exit status 0 (SIGKILL after that).
    pub async fn shutdown(mut self, grace: Duration) -> anyhow::Result<Shutdown> {
        let pid = Pid::from_raw(i32::try_from(self.pid).context("pid out of range")?);
        if let Ok(Some(status)) = self.child.try_wait() {
            return Ok(Shutdown {
                clean: false,
                status: format!("had already exited: {status}"),
            });
        }
        kill(pid, Signal::SIGTERM).context("sending SIGTERM")?;
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => Ok(Shutdown {
                clean: status.success(),
                status: status.to_string(),
            }),
            Ok(Err(err)) => Err(err).context("waiting for the server"),
            Err(_) => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                Ok(Shutdown {
                    clean: false,
                    status: format!("did not exit within {grace:?} of SIGTERM; killed"),
                })
            }
        }
    }
}

/// Polls `GET /health` on `target` until 200.
pub async fn wait_healthy(
    target: &Target,
    timeout: Duration,
    mut child: Option<&mut Child>,
    stderr: &OutputTail,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match get_once(target, "/health", Duration::from_secs(2)).await {
            Ok((status, _)) if (200..300).contains(&status) => return Ok(()),
            Ok((status, body)) => format!("{status}: {}", String::from_utf8_lossy(&body)),
            Err(err) => format!("{err:#}"),
        };
        if let Some(c) = child.as_deref_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            bail!(
                "server exited ({status}) before /health answered; stderr:\n{}",
                stderr.text().trim_end()
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "GET /health did not answer 200 within {timeout:?} (last: {last}); stderr:\n{}",
                stderr.text().trim_end()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clock ticks per second for `/proc/*/stat` times.
pub fn clock_ticks() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// utime + stime of a process (all its threads) in seconds; `pid = None` means this process.
pub fn cpu_seconds(pid: Option<u32>) -> anyhow::Result<f64> {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_owned(),
        |p| format!("/proc/{p}/stat"),
    );
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat_cpu_ticks(&stat)
        .map(|t| t as f64 / clock_ticks())
        .with_context(|| format!("parsing {path}"))
}

/// utime + stime in ticks from a `/proc/PID/stat` line (fields 14 and 15).
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // `after` starts at field 3 (state); utime is field 14, i.e. index 11 here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` field of `/proc/PID/status` (VmRSS, VmHWM) in bytes.
pub fn status_kb_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_bytes(&status, field)
}

pub fn status_field_bytes(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// Samples a process's VmRSS every `every` until stopped; reports the peak.
#[derive(Debug)]
pub struct RssSampler {
    stop: Arc<tokio::sync::Notify>,
    handle: tokio::task::JoinHandle<u64>,
}

impl RssSampler {
    pub fn start(pid: u32, every: Duration) -> Self {
        let stop = Arc::new(tokio::sync::Notify::new());
        let notified = stop.clone();
        let handle = tokio::spawn(async move {
            let mut peak = 0;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        peak = peak.max(status_kb_field(pid, "VmRSS").unwrap_or(0));
                    }
                    () = notified.notified() => break,
                }
            }
            peak.max(status_kb_field(pid, "VmRSS").unwrap_or(0))
        });
        Self { stop, handle }
    }

    /// Stops sampling and returns the peak RSS in bytes.
    pub async fn finish(self) -> u64 {
        self.stop.notify_one();
        self.handle.await.unwrap_or(0)
    }
}

/// Which cores the server and the load generator get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinning {
    pub server: Vec<usize>,
    pub loadgen: Vec<usize>,
}

impl Pinning {
    /// Splits the cores this process may use into two disjoint halves (server first, the
    /// rest for the load generator); `None` with fewer than two cores.
    pub fn auto() -> Option<Self> {
        let cores = allowed_cores();
        if cores.len() < 2 {
            return None;
        }
        let half = cores.len() / 2;
        Some(Self {
            server: cores[..half].to_vec(),
            loadgen: cores[half..].to_vec(),
        })
    }

    pub fn server_list(&self) -> String {
        core_list(&self.server)
    }

    pub fn describe(&self) -> String {
        format!(
            "server cores {}, loadgen cores {}",
            core_list(&self.server),
            core_list(&self.loadgen)
        )
    }

    /// Pins this process (and every thread it starts afterwards) to the load generator's cores.
    pub fn apply_to_self(&self) -> anyhow::Result<()> {
        let mut set = nix::sched::CpuSet::new();
        for &c in &self.loadgen {
            set.set(c).context("core index out of range")?;
        }
        nix::sched::sched_setaffinity(Pid::from_raw(0), &set).context("sched_setaffinity")
    }
}

/// Cores this process may run on.
pub fn allowed_cores() -> Vec<usize> {
    match nix::sched::sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..nix::sched::CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => (0..std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
            .collect(),
    }
}

fn core_list(cores: &[usize]) -> String {
    cores
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_listening_line() {
        let l = parse_listening_line(
            "listening on http://127.0.0.1:43210 (stack=axum-sqlx, db=sqlite, workers=1, pool=2)",
        )
        .unwrap();
        assert_eq!(l.addr, "127.0.0.1:43210".parse().unwrap());
        assert_eq!(l.stack, "axum-sqlx");
        assert_eq!(l.db, "sqlite");
        assert!(parse_listening_line("hello").is_err());
        assert!(parse_listening_line("listening on http://nope (stack=a)").is_err());
    }

    #[test]
    fn replaces_the_database_name() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/x",
            ),
            (
                "postgres://u:p@h/postgres?sslmode=disable",
                "postgres://u:p@h/x?sslmode=disable",
            ),
            ("postgres://h:5432", "postgres://h:5432/x"),
        ];
        for (input, expected) in cases {
            assert_eq!(replace_db_name(input, "x").unwrap(), expected);
        }
    }

    #[test]
    fn parses_proc_stat_and_status() {
        let stat = "1234 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 4 0 100 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(175));
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(status_field_bytes(status, "VmRSS"), Some(1024 * 1024));
        assert_eq!(status_field_bytes(status, "VmHWM"), Some(2048 * 1024));
        assert!(cpu_seconds(None).unwrap() >= 0.0);
    }
}
