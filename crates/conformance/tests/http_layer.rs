//! Hostile input, part two: the HTTP layer, below the routes. Every stack gets the same raw
//! requests (percent-encoded and raw non-ASCII targets, conflicting framings, missing and
//! doubled `Host`, pipelining after `Connection: close`, `Expect: 100-continue` on requests
//! that will be refused, method overrides, methods no framework knows, parse errors) and must
//! answer each alike: the same status and, where the contract's JSON error is possible, the
//! same body byte for byte. Where a framework cannot, its registry line names the limitation;
//! the test then checks that the limitation is still there, so that it notices a fix.

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use harness::client::{self, Reply, Request};
use harness::{DbKind, Limitation, Stack};
use shared::{ApiError, ErrorKind};

/// What a raw request must get.
#[derive(Debug, Clone)]
enum Want {
    /// This status and exactly this JSON error sentence.
    Error(u16, String),
    /// This status and exactly this body (a success).
    Body(u16, String),
}

/// A case, and what a stack with a given limitation answers instead.
struct Case {
    what: &'static str,
    raw: Vec<u8>,
    want: Want,
    /// A stack with one of these limitations (the first that applies) answers this status
    /// instead, with an empty body (a lenient parser: its route's own body; a short request
    /// line: the JSON error of that status).
    unless: Vec<(Limitation, u16)>,
}

fn error(kind: ErrorKind) -> String {
    ApiError::of(kind).message().to_owned()
}

fn shared_error(err: Result<impl std::fmt::Debug, ApiError>) -> String {
    err.expect_err("the shared rule refuses this")
        .message()
        .to_owned()
}

fn request(head: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = head.replace('\n', "\r\n").into_bytes();
    raw.extend_from_slice(body);
    raw
}

fn get(target: &str) -> Vec<u8> {
    request(
        &format!("GET {target} HTTP/1.1\nhost: localhost\nconnection: close\n\n"),
        b"",
    )
}

