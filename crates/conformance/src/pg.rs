//! A throwaway PostgreSQL cluster of a test's own, for tests that stop and restart the database
//! under a running server: `initdb` into a temporary folder, `pg_ctl start` on a free port of
//! 127.0.0.1 (socket in that folder), and `pg_ctl stop` + removal when dropped. The server
//! binaries come from `PG_BINDIR` (`scripts/test.sh` exports it).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

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

/// A running (or stopped) cluster; stopped and removed when dropped.
#[derive(Debug)]
pub struct Cluster {
    bindir: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

impl Cluster {
    /// Creates a cluster in a temporary folder and starts it. Panics with a message naming
    /// `PG_BINDIR` when the PostgreSQL server binaries cannot be found.
    pub fn start() -> Self {
        let bindir = bindir();
        let dir = tempfile::Builder::new()
            .prefix("conformance-pg.")
            .tempdir()
            .expect("a temporary folder can be made");
        if is_root() {
            // initdb refuses to run as root; the postgres user must own the cluster's folder.
            run(
                Command::new("chown").args(["postgres:", &dir.path().display().to_string()]),
                "chown",
            );
        }
        let data = dir.path().join("data");
        let initdb = bindir.join("initdb");
        let mut cmd = as_postgres(&initdb);
        cmd.arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]);
        run(&mut cmd, "initdb");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut cluster = Self {
            bindir,
            dir,
            port,
            running: false,
        };
        cluster.start_again();
        cluster
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub const fn port(&self) -> u16 {
        self.port
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the (stopped) cluster again on the same port and waits until it accepts
    /// connections. Returns how long that took.
    pub fn start_again(&mut self) -> Duration {
        let started = Instant::now();
        let options = format!(
            "-h 127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let mut cmd = as_postgres(&self.bindir.join("pg_ctl"));
        cmd.arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"));
        cmd.args(["-w", "-t", "60", "-o", &options, "start"]);
        let out = cmd.output().expect("pg_ctl runs");
        if !out.status.success() {
            let log =
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            panic!(
                "pg_ctl start failed: {}\nserver log:\n{log}",
                describe(&out)
            );
        }
        self.running = true;
        started.elapsed()
    }

    /// Stops the cluster (`pg_ctl stop -m MODE -w`); every client connection is cut.
    pub fn stop(&mut self, mode: StopMode) {
        let mut cmd = as_postgres(&self.bindir.join("pg_ctl"));
        cmd.arg("-D")
            .arg(self.data())
            .args(["-m", mode.arg(), "-w", "-t", "60", "stop"]);
        run(&mut cmd, "pg_ctl stop");
        self.running = false;
    }

    pub const fn is_running(&self) -> bool {
        self.running
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running {
            let mut cmd = as_postgres(&self.bindir.join("pg_ctl"));
            let _ = cmd
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
        // The temporary folder removes itself (root may remove the postgres user's files).
    }
}

/// `PG_BINDIR`, checked to hold `initdb` and `pg_ctl`.
pub fn bindir() -> PathBuf {
    let dir = std::env::var_os(BINDIR_VAR).map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "{BINDIR_VAR} is not set: database fault tests start their own PostgreSQL cluster and need the folder \
             holding initdb and pg_ctl, e.g. {BINDIR_VAR}=/usr/lib/postgresql/15/bin (scripts/test.sh sets it)"
        )
    });
    for tool in ["initdb", "pg_ctl"] {
        assert!(
            dir.join(tool).exists(),
            "{BINDIR_VAR}={} holds no {tool}: point it at PostgreSQL's bin folder",
            dir.display()
        );
    }
    dir
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

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|err| panic!("cannot run {what}: {err}"));
    assert!(out.status.success(), "{what} failed: {}", describe(&out));
}

fn describe(out: &Output) -> String {
    format!(
        "{}; {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
