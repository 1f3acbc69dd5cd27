//! The black-box conformance suite: given a running server's address, it checks every row of
//! `api-contract.md` over real sockets, byte for byte where the contract says so. The harness
//! in [`server`] starts any of the servers on a fresh database and a free port, so the suite runs
//! against every stack and database alike (see `tests/`).

pub mod checks;
pub mod http;
pub mod keepalive;
pub mod pg;
pub mod server;
pub mod soak;

/// Every stack as (binary, stack name), in the order tests and benchmarks run them. Keep in step
/// with [`for_each_stack!`].
pub const STACKS: [(&str, &str); 4] = [
    ("server-axum", "axum-sqlx"),
    ("server-axum-diesel", "axum-diesel"),
    ("server-rocket", "rocket-diesel"),
    ("server-actix", "actix-sqlx"),
];

/// Calls the test-generating macro `$tests` with every stack, one `module: "binary" as "stack";`
/// line each, so each test file runs against all of them. Adding a stack is one line here (and
/// one in [`STACKS`]).
#[macro_export]
macro_rules! for_each_stack {
    ($tests:ident) => {
        $tests! {
            axum_sqlx: "server-axum" as "axum-sqlx";
            axum_diesel: "server-axum-diesel" as "axum-diesel";
            rocket_diesel: "server-rocket" as "rocket-diesel";
            actix_sqlx: "server-actix" as "actix-sqlx";
        }
    };
}
