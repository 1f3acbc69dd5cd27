//! `server-axum-diesel`: the todo API on axum + diesel. See `--help`.

use anyhow::Context as _;
use server_axum_diesel::DeadpoolDiesel;

fn main() -> std::process::ExitCode {
    server_axum::run(
        "axum-diesel",
        "The todo API on axum + diesel (deadpool-diesel)",
        |settings| async move {
            DeadpoolDiesel::connect(&settings.database, settings.pool_size)
                .await
                .with_context(|| format!("cannot open the database {}", settings.database))
        },
    )
}
