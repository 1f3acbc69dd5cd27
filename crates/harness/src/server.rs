//! Starts a server binary the way a user would (flags, a fresh database, port 0), reads its
//! start-up line, waits for `/health`, and stops it with a signal, reporting how it exited.
//! One spawner for the test suites, the load generator, the benches and xtask.

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use shared::DbKind;

use crate::client::Request;
use crate::db::FreshDb;

/// The configuration variables a server reads; the spawner passes flags instead and removes
/// these from the child's environment, so nothing leaks in from the caller's shell.
const SERVER_VARS: [&str; 4] = ["DATABASE_URL", "BIND", "WORKERS", "POOL_SIZE"];

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub binary: PathBuf,
    /// `--workers`.
    pub workers: usize,
    /// `--pool-size`; `None` leaves the server's default (2 x workers).
    pub pool_size: Option<usize>,
    /// Cores for `taskset -c` (e.g. "0" or "0-1"); `None` runs unpinned.
    pub cores: Option<String>,
    /// More flags, after the ones above.
    pub args: Vec<String>,
    /// A command the binary runs under (e.g. `valgrind --tool=callgrind`), after `taskset`;
    /// it must exec the binary in its own process, so the pid is the server's.
    pub wrapper: Vec<String>,
    /// How long the server may take to print its start-up line.
    pub startup_timeout: Duration,
}

impl ServerSpec {
    /// `binary` with two workers, the default pool, unpinned, 60 s to start.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
            workers: 2,
            pool_size: None,
            cores: None,
            args: Vec::new(),
            wrapper: Vec::new(),
            startup_timeout: Duration::from_secs(60),
        }
    }

    /// Adds flags after the standard ones.
    #[must_use]
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    fn name(&self) -> String {
        self.binary.file_name().map_or_else(
            || self.binary.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// Starts the server on a fresh database of `kind` (PostgreSQL: created in the cluster
    /// of `pg_admin_url`); the database is removed after the server stops.
    pub fn start(&self, kind: DbKind, pg_admin_url: Option<&str>) -> anyhow::Result<Server> {
        self.start_with(FreshDb::create(kind, pg_admin_url)?)
    }

    /// Starts the server on `db` (a fresh one, or a clone of a seeded template), which is
    /// removed after the server stops.
    pub fn start_with(&self, db: FreshDb) -> anyhow::Result<Server> {
        let url = db.url().to_owned();
        self.spawn(&url, Some(db))
    }

    /// Starts the server on `db`, reached at `url` (the database's own URL through a proxy,
    /// for example); `db` lives as long as the server.
    pub fn start_via(&self, db: FreshDb, url: &str) -> anyhow::Result<Server> {
        self.spawn(url, Some(db))
    }

    /// Starts the server on the database at `url`, which the caller owns.
    pub fn start_on(&self, url: &str) -> anyhow::Result<Server> {
        self.spawn(url, None)
    }

    fn spawn(&self, url: &str, db: Option<FreshDb>) -> anyhow::Result<Server> {
        let name = self.name();
        let mut program: Vec<std::ffi::OsString> = Vec::new();
        if let Some(cores) = &self.cores {
            program.extend(["taskset".into(), "-c".into(), cores.into()]);
        }
        program.extend(self.wrapper.iter().map(Into::into));
        program.push(self.binary.clone().into_os_string());
        let mut cmd = Command::new(&program[0]);
        cmd.args(&program[1..]);
        cmd.args(["--bind", "127.0.0.1:0", "--database-url", url])
            .arg("--workers")
            .arg(self.workers.to_string());
        if let Some(pool) = self.pool_size {
            cmd.arg("--pool-size").arg(pool.to_string());
        }
        cmd.args(&self.args);
        let mut child =
            spawn_piped(cmd).with_context(|| format!("cannot start {}", self.binary.display()))?;
        let stderr = Tail::collect(child.stderr.take().context("stderr is piped")?);
        let stdout = child.stdout.take().context("stdout is piped")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // The first line is the start-up line; the rest is drained so the server never
            // blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + self.startup_timeout;
        let raw = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => break line,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Some(status) = child.try_wait().context("waiting for the server")? {
                        exited_early(&name, status, &stderr)?;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Stdout closed without a line: the server is exiting.
                    let status = wait_child(&mut child, Duration::from_secs(5));
                    if let Some(status) = status {
                        exited_early(&name, status, &stderr)?;
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "{name} closed its stdout without a start-up line; stderr:\n{}",
                        stderr.text().trim_end()
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "{name} printed no start-up line within {:?}; stderr:\n{}",
                        self.startup_timeout,
                        stderr.text().trim_end()
                    );
                }
            }
        };
        let line = match StartupLine::parse(&raw) {
            Ok(line) => line,
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{name}: {err:#}; stderr:\n{}", stderr.text().trim_end());
            }
        };
        Ok(Server {
            name,
            child,
            line,
            stderr,
            db,
        })
    }
}

