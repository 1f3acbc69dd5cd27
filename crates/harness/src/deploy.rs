//! The hops of the deployment the published comparisons used, run for a scenario: nginx as a
//! reverse proxy in front of a server (keep-alive connections to it), and pgbouncer between a
//! server and PostgreSQL. Each is a child process configured in a temporary folder of its own,
//! waited for until it accepts connections, and stopped when dropped.
//!
//! Both are the Debian packages' binaries (`apt-get install nginx pgbouncer`), found on
//! `PATH` or in the system's `sbin` folders.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a hop may take to accept connections after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The process names of the hops, for load generators that count their CPU time.
pub const NGINX_PROCESS: &str = "nginx";
pub const PGBOUNCER_PROCESS: &str = "pgbouncer";

/// A hop's process, its address and its folder (configuration and log); stopped when dropped.
#[derive(Debug)]
struct Hop {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Hop {
    /// Starts `cmd` (which reads its configuration from `folder` and listens on its port) and
    /// waits until the port accepts a connection; on failure, the error quotes the hop's `log`.
    fn start(
        name: &'static str,
        mut cmd: Command,
        folder: Folder,
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        let addr = SocketAddr::from(([127, 0, 0, 1], folder.port));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let mut hop = Self {
            child,
            addr,
            log,
            _dir: folder.dir,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(hop);
            }
            if let Ok(Some(status)) = hop.child.try_wait() {
                bail!("{name} exited with {status} at start: {}", hop.last_log());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{name} did not accept connections on {addr} within {READY_TIMEOUT:?}: {}",
                    hop.last_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The end of the hop's log, on one line.
    fn last_log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(5).collect();
        if lines.is_empty() {
            format!("nothing in {}", self.log.display())
        } else {
            lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
        }
    }
}

impl Drop for Hop {
    fn drop(&mut self) {
        // Both stop at once on SIGTERM; nothing of theirs needs keeping.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx as a reverse proxy in front of one server.
#[derive(Debug)]
pub struct Nginx(Hop);

impl Nginx {
    /// Starts nginx with `workers` worker processes (on `cores`, like the server it fronts,
    /// when given: `taskset -c CORES`), forwarding every request to `upstream` over keep-alive
    /// HTTP/1.1 connections, as nginx's documentation shows for a proxied application server.
    pub fn start(
        upstream: SocketAddr,
        workers: usize,
        cores: Option<&str>,
    ) -> anyhow::Result<Self> {
        let binary = system_binary("nginx", "nginx")?;
        let folder = Folder::new("harness-nginx.")?;
        let conf = folder.dir.path().join("nginx.conf");
        let log = folder.dir.path().join("error.log");
        std::fs::write(
            &conf,
            nginx_conf(&folder.root, folder.port, upstream, workers),
        )
        .context("writing nginx.conf")?;
        let mut cmd = match cores {
            Some(cores) => {
                let mut cmd = Command::new("taskset");
                cmd.args(["-c", cores]).arg(&binary);
                cmd
            }
            None => Command::new(&binary),
        };
        // `-e`: the log nginx writes before it has read its configuration.
        cmd.arg("-p")
            .arg(&folder.root)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(&log);
        Hop::start("nginx", cmd, folder, log).map(Self)
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.0.addr
    }
}

/// The configuration: one server block proxying everything to one upstream. Logging is off
/// per request (as for the servers); connections from clients and to the upstream are kept
/// alive for as long as they are used, so a run measures forwarding, not reconnecting.
fn nginx_conf(root: &str, port: u16, upstream: SocketAddr, workers: usize) -> String {
    format!(
        "worker_processes {workers};
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    keepalive_requests 1000000;
    upstream app {{
        server {upstream};
        keepalive 256;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
    }}
}}
"
    )
}

/// pgbouncer between servers and one PostgreSQL server.
#[derive(Debug)]
pub struct Pgbouncer(Hop);

/// How pgbouncer lends its server connections.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PoolMode {
    /// A server connection per client connection, for as long as the client stays: every
    /// driver works unchanged, prepared statements included.
    Session,
    /// A server connection per transaction: drivers must not keep statements prepared across
    /// transactions (pgbouncer 1.18, Debian 12's, does not track them).
    Transaction,
}

impl PoolMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Transaction => "transaction",
        }
    }
}

