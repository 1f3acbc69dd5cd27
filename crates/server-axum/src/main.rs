//! `server-axum`: the todo API on axum + sqlx. See `--help`.

use shared::sqlx_store::SqlxDb;

fn main() -> std::process::ExitCode {
    server_axum::run(
        "axum-sqlx",
        "The todo API on axum + sqlx",
        |settings| async move { Ok(SqlxDb::connect(&settings.database, settings.pool_size).await?) },
    )
}
