//! `server-actix`: the todo API on actix-web + sqlx. See `--help`.

use std::process::ExitCode;

use actix_web::HttpServer;
use actix_web::web::Data;
use anyhow::Context as _;
use shared::sqlx_store::SqlxDb;
use shared::{Settings, Store};

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
    let server = HttpServer::new(move || server_actix::app(data.clone()))
        .workers(settings.workers)
        .disable_signals()
        .shutdown_timeout(shared::SHUTDOWN_GRACE.as_secs())
        .client_request_timeout(shared::HEADER_READ_TIMEOUT)
        // An idle keep-alive connection lives as long as on the other stacks.
        .keep_alive(shared::IDLE_TIMEOUT)
        .listen(listener)
        .with_context(|| format!("cannot listen on {}", settings.bind))?;
    let addr = *server
        .addrs()
        .first()
        .context("the server is bound to no address")?;
    let stop = shared::process::shutdown_signal();
    println!("{}", settings.listening_line(addr));

    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        stop.await;
        handle.stop(true).await;
    });
    server.await.context("serving failed")?;
    db.close().await;
    Ok(())
}
