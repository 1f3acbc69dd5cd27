//! What every tool around the servers shares, written once: the stack registry ([`stacks`]),
//! fresh databases and the server spawner ([`db`], [`server`]), where binaries are
//! ([`cargo`]) and the Python reference stacks' environment ([`python`]), throwaway PostgreSQL
//! clusters ([`pg`]), the table of cases every server's
//! framework-native test drives ([`native`]), the HTTP/1.1 wire code ([`wire`], and the
//! blocking test client in [`client`]), a TCP proxy that delays a database's traffic
//! ([`delay`]), nginx and pgbouncer as a deployment's hops ([`deploy`]) and a small PRNG
//! ([`rng`]).
//!
//! `conformance` (the black-box suites), `loadgen` (the load generator), `benches` (criterion)
//! and `xtask` (the experiment orchestration behind `scripts/`) all build on it.

pub mod cargo;
pub mod client;
pub mod db;
pub mod delay;
pub mod deploy;
pub mod native;
pub mod pg;
pub mod python;
pub mod rng;
pub mod server;
pub mod stacks;
pub mod wire;

pub use shared::DbKind;
pub use stacks::{Kind, Limitation, Runtime, STACKS, Stack, Workers};
