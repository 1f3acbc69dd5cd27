//! A TCP proxy that puts a network between a server and its database: every chunk of bytes is
//! held for a set one-way delay (plus optional jitter) in each direction before it is passed on,
//! in order. The kernel's `netem` would do this below the sockets; these machines lack it.
//!
//! Each direction of each connection is a reader thread, which stamps every chunk with the time
//! the kernel received it, and a writer thread, which sends it at that time plus the delay.
//! Threads, not async tasks: tokio's timer ticks per millisecond, far too coarse for a 0.25 ms
//! setting. The writer sleeps to shortly before the due time, by a margin learnt from how late
//! its own sleeps wake, then yields until the due time, so the CPU spent waiting stays small;
//! its write starts early by half what its writes take (at most half of [`MAX_WRITE_COST`]),
//! so the bytes land in the peer's socket at about the due time, never sooner than that
//! allowance. `cargo xtask delay-accuracy` measures how close to the setting the added round
//! trip comes. A comparison runs the proxy in a process of its own ([`serve`],
//! [`ProxyProcess`]), so its CPU time is not the load generator's.

use std::io::{self, BufRead as _, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::rng::Rng;

/// What the proxy adds to each direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delay {
    /// Added to every chunk in each direction: half the added round trip.
    pub one_way: Duration,
    /// Each chunk's delay is `one_way` plus a uniform draw in `[-jitter, +jitter]` (never below
    /// zero), and never before the chunk ahead of it: bytes stay in order.
    pub jitter: Duration,
}

impl Delay {
    /// A delay adding `rtt` to every round trip, without jitter.
    pub fn round_trip(rtt: Duration) -> Self {
        Self {
            one_way: rtt / 2,
            jitter: Duration::ZERO,
        }
    }
}

/// The largest chunk read at once.
const CHUNK: usize = 64 * 1024;

/// How early a writer first wakes before a due time, before it has learnt its own lateness.
const INITIAL_MARGIN: Duration = Duration::from_micros(50);

/// The most a writer wakes early (and then yields) before a due time.
const MAX_MARGIN: Duration = Duration::from_micros(500);

/// The most a write's time counts: a write starts at most half of this before its due time.
pub const MAX_WRITE_COST: Duration = Duration::from_micros(20);

/// A running proxy: connections to [`DelayProxy::addr`] are forwarded to the upstream address
/// with the delay. Dropping it closes the listener and every connection.
#[derive(Debug)]
pub struct DelayProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Every open connection, to shut down at the end.
    sockets: Arc<Mutex<Vec<Joined>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl DelayProxy {
    /// Listens on `listen` (port 0 picks a free port) and forwards to `upstream`.
    pub fn start(listen: SocketAddr, upstream: SocketAddr, delay: Delay) -> io::Result<Self> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let sockets = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (stop, sockets) = (Arc::clone(&stop), Arc::clone(&sockets));
            thread::Builder::new()
                .name("delay-accept".into())
                .spawn(move || accept_loop(&listener, upstream, delay, &stop, &sockets))?
        };
        Ok(Self {
            addr,
            stop,
            sockets,
            acceptor: Some(acceptor),
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for joined in self
            .sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            for socket in joined.sockets {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
    }
}

/// A client's connection joined to its upstream one: both sockets, and how many of its two
/// pipes still run (at none it is over, and its sockets are let go).
#[derive(Debug)]
struct Joined {
    sockets: [TcpStream; 2],
    open_pipes: Arc<AtomicUsize>,
}

fn accept_loop(
    listener: &TcpListener,
    upstream: SocketAddr,
    delay: Delay,
    stop: &AtomicBool,
    sockets: &Mutex<Vec<Joined>>,
) {
    let mut seed = 0x5eed_u64;
    for client in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        seed += 1;
        // Connections that have ended give their sockets back.
        sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|j| j.open_pipes.load(Ordering::SeqCst) > 0);
        if let Err(err) = connect(client, upstream, delay, seed, sockets) {
            // The client sees its connection closed, as it would with an unreachable host.
            eprintln!("delay proxy: cannot reach {upstream}: {err}");
        }
    }
}

