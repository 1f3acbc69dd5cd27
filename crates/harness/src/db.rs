//! Fresh databases for one server run: a SQLite file in a temporary folder, or a new database
//! in a PostgreSQL cluster where the admin URL may `CREATE DATABASE`. Each is removed when
//! dropped, so every measured or tested combination starts from nothing, or from a copy of a
//! seeded template ([`FreshDb::clone_of`]: a file copy, or `CREATE DATABASE ... TEMPLATE`).

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context as _, bail};
use shared::DbKind;

/// The variable naming the PostgreSQL cluster the test suites create their databases in.
pub const TEST_DATABASE_VAR: &str = "TEST_DATABASE_URL";

/// `TEST_DATABASE_URL`, or an error that says how to set it.
pub fn test_admin_url() -> anyhow::Result<String> {
    std::env::var(TEST_DATABASE_VAR).with_context(|| {
        format!(
            "{TEST_DATABASE_VAR} is not set: PostgreSQL tests need a cluster they may create databases in, e.g. \
             {TEST_DATABASE_VAR}=postgres://postgres@127.0.0.1:5432/postgres (scripts/test.sh starts a throwaway one)"
        )
    })
}

/// A database made for one run and removed afterwards.
#[derive(Debug)]
pub enum FreshDb {
    /// `todo.db` in a temporary folder (removed with it).
    Sqlite { dir: tempfile::TempDir, url: String },
    /// `CREATE DATABASE harness_<pid>_<n>` in the cluster of `admin_url`.
    Postgres {
        admin_url: String,
        name: String,
        url: String,
        dropped: bool,
    },
}

/// The SQLite database's file name in its folder, and the files SQLite keeps beside it.
const SQLITE_FILE: &str = "todo.db";
const SQLITE_COMPANIONS: [&str; 2] = ["todo.db-wal", "todo.db-journal"];

impl FreshDb {
    /// Creates a fresh database of `kind`; PostgreSQL needs `pg_admin_url`.
    pub fn create(kind: DbKind, pg_admin_url: Option<&str>) -> anyhow::Result<Self> {
        match kind {
            DbKind::Sqlite => Self::sqlite_folder(),
            DbKind::Postgres => {
                let admin_url = pg_admin_url.context(
                    "PostgreSQL needs an admin URL of a cluster where databases may be created",
                )?;
                Self::postgres(admin_url, "")
            }
        }
    }

    /// A new database holding what `template` holds now. Nothing may be connected to the
    /// template meanwhile (a stopped server's database, for example).
    pub fn clone_of(template: &Self) -> anyhow::Result<Self> {
        match template {
            Self::Sqlite { dir: from, .. } => {
                let copy = Self::sqlite_folder()?;
                let Self::Sqlite { dir: to, .. } = &copy else {
                    unreachable!("sqlite_folder makes a SQLite database")
                };
                for file in std::iter::once(SQLITE_FILE).chain(SQLITE_COMPANIONS) {
                    let source = from.path().join(file);
                    if source.exists() {
                        std::fs::copy(&source, to.path().join(file))
                            .with_context(|| format!("copying {}", source.display()))?;
                    }
                }
                Ok(copy)
            }
            Self::Postgres {
                admin_url, name, ..
            } => Self::postgres(admin_url, &format!(" TEMPLATE {name}")),
        }
    }

    fn sqlite_folder() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("harness-")
            .tempdir()
            .context("creating a temporary folder")?;
        let url = format!("sqlite://{}", dir.path().join(SQLITE_FILE).display());
        Ok(Self::Sqlite { dir, url })
    }

    /// `CREATE DATABASE harness_<pid>_<n>{options}` in the cluster of `admin_url`.
    fn postgres(admin_url: &str, options: &str) -> anyhow::Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "harness_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        psql(admin_url, &format!("CREATE DATABASE {name}{options}"))?;
        let url = with_database(admin_url, &name)?;
        Ok(Self::Postgres {
            admin_url: admin_url.to_owned(),
            name,
            url,
            dropped: false,
        })
    }

    /// The `DATABASE_URL` a server should get.
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

    /// Drops a PostgreSQL database now (a SQLite file goes with its folder).
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
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        if let Err(err) = self.drop_now() {
            eprintln!("warning: {err:#}");
        }
    }
}

