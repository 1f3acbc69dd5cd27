//! Engine behaviour against scripted test servers: coordinated omission, error classes,
//! timeouts, connect failures and running out of delete ids.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Handler, Reply, serve};
use loadgen::engine::{self, ErrorCounts, LoadConfig, LoadModel, LoadResult, Target};
use loadgen::workload::{SeededIds, Workload, WorkloadKind};

const STALL: Duration = Duration::from_millis(300);

/// Answers `Hello, World!`, except that request number `at` freezes the whole server for
/// `STALL`: every request that arrives during the freeze waits until it ends.
fn stalling_server(at: u64) -> Handler {
    let until: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    Arc::new(move |n, _, _| {
        let mut u = until.lock().unwrap();
        if n == at {
            *u = Some(Instant::now() + STALL);
        }
        let delay_until = u.filter(|t| *t > Instant::now());
        Reply {
            delay_until,
            ..Reply::new(200, "Hello, World!")
        }
    })
}

fn fixed(
    workload: WorkloadKind,
    model: LoadModel,
    connections: usize,
    requests: u64,
) -> LoadConfig {
    LoadConfig {
        workload: Workload::new(workload),
        model,
        connections,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(60),
        requests: Some(requests),
        timeout: Duration::from_secs(5),
        check_every: 1,
        late_threshold: Duration::from_millis(1),
    }
}

async fn run(cfg: &LoadConfig, addr: std::net::SocketAddr) -> LoadResult {
    let ids = Arc::new(SeededIds::default());
    engine::run(cfg, &Target::from_addr(addr), ids, Instant::now())
        .await
        .expect("run")
}