fn cases() -> Vec<Case> {
    let task = r#"{"id":1,"name":"first","done":false}"#.to_owned();
    let no_route = error(ErrorKind::NotFound);
    let not_ascii = shared_error(shared::http_rules::check_head(
        &shared::http_rules::Head::new("/é".as_bytes(), 1, std::iter::empty()),
    ));
    let one_host = shared_error(shared::http_rules::check_head(
        &shared::http_rules::Head::new(b"/", 0, std::iter::empty()),
    ));
    let chunked_only = shared_error(shared::http_rules::check_head(
        &shared::http_rules::Head::new(b"/", 1, [&b"gzip, chunked"[..]].into_iter()),
    ));
    let unreadable = "the request body could not be read".to_owned();
    let not_allowed = error(ErrorKind::MethodNotAllowed);
    let mut cases = vec![
        Case {
            what: "a task id with an escaped +",
            raw: get("/tasks/%2B1"),
            want: Want::Body(200, task.clone()),
            unless: vec![],
        },
        Case {
            what: "a task id with an escaped digit",
            raw: get("/tasks/%31"),
            want: Want::Body(200, task),
            unless: vec![],
        },
        Case {
            what: "an escape standing for a route's own letter",
            raw: get("/%74asks"),
            want: Want::Error(404, no_route.clone()),
            unless: vec![],
        },
        Case {
            what: "an escape inside a route's segment, with an id",
            raw: get("/t%61sks/1"),
            want: Want::Error(404, no_route.clone()),
            unless: vec![],
        },
        Case {
            what: "an escaped non-ASCII path",
            raw: get("/t%C3%A4sks"),
            want: Want::Error(404, no_route),
            unless: vec![],
        },
        Case {
            what: "raw UTF-8 in the path",
            raw: get("/täsks"),
            want: Want::Error(400, not_ascii.clone()),
            unless: vec![(Limitation::ParserRefusesHeadRules, 400)],
        },
        Case {
            what: "raw UTF-8 in the query",
            raw: get("/health?x=é"),
            want: Want::Error(400, not_ascii),
            unless: vec![(Limitation::ParserRefusesHeadRules, 400)],
        },
        Case {
            what: "no Host header",
            raw: request("GET /health HTTP/1.1\nconnection: close\n\n", b""),
            want: Want::Error(400, one_host.clone()),
            unless: vec![(Limitation::ParserRefusesHeadRules, 400)],
        },
        Case {
            what: "two Host headers",
            raw: request(
                "GET /health HTTP/1.1\nhost: a\nhost: b\nconnection: close\n\n",
                b"",
            ),
            want: Want::Error(400, one_host),
            unless: vec![(Limitation::ParserRefusesHeadRules, 400)],
        },
        Case {
            what: "transfer-encoding: gzip, chunked",
            raw: request(
                "POST /tasks HTTP/1.1\nhost: x\ncontent-type: application/json\ntransfer-encoding: gzip, chunked\nconnection: close\n\n",
                b"c\r\n{\"name\":\"a\"}\r\n0\r\n\r\n",
            ),
            want: Want::Error(400, chunked_only),
            unless: vec![(Limitation::ParserRefusesHeadRules, 400)],
        },
        Case {
            what: "a chunk size that is not hexadecimal",
            raw: request(
                "POST /tasks HTTP/1.1\nhost: x\ncontent-type: application/json\ntransfer-encoding: chunked\nconnection: close\n\n",
                b"zz\r\n{\"name\":\"a\"}\r\n0\r\n\r\n",
            ),
            want: Want::Error(400, unreadable),
            unless: vec![],
        },
        Case {
            what: "a form field _method=delete on a POST",
            raw: request(
                "POST /tasks/1 HTTP/1.1\nhost: x\ncontent-type: application/x-www-form-urlencoded\ncontent-length: 14\nconnection: close\n\n",
                b"_method=delete",
            ),
            want: Want::Error(405, not_allowed.clone()),
            unless: vec![],
        },
        Case {
            what: "an X-HTTP-Method-Override header",
            raw: request(
                "POST /tasks/1 HTTP/1.1\nhost: x\nx-http-method-override: DELETE\ncontent-length: 0\nconnection: close\n\n",
                b"",
            ),
            want: Want::Error(405, not_allowed.clone()),
            unless: vec![],
        },
        Case {
            what: "a method no framework knows",
            raw: request("QUERY /tasks HTTP/1.1\nhost: x\nconnection: close\n\n", b""),
            want: Want::Error(405, not_allowed),
            unless: vec![],
        },
    ];
    // Requests the frameworks' own parsers refuse before any application code runs: the same
    // status everywhere, and the contract's JSON error where the stack can give it.
    let malformed = error(ErrorKind::BadRequest);
    cases.push(Case {
        what: "a 16 KiB request target",
        raw: get(&format!("/fibonacci?max=10&pad={}", "a".repeat(16 * 1024))),
        want: Want::Body(200, r#"{"count":6,"last":8}"#.to_owned()),
        unless: vec![(Limitation::ShortRequestLine, 414)],
    });
    cases.push(Case {
        what: "a 100 KiB request target",
        raw: get(&format!("/health?{}", "a".repeat(100 * 1024))),
        want: Want::Error(414, error(ErrorKind::UriTooLong)),
        unless: vec![
            (Limitation::LongUriIs400, 400),
            (Limitation::ParserErrorsHaveEmptyBodies, 414),
        ],
    });
    let many_headers: String = (0..2000).map(|i| format!("x-h{i}: {i}\n")).collect();
    cases.push(Case {
        what: "2,000 headers",
        raw: request(
            &format!("GET /health HTTP/1.1\nhost: x\n{many_headers}\n"),
            b"",
        ),
        want: Want::Error(431, error(ErrorKind::HeadersTooLarge)),
        unless: vec![(Limitation::ParserErrorsHaveEmptyBodies, 431)],
    });
    cases.push(Case {
        what: "a malformed request line",
        raw: request("GET  /health HTTP/1.1\nhost: x\n\n", b""),
        want: Want::Error(400, malformed.clone()),
        unless: vec![
            (Limitation::ParserErrorsHaveEmptyBodies, 400),
            (Limitation::LenientRequestLine, 200),
        ],
    });
    cases.push(Case {
        what: "a header line without a colon",
        raw: request("GET /health HTTP/1.1\nhost: x\nnonsense\n\n", b""),
        want: Want::Error(400, malformed),
        unless: vec![(Limitation::ParserErrorsHaveEmptyBodies, 400)],
    });
    cases
}

/// Checks `reply` against a case; the failure as a line.
fn check(stack: &Stack, case: &Case, reply: &Reply) -> Result<(), String> {
    let Reply::Response(response) = reply else {
        return Err(format!("no response: {reply:?}"));
    };
    if let Some(&(limitation, limited)) = case.unless.iter().find(|(l, _)| stack.excused(*l)) {
        // The limited answer: that status with an empty body; a lenient parser serves the
        // request as sent, with its route's own body; a short request line is refused with
        // the contract's error.
        let still_limited = response.status == limited
            && match limitation {
                Limitation::LenientRequestLine => true,
                Limitation::ShortRequestLine => {
                    response.text() == ApiError::of(ErrorKind::UriTooLong).body()
                }
                _ => response.body.is_empty(),
            };
        return if still_limited {
            Ok(())
        } else {
            Err(format!(
                "answered {} {:?}: the limitation {limitation:?} seems fixed, remove it from its registry line",
                response.status,
                response.text()
            ))
        };
    }
    let (status, body) = match &case.want {
        Want::Error(status, sentence) => (
            *status,
            serde_json::json!({ "error": sentence }).to_string(),
        ),
        Want::Body(status, body) => (*status, body.clone()),
    };
    if response.status != status || response.text() != body {
        return Err(format!(
            "expected {status} {body}, got {} {:?}",
            response.status,
            response.text()
        ));
    }
    Ok(())
}

/// Every case against a fresh server of `stack` on `db`; then its stderr must be empty (no log
/// line per malformed request).
fn http_layer(stack: &Stack, db: DbKind) {
    let server = conformance::start(stack, db);
    let addr = server.addr();
    let created = Request::new("POST", "/tasks")
        .json(r#"{"name":"first"}"#)
        .send(addr)
        .expect("a response");
    assert_eq!(created.status, 201);
    let mut failures = Vec::new();
    for case in cases() {
        let reply = client::exchange(addr, &case.raw, Duration::from_secs(10))
            .unwrap_or_else(|err| panic!("{}: {err}", case.what));
        if let Err(why) = check(stack, &case, &reply) {
            failures.push(format!("{}: {why}", case.what));
        }
    }
    if let Err(why) = pipelining_after_close(stack, addr) {
        failures.push(why);
    }
    if let Err(why) = length_with_chunked(stack, addr) {
        failures.push(format!(
            "content-length with transfer-encoding: chunked: {why}"
        ));
    }
    for (what, status) in [("a 415", 415), ("a 413", 413)] {
        if let Err(why) = refused_without_continue(stack, addr, status) {
            failures.push(format!("Expect: 100-continue on {what}: {why}"));
        }
    }
    let stderr = server.stderr();
    if !stderr.trim().is_empty() {
        failures.push(format!("the server logged: {stderr}"));
    }
    conformance::finish(server, &format!("the HTTP layer on {db}"), &failures);
}

/// `Connection: close` on a request followed, in the same write, by a second request: the
/// server answers the first only and closes (RFC 9112 §9.6).
fn pipelining_after_close(stack: &Stack, addr: SocketAddr) -> Result<(), String> {
    let mut raw = request("GET / HTTP/1.1\nhost: x\nconnection: close\n\n", b"");
    raw.extend(request("GET /health HTTP/1.1\nhost: x\n\n", b""));
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream.write_all(&raw).map_err(|e| e.to_string())?;
    let mut received = Vec::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let _ = std::io::Read::read_to_end(&mut stream, &mut received);
    let responses = String::from_utf8_lossy(&received)
        .matches("HTTP/1.1 ")
        .count();
    if stack.excused(Limitation::PipelinesAfterClose) {
        return if responses == 2 {
            Ok(())
        } else {
            Err(format!(
                "{responses} responses after Connection: close: the limitation PipelinesAfterClose seems fixed"
            ))
        };
    }
    if responses == 1 {
        Ok(())
    } else {
        Err(format!(
            "{responses} responses to a request with Connection: close and one pipelined after it"
        ))
    }
}

/// `Content-Length` together with `Transfer-Encoding: chunked`: the transfer coding wins and the
/// connection is closed after the response (RFC 9112 §6.3), so nothing can be smuggled after it.
fn length_with_chunked(stack: &Stack, addr: SocketAddr) -> Result<(), String> {
    let raw = request(
        "POST /tasks HTTP/1.1\nhost: x\ncontent-type: application/json\ncontent-length: 5\ntransfer-encoding: chunked\n\n",
        b"12\r\n{\"name\":\"chunked\"}\r\n0\r\n\r\n",
    );
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream.write_all(&raw).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut received = Vec::new();
    let closed = std::io::Read::read_to_end(&mut stream, &mut received).is_ok();
    let text = String::from_utf8_lossy(&received);
    if stack.excused(Limitation::RefusesLengthWithChunked) {
        return if text.starts_with("HTTP/1.1 400 ") {
            Ok(())
        } else {
            Err(format!(
                "answered {text:?}: the limitation RefusesLengthWithChunked seems fixed"
            ))
        };
    }
    let created =
        text.starts_with("HTTP/1.1 201 ") && text.ends_with(r#""name":"chunked","done":false}"#);
    if created && closed {
        Ok(())
    } else {
        Err(format!(
            "expected 201 and a close, got {text:?} (closed: {closed})"
        ))
    }
}

/// A request announcing a body with `Expect: 100-continue` that the server refuses from its
/// head alone (415: not JSON; 413: declared over 64 KiB) gets its final status at once, with
/// no `100 Continue` first.
fn refused_without_continue(stack: &Stack, addr: SocketAddr, status: u16) -> Result<(), String> {
    let head = match status {
        415 => {
            "POST /tasks HTTP/1.1\nhost: x\ncontent-type: text/plain\ncontent-length: 12\nexpect: 100-continue\nconnection: close\n\n"
        }
        _ => {
            "POST /tasks HTTP/1.1\nhost: x\ncontent-type: application/json\ncontent-length: 100000\nexpect: 100-continue\nconnection: close\n\n"
        }
    };
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .write_all(&request(head, b""))
        .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    let mut received = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut received);
    let first = String::from_utf8_lossy(&received)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let at_once = first.starts_with(&format!("HTTP/1.1 {status} "));
    if stack.excused(Limitation::ContinuesBeforeRefusing) {
        return if at_once {
            Err("answered at once: the limitation ContinuesBeforeRefusing seems fixed".to_owned())
        } else {
            Ok(())
        };
    }
    if at_once {
        Ok(())
    } else {
        Err(format!("expected {status} at once, got {first:?}"))
    }
}

/// The most a server may take past a timeout of its own before the test calls it missing.
const SLACK: Duration = Duration::from_secs(5);

/// Sends `head` and `sent` bytes of its body, then nothing; returns what arrived within
/// `bound`, and whether the server closed the connection.
fn stall(addr: SocketAddr, sent: &[u8], bound: Duration) -> (String, bool) {
    let head = "POST /tasks HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n";
    let mut stream = TcpStream::connect(addr).expect("a connection");
    stream.write_all(head.as_bytes()).expect("the head is sent");
    stream.write_all(sent).expect("the first bytes are sent");
    read_until_close(&mut stream, bound)
}

/// Reads until the server closes or `bound` passes: what arrived, and whether it closed.
fn read_until_close(stream: &mut TcpStream, bound: Duration) -> (String, bool) {
    stream.set_read_timeout(Some(bound)).expect("a timeout");
    let mut received = Vec::new();
    let closed = std::io::Read::read_to_end(stream, &mut received).is_ok();
    (String::from_utf8_lossy(&received).into_owned(), closed)
}

/// A body that stops arriving: after [`shared::BODY_READ_TIMEOUT`] without a byte the server
/// answers 408 with the JSON error and closes, both when it stalls after 20 bytes and within
/// the first few.
fn slow_bodies(stack: &Stack) {
    let server = conformance::start(stack, DbKind::Sqlite);
    let addr = server.addr();
    let bound = shared::BODY_READ_TIMEOUT + SLACK;
    let timeout = ApiError::of(ErrorKind::RequestTimeout).body();
    let stalls: Vec<_> = [&br#"{"name":"a slow body"#[..], &b"{\"na"[..]]
        .into_iter()
        .map(|sent| std::thread::spawn(move || (sent.len(), stall(addr, sent, bound))))
        .collect();
    let mut failures = Vec::new();
    for handle in stalls {
        let (sent, (received, closed)) = handle.join().expect("a client thread");
        let answered =
            received.starts_with("HTTP/1.1 408 ") && received.ends_with(&timeout) && closed;
        if sent < 14 && stack.excused(Limitation::BodyStartUnbounded) {
            if !received.is_empty() {
                failures.push(format!(
                    "answered a body stalled after {sent} bytes ({received:?}): the limitation BodyStartUnbounded seems fixed"
                ));
            }
        } else if !answered {
            failures.push(format!(
                "a body stalled after {sent} bytes: expected 408 {timeout} and a close within {bound:?}, got {received:?} (closed: {closed})"
            ));
        }
    }
    conformance::finish(server, "slow bodies", &failures);
}

/// A connection is kept alive between requests, and an idle keep-alive connection is closed
/// within the contract's 60 s (every stack that can choose uses [`shared::IDLE_TIMEOUT`]).
fn idle_keep_alive(stack: &Stack) {
    let server = conformance::start(stack, DbKind::Sqlite);
    let mut failures = Vec::new();
    let mut kept = client::KeepAlive::new(server.addr(), Duration::from_secs(10));
    for n in 0..2 {
        match kept.send("GET", "/health", None) {
            Ok(response) if response.status == 200 => {}
            other => failures.push(format!("request {n} on a kept connection got {other:?}")),
        }
    }
    if stack.excused(Limitation::NoKeepAlive) {
        if kept.connects == 1 {
            failures.push(
                "kept a connection for a second request: the limitation NoKeepAlive seems fixed"
                    .to_owned(),
            );
        }
    } else if kept.connects != 1 {
        failures.push(format!(
            "two requests took {} connections: the first was not kept alive",
            kept.connects
        ));
    }
    drop(kept);
    let mut stream = TcpStream::connect(server.addr()).expect("a connection");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .expect("a request");
    let bound = shared::IDLE_TIMEOUT + SLACK;
    let (received, closed) = read_until_close(&mut stream, bound);
    if !received.starts_with("HTTP/1.1 200 ") {
        failures.push(format!("the request got {received:?}"));
    }
    if stack.excused(Limitation::NoIdleTimeout) {
        if closed {
            failures.push(
                "closed an idle connection: the limitation NoIdleTimeout seems fixed".to_owned(),
            );
        }
    } else if !closed {
        failures.push(format!(
            "an idle keep-alive connection still open after {bound:?}"
        ));
    }
    conformance::finish(server, "idle keep-alive connections", &failures);
}

harness::stack_tests! {
    http_layer_sqlite: http_layer(DbKind::Sqlite);
    http_layer_postgres: http_layer(DbKind::Postgres);
    slow_bodies: slow_bodies();
    idle_keep_alive: idle_keep_alive();
}
