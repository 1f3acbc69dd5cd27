//! The server: the whole life of the process after the shared start
//! ([`shared::process::main`]), and hyper's HTTP/1.1 connections, accepted, served and shut down
//! gracefully by hand.

use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Arc;

use hyper::service::service_fn;
use shared::{Settings, Store};

use crate::App;
use crate::db::Db;

/// Runs the server under the name `stack`: a runtime of `WORKERS` threads, the database and its
/// pool, the start-up line, serving until SIGTERM or SIGINT, at most [`shared::SHUTDOWN_GRACE`]
/// for in-flight requests, then the pool closed. Returns the process exit code.
pub fn run(stack: &'static str, about: &'static str) -> ExitCode {
    shared::process::main(stack, about, |settings, listener| {
        shared::process::runtime(settings.workers).block_on(serve(settings, listener))
    })
}

async fn serve(settings: Settings, listener: std::net::TcpListener) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let addr = listener.local_addr()?;
    let connect = Db::connect(&settings.database, settings.pool_size);
    let db = shared::process::open_database(&settings.database, connect).await?;
    let stop = shared::process::shutdown_signal();
    println!("{}", settings.listening_line(addr));

    let app = Arc::new(App::new(db.clone()));
    // `TCP_NODELAY`, as production hyper servers set it: a response is one write, and waits
    // for no acknowledgement.
    let service = || {
        let app = Arc::clone(&app);
        service_fn(move |request| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(app.handle(request).await) }
        })
    };
    shared::http1::serve(listener, service, stop, true).await;
    db.close().await;
    Ok(())
}
