//! A short soak of every server on SQLite and PostgreSQL: 64 keep-alive connections run the
//! mixed workload for 3 s, then every acknowledged write is checked. `scripts/soak.sh` runs the
//! same driver for 60 s at 256 connections.

use std::time::Duration;

use conformance::server::Db;
use conformance::soak::{self, Options};

fn short_soak(stack: &str, binary: &str, db: Db) {
    let options = Options {
        duration: Duration::from_secs(3),
        connections: 64,
        timeout: Duration::from_secs(30),
    };
    let report = soak::run(stack, binary, db, options);
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert!(
        report.counts.acked_creates > 0 && report.counts.acked_deletes > 0,
        "the load did too little: {report}"
    );
}

macro_rules! stacks {
    ($($module:ident: $binary:literal as $stack:literal;)*) => {$(
        mod $module {
            #[test]
            fn soak_sqlite() {
                super::short_soak($stack, $binary, super::Db::Sqlite);
            }

            #[test]
            fn soak_postgres() {
                super::short_soak($stack, $binary, super::Db::Postgres);
            }
        }
    )*};
}

conformance::for_each_stack!(stacks);
