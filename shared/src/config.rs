//! Configuration shared by every server: `DATABASE_URL`, `BIND`, `WORKERS`, `POOL_SIZE`, each
//! settable as an environment variable or a flag (the flag wins), and the start-up line.

use std::fmt;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser};

#[derive(Debug, Parser)]
struct Args {
    /// sqlite://PATH (created if missing) or postgres://USER@HOST:PORT/DB
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://todo.db")]
    database_url: String,

    /// Listen address; port 0 picks a free port, which the start-up line reports
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8000")]
    bind: SocketAddr,

    /// Async runtime worker threads [default: number of CPU cores]
    #[arg(long, env = "WORKERS")]
    workers: Option<NonZeroUsize>,

    /// Database connections in the pool [default: 2 x WORKERS]
    #[arg(long, env = "POOL_SIZE")]
    pool_size: Option<NonZeroU32>,
}

/// Which database a server talks to; in records and on command lines, `sqlite` or `postgres`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DbKind {
    Sqlite,
    Postgres,
}

impl DbKind {
    pub const ALL: [Self; 2] = [Self::Sqlite, Self::Postgres];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

impl fmt::Display for DbKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for DbKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => Err(format!(
                "unknown database {s:?} (expected sqlite or postgres)"
            )),
        }
    }
}

/// A parsed `DATABASE_URL`.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// `sqlite://PATH`: the file, created if missing.
    Sqlite(PathBuf),
    /// `postgres://...` or `postgresql://...`, as given (drivers get [`Database::driver_url`]).
    Postgres(String),
}

impl Database {
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(rest) = url.strip_prefix("sqlite://") {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(format!(
                    "DATABASE_URL {url:?} names no file; expected sqlite://PATH"
                ));
            }
            if path == ":memory:" || path.starts_with("file::memory:") {
                return Err(format!(
                    "DATABASE_URL {url:?} is an in-memory database, which each pooled connection \
                     would get a separate empty copy of; expected sqlite://PATH of a file"
                ));
            }
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            postgres_url(url)?;
            Ok(Self::Postgres(url.to_owned()))
        } else {
            Err(format!(
                "DATABASE_URL {:?} is not supported; expected sqlite://PATH or postgres://USER@HOST/DB",
                redact(url)
            ))
        }
    }

    /// The URL a PostgreSQL driver connects with (see [`postgres_url`]); `None` for SQLite.
    pub fn driver_url(&self) -> Option<String> {
        match self {
            Self::Sqlite(_) => None,
            Self::Postgres(url) => Some(postgres_url(url).expect("checked when parsed")),
        }
    }

    /// `message` with every secret of this database's URL masked (see [`scrub`]).
    pub fn scrub(&self, message: &str) -> String {
        match self {
            Self::Sqlite(_) => message.to_owned(),
            Self::Postgres(url) => scrub(message, url),
        }
    }

    pub const fn kind(&self) -> DbKind {
        match self {
            Self::Sqlite(_) => DbKind::Sqlite,
            Self::Postgres(_) => DbKind::Postgres,
        }
    }
}

/// Shows the database without its password.
impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The parameters a `postgres://` URL may carry: the ones every stack's driver (libpq for
/// diesel, sqlx's own) reads the same way.
const POSTGRES_PARAMETERS: [&str; 7] = [
    "sslmode",
    "user",
    "password",
    "host",
    "port",
    "dbname",
    "application_name",
];

/// A `postgres://` URL as every driver gets it. No server is built with a TLS library, so the
/// connection never uses TLS: `sslmode` may be `disable`, `allow` or `prefer` (all meaning no
/// TLS here) and the URL is given `sslmode=disable`, so that libpq does not try TLS where
/// sqlx cannot; a mode that demands TLS, and any parameter not in [`POSTGRES_PARAMETERS`],
/// is refused at start rather than read differently by different drivers.
fn postgres_url(url: &str) -> Result<String, String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "sslmode" {
            if !["disable", "allow", "prefer"].contains(&value) {
                return Err(format!(
                    "DATABASE_URL {:?} asks for sslmode={value}, but the servers talk to PostgreSQL \
                     without TLS; use sslmode=disable",
                    redact(url)
                ));
            }
        } else if POSTGRES_PARAMETERS.contains(&key) {
            kept.push(pair);
        } else {
            return Err(format!(
                "DATABASE_URL {:?} has the parameter {key:?}, which the servers do not support \
                 (supported: {})",
                redact(url),
                POSTGRES_PARAMETERS.join(", ")
            ));
        }
    }
    kept.push("sslmode=disable");
    Ok(format!("{base}?{}", kept.join("&")))
}

