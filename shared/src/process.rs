//! How every server process starts and stops, whatever its framework: logging on stderr, the
//! open-file limit, settings, the listening socket, the database, the start-up line, signals,
//! and one clear line on stderr for a fatal error.
//!
//! [`main`] fixes the order for every stack: the socket is bound before the database is
//! opened, so a taken port is reported as such whatever state the database is in.

use std::future::Future;
use std::net::TcpListener;
use std::process::ExitCode;

use crate::config::{Database, Settings};

/// A server's whole life after the shared start: it gets the settings and the bound socket,
/// opens the database (see [`open_database`]), prints the start-up line, and serves until
/// [`shutdown_signal`]. An error ends the process with one line on stderr.
pub fn main<F>(stack: &'static str, about: &'static str, serve: F) -> ExitCode
where
    F: FnOnce(Settings, TcpListener) -> anyhow::Result<()>,
{
    init_logging();
    raise_fd_limit();
    let settings = match Settings::from_env_and_args(stack, about) {
        Ok(settings) => settings,
        Err(err) => return fail(stack, &err),
    };
    let listener = match TcpListener::bind(settings.bind) {
        Ok(listener) => listener,
        Err(err) => return fail(stack, &format!("cannot listen on {}: {err}", settings.bind)),
    };
    let database = settings.database.clone();
    match serve(settings, listener) {
        Ok(()) => ExitCode::SUCCESS,
        // Drivers' messages may quote the URL: no password leaves the process.
        Err(err) => fail(stack, &database.scrub(&format!("{err:#}"))),
    }
}

/// A multi-thread tokio runtime of `workers` threads.
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a tokio runtime can be built")
}

/// Awaits `connect` (which opens `database`, runs the migrations and builds the pool), naming
/// the database, without its password, in the error.
pub async fn open_database<S>(
    database: &Database,
    connect: impl Future<Output = anyhow::Result<S>>,
) -> anyhow::Result<S> {
    use anyhow::Context as _;
    connect
        .await
        .with_context(|| format!("cannot open the database {database}"))
}

/// Prints one clear line on stderr and returns the failing exit code.
pub fn fail(stack: &str, message: &str) -> ExitCode {
    // Drivers' messages can span lines (libpq's hints); the contract wants one.
    let one_line: Vec<&str> = message.split_whitespace().collect();
    eprintln!("{stack}: error: {}", one_line.join(" "));
    ExitCode::FAILURE
}

/// Installs SIGTERM and SIGINT handlers now (call it before printing the start-up line, so a
/// signal sent right after that line is never lost) and resolves on the first of them.
/// Must be called inside a tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler can be installed");
    let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler can be installed");
    async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}

/// Raises the soft limit on open files to the hard limit, as servers commonly do at start-up:
/// the usual soft default (1,024) caps a server at about a thousand connections, while the hard
/// limit is meant for exactly this. Best effort: on failure the server runs with what it has.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(err) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::debug!("cannot raise the open-file limit from {soft} to {hard}: {err}");
            }
        }
        Ok(_) => {}
        Err(err) => tracing::debug!("cannot read the open-file limit: {err}"),
    }
}

/// Logs go to stderr, coloured only on a terminal; nothing per request unless `RUST_LOG` asks
/// for it. The default is our warnings, and none of the libraries' own per-request chatter:
/// Rocket's launch and routing lines, actix's error line for every malformed request (which a
/// client could otherwise use to flood the log), and sqlx's line for every statement slower
/// than a second (which diesel has no counterpart of).
fn init_logging() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "warn,rocket=off,actix_http::h1::dispatcher=off,sqlx::query=off",
        )
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