impl Pgbouncer {
    /// Starts pgbouncer in front of the PostgreSQL server at `upstream`, for any database on
    /// it, trusting the `users` (as the local server trusts them), lending connections in
    /// `mode`. Run as the `postgres` user when we are root (pgbouncer refuses root).
    pub fn start(upstream: SocketAddr, users: &[&str], mode: PoolMode) -> anyhow::Result<Self> {
        let binary = system_binary("pgbouncer", "pgbouncer")?;
        let folder = Folder::new("harness-pgbouncer.")?;
        let root = folder.dir.path();
        let ini = root.join("pgbouncer.ini");
        let log = root.join("pgbouncer.log");
        let mut auth = String::new();
        for user in users {
            anyhow::ensure!(
                !user.contains('"'),
                "a user name with a double quote: {user:?}"
            );
            writeln!(auth, "\"{user}\" \"\"")?;
        }
        std::fs::write(root.join("users.txt"), auth).context("writing pgbouncer's users")?;
        std::fs::write(
            &ini,
            pgbouncer_ini(&folder.root, folder.port, upstream, mode),
        )
        .context("writing pgbouncer.ini")?;
        let mut cmd = Command::new(&binary);
        cmd.arg(&ini);
        if nix::unistd::geteuid().is_root() {
            use std::os::unix::process::CommandExt as _;
            let user = nix::unistd::User::from_name("postgres")
                .context("looking up the postgres user")?
                .context("pgbouncer refuses to run as root, and there is no postgres user")?;
            for entry in std::fs::read_dir(root)? {
                std::os::unix::fs::chown(entry?.path(), Some(user.uid.as_raw()), None)?;
            }
            std::os::unix::fs::chown(root, Some(user.uid.as_raw()), Some(user.gid.as_raw()))?;
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        Hop::start("pgbouncer", cmd, folder, log).map(Self)
    }

    /// The address servers connect to instead of PostgreSQL's.
    pub fn addr(&self) -> SocketAddr {
        self.0.addr
    }
}

/// The configuration: every database of the upstream server, trusted users, enough client
/// and server connections for any pool a comparison uses, the mode asked for.
fn pgbouncer_ini(root: &str, port: u16, upstream: SocketAddr, mode: PoolMode) -> String {
    let (host, upstream_port) = (upstream.ip(), upstream.port());
    let mode = mode.as_str();
    // sqlx sends `extra_float_digits` at start-up, which pgbouncer passes on only if told to
    // ignore it; the server's default is what sqlx asks for anyway.
    format!(
        "[databases]
* = host={host} port={upstream_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {root}/users.txt
pool_mode = {mode}
default_pool_size = 256
max_client_conn = 1024
logfile = {root}/pgbouncer.log
ignore_startup_parameters = extra_float_digits
"
    )
}

/// A hop's temporary folder (its path as text, for the configuration) and a port for it.
#[derive(Debug)]
struct Folder {
    dir: tempfile::TempDir,
    root: String,
    port: u16,
}

impl Folder {
    fn new(prefix: &str) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .context("creating a temporary folder")?;
        let root = dir
            .path()
            .to_str()
            .context("the temporary folder's path is not UTF-8")?
            .to_owned();
        // Free a moment ago: the hop binds it itself, and a clash shows as a failed start.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        Ok(Self { dir, root, port })
    }
}

/// The version lines of the installed hops (`nginx version: nginx/1.22.1`,
/// `PgBouncer 1.18.0`), `None` for one that is not installed: for a results folder's
/// description of its machine.
pub fn versions() -> [(&'static str, Option<String>); 2] {
    let version = |name: &str, flag: &str| {
        let binary = system_binary(name, name).ok()?;
        let out = Command::new(binary).arg(flag).output().ok()?;
        // nginx prints its version on stderr.
        let text = [out.stdout, out.stderr].concat();
        String::from_utf8_lossy(&text)
            .lines()
            .next()
            .map(|l| l.trim().to_owned())
    };
    [
        (NGINX_PROCESS, version("nginx", "-v")),
        (PGBOUNCER_PROCESS, version("pgbouncer", "--version")),
    ]
}

/// `name` on `PATH` or in the system's `sbin` folders (where Debian puts both hops, often off
/// a user's `PATH`).
fn system_binary(name: &str, package: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("{name} is not installed (Debian: apt-get install {package})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_name_their_folder_ports_and_upstream() {
        let upstream: SocketAddr = "127.0.0.1:5432".parse().unwrap();
        let conf = nginx_conf("/tmp/x", 8080, upstream, 1);
        assert!(conf.contains("listen 127.0.0.1:8080;"), "{conf}");
        assert!(conf.contains("server 127.0.0.1:5432;"), "{conf}");
        assert!(conf.contains("proxy_http_version 1.1;"), "{conf}");
        assert!(conf.contains("pid /tmp/x/nginx.pid;"), "{conf}");
        let ini = pgbouncer_ini("/tmp/x", 6432, upstream, PoolMode::Transaction);
        assert!(ini.contains("* = host=127.0.0.1 port=5432"), "{ini}");
        assert!(ini.contains("listen_port = 6432"), "{ini}");
        assert!(ini.contains("pool_mode = transaction"), "{ini}");
    }
}
