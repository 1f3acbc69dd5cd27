//! Property-based tests of `openapi.yaml` against every stack on SQLite and PostgreSQL with
//! Schemathesis (every check: no 5xx, documented statuses, content types, headers and schemas,
//! negative data rejected, positive data accepted, 405 + `allow`, use after delete, ...). Each
//! stack x database gets a fresh database and a free port from the harness, and any failure
//! fails the run.
//!
//! Schemathesis is installed from PyPI into `target/schemathesis/venv` (pinned below); logs go
//! to `target/schemathesis/logs`. `/sleep` (no database, up to 10 s a request) is exercised on
//! SQLite only, to bound the time.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use harness::server::ServerSpec;
use harness::{DbKind, Stack};

use crate::run::{self, describe};

/// The Schemathesis release every run uses.
const VERSION: &str = "4.32.5";
/// The most a server may take to stop after SIGTERM (the contract's grace, and room to spare).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// Fewer examples per operation (15 instead of 50; about 3 minutes for everything)
    #[arg(long)]
    pub quick: bool,
    /// Examples per operation (overrides --quick)
    #[arg(long)]
    pub examples: Option<u32>,
    /// Hypothesis seed, to repeat a run
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stacks, comma-separated [default: all]
    #[arg(long, value_delimiter = ',')]
    pub stacks: Vec<String>,
    /// Databases, comma-separated [default: sqlite,postgres]
    #[arg(long, value_delimiter = ',')]
    pub dbs: Vec<DbKind>,
}

/// Installs Schemathesis into its virtual environment unless it is there already.
fn install(work: &Path) -> anyhow::Result<PathBuf> {
    let venv = work.join("venv");
    let requirement = format!("schemathesis=={VERSION}");
    harness::python::ensure_venv(&venv, &requirement, &[vec![requirement.clone().into()]])?;
    Ok(venv.join("bin/schemathesis"))
}

/// What one run's log says: operations tested and test cases generated.
fn summary(log: &str) -> (String, String) {
    let tested = log
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("Tested:"))
        .map_or("?", str::trim);
    let cases = log
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| {
            l.split_once(' ')
                .is_some_and(|(n, rest)| n.parse::<u64>().is_ok() && rest.starts_with("generated"))
        })
        .unwrap_or("?");
    (tested.to_owned(), cases.to_owned())
}

