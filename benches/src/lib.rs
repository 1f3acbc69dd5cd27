//! Support for the criterion benchmarks in `benches/stacks.rs`: the servers under test are the
//! `bench-release` binaries that `scripts/compare.sh` measures, built on demand.

use std::path::PathBuf;
use std::process::Command;

/// The stacks: (package and binary name, stack name).
pub use conformance::STACKS;

/// The workspace's `target/` folder (honours `CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The `bench-release` binaries of every stack, building any that are missing or stale (cargo
/// decides) with one `cargo build` call.
pub fn server_binaries() -> Vec<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--profile", "bench-release"]);
    for (package, _) in STACKS {
        build.args(["-p", package]);
    }
    eprintln!("building the servers with the bench-release profile (first run: several minutes)");
    let status = build.status().expect("cargo can be run");
    assert!(status.success(), "building the servers failed");
    STACKS
        .iter()
        .map(|(package, _)| target_dir().join("bench-release").join(package))
        .collect()
}
