//! Support for the criterion benchmarks in `benches/stacks.rs`: the servers under test are the
//! `bench-release` binaries that the comparison measures, built by the same command
//! (`harness::cargo::build_measured`), so neither ever rebuilds the other's.

use std::path::PathBuf;

use harness::{STACKS, Stack};

/// Every stack with its `bench-release` binary, building any that are missing or stale.
pub fn server_binaries() -> Vec<(&'static Stack, PathBuf)> {
    eprintln!(
        "building the measured binaries with the {} profile (first run: several minutes)",
        harness::cargo::BENCH_PROFILE
    );
    let dir = harness::cargo::build_measured().unwrap_or_else(|err| panic!("{err:#}"));
    STACKS
        .iter()
        .map(|stack| (stack, stack.executable(&dir)))
        .collect()
}