/// Joins `client` to a new connection to `upstream`, one pipe per direction.
fn connect(
    client: TcpStream,
    upstream: SocketAddr,
    delay: Delay,
    seed: u64,
    sockets: &Mutex<Vec<Joined>>,
) -> io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    for socket in [&client, &server] {
        socket.set_nodelay(true)?;
    }
    let open_pipes = Arc::new(AtomicUsize::new(2));
    sockets
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Joined {
            sockets: [client.try_clone()?, server.try_clone()?],
            open_pipes: Arc::clone(&open_pipes),
        });
    let (to_server, from_server) = (server.try_clone()?, client.try_clone()?);
    pipe(client, to_server, delay, seed, Arc::clone(&open_pipes))?;
    pipe(server, from_server, delay, seed.rotate_left(32), open_pipes)
}

/// A server on a free loopback port that sends every connection its bytes back: the far end
/// the proxy's tests and `cargo xtask delay-accuracy` measure against.
pub fn echo_server() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    thread::Builder::new()
        .name("echo-accept".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_nodelay(true);
                let Ok(mut reader) = stream.try_clone() else {
                    continue;
                };
                let mut writer = stream;
                thread::spawn(move || io::copy(&mut reader, &mut writer));
            }
        })?;
    Ok(addr)
}

/// The first line a proxy process prints; the address follows.
const LISTENING: &str = "delay proxy listening on ";

/// The name a proxy process gives itself, so load generators can count its CPU time with the
/// database's (it stands for the network in front of it) rather than as other processes'.
pub const PROCESS_NAME: &str = "delay-proxy";

/// Runs a proxy in this process until its standard input closes (the body of
/// `loadgen delay-proxy`): names the process [`PROCESS_NAME`], prints the listening line.
pub fn serve(listen: SocketAddr, upstream: SocketAddr, delay: Delay) -> anyhow::Result<()> {
    if let Ok(name) = std::ffi::CString::new(PROCESS_NAME) {
        let _ = nix::sys::prctl::set_name(&name);
    }
    let proxy = DelayProxy::start(listen, upstream, delay)
        .with_context(|| format!("listening on {listen}"))?;
    println!("{LISTENING}{}", proxy.addr());
    io::stdout().flush()?;
    // The parent holds the other end: when it goes, so does the proxy.
    io::copy(&mut io::stdin(), &mut io::sink())?;
    Ok(())
}

/// A proxy in a child process (`program` runs [`serve`]), stopped when dropped.
#[derive(Debug)]
pub struct ProxyProcess {
    child: Child,
    addr: SocketAddr,
}

