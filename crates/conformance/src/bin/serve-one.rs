//! Starts one server on a fresh database and a free port, runs a command against it, and stops
//! the server: `serve-one STACK DB -- COMMAND...`. The command gets `BASE_URL=http://ADDR`
//! in its environment (and `{base_url}` in its arguments is replaced). Exits with the command's
//! status, or non-zero when the server did not exit cleanly on SIGTERM. Used by
//! `scripts/schemathesis.sh`.

use std::process::{Command, ExitCode};

use conformance::server::{Db, Server};
use conformance::soak::STACKS;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: serve-one STACK sqlite|postgres -- COMMAND [ARGS...]  (STACK: a stack or binary name)";
    let (Some(stack), Some(db), Some("--")) =
        (args.first(), args.get(1), args.get(2).map(String::as_str))
    else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let Some(&(stack_name, binary)) = STACKS.iter().find(|(s, b)| s == stack || b == stack) else {
        eprintln!("serve-one: unknown stack {stack:?}; {usage}");
        return ExitCode::from(2);
    };
    let db = match db.as_str() {
        "sqlite" => Db::Sqlite,
        "postgres" => Db::Postgres,
        other => {
            eprintln!("serve-one: unknown database {other:?}; {usage}");
            return ExitCode::from(2);
        }
    };
    let Some((program, rest)) = args[3..].split_first() else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let server = Server::start(binary, db);
    let base_url = format!("http://{}", server.addr());
    eprintln!("serve-one: {stack_name} on {} at {base_url}", db.name());
    let status = Command::new(program)
        .args(rest.iter().map(|a| a.replace("{base_url}", &base_url)))
        .env("BASE_URL", &base_url)
        .status();
    let stderr = server.stderr();
    let exit = server.stop();
    if !stderr.trim().is_empty() {
        eprintln!(
            "serve-one: {stack_name} on {} wrote to stderr:\n{stderr}",
            db.name()
        );
    }
    if !exit.success() {
        eprintln!(
            "serve-one: {stack_name} on {} exited with {exit} after SIGTERM",
            db.name()
        );
        return ExitCode::FAILURE;
    }
    match status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            ExitCode::from(u8::try_from(status.code().unwrap_or(1).clamp(1, 255)).unwrap_or(1))
        }
        Err(err) => {
            eprintln!("serve-one: cannot run {program}: {err}");
            ExitCode::FAILURE
        }
    }
}
