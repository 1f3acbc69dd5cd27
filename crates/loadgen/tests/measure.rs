//! One measurement end to end with a stand-in "server": a shell script that prints the
//! start-up line for an in-test HTTP server, records its arguments, and exits 0 on SIGTERM.
//! (The spawner's failure cases are tested in `harness`.)

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{Reply, serve};
use harness::DbKind;
use harness::server::ServerSpec;
use loadgen::engine::{LoadConfig, LoadModel};
use loadgen::measure::{self, MeasureOptions, TargetSpec};
use loadgen::record::Provenance;
use loadgen::workload::{Workload, WorkloadKind};

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn spec(binary: PathBuf) -> ServerSpec {
    ServerSpec {
        workers: 1,
        pool_size: Some(2),
        startup_timeout: Duration::from_secs(10),
        ..ServerSpec::new(binary)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measures_a_spawned_server_and_stops_it_cleanly() {
    let addr = serve(Arc::new(|_, _, path| match path {
        "/health" => Reply::new(200, r#"{"status":"ok","db":"sqlite"}"#),
        _ => Reply::new(200, "Hello, World!"),
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let args_file = dir.path().join("args.txt");
    let binary = script(
        dir.path(),
        "fake-server",
        &format!(
            "echo \"$@\" > {args}\ntrap 'exit 0' TERM\necho 'listening on http://{addr} (stack=fake-stack, db=sqlite, workers=1, pool=2)'\nwhile true; do sleep 0.05; done",
            args = args_file.display()
        ),
    );
    let opts = MeasureOptions {
        load: LoadConfig {
            workload: Workload::new(WorkloadKind::Hello),
            model: LoadModel::Closed,
            connections: 2,
            warmup: Duration::ZERO,
            requests: Some(200),
            ..LoadConfig::default()
        },
        threads: 2,
        ..MeasureOptions::default()
    };
    let target = TargetSpec::Spawn {
        server: spec(binary),
        db: DbKind::Sqlite,
        pg_admin_url: None,
    };
    let rec = measure::measure(&opts, &target, &Provenance::collect())
        .await
        .unwrap()
        .record;
    assert_eq!(rec.stack, "fake-stack");
    assert_eq!(rec.db, Some(DbKind::Sqlite));
    assert_eq!((rec.results.requests, rec.results.ok), (200, 200));
    assert_eq!(rec.results.clean_shutdown, Some(true));
    let server = rec
        .results
        .server
        .expect("loadgen knows the pid of a server it started");
    assert!(server.cpu_seconds.is_some_and(|c| c >= 0.0));
    assert!(server.peak_rss_bytes.is_some_and(|b| b > 0));
    assert!(server.vmhwm_bytes.is_some_and(|b| b > 0));
    // The window's machine noise and series are recorded; the histogram decodes to the counts.
    let noise = rec.results.noise;
    assert!(noise.core_seconds > 0.0, "{noise:?}");
    assert!(noise.steal_seconds >= 0.0 && noise.other_cpu_seconds >= 0.0);
    assert_eq!(rec.results.series.interval_ms, 100);
    assert_eq!(rec.results.series.ok.iter().sum::<u64>(), 200);
    let histogram = loadgen::record::decode_histogram(&rec.results.histogram).unwrap();
    assert_eq!(histogram.len(), 200);
    assert_eq!(
        histogram.value_at_quantile(0.99),
        rec.results.latency_us.p99
    );
    assert_eq!(
        (rec.server_workers, rec.server_pool_size),
        (Some(1), Some(2))
    );
    let args = std::fs::read_to_string(&args_file).unwrap();
    assert!(
        args.starts_with("--bind 127.0.0.1:0 --database-url sqlite://"),
        "{args}"
    );
    assert!(
        args.contains("/todo.db --workers 1 --pool-size 2"),
        "{args}"
    );
    // The fresh SQLite directory is gone after the run.
    let db_path = args
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_start_matches("sqlite://")
        .to_owned();
    assert!(!Path::new(&db_path).parent().unwrap().exists(), "{db_path}");
}
