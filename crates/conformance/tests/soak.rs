//! A short soak of every stack on SQLite and PostgreSQL: loadgen's `soak` workload (the mixed
//! workload with every client writing tasks of its own and every answer checked byte for byte)
//! at 64 keep-alive connections for 3 s, then every acknowledged write read back.
//! `cargo xtask soak` runs the same workload for 60 s at 256 connections.

use std::time::Duration;

use harness::server::ServerSpec;
use harness::{DbKind, Stack};
use loadgen::engine::LoadConfig;
use loadgen::measure::{self, MeasureOptions, TargetSpec};
use loadgen::record::Provenance;
use loadgen::workload::{Workload, WorkloadKind};

fn short_soak(stack: &Stack, db: DbKind) {
    let opts = MeasureOptions {
        load: LoadConfig {
            workload: Workload::new(WorkloadKind::Soak),
            connections: 64,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(3),
            timeout: Duration::from_secs(30),
            ..LoadConfig::default()
        },
        threads: 2,
        ..MeasureOptions::default()
    };
    let admin = match db {
        DbKind::Sqlite => None,
        DbKind::Postgres => Some(harness::db::test_admin_url().unwrap_or_else(|e| panic!("{e:#}"))),
    };
    let target = TargetSpec::Spawn {
        server: ServerSpec::new(conformance::binary(stack)),
        db,
        pg_admin_url: admin,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let measured = runtime
        .block_on(measure::measure(&opts, &target, &Provenance::default()))
        .unwrap_or_else(|err| panic!("{} on {db}: {err:#}", stack.name));
    let summary = measure::summarize(&measured.record);
    println!("{summary}");
    let results = &measured.record.results;
    let integrity = results.integrity.as_ref().expect("a soak checks integrity");
    assert_eq!(results.errors_total, 0, "{summary}");
    assert!(integrity.holds(), "{summary}");
    assert!(
        integrity.acked_creates > 0 && integrity.acked_deletes > 0,
        "the load did too little: {summary}"
    );
    assert_eq!(results.clean_shutdown, Some(true), "{summary}");
    assert!(
        measured.server_stderr.trim().is_empty(),
        "{} wrote to stderr: {}",
        stack.name,
        measured.server_stderr
    );
}

harness::stack_tests! {
    soak_sqlite: short_soak(DbKind::Sqlite);
    soak_postgres: short_soak(DbKind::Postgres);
}