/// The parsed start-up line,
/// `listening on http://ADDR (stack=NAME, db=sqlite|postgres, workers=W, pool=P)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupLine {
    pub addr: SocketAddr,
    pub stack: String,
    pub db: String,
    pub workers: Option<usize>,
    pub pool: Option<usize>,
    /// The line as printed.
    pub raw: String,
}

impl StartupLine {
    pub fn parse(line: &str) -> anyhow::Result<Self> {
        let rest = line
            .trim()
            .strip_prefix("listening on http://")
            .with_context(|| format!("unexpected start-up line {line:?}"))?;
        let (addr, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        let addr: SocketAddr = addr
            .parse()
            .with_context(|| format!("bad address {addr:?} in start-up line {line:?}"))?;
        let field = |key: &str| {
            tail.trim_start_matches('(')
                .trim_end_matches(')')
                .split(',')
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_owned())
        };
        Ok(Self {
            addr,
            stack: field("stack")
                .with_context(|| format!("no stack= in start-up line {line:?}"))?,
            db: field("db").unwrap_or_default(),
            workers: field("workers").and_then(|w| w.parse().ok()),
            pool: field("pool").and_then(|p| p.parse().ok()),
            raw: line.to_owned(),
        })
    }
}

/// A running server; killed if still running when dropped, and its fresh database removed.
#[derive(Debug)]
pub struct Server {
    name: String,
    child: Child,
    line: StartupLine,
    stderr: Tail,
    db: Option<FreshDb>,
}

/// How a server stopped after [`Server::stop`].
#[derive(Debug)]
pub struct Stopped {
    /// `None`: it did not exit within the grace period and was killed.
    pub status: Option<ExitStatus>,
    /// From the signal to the exit.
    pub after: Duration,
    /// The last of the server's stderr, read after it exited (so it holds its last words).
    pub stderr: String,
}

impl Stopped {
    /// Exited with status 0 within the grace period.
    pub fn clean(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    pub fn describe(&self) -> String {
        match self.status {
            Some(status) => format!("{status} after {:.2?}", self.after),
            None => format!("did not exit within {:.2?}; killed", self.after),
        }
    }
}

impl Server {
    pub const fn addr(&self) -> SocketAddr {
        self.line.addr
    }

    /// The start-up line, parsed.
    pub const fn startup(&self) -> &StartupLine {
        &self.line
    }

    /// The start-up line, as printed.
    pub fn line(&self) -> &str {
        &self.line.raw
    }

