//! Where the workspace's binaries are, and the one command that builds the measured ones.
//!
//! Tests run the servers of their own profile (`target/debug`); measurements run every server
//! built with the `bench-release` profile. Cargo unifies features across the packages of one
//! build, so the measured binaries are always built by [`build_measured`] with the same
//! package set: the comparison and `cargo bench` then never rebuild each other's binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::stacks::Runtime;
use crate::{STACKS, Stack};

/// The profile every measured server is built with.
pub const BENCH_PROFILE: &str = "bench-release";

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/harness sits two levels below the workspace root")
        .to_owned()
}

/// The `target/` folder (`CARGO_TARGET_DIR` when set).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || workspace_root().join("target"),
        |dir| {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        },
    )
}

/// A command-line argument as recorded in results and messages: the workspace's folder and
/// the `target/` folder written relative (`target/...`, `results/...`) and cargo by its name,
/// so a recorded command names no folder of the machine it ran on.
pub fn portable(arg: &str) -> String {
    if let Some(cargo) = std::env::var_os("CARGO")
        && arg == cargo.to_string_lossy()
    {
        return "cargo".to_owned();
    }
    let target = target_dir().to_string_lossy().into_owned();
    let root = workspace_root().to_string_lossy().into_owned();
    if arg == root {
        return ".".to_owned();
    }
    arg.replace(&format!("{target}/"), "target/")
        .replace(&format!("{root}/"), "")
}

/// The running program's command line, each argument [`portable`].
pub fn portable_command_line() -> String {
    std::env::args()
        .map(|a| portable(&a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The path of a binary built with the profile of the running executable: next to it, or one
/// folder up when it is a test or bench (`target/<profile>/deps/<test>`).
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("the running executable has a path")?;
    let mut dir = exe.parent().context("an executable lives in a folder")?;
    if dir.ends_with("deps") || dir.ends_with("examples") {
        dir = dir.parent().context("deps/ lives in a profile folder")?;
    }
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} is missing: build the servers first with `cargo build --workspace --bins` \
             (scripts/test.sh does)",
            path.display()
        );
    }
    Ok(path)
}

/// The executable of `stack` of the running executable's profile (see [`sibling_binary`]); a
/// Python stack's console script, which `scripts/test.sh` installs.
pub fn test_executable(stack: &Stack) -> anyhow::Result<PathBuf> {
    match stack.runtime {
        Runtime::Rust => sibling_binary(stack.package),
        Runtime::Python => {
            let script = crate::python::script(stack.package);
            if !script.is_file() {
                bail!(
                    "{} is missing: install the Python reference stacks first with \
                     `cargo xtask python` (scripts/test.sh does)",
                    script.display()
                );
            }
            Ok(script)
        }
    }
}

/// The packages of every measured binary: each Rust stack's server, and loadgen.
pub fn measured_packages() -> Vec<&'static str> {
    STACKS
        .iter()
        .filter(|s| s.runtime == Runtime::Rust)
        .map(|s| s.package)
        .chain(["loadgen"])
        .collect()
}

/// Builds every Rust stack's server and loadgen with the benchmark profile (cargo does nothing
/// when they are up to date), installs the Python stacks' environment when it is not, and
/// returns the folder holding the binaries (see [`Stack::executable`]).
pub fn build_measured() -> anyhow::Result<PathBuf> {
    if STACKS.iter().any(|s| s.runtime == Runtime::Python) {
        crate::python::ensure_reference()?;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(workspace_root())
        .args(["build", "--profile", BENCH_PROFILE]);
    for package in measured_packages() {
        build.args(["-p", package]);
    }
    let status = build.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("building the measured binaries failed ({status})");
    }
    Ok(target_dir().join(BENCH_PROFILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_workspace() {
        assert!(workspace_root().join("Cargo.lock").is_file());
        let packages = measured_packages();
        let rust = STACKS.iter().filter(|s| s.runtime == Runtime::Rust).count();
        assert_eq!(packages.len(), rust + 1);
        assert!(sibling_binary("no-such-binary").is_err());
    }

    #[test]
    fn recorded_paths_are_relative() {
        let root = workspace_root();
        let results = root.join("results/2026-01-01-vm");
        assert_eq!(
            portable(&results.to_string_lossy()),
            "results/2026-01-01-vm"
        );
        let records = format!("--out={}", results.join("records.jsonl").display());
        assert_eq!(
            portable(&records),
            "--out=results/2026-01-01-vm/records.jsonl"
        );
        let binary = target_dir().join("bench-release/loadgen");
        assert_eq!(
            portable(&binary.to_string_lossy()),
            "target/bench-release/loadgen"
        );
        assert_eq!(portable(&root.to_string_lossy()), ".");
        assert_eq!(portable("/usr/bin/valgrind"), "/usr/bin/valgrind");
        assert_eq!(portable("--budget"), "--budget");
    }
}
