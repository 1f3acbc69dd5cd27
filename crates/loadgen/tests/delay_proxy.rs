//! `loadgen delay-proxy`, the process a comparison puts between a server and PostgreSQL: it
//! names itself so its CPU counts as the database's, forwards bytes intact, never sooner than
//! the round trip asked for, and goes when its parent drops it. (The proxy's own behaviour is
//! tested in `harness::delay`; how exact its delay is, `cargo xtask delay-accuracy` measures.)

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::delay::{MAX_WRITE_COST, PROCESS_NAME, ProxyProcess};

#[test]
fn the_proxy_process_forwards_with_its_delay_and_goes_with_its_parent() {
    let upstream = harness::delay::echo_server().unwrap();
    let mut program = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    program.args([
        "delay-proxy",
        &format!("--upstream={upstream}"),
        "--rtt-ms=3",
    ]);
    let proxy = ProxyProcess::spawn(program).unwrap();
    let pid = proxy.pid();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), PROCESS_NAME);

    let mut stream = TcpStream::connect(proxy.addr()).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut echoed = [0u8; 5];
    for round in 0..5u8 {
        let message = [round, 1, 2, 3, 4];
        let sent = Instant::now();
        stream.write_all(&message).unwrap();
        stream.read_exact(&mut echoed).unwrap();
        assert_eq!(echoed, message);
        // Each way, a write may start up to half of MAX_WRITE_COST before its due time.
        assert!(sent.elapsed() >= Duration::from_millis(3) - MAX_WRITE_COST);
    }

    drop(proxy);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the proxy process outlived its handle"
    );
}
