//! `server-rocket`: the todo API on Rocket + diesel. See `--help`.

use std::process::ExitCode;

use rocket::config::{Ident, LogLevel, Shutdown};
use rocket::error::ErrorKind;
use rocket::fairing::AdHoc;
use shared::Settings;

const STACK: &str = "rocket-diesel";

fn main() -> ExitCode {
    shared::process::main(
        STACK,
        "The todo API on Rocket + diesel (r2d2 pool)",
        |settings, listener| {
            shared::process::runtime(settings.workers).block_on(serve(settings, listener))
        },
    )
}

async fn serve(settings: Settings, listener: std::net::TcpListener) -> anyhow::Result<()> {
    // Rocket 0.5 binds its own socket: the port was checked, and is handed back to it.
    drop(listener);
    let (database, pool_size) = (settings.database.clone(), settings.pool_size);
    let connect = async move {
        tokio::task::spawn_blocking(move || server_rocket::db::connect(&database, pool_size))
            .await?
    };
    let store = shared::process::open_database(&settings.database, connect).await?;

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
            let stop = shared::process::shutdown_signal();
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
    match launched {
        Ok(_) => Ok(()),
        Err(err) => match err.kind() {
            ErrorKind::Shutdown(rocket, None) => drain(rocket).await,
            kind => Err(anyhow::anyhow!("{kind}")),
        },
    }
}

/// Rocket 0.5.2 can report "shutdown failed" a few milliseconds after a clean shutdown began:
/// its launch future races the shutdown wire (tripped from our signal task on another thread)
/// against its accept loop, which sees the wire first and ends; it then takes the in-flight
/// connections, which still hold the instance, for a failure, and returns without waiting for
/// them. Seen on about one stop in ten under a parallel test run. What Rocket meant to do is
/// done here: wait, within the grace period, until the connections have let go of the
/// instance (each is told to finish by the same wire), then exit cleanly.
async fn drain(rocket: &std::sync::Arc<rocket::Rocket<rocket::Orbit>>) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + shared::SHUTDOWN_GRACE;
    // One reference is the error's own.
    while std::sync::Arc::strong_count(rocket) > 1 {
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("shutdown failed: connections still open after the grace period");
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    Ok(())
}
