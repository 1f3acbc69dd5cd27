//! The black-box conformance suite ([`checks`]): given a running server's address, it checks
//! every row of the API contract over real sockets, byte for byte where the contract says so.
//! `tests/` runs it, and the reliability tests, against every stack of the registry
//! ([`harness::STACKS`]) on SQLite and PostgreSQL; this file holds what those tests share:
//! starting a stack's test build on a fresh database, stopping it, and start-up failures.

pub mod checks;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use harness::server::{Server, ServerSpec, Stopped};
use harness::{DbKind, Limitation, Stack};

/// How long a stopped server may take to exit: the contract's 5 s grace, with room to spare.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The body `stack` must answer for a request the shared parser refuses with `expected`: its
/// exact JSON, or `None` (any JSON error of that status) for the parser's own sentences on a
/// stack whose JSON parser words them ([`Limitation::OwnJsonSentences`]).
pub fn expected_error_body(stack: &Stack, expected: &shared::ApiError) -> Option<String> {
    let parser_sentence = expected
        .message()
        .starts_with("the request body is not valid JSON")
        || expected.message().starts_with("invalid task: ");
    (!(parser_sentence && stack.excused(Limitation::OwnJsonSentences))).then(|| expected.body())
}

/// The stack's server of the tests' own profile (`target/debug/server-...`, or a Python
/// stack's console script).
pub fn binary(stack: &Stack) -> PathBuf {
    harness::cargo::test_executable(stack).unwrap_or_else(|err| panic!("{err:#}"))
}

/// Starts `stack` on a fresh `db` (PostgreSQL: in the cluster of `TEST_DATABASE_URL`), port 0,
/// two workers, with `args` after the standard flags.
pub fn start_with(stack: &Stack, db: DbKind, args: &[&str]) -> Server {
    let admin = match db {
        DbKind::Sqlite => None,
        DbKind::Postgres => {
            Some(harness::db::test_admin_url().unwrap_or_else(|err| panic!("{err:#}")))
        }
    };
    ServerSpec::new(binary(stack))
        .args(args.iter().copied())
        .start(db, admin.as_deref())
        .unwrap_or_else(|err| panic!("{} on {db}: {err:#}", stack.name))
}

/// Starts `stack` on a fresh `db`, port 0, two workers.
pub fn start(stack: &Stack, db: DbKind) -> Server {
    start_with(stack, db, &[])
}

/// Starts `stack` on the database at `url`, which the caller owns.
pub fn start_on(stack: &Stack, url: &str) -> Server {
    ServerSpec::new(binary(stack))
        .start_on(url)
        .unwrap_or_else(|err| panic!("{}: {err:#}", stack.name))
}

/// Sends SIGTERM and returns the exit status; panics if the server is still running
/// [`STOP_TIMEOUT`] later.
pub fn stop(server: Server) -> ExitStatus {
    stopped(server)
        .status
        .expect("a stopped server has a status")
}

/// Sends SIGTERM and returns how the server stopped, its last words on stderr included; panics
/// if it is still running [`STOP_TIMEOUT`] later.
fn stopped(server: Server) -> Stopped {
    let name = server.name().to_owned();
    let stopped = server
        .stop(STOP_TIMEOUT)
        .unwrap_or_else(|err| panic!("{name}: {err:#}"));
    assert!(
        stopped.status.is_some(),
        "{name} did not exit within {STOP_TIMEOUT:?} of SIGTERM; stderr:\n{}",
        stopped.stderr
    );
    stopped
}

/// Stops `server` and checks a test's outcome: no `failures` (listed one per line in the
/// panic), no panic on the server's stderr, and a clean exit on SIGTERM.
pub fn finish(server: Server, what: &str, failures: &[String]) {
    let name = server.name().to_owned();
    let stopped = stopped(server);
    let stderr = &stopped.stderr;
    assert!(
        failures.is_empty(),
        "{name}: {what}: {} failures:\n{}\nstderr:\n{stderr}",
        failures.len(),
        failures.join("\n")
    );
    assert!(!stderr.contains("panicked"), "{name} panicked: {stderr}");
    assert!(
        stopped.clean(),
        "{name} did not stop cleanly on SIGTERM ({}); stderr:\n{stderr}",
        stopped.describe()
    );
}

/// After SIGTERM or SIGINT was sent at `signalled`: the server exits 0 within `bound` of the
/// signal, and its port is free afterwards. Returns how long it took.
pub fn exits_cleanly(server: &mut Server, signalled: Instant, bound: Duration) -> Duration {
    let name = server.name().to_owned();
    let addr = server.addr();
    let status = server.wait(STOP_TIMEOUT);
    let took = signalled.elapsed();
    let status =
        status.unwrap_or_else(|| panic!("{name} still running {STOP_TIMEOUT:?} after the signal"));
    assert!(
        status.success(),
        "{name}: exit status {status} after the signal; stderr: {}",
        server.stderr()
    );
    assert!(took < bound, "{name} took {took:?} to stop");
    TcpListener::bind(addr)
        .unwrap_or_else(|err| panic!("{name}: port {addr} still taken after exit: {err}"));
    took
}

/// Runs `stack` with `args` until it exits on its own and checks that it failed the way the
/// contract says bad configuration fails: a non-zero exit, nothing on stdout and exactly one
/// line on stderr, which mentions `expected` and nothing of any `secret`. Returns that line.
/// Without a `--bind` in `args` it listens on port 0, not the default 8000, so that tests
/// running at once never take each other's port.
pub fn fails_with_one_line(stack: &Stack, args: &[&str], expected: &str) -> String {
    fails_keeping_secrets(stack, args, expected, &[])
}

/// [`fails_with_one_line`], and the line shows none of `secrets`.
pub fn fails_keeping_secrets(
    stack: &Stack,
    args: &[&str],
    expected: &str,
    secrets: &[&str],
) -> String {
    let binary = binary(stack);
    let mut args = args.to_vec();
    if !args.contains(&"--bind") {
        args.extend(["--bind", "127.0.0.1:0"]);
    }
    let exit = harness::server::run_to_exit(&binary, &args, Duration::from_secs(30))
        .unwrap_or_else(|err| panic!("{err:#}"));
    let name = stack.name;
    assert!(!exit.status.success(), "{name} {args:?} exited 0");
    let lines: Vec<&str> = exit
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{name} {args:?}: expected one line on stderr, got {:?}",
        exit.stderr
    );
    assert!(
        lines[0].contains(expected),
        "{name} {args:?}: {:?} does not mention {expected:?}",
        lines[0]
    );
    assert!(
        exit.stdout.is_empty(),
        "{name} {args:?} printed {:?} on stdout",
        exit.stdout
    );
    for secret in secrets {
        assert!(
            !exit.stderr.contains(secret),
            "{name} {args:?} shows the password {secret:?}: {:?}",
            lines[0]
        );
    }
    lines[0].to_owned()
}