impl ProxyProcess {
    pub fn spawn(mut program: Command) -> anyhow::Result<Self> {
        let mut child = program
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {program:?}"))?;
        let stdout = child.stdout.take().context("stdout is piped")?;
        let mut line = String::new();
        io::BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix(LISTENING)
            .and_then(|a| a.parse().ok());
        match addr {
            Some(addr) => Ok(Self { child, addr }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("the delay proxy did not start (it printed {line:?})")
            }
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chunk and when it may leave; `None` for the end of the stream.
type Chunk = (Instant, Option<Vec<u8>>);

/// Copies `from` to `to` with the delay: a reader thread and a writer thread, which counts
/// `open_pipes` down when the copy ends.
fn pipe(
    from: TcpStream,
    mut to: TcpStream,
    delay: Delay,
    seed: u64,
    open_pipes: Arc<AtomicUsize>,
) -> io::Result<()> {
    let (send, receive) = mpsc::channel::<Chunk>();
    thread::Builder::new()
        .name("delay-read".into())
        .spawn(move || {
            let mut rng = Rng::new(seed);
            let mut last_due = Instant::now();
            let mut buf = vec![0; CHUNK];
            let mut reader = StampedReader::new(from);
            loop {
                let (read, arrived) = reader.read(&mut buf);
                let due = (arrived + jittered(delay, &mut rng)).max(last_due);
                last_due = due;
                let chunk = match read {
                    Ok(0) | Err(_) => None,
                    Ok(n) => Some(buf[..n].to_vec()),
                };
                let end = chunk.is_none();
                if send.send((due, chunk)).is_err() || end {
                    return;
                }
            }
        })?;
    thread::Builder::new()
        .name("delay-write".into())
        .spawn(move || {
            // Sleeps wake as close to their deadline as the kernel can (the default slack
            // is 50 µs); if it refuses, the margin below absorbs the difference.
            let _ = nix::sys::prctl::set_timerslack(1);
            let mut waiter = Waiter::default();
            for (due, chunk) in receive {
                // The write carries the bytes across the loopback into the peer's socket and
                // wakes the peer: a hop the direct connection does not make. The arrival stamp
                // was taken as the packet entered the kernel's receive path, so about half of
                // such a delivery is already inside the delay; the write starts early by the
                // other half (measured: starting it early by all of it undershoots the
                // setting by as much as not at all overshoots it).
                waiter.wait_until(due.checked_sub(waiter.write_cost / 2).unwrap_or(due));
                let Some(bytes) = chunk else { break };
                let started = Instant::now();
                if to.write_all(&bytes).is_err() {
                    break;
                }
                waiter.wrote(started.elapsed());
            }
            // The peer sees the end of the stream (or the failure) after the delay too.
            let _ = to.shutdown(Shutdown::Write);
            open_pipes.fetch_sub(1, Ordering::SeqCst);
        })?;
    Ok(())
}

/// Reads a socket and says when the bytes arrived: the kernel's receive time (`SO_TIMESTAMPNS`)
/// where it gives one, else the time the read returned. With the kernel's time, the wait for
/// this thread to wake is part of the delay rather than added to it.
struct StampedReader {
    stream: TcpStream,
    stamped: bool,
    control: Vec<u8>,
}

impl StampedReader {
    fn new(stream: TcpStream) -> Self {
        use nix::sys::socket::{setsockopt, sockopt::ReceiveTimestampns};
        let stamped = setsockopt(&stream, ReceiveTimestampns, &true).is_ok();
        Self {
            stream,
            stamped,
            control: nix::cmsg_space!(nix::sys::time::TimeSpec),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> (io::Result<usize>, Instant) {
        use std::os::fd::AsRawFd as _;

        use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
        if !self.stamped {
            let read = self.stream.read(buf);
            return (read, Instant::now());
        }
        let fd = self.stream.as_raw_fd();
        let mut iov = [io::IoSliceMut::new(buf)];
        let received = loop {
            match recvmsg::<()>(fd, &mut iov, Some(&mut self.control), MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => {}
                other => break other,
            }
        };
        let (now, wall) = (Instant::now(), std::time::SystemTime::now());
        match received {
            Ok(message) => {
                let kernel = message.cmsgs().ok().and_then(|mut cmsgs| {
                    cmsgs.find_map(|cmsg| match cmsg {
                        ControlMessageOwned::ScmTimestampns(ts) => Some(Duration::from(ts)),
                        _ => None,
                    })
                });
                // The kernel stamps with the wall clock: how long ago that was, on the
                // monotonic clock (never in the future, never older than a second).
                let arrived = kernel
                    .and_then(|at| {
                        let since = wall.duration_since(std::time::UNIX_EPOCH).ok()?;
                        let age = since.checked_sub(at)?;
                        (age < Duration::from_secs(1)).then(|| now - age)
                    })
                    .unwrap_or(now);
                (Ok(message.bytes), arrived)
            }
            Err(errno) => (Err(errno.into()), now),
        }
    }
}

/// `one_way` plus a uniform draw in `[-jitter, +jitter]`, at least zero.
fn jittered(delay: Delay, rng: &mut Rng) -> Duration {
    let jitter = u64::try_from(delay.jitter.as_nanos()).unwrap_or(u64::MAX / 2);
    if jitter == 0 {
        return delay.one_way;
    }
    let draw = rng.below(2 * jitter + 1);
    if draw >= jitter {
        delay.one_way + Duration::from_nanos(draw - jitter)
    } else {
        delay
            .one_way
            .saturating_sub(Duration::from_nanos(jitter - draw))
    }
}

/// Waits for due times: sleeps to `margin` before one, then yields until it. The margin follows
/// how late the thread's sleeps wake (a moving average), so yielding stays short.
#[derive(Debug)]
struct Waiter {
    margin: Duration,
    /// What a write takes (a moving average, at most [`MAX_WRITE_COST`]).
    write_cost: Duration,
}

impl Default for Waiter {
    fn default() -> Self {
        Self {
            margin: INITIAL_MARGIN,
            write_cost: Duration::ZERO,
        }
    }
}

/// An eighth of each new observation into a moving average.
fn average(old: Duration, new: Duration) -> Duration {
    (old * 7 + new) / 8
}

impl Waiter {
    fn wait_until(&mut self, due: Instant) {
        let now = Instant::now();
        if due > now + self.margin {
            let wake = due - self.margin;
            thread::sleep(wake - now);
            let late = Instant::now().saturating_duration_since(wake);
            // A little headroom above the average for its spread.
            self.margin = average(self.margin, (late + late / 4).min(MAX_MARGIN));
        }
        while Instant::now() < due {
            thread::yield_now();
        }
    }

    fn wrote(&mut self, took: Duration) {
        self.write_cost = average(self.write_cost, took.min(MAX_WRITE_COST));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proxy with `delay` in front of an echo server.
    fn proxied_echo(delay: Delay) -> DelayProxy {
        DelayProxy::start(
            "127.0.0.1:0".parse().unwrap(),
            echo_server().unwrap(),
            delay,
        )
        .unwrap()
    }

    #[test]
    fn bytes_arrive_intact_in_order_and_never_early() {
        let delay = Delay {
            one_way: Duration::from_millis(2),
            jitter: Duration::from_millis(1),
        };
        let proxy = proxied_echo(delay);
        let mut stream = TcpStream::connect(proxy.addr()).unwrap();
        let mut reader = stream.try_clone().unwrap();
        let sent: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let received = thread::scope(|scope| {
            let collector = scope.spawn(move || {
                let mut received = Vec::new();
                reader.read_to_end(&mut received).unwrap();
                received
            });
            // Many writes of odd sizes, each a chunk the jitter may try to reorder.
            for piece in sent.chunks(7_919) {
                stream.write_all(piece).unwrap();
            }
            stream.shutdown(Shutdown::Write).unwrap();
            collector.join().unwrap()
        });
        assert_eq!(received.len(), sent.len());
        assert!(received == sent, "the echo differs from what was sent");
    }

    #[test]
    fn ended_connections_give_their_sockets_back() {
        let proxy = proxied_echo(Delay::round_trip(Duration::from_millis(1)));
        let held = || proxy.sockets.lock().unwrap().len();
        for _ in 0..3 {
            let mut stream = TcpStream::connect(proxy.addr()).unwrap();
            stream.write_all(b"x").unwrap();
            stream.shutdown(Shutdown::Write).unwrap();
            // The echo ends once the end of the stream has gone both ways.
            let mut echoed = Vec::new();
            stream.read_to_end(&mut echoed).unwrap();
            assert_eq!(echoed, b"x");
        }
        // Each new connection lets go of those that have ended (the last one's pipes end a
        // moment after its echo, so the proxy is given a few more to notice).
        let _open = TcpStream::connect(proxy.addr()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while held() > 1 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
            let _ = TcpStream::connect(proxy.addr()).map(|s| s.shutdown(Shutdown::Both));
        }
        assert!(held() <= 2, "{} connections held, one of them open", held());
    }

    #[test]
    fn a_round_trip_takes_at_least_the_delay() {
        let delay = Delay::round_trip(Duration::from_millis(4));
        let proxy = proxied_echo(delay);
        let mut stream = TcpStream::connect(proxy.addr()).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut byte = [0u8; 1];
        for i in 0..20u8 {
            let sent = Instant::now();
            stream.write_all(&[i]).unwrap();
            stream.read_exact(&mut byte).unwrap();
            // Each way, a write may start up to half of MAX_WRITE_COST before the due time.
            let least = Duration::from_millis(4) - MAX_WRITE_COST;
            assert!(sent.elapsed() >= least, "round trip {i}");
            assert_eq!(byte[0], i);
        }
    }

    #[test]
    fn an_unreachable_upstream_closes_the_client() {
        // A port nothing listens on: bind one, note it, let it go.
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let proxy =
            DelayProxy::start("127.0.0.1:0".parse().unwrap(), closed, Delay::default()).unwrap();
        let mut stream = TcpStream::connect(proxy.addr()).unwrap();
        let mut buf = [0u8; 1];
        assert!(matches!(stream.read(&mut buf), Ok(0) | Err(_)));
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        let delay = Delay {
            one_way: Duration::from_micros(300),
            jitter: Duration::from_micros(500),
        };
        let mut rng = Rng::new(1);
        for _ in 0..1000 {
            let d = jittered(delay, &mut rng);
            assert!(d <= Duration::from_micros(800), "{d:?}");
        }
        assert_eq!(
            jittered(Delay::round_trip(Duration::from_millis(1)), &mut rng),
            Duration::from_micros(500)
        );
    }
}