/// Runs one SQL statement with `psql` against `url`.
pub fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .stdin(Stdio::null())
        .output()
        .context("cannot run psql (install the PostgreSQL client)")?;
    if !out.status.success() {
        bail!(
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// `postgres://u@h:5432/postgres?x=y` with the database name replaced.
pub fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (authority, query) = authority(url)?;
    Ok(format!("{}/{name}{query}", &url[..authority.end]))
}

/// The TCP address a `postgres://` URL's server listens on (port 5432 when the URL gives none).
/// URLs that reach the server through a Unix socket have none.
pub fn tcp_address(url: &str) -> anyhow::Result<std::net::SocketAddr> {
    use std::net::ToSocketAddrs as _;
    let (authority, query) = authority(url)?;
    let authority = &url[authority];
    anyhow::ensure!(
        !query.contains("host="),
        "{} names its server in a host= parameter; use postgres://USER@HOST:PORT/DB",
        shared::config::scrub(url, url)
    );
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    anyhow::ensure!(
        !host_port.is_empty(),
        "{} names no host",
        shared::config::scrub(url, url)
    );
    let with_port = if host_port.ends_with(']') || !host_port.contains(':') {
        format!("{host_port}:5432")
    } else {
        host_port.to_owned()
    };
    with_port
        .to_socket_addrs()
        .with_context(|| format!("resolving {with_port}"))?
        .next()
        .with_context(|| format!("{with_port} resolves to no address"))
}

/// `url` with its host and port replaced by `addr` (user, database and parameters kept).
pub fn with_address(url: &str, addr: std::net::SocketAddr) -> anyhow::Result<String> {
    let (authority, _) = authority(url)?;
    let user = url[authority.clone()]
        .rsplit_once('@')
        .map_or("", |(u, _)| u);
    let at = if user.is_empty() { "" } else { "@" };
    Ok(format!(
        "{}{user}{at}{addr}{}",
        &url[..authority.start],
        &url[authority.end..]
    ))
}

/// The user a `postgres://` URL connects as: its user info's, or, as libpq and sqlx default
/// to, the name of the user running this process.
pub fn user(url: &str) -> anyhow::Result<String> {
    let (authority, _) = authority(url)?;
    let named = url[authority]
        .rsplit_once('@')
        .map(|(info, _)| info.split(':').next().unwrap_or_default())
        .filter(|u| !u.is_empty());
    match named {
        Some(user) => Ok(user.to_owned()),
        None => nix::unistd::User::from_uid(nix::unistd::geteuid())
            .context("looking up the user running this process")?
            .map(|u| u.name)
            .context("the user running this process has no name"),
    }
}

/// Where a URL's authority (`user:pw@host:port`) lies in it, and its query (`?a=b`, or empty):
/// the one reading of a database URL's parts that [`with_database`], [`tcp_address`],
/// [`with_address`] and [`user`] share.
fn authority(url: &str) -> anyhow::Result<(std::ops::Range<usize>, &str)> {
    let start = url.find("://").context("a database URL has a scheme")? + 3;
    let base_end = url[start..].find('?').map_or(url.len(), |i| start + i);
    let end = url[start..base_end]
        .find('/')
        .map_or(base_end, |i| start + i);
    Ok((start..end, &url[base_end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_replaced() {
        let cases = [
            ("postgres://u@h:5/postgres", "postgres://u@h:5/x"),
            ("postgres://u@h:5", "postgres://u@h:5/x"),
            (
                "postgresql://u:p@h/db?sslmode=disable",
                "postgresql://u:p@h/x?sslmode=disable",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(with_database(input, "x").unwrap(), expected);
        }
        assert!(with_database("nonsense", "x").is_err());
    }

    #[test]
    fn addresses_are_read_and_replaced() {
        let proxy: std::net::SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let cases = [
            (
                "postgres://u:p@127.0.0.1:5433/db?sslmode=disable",
                "127.0.0.1:5433",
                "postgres://u:p@127.0.0.1:6000/db?sslmode=disable",
            ),
            (
                "postgres://127.0.0.1/db",
                "127.0.0.1:5432",
                "postgres://127.0.0.1:6000/db",
            ),
            (
                "postgresql://u@[::1]:5/x",
                "[::1]:5",
                "postgresql://u@127.0.0.1:6000/x",
            ),
        ];
        for (url, addr, replaced) in cases {
            assert_eq!(tcp_address(url).unwrap(), addr.parse().unwrap(), "{url}");
            assert_eq!(with_address(url, proxy).unwrap(), replaced, "{url}");
        }
        assert!(tcp_address("postgres:///db?host=/run/postgresql").is_err());
        assert_eq!(user("postgres://u:p@h/db").unwrap(), "u");
        assert_eq!(user("postgres://bench@h:1/db?x=y").unwrap(), "bench");
        let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .unwrap()
            .unwrap()
            .name;
        assert_eq!(user("postgres://h/db").unwrap(), me);
        assert!(tcp_address("nonsense").is_err());
    }

    #[test]
    fn sqlite_databases_live_in_a_folder_of_their_own() {
        let db = FreshDb::create(DbKind::Sqlite, None).unwrap();
        let url = db.url().to_owned();
        assert!(
            url.starts_with("sqlite://") && url.ends_with("/todo.db"),
            "{url}"
        );
        let folder = std::path::PathBuf::from(url.trim_start_matches("sqlite://"));
        let folder = folder.parent().unwrap().to_owned();
        assert!(folder.is_dir());
        drop(db);
        assert!(!folder.exists());
        assert!(FreshDb::create(DbKind::Postgres, None).is_err());
    }

    #[test]
    fn sqlite_clones_copy_the_file_and_its_log() {
        let template = FreshDb::create(DbKind::Sqlite, None).unwrap();
        let path = |db: &FreshDb, file: &str| {
            std::path::Path::new(db.url().trim_start_matches("sqlite://")).with_file_name(file)
        };
        std::fs::write(path(&template, SQLITE_FILE), b"pages").unwrap();
        std::fs::write(path(&template, "todo.db-wal"), b"log").unwrap();
        let clone = FreshDb::clone_of(&template).unwrap();
        assert_ne!(clone.url(), template.url());
        assert_eq!(std::fs::read(path(&clone, SQLITE_FILE)).unwrap(), b"pages");
        assert_eq!(std::fs::read(path(&clone, "todo.db-wal")).unwrap(), b"log");
        assert!(!path(&clone, "todo.db-journal").exists());
    }
}