/// The secrets a database URL may carry, in any of its forms: the password of its user info
/// (from the first `:` to the last `@`, so an unencoded `@` in it is covered too, and each of
/// its `@`-separated pieces), and every `password=` parameter, each as written and
/// percent-decoded.
pub fn secrets(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    if let Some((userinfo, _)) = rest.rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        found.push(password.to_owned());
    }
    if let Some((_, query)) = rest.split_once('?') {
        for pair in query.split('&') {
            if let Some((key, value)) = pair.split_once('=')
                && key.eq_ignore_ascii_case("password")
            {
                found.push(value.to_owned());
            }
        }
    }
    // A driver that splits the URL at the first `@` shows the rest of such a password as part
    // of the host name: each piece is a secret too.
    let pieces: Vec<String> = found
        .iter()
        .filter(|s| s.contains('@'))
        .flat_map(|s| s.split('@').filter(|p| p.len() >= 2).map(str::to_owned))
        .collect();
    found.extend(pieces);
    let decoded: Vec<String> = found
        .iter()
        .map(|s| {
            form_urlencoded::parse(format!("x={s}").as_bytes())
                .map(|(_, v)| v.into_owned())
                .collect()
        })
        .collect();
    found.extend(decoded);
    found.retain(|s| !s.is_empty());
    // Longest first, so that a secret containing another is masked whole.
    found.sort_by_key(|s| std::cmp::Reverse(s.len()));
    found.dedup();
    found
}

/// `message` with every secret of `url` (see [`secrets`]) replaced by `***`, wherever it
/// appears: drivers' errors sometimes quote the whole URL.
pub fn scrub(message: &str, url: &str) -> String {
    secrets(url)
        .iter()
        .fold(message.to_owned(), |text, secret| {
            text.replace(secret.as_str(), "***")
        })
}

/// The URL with its secrets masked.
fn redact(url: &str) -> String {
    scrub(url, url)
}

/// The resolved configuration of one server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The stack's name in the start-up line, e.g. `axum-sqlx`.
    pub stack: &'static str,
    pub database: Database,
    pub bind: SocketAddr,
    pub workers: usize,
    pub pool_size: u32,
}

impl Settings {
    /// Reads flags and environment; prints `--help`/`--version` or a usage error and exits
    /// like any command-line tool would.
    pub fn from_env_and_args(stack: &'static str, about: &'static str) -> Result<Self, String> {
        let command = Args::command()
            .name(stack)
            .about(about)
            .version(env!("CARGO_PKG_VERSION"));
        let matches = match command.try_get_matches() {
            Ok(matches) => matches,
            // --help and --version print and exit 0, as any command-line tool's do.
            Err(err) if !err.use_stderr() => err.exit(),
            Err(err) => return Err(usage_error(&err)),
        };
        let args = Args::from_arg_matches(&matches).map_err(|err| usage_error(&err))?;
        Self::resolve(stack, args)
    }

    /// The same resolution from an explicit argument list (used by tests).
    pub fn from_args<I, T>(stack: &'static str, args: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Self::resolve(
            stack,
            Args::try_parse_from(args).map_err(|err| usage_error(&err))?,
        )
    }

    fn resolve(stack: &'static str, args: Args) -> Result<Self, String> {
        let database = Database::parse(&args.database_url)?;
        let workers = args
            .workers
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get);
        let pool_size = args
            .pool_size
            .map_or_else(|| default_pool_size(workers), NonZeroU32::get);
        Ok(Self {
            stack,
            database,
            bind: args.bind,
            workers,
            pool_size,
        })
    }

    pub const fn db_kind(&self) -> DbKind {
        self.database.kind()
    }

    /// The one line every server prints on stdout once it listens on `addr`.
    pub fn listening_line(&self, addr: SocketAddr) -> String {
        format!(
            "listening on http://{addr} (stack={}, db={}, workers={}, pool={})",
            self.stack,
            self.db_kind().name(),
            self.workers,
            self.pool_size
        )
    }
}

