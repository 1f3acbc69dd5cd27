//! Runs the conformance suite against every server on SQLite and on PostgreSQL, each on a fresh
//! database and a free port, plus start-up failures, shutdown and concurrent SQLite writers.
//! The stacks come from the registry (`harness::stack_tests!`).

use std::net::TcpListener;
use std::time::{Duration, Instant};

use harness::client::Request;
use harness::{DbKind, Stack};
use nix::sys::signal::Signal;

/// Starts `stack` on a fresh `db`, runs the whole suite, and stops it with SIGTERM.
fn conformance(stack: &Stack, db: DbKind) {
    let server = conformance::start(stack, db);
    let expected_line = format!(
        "listening on http://{} (stack={}, db={db}, workers=2, pool=4)",
        server.addr(),
        stack.name,
    );
    assert_eq!(server.line(), expected_line);
    let failures = conformance::checks::run(server.addr(), db, stack);
    conformance::finish(server, &format!("conformance on {db}"), &failures);
}

/// 64 clients create and update at once on SQLite: every request succeeds (never "database is
/// locked").
fn concurrent_writers(stack: &Stack) {
    let server = conformance::start(stack, DbKind::Sqlite);
    let addr = server.addr();
    let clients: Vec<_> = (0..64)
        .map(|client| {
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                for round in 0..10 {
                    let body = format!(r#"{{"name":"client {client} round {round}"}}"#);
                    let created = Request::new("POST", "/tasks")
                        .json(body)
                        .send(addr)
                        .expect("a response");
                    if created.status != 201 {
                        failures.push(format!("create: {} {}", created.status, created.text()));
                        continue;
                    }
                    let location = created.header("location").expect("location").to_owned();
                    let update = Request::new("PUT", &location)
                        .json(format!(r#"{{"name":"updated {client}","done":true}}"#));
                    let updated = update.send(addr).expect("a response");
                    if updated.status != 200 {
                        failures.push(format!("update: {} {}", updated.status, updated.text()));
                    }
                }
                failures
            })
        })
        .collect();
    let mut failures: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client thread"))
        .collect();
    let listed = Request::new("GET", "/tasks?limit=1000")
        .send(addr)
        .expect("a response");
    let count = serde_json::from_slice::<Vec<serde_json::Value>>(&listed.body)
        .expect("a JSON list")
        .len();
    if count != 640 {
        failures.push(format!("{count} tasks listed, not the 640 created"));
    }
    conformance::finish(server, "1,280 concurrent writes", &failures);
}

/// SIGTERM while a request is in flight: the request completes, the server exits 0 within 5 s,
/// and the port is free afterwards. SIGINT on an idle server also exits 0.
fn graceful_shutdown(stack: &Stack) {
    let binary = stack.name;
    let mut server = conformance::start(stack, DbKind::Sqlite);
    let addr = server.addr();
    let in_flight = std::thread::spawn(move || Request::new("GET", "/sleep?ms=1500").send(addr));
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    server.signal(Signal::SIGTERM).expect("signalled");
    let response = in_flight
        .join()
        .expect("client thread")
        .expect("the in-flight request is answered");
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "OK"),
        "{binary}: in-flight request"
    );
    conformance::exits_cleanly(
        &mut server,
        signalled,
        shared::SHUTDOWN_GRACE + Duration::from_secs(1),
    );

    let mut idle = conformance::start(stack, DbKind::Sqlite);
    let signalled = Instant::now();
    idle.signal(Signal::SIGINT).expect("signalled");
    conformance::exits_cleanly(&mut idle, signalled, conformance::STOP_TIMEOUT);
}

/// Bad configuration is one clear line on stderr and a non-zero exit. With a taken port and an
/// unreachable database at once, every stack reports the port: they all bind before they
/// connect.
fn startup_errors(stack: &Stack) {
    let taken = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let taken_addr = taken.local_addr().expect("bound").to_string();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let sqlite = format!("sqlite://{}", dir.path().join("todo.db").display());
    let missing_dir = format!(
        "sqlite://{}",
        dir.path().join("no/such/dir/todo.db").display()
    );
    let unreachable = "postgres://postgres@127.0.0.1:1/todo";
    let cases: [(&[&str], &str); 6] = [
        (
            &["--database-url", "mysql://root@127.0.0.1/todo"],
            "DATABASE_URL",
        ),
        (&["--database-url", "nonsense"], "DATABASE_URL"),
        (
            &["--database-url", unreachable],
            "cannot open the database postgres://postgres@127.0.0.1:1/todo",
        ),
        (
            &["--database-url", &missing_dir],
            "cannot open the database sqlite://",
        ),
        (
            &["--database-url", &sqlite, "--bind", &taken_addr],
            "cannot listen on",
        ),
        (
            &["--database-url", unreachable, "--bind", &taken_addr],
            "cannot listen on",
        ),
    ];
    for (args, expected) in cases {
        conformance::fails_with_one_line(stack, args, expected);
    }
    // Settings the flags' parser refuses: one line too, with the stack's name.
    let prefix = format!("{}: error: invalid value", stack.name);
    for flags in [
        ["--workers", "abc"],
        ["--pool-size", "0"],
        ["--bind", ":99999"],
    ] {
        conformance::fails_with_one_line(stack, &flags, &prefix);
    }
    conformance::fails_with_one_line(stack, &["--database-url", "sqlite://:memory:"], "in-memory");
    // A password never shows, whatever form the URL gives it in (nothing listens on port 1).
    for (url, secret) in [
        ("postgres://me:s3cr3t-a@127.0.0.1:1/todo", "s3cr3t-a"),
        ("postgres://me:s3cr@t-b@127.0.0.1:1/todo", "t-b"),
        (
            "postgres://me@127.0.0.1:1/todo?password=s3cr3t-c",
            "s3cr3t-c",
        ),
        ("postgres://me:s3cr3t-d@[::1/todo", "s3cr3t-d"),
        ("mysql://me:s3cr3t-e@127.0.0.1:1/todo", "s3cr3t-e"),
    ] {
        conformance::fails_keeping_secrets(stack, &["--database-url", url], "", &[secret]);
    }
    let help = harness::server::run_to_exit(
        &conformance::binary(stack),
        &["--help"],
        Duration::from_secs(10),
    )
    .expect("--help exits");
    assert!(
        help.status.success()
            && help.stdout.contains("--database-url")
            && help.stdout.contains("DATABASE_URL")
    );
}

harness::stack_tests! {
    conformance_sqlite: conformance(DbKind::Sqlite);
    conformance_postgres: conformance(DbKind::Postgres);
    concurrent_writers_sqlite: concurrent_writers();
    graceful_shutdown: graceful_shutdown();
    startup_errors: startup_errors();
}
