//! `server-rocket`: the todo API on Rocket + diesel. See `--help`.

use std::process::ExitCode;

use anyhow::Context as _;
use rocket::config::{Ident, LogLevel, Shutdown};
use rocket::fairing::AdHoc;
use server_rocket::db::R2d2Diesel;
use shared::Settings;

const STACK: &str = "rocket-diesel";

fn main() -> ExitCode {
    shared::config::init_logging();
    shared::config::raise_fd_limit();
    let settings =
        match Settings::from_env_and_args(STACK, "The todo API on Rocket + diesel (r2d2 pool)") {
            Ok(settings) => settings,
            Err(err) => return shared::config::fail(STACK, &err),
        };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.workers)
        .enable_all()
        .build()
        .expect("a tokio runtime can be built");
    match runtime.block_on(serve(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => shared::config::fail(STACK, &format!("{err:#}")),
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    // Fail fast on a port in use, before the database is touched; Rocket binds again below.
    drop(
        std::net::TcpListener::bind(settings.bind)
            .with_context(|| format!("cannot listen on {}", settings.bind))?,
    );
    let database = settings.database.clone();
    let pool_size = settings.pool_size;
    let store = tokio::task::spawn_blocking(move || R2d2Diesel::connect(&database, pool_size))
        .await?
        .with_context(|| format!("cannot open the database {}", settings.database))?;

    let config = rocket::Config {
        address: settings.bind.ip(),
        port: settings.bind.port(),
        workers: settings.workers,
        log_level: LogLevel::Off,
        ident: Ident::none(),
        cli_colors: false,
        // Our own handlers (below) replace Rocket's, so that they exist before the start-up line.
        shutdown: Shutdown {
            ctrlc: false,
            signals: std::collections::HashSet::new(),
            grace: shared::SHUTDOWN_GRACE.as_secs() as u32,
            mercy: 0,
            ..Shutdown::default()
        },
        ..rocket::Config::default()
    };
    let announce = AdHoc::on_liftoff("announce", move |rocket| {
        Box::pin(async move {
            let addr = std::net::SocketAddr::new(rocket.config().address, rocket.config().port);
            let stop = shared::config::shutdown_signal();
            let shutdown = rocket.shutdown();
            tokio::spawn(async move {
                stop.await;
                shutdown.notify();
            });
            println!("{}", settings.listening_line(addr));
        })
    });
    let launched = server_rocket::rocket(store, config)
        .attach(announce)
        .launch()
        .await;
    launched.map_err(|err| anyhow::anyhow!("{}", err.kind()))?;
    Ok(())
}
