//! Per-stack reliability verdicts for the results tables. For each stack of the registry: its
//! conformance, hostile-input, database-fault, shutdown, OpenAPI and short-soak tests
//! (`cargo test` filtered to the stack's test modules), a bounded schemathesis run, and the
//! hostile-input and HTTP-layer tests again without the known-limitation exemptions (`strict`). One JSON line per stack and check
//! is appended to `DIR/checks.jsonl`, which `loadgen report` reads beside `records.jsonl`.
//! Logs go to `target/reliability/`.

use std::fs::File;
use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use harness::db::TEST_DATABASE_VAR;
use harness::stacks::STRICT_VAR;
use harness::{DbKind, STACKS, Stack};
use loadgen::checks::{SCHEMA_VERSION, Verdict};

use crate::run::{self, cargo, describe};
use crate::schemathesis;

/// What a stack is checked with, one verdict each.
enum Check {
    /// Its tests in the conformance suites.
    Tests,
    /// Schemathesis against `openapi.yaml`, bounded.
    Schemathesis,
    /// The hostile-input and HTTP-layer tests with no framework limitation excused.
    Strict,
}

impl Check {
    const ALL: [Self; 3] = [Self::Tests, Self::Schemathesis, Self::Strict];

    const fn name(&self) -> &'static str {
        match self {
            Self::Tests => "tests",
            Self::Schemathesis => "schemathesis",
            Self::Strict => "strict",
        }
    }

    /// Runs the check with its output in `log`; returns the command it stands for and
    /// whether it passed.
    fn run(&self, stack: &Stack, log: &Path, pg_url: &str) -> anyhow::Result<(String, bool)> {
        let filter = format!("{}::", stack.module);
        let cargo_test = |extra: &[&str]| {
            let mut cmd = cargo();
            cmd.args(["test", "-p", "conformance"])
                .args(extra)
                .args(["--", &filter])
                .env(TEST_DATABASE_VAR, pg_url);
            cmd
        };
        let quick = |dbs: Vec<DbKind>| schemathesis::Args {
            quick: true,
            stacks: vec![stack.name.to_owned()],
            dbs,
            ..schemathesis::Args::default()
        };
        let (command, passed) = match self {
            Self::Tests => {
                let mut cmd = cargo_test(&[]);
                (describe(&cmd), logged(&mut cmd, log)?)
            }
            Self::Schemathesis => (
                format!("cargo xtask schemathesis --quick --stacks {}", stack.name),
                schemathesis::schemathesis(&quick(DbKind::ALL.to_vec()), Some(pg_url))?,
            ),
            Self::Strict => {
                let mut cmd = cargo_test(&["--test", "hostile", "--test", "http_layer"]);
                cmd.env(STRICT_VAR, "1");
                let command = format!("{STRICT_VAR}=1 {}", describe(&cmd));
                (command, logged(&mut cmd, log)?)
            }
        };
        Ok((command, passed))
    }
}

/// Runs `cmd` with its output in `log`; whether it succeeded.
fn logged(cmd: &mut Command, log: &Path) -> anyhow::Result<bool> {
    let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let status = cmd
        .stdout(out.try_clone()?)
        .stderr(out)
        .status()
        .with_context(|| format!("cannot run {}", describe(cmd)))?;
    run::check_interrupted()?;
    Ok(status.success())
}

pub fn reliability(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let logs = harness::cargo::target_dir().join("reliability");
    std::fs::create_dir_all(&logs)?;
    let (pg_url, _cluster) = run::test_postgres()?;
    run::build_test_binaries()?;
    let commit = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        );
    let checks_path = dir.join("checks.jsonl");
    for stack in STACKS {
        for check in Check::ALL {
            let log = logs.join(format!("{}-{}.log", stack.name, check.name()));
            let (command, passed) = check.run(stack, &log, &pg_url)?;
            let verdict = Verdict {
                schema_version: SCHEMA_VERSION,
                stack: stack.name.to_owned(),
                check: check.name().to_owned(),
                passed,
                informational: matches!(check, Check::Strict),
                command,
                commit: commit.clone(),
                date: loadgen::record::utc_now_rfc3339(),
            };
            loadgen::record::append_line(&checks_path, &serde_json::to_string(&verdict)?)?;
            let outcome = if passed {
                "passed".to_owned()
            } else {
                format!("FAILED (see {})", log.display())
            };
            println!("{} {}: {outcome}", stack.name, check.name());
        }
    }
    Ok(())
}
