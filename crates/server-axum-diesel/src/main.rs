//! `server-axum-diesel`: the todo API on axum + diesel. See `--help`.

fn main() -> std::process::ExitCode {
    server_axum::run(
        "axum-diesel",
        "The todo API on axum + diesel (deadpool-diesel)",
        |settings| async move {
            server_axum_diesel::connect(&settings.database, settings.pool_size).await
        },
    )
}
