//! Faults around every server: its PostgreSQL stopped and started again under load (a cluster
//! of the test's own, see `harness::pg`), a SQLite path it cannot write at start-up, its SQLite
//! file deleted while it serves, and SIGTERM while 64 clients are mid-request. The stacks come
//! from the registry.
//!
//! The database tests print their figures (requests, statuses, latencies, recovery time):
//! run with `--nocapture` to see them.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::client::{self, Reply, Request};
use harness::pg::{Cluster, Options, StopMode};
use harness::{DbKind, Limitation, Stack};
use nix::sys::signal::Signal;

/// The longest any request may take, database down or not: the pool's 5 s wait for a
/// connection, plus slack for a loaded machine.
const ANSWER_BOUND: Duration = Duration::from_millis(6500);

/// How soon after the database is back the server must serve normally again.
const RECOVERY_BOUND: Duration = Duration::from_secs(5);

/// The same for a stack whose pool backs off between attempts while the database is down
/// ([`Limitation::PoolBacksOff`]): its next attempt may come that much later.
const BACKED_OFF_RECOVERY_BOUND: Duration = Duration::from_secs(20);

/// How soon `stack` must serve again after the database is back.
fn recovery_bound(stack: &Stack) -> Duration {
    if stack.excused(Limitation::PoolBacksOff) {
        BACKED_OFF_RECOVERY_BOUND
    } else {
        RECOVERY_BOUND
    }
}

/// How long the clients keep asking while the database is down: longer than the pools' 5 s wait
/// for a connection, so that requests made early in the fault are answered while it lasts.
const FAULT_LENGTH: Duration = Duration::from_secs(7);

const CLIENTS: usize = 4;

/// One request as a client saw it.
#[derive(Debug)]
struct Record {
    sent: Instant,
    answered: Instant,
    /// The status, or `closed` / `timeout`.
    outcome: String,
    /// An error answer that is not the contract's JSON error.
    bad_body: bool,
}

