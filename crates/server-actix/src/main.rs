//! `server-actix`: the todo API on actix-web + sqlx. See `--help`.

use std::process::ExitCode;

use actix_web::web::Data;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use shared::sqlx_store::SqlxDb;
use shared::{Settings, Store};

const STACK: &str = "actix-sqlx";

fn main() -> ExitCode {
    shared::config::init_logging();
    shared::config::raise_fd_limit();
    let settings = match Settings::from_env_and_args(STACK, "The todo API on actix-web + sqlx") {
        Ok(settings) => settings,
        Err(err) => return shared::config::fail(STACK, &err),
    };
    match actix_web::rt::System::new().block_on(serve(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => shared::config::fail(STACK, &format!("{err:#}")),
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let db = SqlxDb::connect(&settings.database, settings.pool_size)
        .await
        .with_context(|| format!("cannot open the database {}", settings.database))?;
    let data = Data::new(db.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(server_actix::configure)
            .default_service(web::to(server_actix::not_found))
    })
    .workers(settings.workers)
    .disable_signals()
    .shutdown_timeout(shared::SHUTDOWN_GRACE.as_secs())
    .client_request_timeout(shared::HEADER_READ_TIMEOUT)
    .bind(settings.bind)
    .with_context(|| format!("cannot listen on {}", settings.bind))?;
    let addr = *server
        .addrs()
        .first()
        .context("the server is bound to no address")?;
    let stop = shared::config::shutdown_signal();
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
