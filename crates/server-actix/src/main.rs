//! `server-actix`: the todo API on actix-web + sqlx. See `--help`.

use std::process::ExitCode;

use std::sync::Arc;

use actix_http::HttpService;
use actix_server::Server;
use actix_service::{fn_service, map_config};
use actix_web::dev::AppConfig;
use actix_web::web::Data;
use anyhow::Context as _;
use shared::sqlx_store::SqlxDb;
use shared::{Settings, Store};
use tokio::sync::Notify;

const STACK: &str = "actix-sqlx";

fn main() -> ExitCode {
    shared::process::main(
        STACK,
        "The todo API on actix-web + sqlx",
        |settings, listener| actix_web::rt::System::new().block_on(serve(settings, listener)),
    )
}

async fn serve(settings: Settings, listener: std::net::TcpListener) -> anyhow::Result<()> {
    let connect = async { Ok(SqlxDb::connect(&settings.database, settings.pool_size).await?) };
    let db = shared::process::open_database(&settings.database, connect).await?;
    let data = Data::new(db.clone());
    let addr = listener.local_addr()?;
    // `HttpServer`, written out with actix's public parts (as `HttpServer::listen` does) so
    // that `Expect: 100-continue` can be answered the contract's way (see `expect`); connections
    // are told to finish when the server stops, as `HttpServer` tells them.
    let closing = Arc::new(Notify::new());
    let notified = Arc::clone(&closing);
    let server = Server::build()
        .workers(settings.workers)
        .disable_signals()
        .shutdown_timeout(shared::SHUTDOWN_GRACE.as_secs())
        .listen("todo", listener, move || {
            let notified = Arc::clone(&notified);
            HttpService::build()
                .client_request_timeout(shared::HEADER_READ_TIMEOUT)
                // An idle keep-alive connection lives as long as on the other stacks.
                .keep_alive(shared::IDLE_TIMEOUT)
                .local_addr(addr)
                .graceful_shutdown_signal(move || {
                    let notified = Arc::clone(&notified);
                    async move { notified.notified().await }
                })
                .expect(fn_service(server_actix::expect))
                .h1(map_config(server_actix::app(data.clone()), |()| {
                    AppConfig::default()
                }))
                .tcp()
        })
        .with_context(|| format!("cannot listen on {}", settings.bind))?;
    let stop = shared::process::shutdown_signal();
    println!("{}", settings.listening_line(addr));

    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        stop.await;
        closing.notify_waiters();
        handle.stop(true).await;
    });
    server.await.context("serving failed")?;
    db.close().await;
    Ok(())
}