/// The request each client makes in turn: every kind of database work, and `/health`.
fn request(client: usize, n: usize) -> Request {
    match (client + n) % 4 {
        0 => Request::new("POST", "/tasks")
            .json(format!(r#"{{"name":"client {client} request {n}"}}"#)),
        1 => Request::new("GET", "/tasks/1"),
        2 => Request::new("GET", "/tasks?limit=5"),
        _ => Request::new("GET", "/health"),
    }
}

fn send(addr: SocketAddr, request: &Request) -> Record {
    let sent = Instant::now();
    let reply = client::exchange(
        addr,
        &request.to_bytes(),
        ANSWER_BOUND + Duration::from_secs(5),
    );
    let answered = Instant::now();
    let (outcome, bad_body) = match reply {
        Ok(Reply::Response(response)) => {
            let json_error = response.header("content-type") == Some("application/json")
                && serde_json::from_slice::<serde_json::Value>(&response.body)
                    .is_ok_and(|v| v["error"].is_string());
            (
                response.status.to_string(),
                response.status >= 400 && !json_error,
            )
        }
        Ok(Reply::Closed { .. }) | Err(_) => ("closed".to_owned(), false),
        Ok(Reply::TimedOut { .. }) => ("timeout".to_owned(), false),
    };
    Record {
        sent,
        answered,
        outcome,
        bad_body,
    }
}

/// The moments of one fault.
#[derive(Debug, Clone, Copy)]
struct Fault {
    stopping: Instant,
    stopped: Instant,
    starting: Instant,
    started: Instant,
    recovered: Instant,
}

/// Stops the database under `CLIENTS` busy clients, keeps them asking for [`FAULT_LENGTH`],
/// starts it again and waits for the server to serve normally. Returns the moments.
fn inject(cluster: &mut Cluster, addr: SocketAddr, mode: StopMode, bound: Duration) -> Fault {
    std::thread::sleep(Duration::from_millis(700));
    let stopping = Instant::now();
    cluster.stop(mode).expect("the database stops");
    let stopped = Instant::now();
    std::thread::sleep(FAULT_LENGTH);
    let starting = Instant::now();
    cluster.start_again().expect("the database starts again");
    let started = Instant::now();
    // Served normally: a create and a health check both succeed.
    let recovered = loop {
        let created = send(
            addr,
            &Request::new("POST", "/tasks").json(r#"{"name":"recovered?"}"#),
        );
        let health = send(addr, &Request::new("GET", "/health"));
        if created.outcome == "201" && health.outcome == "200" {
            break Instant::now();
        }
        if started.elapsed() > bound + ANSWER_BOUND {
            break Instant::now();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(700));
    Fault {
        stopping,
        stopped,
        starting,
        started,
        recovered,
    }
}

/// Restarts the database while no request is in flight, then makes twice the pool's size in
/// requests one after the other: each must succeed, i.e. the pool finds out that its
/// connections died (a check before handing one out) instead of failing a request with each.
fn restart_while_idle(cluster: &mut Cluster, addr: SocketAddr) -> Vec<String> {
    cluster.stop(StopMode::Fast).expect("the database stops");
    cluster.start_again().expect("the database starts again");
    (0..8).map(|n| send(addr, &request(0, n)).outcome).collect()
}

/// PostgreSQL stopped (`fast`, then `immediate`) and started again while clients keep asking:
/// while it is down every answer is a 503 with the JSON error, within [`ANSWER_BOUND`]; once it
/// is back the server serves normally within [`RECOVERY_BOUND`] (see [`recovery_bound`]),
/// without a restart.
fn database_restarts(stack: &Stack) {
    let binary = stack.name;
    let mut cluster = Cluster::start(Options::TESTS).unwrap_or_else(|err| panic!("{err:#}"));
    let server = conformance::start_on(stack, &cluster.url());
    let addr = server.addr();
    let done = Arc::new(AtomicBool::new(false));
    let records = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (done, records) = (Arc::clone(&done), Arc::clone(&records));
            std::thread::spawn(move || {
                let mut n = 0;
                // Bounded in time by `done`, and in count as a safety net.
                while !done.load(Ordering::Relaxed) && n < 100_000 {
                    let record = send(addr, &request(client, n));
                    records.lock().expect("not poisoned").push(record);
                    n += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();
    let faults = [StopMode::Fast, StopMode::Immediate].map(|mode| {
        (
            mode,
            inject(&mut cluster, addr, mode, recovery_bound(stack)),
        )
    });
    done.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("client thread");
    }
    let records = std::mem::take(&mut *records.lock().expect("not poisoned"));
    let idle_restart = restart_while_idle(&mut cluster, addr);
    let stderr = server.stderr();
    let status = conformance::stop(server);

    let mut failures = Vec::new();
    for (mode, fault) in faults {
        // Answered while the database was down: nothing but a 503 is possible. Sent while it
        // was down but answered after it came back: the pool may have waited for it (2xx), or
        // given up (503).
        let mut answered_down = BTreeMap::<&str, usize>::new();
        let mut sent_down = BTreeMap::<&str, usize>::new();
        let mut around = BTreeMap::<&str, usize>::new();
        let mut slowest = Duration::ZERO;
        for record in &records {
            if record.answered < fault.stopping || record.sent > fault.recovered {
                continue;
            }
            let latency = record.answered - record.sent;
            slowest = slowest.max(latency);
            let down = record.answered >= fault.stopped && record.answered <= fault.starting;
            let tally = if down {
                &mut answered_down
            } else if record.sent >= fault.stopped && record.sent <= fault.starting {
                &mut sent_down
            } else {
                &mut around
            };
            *tally.entry(&record.outcome).or_default() += 1;
            let allowed = if down {
                ["503"].as_slice()
            } else {
                ["200", "201", "404", "503"].as_slice()
            };
            if !allowed.contains(&record.outcome.as_str()) || record.bad_body {
                let why = if record.bad_body {
                    "without the JSON error "
                } else {
                    ""
                };
                let when = if down {
                    "answered while the database was down"
                } else {
                    "around the fault"
                };
                failures.push(format!("{mode:?}: {} {why}({when})", record.outcome));
            }
            if latency > ANSWER_BOUND {
                failures.push(format!("{mode:?}: a request took {latency:?}"));
            }
        }
        let recovery = fault.recovered - fault.started;
        let count = |tally: &BTreeMap<&str, usize>| tally.values().sum::<usize>();
        println!(
            "{binary} [{mode:?} stop]: database down {:?}; answered while down: {} {answered_down:?}; sent while down, \
             answered after: {} {sent_down:?}; while stopping/restarting/recovering: {} {around:?}; slowest answer \
             {slowest:?}; serving normally {recovery:?} after PostgreSQL accepted connections again (its restart took {:?})",
            fault.starting - fault.stopped,
            count(&answered_down),
            count(&sent_down),
            count(&around),
            fault.started - fault.starting,
        );
        if count(&answered_down) == 0 {
            failures.push(format!(
                "{mode:?}: no request was answered while the database was down"
            ));
        }
        if recovery > recovery_bound(stack) {
            failures.push(format!(
                "{mode:?}: not serving normally {recovery:?} after the database came back"
            ));
        }
    }
    let after = records
        .iter()
        .filter(|r| r.sent > faults[1].1.recovered)
        .filter(|r| !matches!(r.outcome.as_str(), "200" | "201" | "404"))
        .count();
    if after > 0 {
        failures.push(format!("{after} failed requests after the last recovery"));
    }
    println!(
        "{binary}: {} requests in all; after a restart while idle: {idle_restart:?}",
        records.len()
    );
    if idle_restart
        .iter()
        .any(|outcome| !matches!(outcome.as_str(), "200" | "201"))
    {
        failures.push(format!("after a restart while idle: {idle_restart:?}"));
    }
    failures.dedup();
    assert!(
        failures.is_empty(),
        "{binary}: {} failures:\n{}\nstderr (last 2000 bytes):\n{}",
        failures.len(),
        failures.join("\n"),
        &stderr[stderr.len().saturating_sub(2000)..]
    );
    assert!(!stderr.contains("panicked"), "{binary} panicked: {stderr}");
    assert!(
        status.success(),
        "{binary} exited with {status} after SIGTERM"
    );
    drop(cluster);
}

/// A SQLite path the server cannot create, even as root: one clear line on stderr and a
/// non-zero exit (a missing directory is checked in `servers.rs`).
fn sqlite_unwritable(stack: &Stack) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a folder").expect("a file can be written");
    let cases = [
        format!("sqlite://{}/todo.db", file.display()),
        "sqlite:///proc/todo.db".to_owned(),
        format!("sqlite://{}", dir.path().display()),
    ];
    for url in &cases {
        let args = ["--database-url", url, "--bind", "127.0.0.1:0"];
        let line =
            conformance::fails_with_one_line(stack, &args, "cannot open the database sqlite://");
        println!("{} {url}: {line}", stack.name);
    }
}

/// Another client takes every connection PostgreSQL has left (`max_connections` of a cluster of
/// the test's own) while the server runs: the server still answers 8 concurrent requests, each
/// normally, on the connections its pool opened at start and kept.
fn postgres_exhausted(stack: &Stack) {
    let binary = stack.name;
    let max_connections = 20;
    let options = Options {
        max_connections,
        ..Options::TESTS
    };
    let cluster = Cluster::start(options).unwrap_or_else(|err| panic!("{err:#}"));
    let server = conformance::start_on(stack, &cluster.url());
    let addr = server.addr();
    let created = send(
        addr,
        &Request::new("POST", "/tasks").json(r#"{"name":"kept"}"#),
    );
    assert_eq!(
        created.outcome, "201",
        "{binary}: before the other client came"
    );
    // The other client: sessions that sleep, until the cluster refuses more.
    let hogs: Vec<std::process::Child> = (0..max_connections)
        .filter_map(|_| {
            std::process::Command::new("psql")
                .args([&cluster.url(), "-qAtc", "SELECT pg_sleep(30)"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .ok()
        })
        .collect();
    let full = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        let probe = std::process::Command::new("psql")
            .args([&cluster.url(), "-qAtc", "SELECT 1"])
            .output()
            .expect("psql runs");
        !probe.status.success()
    });
    let clients: Vec<_> = (0..8)
        .map(|n| std::thread::spawn(move || send(addr, &request(0, n)).outcome))
        .collect();
    let outcomes: Vec<String> = clients
        .into_iter()
        .map(|c| c.join().expect("client thread"))
        .collect();
    for mut hog in hogs {
        let _ = hog.kill();
        let _ = hog.wait();
    }
    println!("{binary}: with PostgreSQL out of connections (full: {full}): {outcomes:?}");
    assert!(full, "{binary}: the other client never filled the cluster");
    let failed: Vec<&String> = outcomes
        .iter()
        .filter(|o| !matches!(o.as_str(), "200" | "201"))
        .collect();
    conformance::finish(
        server,
        "PostgreSQL out of connections",
        &failed
            .iter()
            .map(|o| format!("a request got {o}"))
            .collect::<Vec<_>>(),
    );
    drop(cluster);
}

/// How often `sqlite_deleted` deletes the database under a fresh server (`SQLITE_DELETIONS`
/// overrides it: the closing figures of the fix were 500 deletions per stack).
fn deletions() -> usize {
    std::env::var("SQLITE_DELETIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5)
}

/// The SQLite file deleted (its `-wal` and `-shm` left) under a running server that has
/// written to it, then 32 concurrent requests, half of them writes: the server does not crash,
/// acknowledges none of the writes (each would go into the unlinked file and be gone at the
/// next start), answers every request with the contract's 503, and still stops cleanly.
fn sqlite_deleted(stack: &Stack) {
    let binary = stack.name;
    let (mut crashes, mut acknowledged, mut other) = (0, 0, Vec::new());
    let rounds = deletions();
    for round in 0..rounds {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let file = dir.path().join("todo.db");
        let server = conformance::start_on(stack, &format!("sqlite://{}", file.display()));
        let addr = server.addr();
        for n in 0..5 {
            let created = Request::new("POST", "/tasks")
                .json(format!(r#"{{"name":"before {n}"}}"#))
                .send(addr)
                .expect("a response");
            assert_eq!(created.status, 201, "{binary}: a write before the deletion");
        }
        std::fs::remove_file(&file).expect("the database file can be deleted");
        let clients: Vec<_> = (0..32)
            .map(|client| {
                std::thread::spawn(move || {
                    let request = if client % 2 == 0 {
                        Request::new("POST", "/tasks").json(r#"{"name":"after"}"#)
                    } else {
                        Request::new("GET", "/tasks/1")
                    };
                    client::exchange(addr, &request.to_bytes(), Duration::from_secs(10))
                })
            })
            .collect();
        for reply in clients
            .into_iter()
            .map(|c| c.join().expect("client thread"))
        {
            match reply {
                Ok(Reply::Response(r))
                    if r.status == 503 && r.header("content-type") == Some("application/json") => {}
                Ok(Reply::Response(r)) if r.status == 201 => acknowledged += 1,
                other_reply => other.push(format!("round {round}: {other_reply:?}")),
            }
        }
        let mut server = server;
        if !server.is_running() {
            crashes += 1;
            other.push(format!(
                "round {round}: the server died; stderr: {}",
                server.stderr()
            ));
            continue;
        }
        let status = conformance::stop(server);
        if !status.success() {
            other.push(format!("round {round}: exit {status} after SIGTERM"));
        }
    }
    println!(
        "{binary}: {rounds} deletions of the SQLite file under load: {crashes} crashes, \
         {acknowledged} writes acknowledged after the deletion, {} other answers",
        other.len()
    );
    assert!(
        crashes == 0 && acknowledged == 0 && other.is_empty(),
        "{binary}: {crashes} crashes, {acknowledged} acknowledged writes; {:?}",
        &other[..other.len().min(5)]
    );
}

const SLEEPERS: usize = 48;
const SLOW_CREATES: usize = 16;

/// SIGTERM while 64 clients are mid-request: 48 wait in `GET /sleep?ms=1500`, 16 are half-way
/// through sending a `POST /tasks` body, which they finish after the signal. Every one of these
/// accepted requests completes successfully, the server exits 0 within the 5 s grace (plus
/// 0.5 s of slack), and the port is free afterwards.
///
/// A stack that serves one connection per worker ([`Limitation::OneConnectionPerWorker`]) has
/// only its workers' requests in hand: those complete, and the connections still waiting for
/// a worker are closed unanswered (some must be, so that the test notices a fix).
fn shutdown_under_load(stack: &Stack) {
    let binary = stack.name;
    let one_per_worker = stack.excused(Limitation::OneConnectionPerWorker);
    let mut server = conformance::start(stack, DbKind::Sqlite);
    let addr = server.addr();
    let signalled = Arc::new(Mutex::new(None::<Instant>));
    let sleepers: Vec<_> = (0..SLEEPERS)
        .map(|_| {
            std::thread::spawn(move || {
                client::exchange(
                    addr,
                    &Request::new("GET", "/sleep?ms=1500").to_bytes(),
                    Duration::from_secs(10),
                )
            })
        })
        .collect();
    let creates: Vec<_> = (0..SLOW_CREATES)
        .map(|i| {
            let signalled = Arc::clone(&signalled);
            std::thread::spawn(move || -> std::io::Result<Reply> {
                let raw = Request::new("POST", "/tasks")
                    .json(format!(r#"{{"name":"created across shutdown {i}"}}"#))
                    .to_bytes();
                let (first, rest) = raw.split_at(raw.len() - 8);
                let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
                stream.write_all(first)?;
                // Finish the body only once the server has been told to stop.
                let deadline = Instant::now() + Duration::from_secs(5);
                while signalled.lock().expect("not poisoned").is_none() && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                std::thread::sleep(Duration::from_millis(300));
                stream.write_all(rest)?;
                client::read_reply(&mut stream, Duration::from_secs(10))
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let at = Instant::now();
    server.signal(Signal::SIGTERM).expect("signalled");
    *signalled.lock().expect("not poisoned") = Some(at);

    let mut failures = Vec::new();
    let mut unanswered = 0;
    let mut outcome = |reply: std::io::Result<Reply>, want: u16| match reply {
        Ok(Reply::Response(response)) if response.status == want => None,
        reply if one_per_worker && closed_unanswered(&reply) => {
            unanswered += 1;
            None
        }
        other => Some(format!("expected {want}, got {other:?}")),
    };
    failures.extend(
        sleepers
            .into_iter()
            .filter_map(|t| outcome(t.join().expect("client thread"), 200)),
    );
    failures.extend(
        creates
            .into_iter()
            .filter_map(|t| outcome(t.join().expect("client thread"), 201)),
    );
    println!(
        "{binary}: SIGTERM with {} requests in flight: {} failed, {unanswered} closed unanswered",
        SLEEPERS + SLOW_CREATES,
        failures.len()
    );
    if one_per_worker {
        if unanswered == 0 {
            failures.push(
                "every request was answered: the limitation OneConnectionPerWorker seems fixed"
                    .to_owned(),
            );
        } else if unanswered == SLEEPERS + SLOW_CREATES {
            failures.push("no request was answered, not even the workers' own".to_owned());
        }
    }
    assert!(
        failures.is_empty(),
        "{binary}: {} of {} in-flight requests failed, e.g. {:?}; stderr: {}",
        failures.len(),
        SLEEPERS + SLOW_CREATES,
        &failures[..failures.len().min(3)],
        server.stderr()
    );
    // The contract lets in-flight requests run for up to 5 s. Rocket 0.5 waits out its whole
    // grace period whenever a connection was open at the signal, so it exits at 5 s and a
    // few milliseconds; the others exit as soon as the last request is answered.
    let took = conformance::exits_cleanly(
        &mut server,
        at,
        shared::SHUTDOWN_GRACE + Duration::from_millis(500),
    );
    println!("{binary}: exited {took:?} after the signal");
}

/// A connection closed or reset before a byte of its answer came.
fn closed_unanswered(reply: &std::io::Result<Reply>) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    match reply {
        Ok(Reply::Closed { received: 0 }) => true,
        Err(err) => matches!(err.kind(), BrokenPipe | ConnectionAborted | ConnectionReset),
        _ => false,
    }
}

harness::stack_tests! {
    database_restarts_postgres: database_restarts();
    postgres_exhausted: postgres_exhausted();
    sqlite_unwritable: sqlite_unwritable();
    sqlite_deleted: sqlite_deleted();
    shutdown_under_load: shutdown_under_load();
}
