//! Hostile input against every server (SQLite): oversized and lying bodies, deep nesting,
//! invalid UTF-8, huge numbers, nulls, duplicate keys, oversized headers, a client that sends
//! its headers forever (slowloris) and 2,000 idle connections. After each input the server
//! answers what the contract says (the shared crate's exact JSON error for application-level
//! errors; a 4xx or a closed connection for connection-level refusals), never a 5xx, and still
//! answers `GET /health` with 200. The stacks come from the registry (`harness::stack_tests!`).

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use harness::client::{self, Reply, Request};
use harness::{DbKind, Limitation, Stack};
use shared::input;

/// What a hostile request must get.
#[derive(Debug, Clone)]
enum Expect {
    /// This status; for an error, exactly this JSON body (the shared crate's sentence).
    Exact(u16, Option<String>),
    /// This status and the contract's JSON error, in the stack's own sentence
    /// ([`Limitation::OwnJsonSentences`]).
    JsonError(u16),
    /// Refused at the connection level: any 4xx, or the connection closed without a response.
    Refused,
    /// Whatever the framework's own limits say, except a 5xx: a 2xx/4xx answer or a close.
    Not5xx,
}

/// The shared parser's answer for a `POST /tasks` body (the servers must give exactly that, or
/// its status and their own sentence where [`conformance::expected_error_body`] says so;
/// [`shared_parser_follows_the_contract`] holds the parser to the contract's status).
fn post_expect(stack: &Stack, body: &[u8]) -> Expect {
    match input::parse_new_task(body) {
        Ok(_) => Expect::Exact(201, None),
        Err(err) => match conformance::expected_error_body(stack, &err) {
            Some(body) => Expect::Exact(err.status(), Some(body)),
            None => Expect::JsonError(err.status()),
        },
    }
}

