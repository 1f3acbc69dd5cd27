//! `cargo bench`: each stack × endpoint, one request at a time over one keep-alive connection
//! (the sequential, milliseconds-per-operation view), on SQLite in a temporary folder, each
//! server on a free port. Filter as usual: `cargo bench -- axum-sqlx/read`.
//! The concurrency sweeps and PostgreSQL live in `scripts/compare.sh`.

use std::time::Duration;

use criterion::{BatchSize, Criterion};
use harness::DbKind;
use harness::client::KeepAlive;
use harness::server::ServerSpec;

/// Tasks created before measuring, so reads, updates and lists hit a populated table.
const SEEDED: i64 = 1000;

fn ok(connection: &mut KeepAlive, method: &str, path: &str, body: Option<&[u8]>, status: u16) {
    let response = connection
        .send(method, path, body)
        .expect("the server answers");
    assert_eq!(
        response.status,
        status,
        "{method} {path}: {}",
        response.text()
    );
}

fn bench_stack(c: &mut Criterion, binary: &std::path::Path, stack: &str) {
    let server = ServerSpec::new(binary)
        .start(DbKind::Sqlite, None)
        .unwrap_or_else(|err| panic!("{stack}: {err:#}"));
    let mut conn = KeepAlive::new(server.addr(), Duration::from_secs(10));
    for i in 0..SEEDED {
        ok(
            &mut conn,
            "POST",
            "/tasks",
            Some(format!(r#"{{"name":"seed {i}"}}"#).as_bytes()),
            201,
        );
    }
    let mut group = c.benchmark_group(stack);
    group.bench_function("hello", |b| b.iter(|| ok(&mut conn, "GET", "/", None, 200)));
    group.bench_function("health", |b| {
        b.iter(|| ok(&mut conn, "GET", "/health", None, 200))
    });
    group.bench_function("fibonacci", |b| {
        b.iter(|| ok(&mut conn, "GET", "/fibonacci", None, 200))
    });
    let mut next = 0;
    let mut id = || {
        next = next % SEEDED + 1;
        next
    };
    group.bench_function("read", |b| {
        b.iter(|| ok(&mut conn, "GET", &format!("/tasks/{}", id()), None, 200))
    });
    group.bench_function("list", |b| {
        b.iter(|| ok(&mut conn, "GET", "/tasks?limit=20&offset=100", None, 200))
    });
    let update = br#"{"name":"updated","done":true}"#;
    group.bench_function("update", |b| {
        b.iter(|| {
            ok(
                &mut conn,
                "PUT",
                &format!("/tasks/{}", id()),
                Some(update),
                200,
            )
        })
    });
    group.bench_function("create", |b| {
        b.iter(|| ok(&mut conn, "POST", "/tasks", Some(br#"{"name":"new"}"#), 201))
    });
    // Each delete needs a task of its own: created in the (unmeasured) set-up.
    let mut setup = KeepAlive::new(server.addr(), Duration::from_secs(10));
    group.bench_function("delete", |b| {
        b.iter_batched(
            || {
                let created = setup
                    .send("POST", "/tasks", Some(br#"{"name":"doomed"}"#))
                    .expect("created");
                created.header("location").expect("a location").to_owned()
            },
            |location| ok(&mut conn, "DELETE", &location, None, 204),
            BatchSize::SmallInput,
        )
    });
    group.finish();
    let stopped = server
        .stop(Duration::from_secs(10))
        .unwrap_or_else(|err| panic!("{stack}: {err:#}"));
    assert!(
        stopped.clean(),
        "{stack} did not shut down cleanly: {}",
        stopped.describe()
    );
}

fn main() {
    let binaries = benches::server_binaries();
    // About 4.5 s per benchmark: 4 stacks x 8 endpoints stay well inside 10 minutes.
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args();
    for (stack, binary) in &binaries {
        bench_stack(&mut c, binary, stack.name);
    }
    c.final_summary();
}
