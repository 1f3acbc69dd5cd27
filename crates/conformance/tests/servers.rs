//! Runs the conformance suite against every server on SQLite and on PostgreSQL, each on a fresh
//! database and a free port, plus start-up failures, shutdown and concurrent SQLite writers.
//! Adding a stack is one line in `conformance::for_each_stack!` (src/lib.rs).

use std::net::TcpListener;
use std::time::Duration;

use conformance::http::Request;
use conformance::server::{self, Db, Server};
use nix::sys::signal::Signal;

/// Starts `binary` on a fresh `db`, runs the whole suite, and stops it with SIGTERM.
fn conformance(binary: &str, stack: &str, db: Db) {
    let server = Server::start(binary, db);
    let expected_line = format!(
        "listening on http://{} (stack={stack}, db={}, workers=2, pool=4)",
        server.addr(),
        db.name()
    );
    assert_eq!(server.line(), expected_line);
    let failures = conformance::checks::run(server.addr(), db.name());
    let stderr = server.stderr();
    let status = server.stop();
    assert!(
        failures.is_empty(),
        "{binary} on {}: {} failed checks:\n{}\nstderr:\n{stderr}",
        db.name(),
        failures.len(),
        failures.join("\n")
    );
    assert!(
        status.success(),
        "{binary} exited with {status} after SIGTERM; stderr:\n{stderr}"
    );
}

/// 64 clients create and update at once on SQLite: every request succeeds (never "database is
/// locked").
fn concurrent_writers(binary: &str) {
    let server = Server::start(binary, Db::Sqlite);
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
    let failures: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client thread"))
        .collect();
    let listed = Request::new("GET", "/tasks?limit=1000")
        .send(addr)
        .expect("a response");
    let count = serde_json::from_slice::<Vec<serde_json::Value>>(&listed.body)
        .expect("a JSON list")
        .len();
    let status = server.stop();
    assert!(
        failures.is_empty(),
        "{binary}: {} of 1280 writes failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(count, 640, "{binary}: every acknowledged create is listed");
    assert!(status.success());
}

/// SIGTERM while a request is in flight: the request completes, the server exits 0 within 5 s,
/// and the port is free afterwards. SIGINT on an idle server also exits 0.
fn graceful_shutdown(binary: &str) {
    let mut server = Server::start(binary, Db::Sqlite);
    let addr = server.addr();
    let in_flight = std::thread::spawn(move || Request::new("GET", "/sleep?ms=1500").send(addr));
    std::thread::sleep(Duration::from_millis(300));
    let signalled = std::time::Instant::now();
    server.signal(Signal::SIGTERM);
    let response = in_flight
        .join()
        .expect("client thread")
        .expect("the in-flight request is answered");
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "OK"),
        "{binary}: in-flight request"
    );
    let status = server
        .wait(Duration::from_secs(10))
        .expect("the server exits after SIGTERM");
    assert!(
        status.success(),
        "{binary}: exit status {status} after SIGTERM; stderr: {}",
        server.stderr()
    );
    assert!(
        signalled.elapsed() < Duration::from_secs(6),
        "{binary} took {:?} to stop",
        signalled.elapsed()
    );
    TcpListener::bind(addr)
        .unwrap_or_else(|err| panic!("{binary}: port {addr} still taken after exit: {err}"));

    let mut idle = Server::start(binary, Db::Sqlite);
    idle.signal(Signal::SIGINT);
    let status = idle
        .wait(Duration::from_secs(10))
        .expect("the server exits after SIGINT");
    assert!(
        status.success(),
        "{binary}: exit status {status} after SIGINT"
    );
}

/// Bad configuration is one clear line on stderr and a non-zero exit.
fn startup_errors(binary: &str) {
    let taken = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let taken_addr = taken.local_addr().expect("bound").to_string();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let sqlite = format!("sqlite://{}", dir.path().join("todo.db").display());
    let missing_dir = format!(
        "sqlite://{}",
        dir.path().join("no/such/dir/todo.db").display()
    );
    let cases: [(&[&str], &str); 5] = [
        (
            &["--database-url", "mysql://root@127.0.0.1/todo"],
            "DATABASE_URL",
        ),
        (&["--database-url", "nonsense"], "DATABASE_URL"),
        (
            &["--database-url", "postgres://postgres@127.0.0.1:1/todo"],
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
    ];
    for (args, expected) in cases {
        let exit = server::run_to_exit(binary, args, Duration::from_secs(30));
        assert!(!exit.status.success(), "{binary} {args:?} exited 0");
        let lines: Vec<&str> = exit
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "{binary} {args:?}: expected one line on stderr, got {:?}",
            exit.stderr
        );
        assert!(
            lines[0].contains(expected),
            "{binary} {args:?}: {:?} does not mention {expected:?}",
            lines[0]
        );
        assert!(
            exit.stdout.is_empty(),
            "{binary} {args:?} printed {:?} on stdout",
            exit.stdout
        );
    }
    let help = server::run_to_exit(binary, &["--help"], Duration::from_secs(10));
    assert!(
        help.status.success()
            && help.stdout.contains("--database-url")
            && help.stdout.contains("DATABASE_URL")
    );
}

macro_rules! stacks {
    ($($module:ident: $binary:literal as $stack:literal;)*) => {$(
        mod $module {
            #[test]
            fn conformance_sqlite() {
                super::conformance($binary, $stack, super::Db::Sqlite);
            }

            #[test]
            fn conformance_postgres() {
                super::conformance($binary, $stack, super::Db::Postgres);
            }

            #[test]
            fn concurrent_writers_sqlite() {
                super::concurrent_writers($binary);
            }

            #[test]
            fn graceful_shutdown() {
                super::graceful_shutdown($binary);
            }

            #[test]
            fn startup_errors() {
                super::startup_errors($binary);
            }
        }
    )*};
}

conformance::for_each_stack!(stacks);