fn raw_post(body: &[u8], extra_headers: &str) -> Vec<u8> {
    let mut raw = format!(
        "POST /tasks HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-type: application/json\r\n{extra_headers}\r\n"
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

fn sized_post(body: &[u8]) -> Vec<u8> {
    raw_post(body, &format!("content-length: {}\r\n", body.len()))
}

fn chunked_post(body: &[u8]) -> Vec<u8> {
    let mut chunked = Vec::new();
    for chunk in body.chunks(16 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    raw_post(&chunked, "transfer-encoding: chunked\r\n")
}

fn get_with_headers(headers: &str) -> Vec<u8> {
    format!("GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n{headers}\r\n")
        .into_bytes()
}

/// `GET /health` with `n` small headers.
fn many_headers(n: usize) -> Vec<u8> {
    get_with_headers(
        &(0..n)
            .map(|i| format!("x-h{i}: {i}\r\n"))
            .collect::<String>(),
    )
}

/// Every hostile request of the table: (what it is, the bytes on the wire, what it must get).
fn cases(stack: &Stack) -> Vec<(String, Vec<u8>, Expect)> {
    let too_large = Expect::Exact(
        413,
        Some(shared::ApiError::of(shared::ErrorKind::PayloadTooLarge).body()),
    );
    let valid = br#"{"name":"fits","done":true}"#;
    let mut cases: Vec<(String, Vec<u8>, Expect)> = vec![
        // Bodies over the 64 KiB limit, announced or not, and lying content-lengths.
        (
            "70 KiB body with content-length".into(),
            sized_post(&vec![b' '; 70 * 1024]),
            too_large.clone(),
        ),
        (
            "4 MiB body with content-length".into(),
            sized_post(&vec![b'['; 4 << 20]),
            too_large.clone(),
        ),
        (
            "100,000 × '[' (over the limit before it is too deep)".into(),
            sized_post("[".repeat(100_000).as_bytes()),
            too_large.clone(),
        ),
        (
            "1 MiB chunked body".into(),
            chunked_post(&vec![b' '; 1 << 20]),
            too_large.clone(),
        ),
        (
            "content-length 1 TB, 27-byte body".into(),
            raw_post(valid, "content-length: 1000000000000\r\n"),
            too_large.clone(),
        ),
        (
            "content-length 2^63-1, 27-byte body".into(),
            raw_post(valid, "content-length: 9223372036854775807\r\n"),
            too_large,
        ),
        (
            "content-length beyond u64, 27-byte body".into(),
            raw_post(valid, "content-length: 99999999999999999999999\r\n"),
            Expect::Refused,
        ),
        (
            "negative content-length".into(),
            raw_post(valid, "content-length: -1\r\n"),
            Expect::Refused,
        ),
        (
            "two different content-lengths".into(),
            raw_post(valid, "content-length: 27\r\ncontent-length: 5\r\n"),
            Expect::Refused,
        ),
        // Headers over every framework's size limits.
        (
            "one 100 KiB header".into(),
            get_with_headers(&format!("x-big: {}\r\n", "a".repeat(100 * 1024))),
            Expect::Not5xx,
        ),
        (
            "one 1 MiB header".into(),
            get_with_headers(&format!("x-big: {}\r\n", "a".repeat(1 << 20))),
            Expect::Refused,
        ),
        ("200 headers".into(), many_headers(200), Expect::Not5xx),
        ("2,000 headers".into(), many_headers(2000), Expect::Refused),
        // Invalid UTF-8 and junk outside the body.
        (
            "invalid UTF-8 in a header value".into(),
            b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-bad: \xff\xfe\r\n\r\n"
                .to_vec(),
            Expect::Not5xx,
        ),
        (
            "raw 0xFF in the path".into(),
            b"GET /tasks/\xff HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
            Expect::Refused,
        ),
        (
            "not HTTP at all".into(),
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n".to_vec(),
            Expect::Refused,
        ),
    ];
    let bad_id = input::parse_id("x").expect_err("not an id").body();
    cases.push((
        "percent-encoded invalid UTF-8 as the task id".into(),
        b"GET /tasks/%FF%FE HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
        Expect::Exact(400, Some(bad_id)),
    ));

    for (what, body, _) in json_bodies() {
        let expect = post_expect(stack, &body);
        cases.push((format!("POST {what}"), sized_post(&body), expect.clone()));
        cases.push((format!("POST {what}, chunked"), chunked_post(&body), expect));
    }
    cases
}

/// JSON bodies within the size limit, each with the status the contract gives it.
fn json_bodies() -> Vec<(&'static str, Vec<u8>, u16)> {
    let deep = |open: &str, n: usize| open.repeat(n);
    vec![
        ("60,000 × '['", deep("[", 60_000).into_bytes(), 400),
        (
            "60,000 × '{\"a\":'",
            deep("{\"a\":", 12_000).into_bytes(),
            400,
        ),
        (
            "name: 60,000 × '['",
            format!("{{\"name\":{}", deep("[", 60_000)).into_bytes(),
            400,
        ),
        (
            "20,000-deep array, closed, as the name",
            format!("{{\"name\":{}{}}}", deep("[", 20_000), deep("]", 20_000)).into_bytes(),
            422,
        ),
        (
            "30,000-deep array, closed, under an unknown key",
            format!(
                "{{\"name\":\"deep\",\"x\":{}{}}}",
                deep("[", 30_000),
                deep("]", 30_000)
            )
            .into_bytes(),
            201,
        ),
        (
            "unknown key: 1e400",
            br#"{"name":"huge elsewhere","x":1e400}"#.to_vec(),
            201,
        ),
        (
            "invalid UTF-8 in the name",
            b"{\"name\":\"\xff\"}".to_vec(),
            400,
        ),
        (
            "UTF-8-encoded surrogate in the name",
            b"{\"name\":\"\xed\xa0\x80\"}".to_vec(),
            400,
        ),
        (
            "overlong UTF-8 in the name",
            b"{\"name\":\"\xc0\xaf\"}".to_vec(),
            400,
        ),
        (
            "invalid UTF-8 in an unknown key",
            b"{\"name\":\"a\",\"\xff\":1}".to_vec(),
            400,
        ),
        (
            "lone surrogate escape in the name",
            br#"{"name":"\ud800"}"#.to_vec(),
            422,
        ),
        ("done: 1e400", br#"{"name":"a","done":1e400}"#.to_vec(), 422),
        (
            "done: 99999999999999999999999",
            br#"{"name":"a","done":99999999999999999999999}"#.to_vec(),
            422,
        ),
        ("name: 1e400", br#"{"name":1e400}"#.to_vec(), 422),
        (
            "name: -99999999999999999999999",
            br#"{"name":-99999999999999999999999}"#.to_vec(),
            422,
        ),
        ("name: 1e-400", br#"{"name":1e-400}"#.to_vec(), 422),
        (
            "name: 400-digit number",
            format!("{{\"name\":{}}}", "9".repeat(400)).into_bytes(),
            422,
        ),
        ("null body", b"null".to_vec(), 422),
        ("name: null", br#"{"name":null}"#.to_vec(), 422),
        ("done: null", br#"{"name":"a","done":null}"#.to_vec(), 422),
        (
            "unknown key: null",
            br#"{"name":"nulls elsewhere","x":null}"#.to_vec(),
            201,
        ),
        ("NUL in the name", br#"{"name":"a\u0000"}"#.to_vec(), 422),
        (
            "duplicate name",
            br#"{"name":"a","name":"b"}"#.to_vec(),
            422,
        ),
        (
            "duplicate done",
            br#"{"name":"a","done":true,"done":false}"#.to_vec(),
            422,
        ),
        (
            "duplicate unknown key",
            br#"{"name":"dup","x":1,"x":2}"#.to_vec(),
            201,
        ),
        ("NaN", br#"{"name":"a","done":NaN}"#.to_vec(), 400),
        (
            "BOM before the object",
            b"\xef\xbb\xbf{\"name\":\"a\"}".to_vec(),
            400,
        ),
    ]
}

/// The shared parser, which every server uses, gives each hostile body the contract's status.
#[test]
fn shared_parser_follows_the_contract() {
    let wrong: Vec<String> = json_bodies()
        .into_iter()
        .filter_map(|(what, body, status)| {
            let got =
                input::parse_new_task(&body).map_or_else(|err| err.to_string(), |_| "201".into());
            (!got.starts_with(&status.to_string()))
                .then(|| format!("{what}: expected {status}, got {got}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Sends every case, checks its answer and that `/health` still answers 200 after it, with
/// the server on `db`.
fn hostile_requests(stack: &Stack, db: DbKind) {
    let binary = stack.name;
    let server = conformance::start(stack, db);
    let addr = server.addr();
    let mut failures = Vec::new();
    let cases = cases(stack);
    let started = Instant::now();
    for (what, raw, expect) in &cases {
        let reply = client::exchange(addr, raw, Duration::from_secs(15))
            .expect("the server accepts connections");
        if let Err(why) = check(&reply, expect) {
            failures.push(format!("{what}: {why}"));
        }
        if !matches!(expect, Expect::Exact(..) | Expect::JsonError(_)) {
            let outcome = match &reply {
                Reply::Response(response) => response.status.to_string(),
                other => format!("{other:?}"),
            };
            println!("{binary}: {what}: {outcome}");
        }
        if let Err(why) = health(addr) {
            failures.push(format!("after {what}: {why}"));
        }
    }
    println!(
        "{binary} on {db:?}: {} hostile requests in {:?}, {} failures",
        cases.len(),
        started.elapsed(),
        failures.len()
    );
    conformance::finish(server, "hostile requests", &failures);
}

fn check(reply: &Reply, expect: &Expect) -> Result<(), String> {
    let status = match reply {
        Reply::Response(response) => Some(response.status),
        Reply::Closed { .. } => None,
        Reply::TimedOut { received } => {
            return Err(format!("no answer within 15 s ({received} bytes received)"));
        }
    };
    if status.is_some_and(|s| s >= 500) {
        return Err(format!(
            "a {} (never a 5xx): {reply:?}",
            status.unwrap_or_default()
        ));
    }
    match (expect, reply) {
        (Expect::Exact(want, body), Reply::Response(response)) => {
            if response.status != *want {
                return Err(format!(
                    "expected {want}, got {} {:?}",
                    response.status,
                    response.text()
                ));
            }
            if let Some(body) = body
                && (response.body != body.as_bytes()
                    || response.header("content-type") != Some("application/json"))
            {
                return Err(format!(
                    "expected {want} {body}, got {:?} ({:?})",
                    response.text(),
                    response.header("content-type")
                ));
            }
            Ok(())
        }
        (Expect::JsonError(want), Reply::Response(response)) => {
            if response.status != *want {
                return Err(format!(
                    "expected {want}, got {} {:?}",
                    response.status,
                    response.text()
                ));
            }
            conformance::checks::json_error(response)
                .map_err(|why| format!("expected {want} with the JSON error: {why}"))
        }
        (Expect::Exact(want, _) | Expect::JsonError(want), Reply::Closed { received }) => Err(
            format!("expected {want}, but the connection closed after {received} bytes"),
        ),
        (Expect::Refused, Reply::Response(response)) if !(400..500).contains(&response.status) => {
            Err(format!(
                "expected a 4xx or a closed connection, got {}",
                response.status
            ))
        }
        _ => Ok(()),
    }
}

/// `GET /health` answers 200 within 5 s.
fn health(addr: SocketAddr) -> Result<(), String> {
    let started = Instant::now();
    match client::exchange(
        addr,
        &Request::new("GET", "/health").to_bytes(),
        Duration::from_secs(5),
    ) {
        Ok(Reply::Response(response)) if response.status == 200 => Ok(()),
        Ok(other) => Err(format!(
            "GET /health gave {other:?} after {:?}",
            started.elapsed()
        )),
        Err(err) => Err(format!("GET /health failed: {err}")),
    }
}

/// The longest a server may take to drop a client that never finishes its headers: the shared
/// header-read timeout, plus slack for a loaded machine.
const SLOW_CLIENT_BOUND: Duration = Duration::from_secs(shared::HEADER_READ_TIMEOUT.as_secs() + 5);

/// How many clients [`slow_headers`] sends its headers slowly.
const SLOW_CLIENTS: usize = 3;

/// Slowloris: three clients trickle header lines (one every 500 ms) and never end them. Each
/// connection is closed (or refused with a 4xx) within [`SLOW_CLIENT_BOUND`]; meanwhile other
/// clients are answered within a second.
///
/// Rocket 0.5 cannot bound that time ([`Limitation::NoHeaderReadTimeout`]: it builds hyper's
/// connection itself with `header_read_timeout(None)` and no timer, and its `Config` has no
/// setting for it). For such a stack the test checks the rest (other clients are served
/// promptly) and that the limitation is still there, so it fails once the framework can.
///
/// A stack that serves one connection per worker ([`Limitation::OneConnectionPerWorker`])
/// takes the slow clients in turns of one per worker, each turn a header timeout long, and
/// serves other clients only between turns: for it the bound grows by a timeout per turn
/// after the first, and other clients must have waited (so the test notices a fix).
fn slow_headers(stack: &Stack) {
    let binary = stack.name;
    let server = conformance::start(stack, DbKind::Sqlite);
    let addr = server.addr();
    let one_per_worker = stack.excused(Limitation::OneConnectionPerWorker);
    let bound = if one_per_worker {
        let workers = harness::server::StartupLine::parse(server.line())
            .ok()
            .and_then(|line| line.workers)
            .expect("the start-up line names its workers");
        let turns = SLOW_CLIENTS.div_ceil(workers) as u32;
        SLOW_CLIENT_BOUND + shared::HEADER_READ_TIMEOUT * (turns - 1)
    } else {
        SLOW_CLIENT_BOUND
    };
    let started = Instant::now();
    let slow: Vec<_> = (0..SLOW_CLIENTS)
        .map(|i| {
            std::thread::spawn(move || -> Result<Duration, String> {
                let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
                stream
                    .set_read_timeout(Some(Duration::from_millis(500)))
                    .map_err(|e| e.to_string())?;
                stream
                    .write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\n")
                    .map_err(|e| e.to_string())?;
                let opened = Instant::now();
                for line in 0.. {
                    if opened.elapsed() > bound {
                        return Err(format!(
                            "slow client {i} still connected after {:?}",
                            opened.elapsed()
                        ));
                    }
                    if stream
                        .write_all(format!("x-slow-{line}: {line}\r\n").as_bytes())
                        .is_err()
                    {
                        return Ok(opened.elapsed());
                    }
                    match client::read_reply(&mut stream, Duration::from_millis(500)) {
                        Ok(Reply::TimedOut { .. }) => {}
                        Ok(Reply::Closed { .. }) | Err(_) => return Ok(opened.elapsed()),
                        Ok(Reply::Response(response)) if (400..500).contains(&response.status) => {
                            return Ok(opened.elapsed());
                        }
                        Ok(Reply::Response(response)) => {
                            return Err(format!(
                                "slow client {i} got {} before finishing its headers",
                                response.status
                            ));
                        }
                    }
                }
                unreachable!("the loop only ends by returning")
            })
        })
        .collect();
    let mut worst = Duration::ZERO;
    let mut answered = 0;
    while slow.iter().any(|t| !t.is_finished())
        && started.elapsed() < bound + Duration::from_secs(5)
    {
        let asked = Instant::now();
        let response = Request::new("GET", "/health")
            .send(addr)
            .expect("other clients are served");
        assert_eq!(
            response.status, 200,
            "{binary}: /health during the slow clients"
        );
        worst = worst.max(asked.elapsed());
        answered += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    let results: Vec<Result<Duration, String>> = slow
        .into_iter()
        .map(|t| t.join().expect("slow client thread"))
        .collect();
    println!(
        "{binary}: slow clients dropped after {results:?}; {answered} other requests served meanwhile, slowest {worst:?}"
    );
    health(addr).unwrap_or_else(|why| panic!("{binary}: {why}"));
    assert!(conformance::stop(server).success());
    if one_per_worker {
        assert!(
            worst >= Duration::from_secs(1),
            "{binary} served other clients within {worst:?} during the slow clients: remove OneConnectionPerWorker from its registry line"
        );
        println!(
            "{binary}: KNOWN LIMITATION: one connection per worker; other clients waited up to {worst:?}"
        );
    } else {
        assert!(
            worst < Duration::from_secs(1),
            "{binary}: other clients waited up to {worst:?} during the slow clients"
        );
    }
    for result in results {
        if stack.excused(Limitation::NoHeaderReadTimeout) {
            assert!(
                result.is_err(),
                "{binary} now drops slow clients ({result:?}): remove NoHeaderReadTimeout from its registry line"
            );
            println!(
                "{binary}: KNOWN LIMITATION: no header-read timeout; the slow client was never dropped"
            );
        } else {
            result.unwrap_or_else(|why| panic!("{binary}: {why}"));
        }
    }
}

/// Raises this process's soft limit on open files to its hard limit (the server inherits it).
fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
        .expect("the soft limit can be raised to the hard one");
    hard
}

const IDLE_CONNECTIONS: usize = 2000;

/// 2,000 connections opened and left idle at once: the server keeps answering new requests
/// promptly while they are open, and still stops cleanly on SIGTERM with them open. A stack
/// that serves one connection per worker ([`Limitation::OneConnectionPerWorker`]) serves no
/// new client meanwhile (checked, so that the test notices a fix), and still stops cleanly.
fn idle_connections(stack: &Stack) {
    let binary = stack.name;
    let limit = raise_fd_limit();
    assert!(
        limit > 2 * IDLE_CONNECTIONS as u64 + 100,
        "RLIMIT_NOFILE hard limit {limit} is too low for this test"
    );
    let mut server = conformance::start(stack, DbKind::Sqlite);
    let addr = server.addr();
    let started = Instant::now();
    let mut idle = Vec::with_capacity(IDLE_CONNECTIONS);
    for i in 0..IDLE_CONNECTIONS {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .unwrap_or_else(|err| panic!("{binary}: idle connection {i} failed: {err}"));
        idle.push(stream);
    }
    let opened = started.elapsed();
    if stack.excused(Limitation::OneConnectionPerWorker) {
        // Every worker waits for the head of an idle connection, and the idle ones queued
        // behind come first: a new client is not served while they are open.
        let reply = client::exchange(
            addr,
            &Request::new("GET", "/health").to_bytes(),
            Duration::from_secs(2),
        );
        assert!(
            matches!(reply, Ok(Reply::TimedOut { received: 0 })),
            "{binary} served a new client with {IDLE_CONNECTIONS} idle connections open ({reply:?}): remove OneConnectionPerWorker from its registry line"
        );
        println!(
            "{binary}: KNOWN LIMITATION: one connection per worker; no new client served with {IDLE_CONNECTIONS} idle connections open"
        );
        stops_with_idle_connections(&mut server);
        drop(idle);
        return;
    }
    let mut worst = Duration::ZERO;
    for round in 0..10 {
        let asked = Instant::now();
        let body = format!(r#"{{"name":"while idle {round}"}}"#);
        let created = Request::new("POST", "/tasks")
            .json(body)
            .send(addr)
            .expect("a new client is served");
        assert_eq!(
            created.status, 201,
            "{binary}: create with {IDLE_CONNECTIONS} idle connections open"
        );
        health(addr).unwrap_or_else(|why| {
            panic!("{binary}: with {IDLE_CONNECTIONS} idle connections open: {why}")
        });
        worst = worst.max(asked.elapsed());
    }
    // Some of the idle connections still work as connections (the server may have timed out
    // idle ones already; then they are closed, which is fine).
    let mut served_on_idle = 0;
    for stream in idle.iter_mut().take(20) {
        if stream
            .write_all(&Request::new("GET", "/health").to_bytes())
            .is_ok()
            && let Ok(Reply::Response(response)) =
                client::read_reply(stream, Duration::from_secs(5))
        {
            assert!(
                response.status < 500,
                "{binary}: {} on a long-idle connection",
                response.status
            );
            served_on_idle += 1;
        }
    }
    println!(
        "{binary}: {IDLE_CONNECTIONS} idle connections opened in {opened:?}; slowest create+health meanwhile {worst:?}; \
         {served_on_idle}/20 idle connections later served a request"
    );
    assert!(
        worst < Duration::from_secs(2),
        "{binary}: new requests took up to {worst:?} with idle connections open"
    );
    stops_with_idle_connections(&mut server);
    drop(idle);
}

/// SIGTERM with the idle connections still open (as a load balancer keeps them): the server
/// still exits 0 within the grace period.
fn stops_with_idle_connections(server: &mut harness::server::Server) {
    let signalled = Instant::now();
    server
        .signal(nix::sys::signal::Signal::SIGTERM)
        .expect("signalled");
    let took = conformance::exits_cleanly(
        server,
        signalled,
        shared::SHUTDOWN_GRACE + Duration::from_secs(1),
    );
    println!(
        "{}: SIGTERM with {IDLE_CONNECTIONS} idle connections open: exited after {took:?}",
        server.name()
    );
}

harness::stack_tests! {
    hostile_requests_sqlite: hostile_requests(DbKind::Sqlite);
    hostile_requests_postgres: hostile_requests(DbKind::Postgres);
    slow_headers: slow_headers();
    idle_connections: idle_connections();
}
