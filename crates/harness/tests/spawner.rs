//! The server spawner with stand-in "servers": shell scripts that print a start-up line (or
//! fail to), for an in-test HTTP server that answers `/health`.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::DbKind;
use harness::server::ServerSpec;

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// An HTTP server answering every request `200 {}` and closing.
fn health_server() -> SocketAddr {
    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
    harness::client::canned_server(ok, Duration::ZERO)
}

/// A stand-in that prints the start-up line for `addr` and exits with `on_term` on SIGTERM.
fn stand_in(dir: &Path, name: &str, addr: SocketAddr, on_term: u8) -> ServerSpec {
    let body = format!(
        "trap 'exit {on_term}' TERM\necho \"$@\" > {dir}/{name}.args\n\
         echo 'listening on http://{addr} (stack=s, db=sqlite, workers=2, pool=4)'\n\
         while true; do sleep 0.05; done",
        dir = dir.display()
    );
    ServerSpec::new(script(dir, name, &body))
}

#[test]
fn starts_checks_health_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let addr = health_server();
    let spec = stand_in(dir.path(), "clean", addr, 0).args(["--extra"]);
    let mut server = spec.start(DbKind::Sqlite, None).unwrap();
    assert_eq!(server.addr(), addr);
    assert_eq!(server.startup().stack, "s");
    server.wait_healthy(Duration::from_secs(5)).unwrap();
    let args = std::fs::read_to_string(dir.path().join("clean.args")).unwrap();
    assert!(
        args.starts_with("--bind 127.0.0.1:0 --database-url sqlite://"),
        "{args}"
    );
    assert!(args.ends_with("/todo.db --workers 2 --extra\n"), "{args}");
    let db_folder = PathBuf::from(
        args.split_whitespace()
            .nth(3)
            .unwrap()
            .trim_start_matches("sqlite://"),
    );
    let db_folder = db_folder.parent().unwrap().to_owned();
    assert!(db_folder.is_dir());
    let stopped = server.stop(Duration::from_secs(5)).unwrap();
    assert!(stopped.clean(), "{}", stopped.describe());
    assert!(!db_folder.exists(), "the fresh database is removed");
}

/// A wrapper runs in front of the binary, in the same process (the pid is the server's).
#[test]
fn a_wrapper_runs_the_binary_in_its_own_process() {
    let dir = tempfile::tempdir().unwrap();
    let addr = health_server();
    let body = format!(
        "trap 'exit 0' TERM\necho \"$WRAPPED $$\" > {dir}/wrapped.args\n\
         echo 'listening on http://{addr} (stack=s, db=sqlite, workers=1, pool=2)'\n\
         while true; do sleep 0.05; done",
        dir = dir.path().display()
    );
    let spec = ServerSpec {
        wrapper: vec!["env".to_owned(), "WRAPPED=yes".to_owned()],
        ..ServerSpec::new(script(dir.path(), "wrapped", &body))
    };
    let server = spec.start_on("sqlite://x.db").unwrap();
    let seen = std::fs::read_to_string(dir.path().join("wrapped.args")).unwrap();
    assert_eq!(seen.trim(), format!("yes {}", server.pid()));
    let stopped = server.stop(Duration::from_secs(5)).unwrap();
    assert!(stopped.clean(), "{}", stopped.describe());
}

#[test]
fn an_unclean_exit_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let server = stand_in(dir.path(), "unclean", health_server(), 1)
        .start_on("sqlite://x.db")
        .unwrap();
    let stopped = server.stop(Duration::from_secs(5)).unwrap();
    assert!(!stopped.clean());
    assert_eq!(stopped.status.and_then(|s| s.code()), Some(1));
}

/// Servers that never print a start-up line: the error says why, with their stderr.
#[test]
fn start_up_failures_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "broken",
            "echo 'broken: error: port in use' >&2\nexit 3",
            ["port in use", "exited with exit status: 3 before listening"],
        ),
        (
            "silent",
            "echo starting >&2\nexec sleep 30",
            ["starting", "no start-up line within 300ms"],
        ),
        (
            "talkative",
            "echo 'hello there'\nexec sleep 30",
            ["unexpected start-up line \"hello there\"", ""],
        ),
    ];
    for (name, body, expected) in cases {
        let mut spec = ServerSpec::new(script(dir.path(), name, body));
        spec.startup_timeout = Duration::from_millis(300);
        let msg = format!("{:#}", spec.start_on("sqlite://x.db").unwrap_err());
        assert!(expected.iter().all(|e| msg.contains(e)), "{name}: {msg}");
    }
}

#[test]
fn a_server_that_never_gets_healthy_times_out() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens at this address.
    let nowhere = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut server = stand_in(dir.path(), "sick", nowhere, 0)
        .start_on("sqlite://x.db")
        .unwrap();
    let err = server.wait_healthy(Duration::from_millis(300)).unwrap_err();
    assert!(format!("{err:#}").contains("did not answer 200"), "{err:#}");
}
