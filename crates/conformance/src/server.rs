//! Starts a server binary the way a user would: a fresh database (a SQLite file in a temporary
//! folder, or a new PostgreSQL database in the cluster named by `TEST_DATABASE_URL`), port 0,
//! and the start-up line read from stdout. Stops it with a signal and reports how it exited.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The variable naming the PostgreSQL cluster database tests use.
pub const PG_VAR: &str = "TEST_DATABASE_URL";

/// Which database a server under test gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The path of a workspace binary built next to this test binary (`target/<profile>/NAME`), or
/// next to this binary when it is itself a workspace binary (`serve-one`, `soak`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let exe_dir = exe.parent().expect("a binary lives in a folder");
    let sibling = exe_dir.join(name);
    if sibling.exists() {
        return sibling;
    }
    let profile_dir = exe_dir.parent().expect("target/<profile>/deps/<test>");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the servers first with `cargo build --workspace --bins` (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A fresh database that is removed when dropped.
#[derive(Debug)]
pub enum FreshDb {
    Sqlite(tempfile::TempDir),
    Postgres(PgDatabase),
}

impl FreshDb {
    pub fn new(db: Db) -> Self {
        match db {
            Db::Sqlite => {
                Self::Sqlite(tempfile::tempdir().expect("a temporary folder can be made"))
            }
            Db::Postgres => Self::Postgres(PgDatabase::create()),
        }
    }

    /// The `DATABASE_URL` a server should get.
    pub fn url(&self) -> String {
        match self {
            Self::Sqlite(dir) => format!("sqlite://{}", dir.path().join("todo.db").display()),
            Self::Postgres(pg) => pg.url(),
        }
    }
}

/// A PostgreSQL database made for one test in the cluster of `TEST_DATABASE_URL`, dropped after.
#[derive(Debug)]
pub struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    pub fn create() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let admin_url = admin_url();
        let name = format!(
            "conformance_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        psql(&admin_url, &format!("CREATE DATABASE {name}"));
        Self { admin_url, name }
    }

    pub fn url(&self) -> String {
        with_database(&self.admin_url, &self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        psql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// `TEST_DATABASE_URL`, or a failure that says how to set it.
pub fn admin_url() -> String {
    std::env::var(PG_VAR).unwrap_or_else(|_| {
        panic!(
            "{PG_VAR} is not set: PostgreSQL tests need a cluster they may create databases in, e.g. \
             {PG_VAR}=postgres://postgres@127.0.0.1:5432/postgres (scripts/test.sh starts a throwaway one)"
        )
    })
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .unwrap_or_else(|err| panic!("cannot run psql (install the PostgreSQL client): {err}"));
    assert!(
        out.status.success(),
        "psql {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Replaces the database name in a `postgres://` URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[host_start..]
        .find('/')
        .map_or(base.len(), |i| host_start + i);
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    format!("{}/{name}{query}", &base[..path_start])
}

/// A running server under test. Killed if still running when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    addr: SocketAddr,
    line: String,
    stderr: Arc<Mutex<String>>,
    _db: Option<FreshDb>,
}

/// How a server process ended.
#[derive(Debug)]
pub struct Exit {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

fn command(binary: &Path, args: &[String]) -> Command {
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("BIND")
        .env_remove("WORKERS")
        .env_remove("POOL_SIZE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn collect(mut from: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            sink.lock()
                .expect("not poisoned")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

impl Server {
    /// Starts `binary` on a fresh database of kind `db`, port 0, two workers.
    pub fn start(binary: &str, db: Db) -> Self {
        Self::start_with(binary, db, &[])
    }

    /// Like [`Server::start`], with extra flags.
    pub fn start_with(binary_name: &str, db: Db, extra: &[&str]) -> Self {
        let fresh = FreshDb::new(db);
        let url = fresh.url();
        Self::spawn(&binary(binary_name), &url, extra, Some(fresh))
    }

    /// Starts `binary` on the database at `url` (which the caller owns), port 0, two workers.
    pub fn start_on(binary_name: &str, url: &str, extra: &[&str]) -> Self {
        Self::spawn(&binary(binary_name), url, extra, None)
    }

    /// Like [`Server::start_with`], for a binary given by its path (e.g. a `bench-release` build).
    pub fn start_at(path: &Path, db: Db, extra: &[&str]) -> Self {
        let fresh = FreshDb::new(db);
        let url = fresh.url();
        Self::spawn(path, &url, extra, Some(fresh))
    }

    fn spawn(path: &Path, url: &str, extra: &[&str], fresh: Option<FreshDb>) -> Self {
        let binary_name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let binary_name = binary_name.as_str();
        let mut args = vec![
            "--bind".into(),
            "127.0.0.1:0".into(),
            "--workers".into(),
            "2".into(),
        ];
        args.extend(["--database-url".into(), url.to_owned()]);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut child = command(path, &args)
            .spawn()
            .expect("the server binary starts");
        let stderr = collect(child.stderr.take().expect("piped"));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let line = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => break line,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = child.try_wait() {
                        std::thread::sleep(Duration::from_millis(100));
                        panic!(
                            "{binary_name} exited with {status} before listening: {}",
                            stderr.lock().unwrap()
                        );
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "{binary_name} printed no start-up line within 60 s: {}",
                        stderr.lock().unwrap()
                    );
                }
            }
        };
        let addr = line
            .strip_prefix("listening on http://")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("{binary_name}: unexpected start-up line {line:?}"));
        Self {
            child,
            addr,
            line,
            stderr,
            _db: fresh,
        }
    }

    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The start-up line, as printed.
    pub fn line(&self) -> &str {
        &self.line
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).expect("pids fit in i32"))
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("the server can be signalled");
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited for") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits up to 10 s; panics if the server does not exit by then.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        self.wait(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("the server did not exit within 10 s of SIGTERM"))
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("not poisoned").clone()
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

/// Runs `binary` with `args` (and a scrubbed environment) and waits up to `timeout` for it to
/// exit on its own; used to check start-up failures. Panics if it is still running then.
pub fn run_to_exit(binary_name: &str, args: &[&str], timeout: Duration) -> Exit {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let started = Instant::now();
    let mut child = command(&binary(binary_name), &args)
        .spawn()
        .expect("the server binary starts");
    let stdout = collect(child.stdout.take().expect("piped"));
    let stderr = collect(child.stderr.take().expect("piped"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{binary_name} {args:?} still running after {timeout:?}; stderr: {}",
                stderr.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(50));
    let text = |s: &Arc<Mutex<String>>| s.lock().expect("not poisoned").clone();
    Exit {
        status,
        stdout: text(&stdout),
        stderr: text(&stderr),
        elapsed: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_database("postgres://u@h:5/postgres", "x"),
            "postgres://u@h:5/x"
        );
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
    }
}
