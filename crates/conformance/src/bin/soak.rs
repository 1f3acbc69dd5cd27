//! The soak driver: the mixed workload at many keep-alive connections on every stack and
//! database, then an integrity check of every acknowledged write (see `conformance::soak`).
//!
//! Run with `scripts/soak.sh` or `cargo run -p conformance --bin soak -- --help` (PostgreSQL
//! needs `TEST_DATABASE_URL`; the servers must be built: `cargo build --workspace --bins`).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use conformance::server::Db;
use conformance::soak::{self, Options, STACKS};

/// Soaks each server with 80% reads, 10% creates, 5% updates, 5% deletes, then checks that
/// every acknowledged write is exactly what the server holds. Exits non-zero on any error.
#[derive(Debug, Parser)]
#[command(name = "soak")]
struct Args {
    /// How long the load runs on each stack and database, in seconds.
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Concurrent keep-alive connections (one client thread each).
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Stacks to soak, comma-separated: stack names (axum-sqlx, axum-diesel, rocket-diesel,
    /// actix-sqlx) or binary names (server-axum, ...). Default: all.
    #[arg(long, value_delimiter = ',')]
    stacks: Vec<String>,
    /// Databases, comma-separated: sqlite, postgres. Default: both.
    #[arg(long, value_delimiter = ',')]
    dbs: Vec<String>,
    /// Per-request timeout (connect, read, write), in seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let stacks: Vec<(&str, &str)> = if args.stacks.is_empty() {
        STACKS.to_vec()
    } else {
        let mut chosen = Vec::new();
        for wanted in &args.stacks {
            match STACKS
                .iter()
                .find(|(stack, binary)| stack == wanted || binary == wanted)
            {
                Some(pair) => chosen.push(*pair),
                None => {
                    eprintln!(
                        "soak: unknown stack {wanted:?}; known: {}",
                        STACKS
                            .iter()
                            .map(|(s, _)| *s)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    return ExitCode::from(2);
                }
            }
        }
        chosen
    };
    let mut dbs = Vec::new();
    for name in if args.dbs.is_empty() {
        vec!["sqlite".to_owned(), "postgres".to_owned()]
    } else {
        args.dbs.clone()
    } {
        match name.as_str() {
            "sqlite" => dbs.push(Db::Sqlite),
            "postgres" => dbs.push(Db::Postgres),
            other => {
                eprintln!("soak: unknown database {other:?}; known: sqlite, postgres");
                return ExitCode::from(2);
            }
        }
    }
    if !(args.duration > 0.0
        && args.duration <= 3600.0
        && args.timeout > 0.0
        && (1..=4096).contains(&args.connections))
    {
        eprintln!(
            "soak: --duration must be in (0, 3600], --timeout > 0, --connections in 1..=4096"
        );
        return ExitCode::from(2);
    }
    let options = Options {
        duration: Duration::from_secs_f64(args.duration),
        connections: args.connections,
        timeout: Duration::from_secs_f64(args.timeout),
    };
    let started = Instant::now();
    let mut failed = Vec::new();
    for (stack, binary) in &stacks {
        for db in &dbs {
            let report = soak::run(stack, binary, *db, options);
            print!("{report}");
            if !report.passed() {
                failed.push(format!("{stack} on {}", db.name()));
            }
        }
    }
    let runs = stacks.len() * dbs.len();
    println!(
        "soak: {} of {runs} passed in {:.0} s",
        runs - failed.len(),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("soak: FAILED: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}