    /// The binary's file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server has written to stderr (its last 64 KiB).
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let pid = Pid::from_raw(i32::try_from(self.pid()).context("pid out of range")?);
        kill(pid, signal).with_context(|| format!("sending {signal} to {}", self.name))
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, timeout)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Polls `GET /health` until it answers 200, the server exits, or `timeout` passes.
    pub fn wait_healthy(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match Request::new("GET", "/health").send(self.addr()) {
                Ok(response) if response.status == 200 => return Ok(()),
                Ok(response) => format!(
                    "{} {}",
                    response.status,
                    crate::wire::excerpt(&response.body)
                ),
                Err(err) => err.to_string(),
            };
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "{} exited ({status}) before /health answered; stderr:\n{}",
                    self.name,
                    self.stderr().trim_end()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "GET /health did not answer 200 within {timeout:?} (last: {last}); stderr:\n{}",
                    self.stderr().trim_end()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then up to `grace` for the process to exit (SIGKILL after that); then the
    /// fresh database is removed.
    pub fn stop(mut self, grace: Duration) -> anyhow::Result<Stopped> {
        let stopped = self.terminate(grace)?;
        if let Some(mut db) = self.db.take() {
            db.drop_now()?;
        }
        Ok(stopped)
    }

    /// Stops the server like [`Server::stop`] but hands its database back (to serve as a
    /// template, say) instead of removing it; `None` for a database the caller owned.
    pub fn stop_keeping_db(
        mut self,
        grace: Duration,
    ) -> anyhow::Result<(Stopped, Option<FreshDb>)> {
        let stopped = self.terminate(grace)?;
        Ok((stopped, self.db.take()))
    }

    fn terminate(&mut self, grace: Duration) -> anyhow::Result<Stopped> {
        let signalled = Instant::now();
        let status = match self.child.try_wait()? {
            Some(status) => Some(status),
            None => {
                self.signal(Signal::SIGTERM)?;
                wait_child(&mut self.child, grace)
            }
        };
        let after = signalled.elapsed();
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let stderr = self.stderr.last_words();
        Ok(Stopped {
            status,
            after,
            stderr,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The error for a server that exited before its start-up line.
fn exited_early(name: &str, status: ExitStatus, stderr: &Tail) -> anyhow::Result<()> {
    bail!(
        "{name} exited with {status} before listening; stderr:\n{}",
        stderr.last_words().trim_end()
    )
}

fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts `cmd` with no stdin, piped stdout and stderr, and none of the server variables.
///
/// A binary written a moment ago can be "busy" for a few milliseconds while another thread's
/// freshly forked child still holds it open (`ETXTBSY`); the start is then tried again, as
/// cargo does.
fn spawn_piped(mut cmd: Command) -> std::io::Result<Child> {
    for var in SERVER_VARS {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(err) if err.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            spawned => return spawned,
        }
    }
}

/// The last 64 KiB of what a child writes to one of its pipes, and the thread reading it.
#[derive(Debug)]
struct Tail {
    bytes: Arc<Mutex<VecDeque<u8>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Tail {
    const CAP: usize = 64 * 1024;

    fn collect(mut from: impl Read + Send + 'static) -> Self {
        let bytes = Arc::new(Mutex::new(VecDeque::new()));
        let sink = Arc::clone(&bytes);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = from.read(&mut buf) {
                let mut q = sink.lock().unwrap_or_else(PoisonError::into_inner);
                q.extend(&buf[..n]);
                let excess = q.len().saturating_sub(Self::CAP);
                q.drain(..excess);
            }
        });
        Self { bytes, reader }
    }

    fn text(&self) -> String {
        let q = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        let (a, b) = q.as_slices();
        String::from_utf8_lossy(&[a, b].concat()).into_owned()
    }

    /// The text once the pipe has closed (the process and any children holding it have gone),
    /// waiting up to a second for the reader to reach the end: a process's last words.
    fn last_words(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(1);
        while !self.reader.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.text()
    }
}

/// How a process run to completion ended.
#[derive(Debug)]
pub struct Exit {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Runs `binary` with `args` (and none of the server variables) and waits up to `timeout` for
/// it to exit on its own; used to check start-up failures. An error if it is still running.
pub fn run_to_exit(binary: &Path, args: &[&str], timeout: Duration) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let mut cmd = Command::new(binary);
    cmd.args(args);
    let mut child =
        spawn_piped(cmd).with_context(|| format!("cannot start {}", binary.display()))?;
    let stdout = Tail::collect(child.stdout.take().context("stdout is piped")?);
    let stderr = Tail::collect(child.stderr.take().context("stderr is piped")?);
    let Some(status) = wait_child(&mut child, timeout) else {
        let _ = child.kill();
        let _ = child.wait();
        bail!(
            "{} {args:?} still running after {timeout:?}; stderr: {}",
            binary.display(),
            stderr.text()
        );
    };
    Ok(Exit {
        status,
        stdout: stdout.last_words(),
        stderr: stderr.last_words(),
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_startup_line() {
        let raw =
            "listening on http://127.0.0.1:43210 (stack=axum-sqlx, db=sqlite, workers=1, pool=2)";
        let line = StartupLine::parse(raw).unwrap();
        assert_eq!(line.addr, "127.0.0.1:43210".parse().unwrap());
        assert_eq!(
            (line.stack.as_str(), line.db.as_str()),
            ("axum-sqlx", "sqlite")
        );
        assert_eq!((line.workers, line.pool), (Some(1), Some(2)));
        assert_eq!(line.raw, raw);
        assert!(StartupLine::parse("hello").is_err());
        assert!(StartupLine::parse("listening on http://nope (stack=a)").is_err());
        assert!(StartupLine::parse("listening on http://127.0.0.1:1 (db=sqlite)").is_err());
    }

    #[test]
    fn runs_a_process_to_its_exit() {
        let exit = run_to_exit(
            Path::new("sh"),
            &["-c", "echo out; echo err >&2; exit 3"],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(exit.status.code(), Some(3));
        assert_eq!(
            (exit.stdout.as_str(), exit.stderr.as_str()),
            ("out\n", "err\n")
        );
        assert!(run_to_exit(Path::new("sleep"), &["5"], Duration::from_millis(100)).is_err());
    }
}
