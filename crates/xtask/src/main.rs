//! `cargo xtask`: what the scripts do, in Rust (rust-analyzer's pattern). `scripts/test.sh` and
//! `scripts/compare.sh`, the README's two commands, call `test` and `compare`; the rest are the
//! reliability checks they build on. Each subcommand has `--help`.

mod compare;
mod delay;
mod machine;
mod parity;
mod reliability;
mod run;
mod schemathesis;
mod soak;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "The workspace's orchestration: tests, the comparison, reliability verdicts, schemathesis, the soak"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The test command: every test of the workspace, all stacks on SQLite and PostgreSQL
    /// (a throwaway PostgreSQL cluster unless TEST_DATABASE_URL names one), then a bounded
    /// Schemathesis run (skipped when arguments for `cargo test` are given)
    Test {
        /// Arguments for `cargo test` (e.g. `-p conformance -- axum_sqlx::`)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_test_args: Vec<String>,
    },
    /// The comparison: every stack x database x workload x concurrency, into
    /// results/<date>-<host>/ (records, summary.md, plots, reliability verdicts)
    Compare(compare::Args),
    /// Per-stack reliability verdicts (tests, schemathesis, strict) appended to DIR/checks.jsonl
    Reliability {
        /// The results folder
        dir: PathBuf,
    },
    /// Property-based tests of openapi.yaml against every stack and database with Schemathesis
    Schemathesis(schemathesis::Args),
    /// The soak: loadgen's soak workload on every stack and database, then an integrity check of
    /// every acknowledged write
    Soak(soak::Args),
    /// Installs the Python reference stacks (crates/python) into target/python/venv from their
    /// hashed lock file, unless it is up to date (scripts/test.sh and the comparison do this)
    Python,
    /// Describes this machine (as results folders record it in machine.txt)
    Machine,
    /// Is loadgen as fast a client as wrk? Both load GET / of one server in interleaved rounds
    WrkParity(parity::Args),
    /// How exactly the delay proxy adds its round trip (0.25, 1 and 5 ms by default)
    DelayAccuracy(delay::Args),
}

fn main() -> ExitCode {
    run::catch_interrupts();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Test { cargo_test_args } => run::test(&cargo_test_args),
        Command::Compare(args) => compare::compare(&args),
        Command::Reliability { dir } => reliability::reliability(&dir),
        Command::Schemathesis(args) => schemathesis::command(&args),
        Command::Soak(args) => soak::soak(&args),
        Command::WrkParity(args) => parity::parity(&args),
        Command::DelayAccuracy(args) => delay::accuracy(&args),
        Command::Python => harness::python::ensure_reference(),
        Command::Machine => {
            print!("{}", machine::describe());
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