fn at_least(r: &LoadResult, d: Duration) -> u64 {
    r.histogram.count_between(d.as_micros() as u64, u64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_sees_the_stall_closed_loop_hides_it() {
    // Closed loop, one connection: the stall delays exactly one request.
    let addr = serve(stalling_server(100)).await;
    let closed = run(&fixed(WorkloadKind::Hello, LoadModel::Closed, 1, 600), addr).await;
    assert_eq!(
        (closed.requests, closed.ok),
        (600, 600),
        "{:?}",
        closed.errors
    );
    assert!(
        closed.latency.max >= 290_000,
        "closed max {} µs should include the stall",
        closed.latency.max
    );
    assert!(
        closed.latency.p90 < 100_000,
        "closed p90 {} µs should not show the stall",
        closed.latency.p90
    );
    assert!(
        at_least(&closed, Duration::from_millis(100)) <= 2,
        "only the stalled request is slow in closed loop"
    );

    // Open loop at 500 req/s: ~150 requests are due during the 300 ms stall, and each is
    // measured from its scheduled time, so many see most of the remaining stall.
    let addr = serve(stalling_server(100)).await;
    let open = run(
        &fixed(
            WorkloadKind::Hello,
            LoadModel::Open { rate: 500.0 },
            64,
            1000,
        ),
        addr,
    )
    .await;
    assert_eq!((open.requests, open.ok), (1000, 1000), "{:?}", open.errors);
    assert!(
        open.latency.p99 >= 200_000,
        "open p99 {} µs should reflect the stall",
        open.latency.p99
    );
    let slow = at_least(&open, Duration::from_millis(100));
    assert!(
        slow >= 50,
        "open loop: {slow} requests >= 100 ms; expected the ~100 scheduled in the stall's first 200 ms"
    );
    assert!(open.achieved_rate > 0.0 && open.target_rate == Some(500.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_counts_late_sends_when_no_connection_is_free() {
    // One connection and a server that stalls: requests due during the stall cannot be sent on time.
    let addr = serve(stalling_server(20)).await;
    let r = run(
        &fixed(WorkloadKind::Hello, LoadModel::Open { rate: 200.0 }, 1, 200),
        addr,
    )
    .await;
    assert_eq!(r.requests, 200);
    assert!(
        r.late_sends >= 20,
        "{} late sends; ~60 were due during the stall",
        r.late_sends
    );
    assert!(r.latency.max >= 250_000, "max {} µs", r.latency.max);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_counted_by_class_exactly() {
    // n % 3 == 0 → 500; else n % 5 == 0 → 404; else n % 7 == 0 → malformed body; else ok.
    let handler: Handler = Arc::new(|n, _, _| match n {
        n if n % 3 == 0 => Reply::new(500, r#"{"error":"boom"}"#),
        n if n % 5 == 0 => Reply::new(404, r#"{"error":"no such task"}"#),
        n if n % 7 == 0 => Reply::new(200, "Hello, Wrld!"),
        _ => Reply::new(200, "Hello, World!"),
    });
    let addr = serve(handler).await;
    let r = run(&fixed(WorkloadKind::Hello, LoadModel::Closed, 4, 105), addr).await;
    let expected = ErrorCounts {
        status_5xx: 35,
        status_4xx: 14,
        body_mismatch: 8,
        ..ErrorCounts::default()
    };
    assert_eq!(r.errors, expected);
    assert_eq!(r.requests, 105);
    assert_eq!(r.ok, 48);
    // Error responses still count toward latency, not toward ok throughput.
    assert_eq!(r.histogram.len(), 105);
    assert!(r.throughput < r.achieved_rate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexpected_success_status_and_sampling() {
    // A create answered 200 instead of 201 is an error of its own class.
    let addr = serve(Arc::new(|_, _, _| {
        Reply::new(200, r#"{"id":1,"name":"x","done":false}"#)
    }))
    .await;
    let r = run(&fixed(WorkloadKind::Create, LoadModel::Closed, 1, 10), addr).await;
    assert_eq!(r.errors.status_other, 10);
    // Bodies are checked on a sample only: every 4th response per connection.
    let addr = serve(Arc::new(|_, _, _| Reply::new(200, "nope"))).await;
    let mut cfg = fixed(WorkloadKind::Hello, LoadModel::Closed, 1, 16);
    cfg.check_every = 4;
    let r = run(&cfg, addr).await;
    assert_eq!((r.errors.body_mismatch, r.ok), (4, 12));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_counted_and_the_connection_replaced() {
    let handler: Handler = Arc::new(|n, _, _| Reply {
        delay_until: (n == 3).then(|| Instant::now() + Duration::from_secs(3)),
        ..Reply::new(200, "Hello, World!")
    });
    let addr = serve(handler).await;
    let mut cfg = fixed(WorkloadKind::Hello, LoadModel::Closed, 1, 10);
    cfg.timeout = Duration::from_millis(300);
    let r = run(&cfg, addr).await;
    assert_eq!(
        r.errors,
        ErrorCounts {
            timeout: 1,
            ..ErrorCounts::default()
        }
    );
    assert_eq!(r.ok, 9);
    assert!(
        r.latency.max >= 300_000,
        "a timed-out request is recorded at (at least) the timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_a_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let r = run(&fixed(WorkloadKind::Hello, LoadModel::Closed, 2, 20), port).await;
    assert_eq!(
        r.errors,
        ErrorCounts {
            connect: 20,
            ..ErrorCounts::default()
        }
    );
    assert_eq!((r.requests, r.ok), (20, 0));
    assert!(r.histogram.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_stops_gracefully_when_ids_run_out() {
    let saw_bad_path = Arc::new(AtomicBool::new(false));
    let flag = saw_bad_path.clone();
    let handler: Handler = Arc::new(move |_, method, path| {
        if method != "DELETE" || !path.starts_with("/tasks/") {
            flag.store(true, Ordering::SeqCst);
        }
        Reply::new(204, "")
    });
    let addr = serve(handler).await;
    let cfg = LoadConfig {
        workload: Workload::new(WorkloadKind::Delete),
        connections: 4,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(20),
        ..LoadConfig::default()
    };
    let ids = Arc::new(SeededIds::new(Vec::new(), (1..=50).collect()));
    let r = engine::run(&cfg, &Target::from_addr(addr), ids, Instant::now())
        .await
        .unwrap();
    assert!(r.ids_exhausted);
    assert_eq!((r.requests, r.ok, r.errors.total()), (50, 50, 0));
    assert!(
        r.measured_seconds < 15.0,
        "the run ends when the ids run out, not at --duration"
    );
    assert!(!saw_bad_path.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_closed_loop_with_warmup_measures_only_the_window() {
    let addr = serve(Arc::new(|_, _, _| Reply::new(200, "Hello, World!"))).await;
    let cfg = LoadConfig {
        connections: 2,
        warmup: Duration::from_millis(200),
        duration: Duration::from_millis(500),
        ..LoadConfig::default()
    };
    let r = engine::run(
        &cfg,
        &Target::from_addr(addr),
        Arc::new(SeededIds::default()),
        Instant::now(),
    )
    .await
    .unwrap();
    assert!(r.requests > 0 && r.requests == r.ok);
    assert!(r.measured_seconds >= 0.5, "window {}", r.measured_seconds);
    assert_eq!(r.histogram.len(), r.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_records_created_ids() {
    let handler: Handler = Arc::new(|n, method, path| {
        assert_eq!((method, path), ("POST", "/tasks"));
        Reply::new(
            201,
            &format!(r#"{{"id":{},"name":"task","done":false}}"#, n + 1000),
        )
    });
    let addr = serve(handler).await;
    let mut ids = engine::seed_tasks(&Target::from_addr(addr), 100, 4, Duration::from_secs(5))
        .await
        .unwrap();
    ids.sort_unstable();
    assert_eq!(ids, (1001..=1100).collect::<Vec<_>>());
    // A server that does not create is a clear seeding error.
    let addr = serve(Arc::new(|_, _, _| Reply::new(415, r#"{"error":"x"}"#))).await;
    let err = engine::seed_tasks(&Target::from_addr(addr), 5, 2, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("415"), "{err:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_connections_are_replaced_without_errors() {
    // Every answer says `connection: close`: each request needs a new connection, none fails.
    let handler: Handler = Arc::new(|_, _, _| Reply {
        close: Some(true),
        ..Reply::new(200, "Hello, World!")
    });
    let addr = serve(handler).await;
    let r = run(&fixed(WorkloadKind::Hello, LoadModel::Closed, 2, 50), addr).await;
    assert_eq!(
        (r.requests, r.ok, r.errors.total()),
        (50, 50, 0),
        "{:?}",
        r.errors
    );

    // The server drops each connection silently right after answering, as an expired
    // keep-alive timer would; at 20 req/s the client sees the close before its next send.
    let handler: Handler = Arc::new(|_, _, _| Reply {
        close: Some(false),
        ..Reply::new(200, "Hello, World!")
    });
    let addr = serve(handler).await;
    let r = run(
        &fixed(WorkloadKind::Hello, LoadModel::Open { rate: 20.0 }, 1, 10),
        addr,
    )
    .await;
    assert_eq!(
        (r.requests, r.ok, r.errors.total()),
        (10, 10, 0),
        "{:?}",
        r.errors
    );
}