/// A usage error as one line: clap's first line, without its `error: ` prefix (the caller
/// adds the stack's own) and without the pointer to `--help` on the lines after it.
fn usage_error(err: &clap::Error) -> String {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

/// 2 x WORKERS for both databases. The contract fixes this for PostgreSQL; for SQLite we use the
/// same rule so the two databases are driven with the same concurrency.
pub fn default_pool_size(workers: usize) -> u32 {
    u32::try_from(workers.saturating_mul(2))
        .unwrap_or(u32::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            Database::parse("sqlite://todo.db"),
            Ok(Database::Sqlite("todo.db".into()))
        );
        assert_eq!(
            Database::parse("sqlite:///tmp/x.db?mode=rwc"),
            Ok(Database::Sqlite("/tmp/x.db".into()))
        );
        assert_eq!(
            Database::parse("postgres://u@h/db").map(|d| d.kind()),
            Ok(DbKind::Postgres)
        );
        assert_eq!(
            Database::parse("postgresql://u@h/db").map(|d| d.kind()),
            Ok(DbKind::Postgres)
        );
        for bad in [
            "",
            "sqlite://",
            "mysql://u@h/db",
            "todo.db",
            "sqlite:todo.db",
        ] {
            assert!(Database::parse(bad).is_err(), "{bad:?}");
        }
        let err = Database::parse("mysql://me:secret@h/db").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn passwords_never_print() {
        let db = Database::parse("postgres://me:secret@localhost/db").unwrap();
        assert_eq!(db.to_string(), "postgres://me:***@localhost/db");
        // Every form a password can take, and a driver's message quoting the whole URL.
        let cases = [
            ("postgres://me:s3cr3t@h/db", "s3cr3t"),
            ("postgres://me:p@ss@h/db", "p@ss"),
            ("postgres://me@h/db?password=s3cr3t", "s3cr3t"),
            ("postgres://me@h/db?sslmode=disable&PASSWORD=p%40ss", "p@ss"),
            ("postgres://u:pw@[::1/db", "pw"),
            ("postgresql://u:a:b@h", "a:b"),
        ];
        for (url, secret) in cases {
            let quoted = format!("invalid connection string {url:?}: {url}");
            let scrubbed = scrub(&quoted, url);
            assert!(!scrubbed.contains(secret), "{url}: {scrubbed}");
            assert!(scrubbed.contains("***"), "{url}: {scrubbed}");
            let shown = Database::parse(url).map_or_else(|e| e, |db| db.to_string());
            assert!(!shown.contains(secret), "{url}: {shown}");
        }
        assert!(
            Database::parse("mysql://me:s3cr3t@h/db")
                .unwrap_err()
                .contains("***")
        );
    }

    #[test]
    fn postgres_urls_are_read_alike() {
        let parsed = |url: &str| {
            Database::parse(url).map(|db| db.driver_url().expect("a PostgreSQL database"))
        };
        assert_eq!(
            parsed("postgres://u@h/db").unwrap(),
            "postgres://u@h/db?sslmode=disable"
        );
        assert_eq!(
            parsed("postgres://u@h/db?application_name=x&sslmode=prefer").unwrap(),
            "postgres://u@h/db?application_name=x&sslmode=disable"
        );
        for (url, says) in [
            ("postgres://u@h/db?sslmode=require", "without TLS"),
            ("postgres://u@h/db?sslmode=verify-full", "without TLS"),
            ("postgres://u@h/db?bogus=1", "\"bogus\""),
            ("postgres://u:s3cr3t@h/db?options=-c", "\"options\""),
        ] {
            let err = parsed(url).unwrap_err();
            assert!(
                err.contains(says) && !err.contains("s3cr3t"),
                "{url}: {err}"
            );
        }
    }

    #[test]
    fn in_memory_sqlite_is_refused() {
        for url in ["sqlite://:memory:", "sqlite://file::memory:?cache=shared"] {
            let err = Database::parse(url).unwrap_err();
            assert!(err.contains("in-memory"), "{err}");
        }
    }

    #[test]
    fn flags_and_defaults() {
        let s = Settings::from_args(
            "axum-sqlx",
            [
                "x",
                "--workers",
                "3",
                "--bind",
                "127.0.0.1:0",
                "--database-url",
                "sqlite://t.db",
            ],
        )
        .unwrap();
        assert_eq!((s.workers, s.pool_size), (3, 6));
        assert_eq!(
            s.listening_line("127.0.0.1:9".parse().unwrap()),
            "listening on http://127.0.0.1:9 (stack=axum-sqlx, db=sqlite, workers=3, pool=6)"
        );
        let s = Settings::from_args("x", ["x", "--workers", "2", "--pool-size", "5"]).unwrap();
        assert_eq!(s.pool_size, 5);
        for bad in [
            ["x", "--workers", "0"],
            ["x", "--workers", "abc"],
            ["x", "--pool-size", "0"],
            ["x", "--bind", "nowhere"],
            ["x", "--bind", ":99999"],
        ] {
            let err = Settings::from_args("x", bad).unwrap_err();
            assert!(
                !err.contains('\n') && !err.starts_with("error"),
                "{bad:?}: {err:?}"
            );
        }
    }
}
