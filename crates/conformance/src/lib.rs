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
