//! Throwaway PostgreSQL clusters: `initdb` into a temporary folder, `pg_ctl start` on a free
//! port of 127.0.0.1 (its socket in that folder), and `pg_ctl stop` plus removal when dropped.
//! The test command and the comparison start one when no cluster is named; the database-fault
//! tests start their own to stop and restart it under a running server.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// The variable naming the folder that holds `initdb`, `pg_ctl` and `postgres`.
pub const BINDIR_VAR: &str = "PG_BINDIR";

/// How `pg_ctl stop` ends the sessions: `fast` rolls back and disconnects clients, `immediate`
/// aborts the server processes without a clean shutdown (like a crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    Fast,
    Immediate,
}

impl StopMode {
    const fn arg(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Immediate => "immediate",
        }
    }
}

/// How a cluster is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `fsync` on (as a production database runs, for measurements) or off (tests: nothing
    /// in a test cluster is worth keeping).
    pub fsync: bool,
    pub max_connections: u32,
    /// Cores for `taskset -c` (e.g. "0"): every PostgreSQL process runs only there; `None`
    /// lets them run anywhere.
    pub cores: Option<String>,
}

impl Options {
    /// For test suites: no fsync.
    pub const TESTS: Self = Self {
        fsync: false,
        max_connections: 400,
        cores: None,
    };
    /// For measurements: PostgreSQL's durable defaults.
    pub const BENCHMARK: Self = Self {
        fsync: true,
        max_connections: 400,
        cores: None,
    };
}

/// A running (or stopped) cluster; stopped and removed when dropped.
#[derive(Debug)]
pub struct Cluster {
    bindir: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    options: Options,
    running: bool,
}

impl Cluster {
    /// Creates a cluster in a temporary folder and starts it, with the server binaries of
    /// [`bindir`].
    pub fn start(options: Options) -> anyhow::Result<Self> {
        let bindir = bindir()?;
        let dir = tempfile::Builder::new()
            .prefix("harness-pg.")
            .tempdir()
            .context("creating a temporary folder")?;
        if is_root() {
            // initdb refuses to run as root; the postgres user must own the cluster's folder.
            run(
                Command::new("chown").args(["postgres:", &dir.path().display().to_string()]),
                "chown",
            )?;
        }
        let data = dir.path().join("data");
        let mut initdb = as_postgres(&bindir.join("initdb"));
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        ]);
        run(&mut initdb, "initdb")?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        let mut cluster = Self {
            bindir,
            dir,
            port,
            options,
            running: false,
        };
        cluster.start_again()?;
        Ok(cluster)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`: a superuser may create databases here.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The folder holding the data directory, the socket and `server.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the (stopped) cluster again on the same port and waits until it accepts
    /// connections. Returns how long that took.
    pub fn start_again(&mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let options = format!(
            "-h 127.0.0.1 -p {} -k {} -c fsync={} -c max_connections={}",
            self.port,
            self.dir.path().display(),
            if self.options.fsync { "on" } else { "off" },
            self.options.max_connections,
        );
        let log = self.dir.path().join("server.log");
        let mut cmd = as_postgres(&self.bindir.join("pg_ctl"));
        if let Some(cores) = &self.options.cores {
            // The postmaster inherits the affinity, and every process it forks after it.
            let pinned = std::mem::replace(&mut cmd, Command::new("taskset"));
            cmd.arg("-c")
                .arg(cores)
                .arg(pinned.get_program())
                .args(pinned.get_args());
        }
        cmd.arg("-D").arg(self.data()).arg("-l").arg(&log);
        cmd.args(["-w", "-t", "60", "-o", &options, "start"]);
        let out = cmd.output().context("cannot run pg_ctl")?;
        if !out.status.success() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "pg_ctl start failed: {}\nserver log:\n{log}",
                describe(&out)
            );
        }
        self.running = true;
        Ok(started.elapsed())
    }

    /// Stops the cluster (`pg_ctl stop -m MODE -w`); every client connection is cut.
    pub fn stop(&mut self, mode: StopMode) -> anyhow::Result<()> {
        let mut cmd = as_postgres(&self.bindir.join("pg_ctl"));
        cmd.arg("-D")
            .arg(self.data())
            .args(["-m", mode.arg(), "-w", "-t", "60", "stop"]);
        run(&mut cmd, "pg_ctl stop")?;
        self.running = false;
        Ok(())
    }

    pub const fn is_running(&self) -> bool {
        self.running
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running {
            let _ = self.stop(StopMode::Immediate);
        }
        // The temporary folder removes itself (root may remove the postgres user's files).
    }
}

/// The folder of PostgreSQL's server binaries: `PG_BINDIR`, else `pg_config --bindir`, else
/// the newest `/usr/lib/postgresql/*/bin` (Debian's layout); checked to hold `initdb` and
/// `pg_ctl`.
pub fn bindir() -> anyhow::Result<PathBuf> {
    let has_tools = |dir: &Path| ["initdb", "pg_ctl"].iter().all(|t| dir.join(t).exists());
    if let Some(dir) = std::env::var_os(BINDIR_VAR).map(PathBuf::from) {
        if has_tools(&dir) {
            return Ok(dir);
        }
        bail!(
            "{BINDIR_VAR}={} holds no initdb and pg_ctl: point it at PostgreSQL's bin folder",
            dir.display()
        );
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    debian.sort();
    from_pg_config
        .into_iter()
        .chain(debian.into_iter().rev().map(|(_, dir)| dir))
        .find(|dir| has_tools(dir))
        .with_context(|| {
            format!(
                "no PostgreSQL server binaries (initdb, pg_ctl) found: install PostgreSQL \
                 (Debian: apt-get install postgresql) or set {BINDIR_VAR}"
            )
        })
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A command for a PostgreSQL tool, run as the postgres user when we are root.
fn as_postgres(tool: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(tool);
        cmd
    } else {
        Command::new(tool)
    }
}

/// Runs `cmd` (`what`, for messages) to completion; on failure its status and output are the
/// error. The harness's one way of running a tool it needs.
pub(crate) fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}", describe(&out));
    }
    Ok(())
}

fn describe(out: &Output) -> String {
    format!(
        "{}; {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
