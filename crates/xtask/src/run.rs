//! Running things: cargo and other commands (echoed, their failure an error), Ctrl-C (the
//! children stop, xtask cleans up after them), and the PostgreSQL cluster the tests use.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, bail};
use harness::db::TEST_DATABASE_VAR;
use harness::pg::{self, Cluster, Options};

static INTERRUPTED: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

/// SIGINT and SIGTERM no longer end xtask at once: the children it runs get them too and
/// stop, and xtask then stops its PostgreSQL cluster and exits.
pub fn catch_interrupts() {
    let flag = Arc::clone(INTERRUPTED.get_or_init(Arc::default));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(err) = signal_hook::flag::register(signal, Arc::clone(&flag)) {
            eprintln!("xtask: warning: cannot handle signal {signal}: {err}");
        }
    }
}

/// An error once SIGINT or SIGTERM has arrived.
pub fn check_interrupted() -> anyhow::Result<()> {
    if INTERRUPTED.get().is_some_and(|f| f.load(Ordering::Relaxed)) {
        bail!("interrupted");
    }
    Ok(())
}

/// `cargo`, as the one running xtask, in the workspace root.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(harness::cargo::workspace_root());
    cmd
}

/// Runs `cmd` to its end (echoing it first); a failure is an error.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: running {}", describe(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {}", describe(cmd)))?;
    check_interrupted()?;
    if !status.success() {
        bail!("{} failed ({status})", describe(cmd));
    }
    Ok(())
}

/// `program arg arg ...`, for messages and records (paths relative to the workspace).
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| harness::cargo::portable(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every binary of the workspace with the test profile (the servers the tests start).
pub fn build_test_binaries() -> anyhow::Result<()> {
    run(cargo().args(["build", "--workspace", "--bins"]))?;
    harness::python::ensure_reference()
}

/// A PostgreSQL cluster for tests: the one `TEST_DATABASE_URL` names, or a throwaway one
/// (stopped and removed when the returned guard drops). Returns its admin URL.
pub fn test_postgres() -> anyhow::Result<(String, Option<Cluster>)> {
    if let Ok(url) = std::env::var(TEST_DATABASE_VAR) {
        return Ok((url, None));
    }
    let cluster =
        Cluster::start(Options::TESTS).context("starting a throwaway PostgreSQL cluster")?;
    eprintln!(
        "xtask: a throwaway PostgreSQL cluster on 127.0.0.1:{} ({})",
        cluster.port(),
        cluster.dir().display()
    );
    Ok((cluster.url(), Some(cluster)))
}

/// The test command: builds every binary, makes sure a PostgreSQL cluster is there, and runs
/// the whole test suite with `args` passed to `cargo test`; given no `args` (the whole suite),
/// then Schemathesis's bounded run against every stack on both databases.
pub fn test(args: &[String]) -> anyhow::Result<()> {
    let bindir = pg::bindir()?;
    let (url, _cluster) = test_postgres()?;
    eprintln!("xtask: PostgreSQL for tests: {url}");
    build_test_binaries()?;
    run(cargo()
        .args(["test", "--workspace"])
        .args(args)
        .env(TEST_DATABASE_VAR, &url)
        .env(pg::BINDIR_VAR, bindir))?;
    if args.is_empty() {
        let quick = crate::schemathesis::Args {
            quick: true,
            ..crate::schemathesis::Args::default()
        };
        if !crate::schemathesis::schemathesis(&quick, Some(&url))? {
            bail!("schemathesis found failures (see above)");
        }
    }
    Ok(())
}
