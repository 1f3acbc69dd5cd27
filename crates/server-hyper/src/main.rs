//! `server-hyper`: the todo API on hyper with no framework, over tokio-postgres and rusqlite.
//! See `--help`.

fn main() -> std::process::ExitCode {
    server_hyper::server::run(
        "hyper-raw",
        "The todo API on hyper with no framework, tokio-postgres and rusqlite (the reference)",
    )
}