/// The failures section of a failed run's log (or its end).
fn failures(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines
        .iter()
        .position(|l| {
            let t = l.trim_matches(|c| c == '=' || c == ' ');
            t == "FAILURES" || t == "ERRORS"
        })
        .unwrap_or(lines.len().saturating_sub(20));
    lines[start..]
        .iter()
        .take(200)
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

/// One stack on one database: a fresh server, Schemathesis against it, the server stopped.
fn run_one(
    schemathesis: &Path,
    config: &Path,
    args: &Args,
    stack: &Stack,
    db: DbKind,
    pg_url: &str,
    log_path: &Path,
) -> anyhow::Result<bool> {
    let work = config.parent().context("the config has a folder")?;
    let binary = stack.executable(&harness::cargo::target_dir().join("debug"));
    let admin = (db == DbKind::Postgres).then_some(pg_url);
    let server = ServerSpec::new(binary).start(db, admin)?;
    let spec = harness::cargo::workspace_root().join("openapi.yaml");
    let mut cmd = Command::new(schemathesis);
    cmd.arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(&spec)
        .arg("--url")
        .arg(format!("http://{}", server.addr()))
        .args([
            "--checks",
            "all",
            "--max-response-time",
            "15",
            "--request-timeout",
            "20",
        ])
        // One worker: concurrent workers trip a CPython 3.11 bug in ast.parse inside Hypothesis.
        .args([
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--no-color",
        ])
        .args([
            "--output-truncate",
            "false",
            "--suppress-health-check",
            "too_slow",
        ])
        // Schemathesis and Hypothesis keep their caches in the working directory.
        .current_dir(work.join("run"));
    if let Some(seed) = args.seed {
        cmd.arg("--seed").arg(seed.to_string());
    }
    if db != DbKind::Sqlite {
        cmd.args(["--exclude-path", "/sleep"]);
    }
    let log = File::create(log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let status = cmd
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .with_context(|| format!("cannot run {}", describe(&cmd)))?;
    let stderr = server.stderr();
    let stopped = server.stop(STOP_TIMEOUT)?;
    let mut passed = status.success();
    let mut notes = Vec::new();
    if !stopped.clean() {
        passed = false;
        notes.push(format!(
            "the server did not stop cleanly: {}",
            stopped.describe()
        ));
    }
    if !stderr.trim().is_empty() {
        notes.push(format!("the server wrote to stderr:\n{stderr}"));
    }
    let text = std::fs::read_to_string(log_path).unwrap_or_default();
    let (tested, cases) = summary(&text);
    println!(
        "{:<width$} {:<9} {:<6} operations tested: {tested:<3} test cases: {cases}",
        stack.name,
        db.name(),
        if passed { "ok" } else { "FAILED" },
        width = harness::STACKS
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0),
    );
    if !passed {
        println!("{}\n(full log: {})", failures(&text), log_path.display());
    }
    for note in notes {
        println!("  {note}");
    }
    Ok(passed)
}

/// Runs Schemathesis against every chosen stack and database; whether all passed. PostgreSQL
/// databases are made in the cluster of `pg_url`, or of [`run::test_postgres`] when `None`.
pub fn schemathesis(args: &Args, pg_url: Option<&str>) -> anyhow::Result<bool> {
    let stacks = harness::stacks::select(&args.stacks).map_err(anyhow::Error::msg)?;
    let dbs = if args.dbs.is_empty() {
        DbKind::ALL.to_vec()
    } else {
        args.dbs.clone()
    };
    let examples = args.examples.unwrap_or(if args.quick { 15 } else { 50 });
    let work = harness::cargo::target_dir().join("schemathesis");
    std::fs::create_dir_all(work.join("logs"))?;
    std::fs::create_dir_all(work.join("run"))?;
    let schemathesis = install(&work)?;
    let (pg_url, _cluster) = match pg_url {
        Some(url) => (url.to_owned(), None),
        None if dbs.contains(&DbKind::Postgres) => run::test_postgres()?,
        None => (String::new(), None),
    };
    run::build_test_binaries()?;
    // /sleep waits up to 10 s a request, so it gets a fifth of the examples (its coverage
    // phase still tries the bounds 0 and 10000 and the values just outside).
    let config = work.join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            "generation.max-examples = {examples}\n\n[[operations]]\ninclude-path = \"/sleep\"\ngeneration.max-examples = {}\n",
            examples.div_ceil(5)
        ),
    )?;
    let started = Instant::now();
    let mut failed = Vec::new();
    for stack in &stacks {
        for &db in &dbs {
            let log = work.join("logs").join(format!("{}-{db}.log", stack.name));
            if !run_one(&schemathesis, &config, args, stack, db, &pg_url, &log)? {
                failed.push(format!("{}/{db}", stack.name));
            }
            run::check_interrupted()?;
        }
    }
    let runs = stacks.len() * dbs.len();
    println!(
        "schemathesis {VERSION}, {examples} examples: {} runs passed, {} failed in {} s",
        runs - failed.len(),
        failed.len(),
        started.elapsed().as_secs()
    );
    if !failed.is_empty() {
        println!("FAILED: {}", failed.join(" "));
    }
    Ok(failed.is_empty())
}

/// The command-line entry: an error unless every run passed.
pub fn command(args: &Args) -> anyhow::Result<()> {
    if !schemathesis(args, None)? {
        bail!("schemathesis found failures (see above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_summary_and_the_failures_of_a_log() {
        let log = "Schemathesis v4\n  Tested: 7\n  1,113 cases\n  955 generated, 3 skipped\n\
                   ================ FAILURES ================\nboom\n";
        assert_eq!(
            summary(log),
            ("7".to_owned(), "955 generated, 3 skipped".to_owned())
        );
        assert_eq!(
            failures(log),
            "================ FAILURES ================\nboom"
        );
        assert_eq!(summary("nothing"), ("?".to_owned(), "?".to_owned()));
    }
}
