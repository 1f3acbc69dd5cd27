//! Python virtual environments the workspace installs for itself, from pinned requirements,
//! with the machine's `python3`: the reference stacks' (`crates/python`, installed from its
//! hashed lock file, with the project's console scripts, one per Python stack) and the tools'
//! (Schemathesis). An environment is rebuilt only when what it was installed from changed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

use crate::cargo::{target_dir, workspace_root};
use crate::pg::run;

/// The Python project of the reference stacks.
pub fn project_dir() -> PathBuf {
    workspace_root().join("crates/python")
}

/// The reference stacks' virtual environment.
pub fn reference_venv() -> PathBuf {
    target_dir().join("python/venv")
}

/// The console script that runs a Python stack (its registry `package`), in
/// [`reference_venv`].
pub fn script(package: &str) -> PathBuf {
    reference_venv().join("bin").join(package)
}

/// One `pip install` of an environment: its arguments after `pip install`.
pub type PipInstall = Vec<OsString>;

/// Makes sure the virtual environment at `venv` holds what `installs` install, `stamp` naming
/// that content (the requirements' text, say): when the stamp recorded at its last install
/// differs, or the environment is missing or broken, it is made anew.
pub fn ensure_venv(venv: &Path, stamp: &str, installs: &[PipInstall]) -> anyhow::Result<()> {
    let stamp_file = venv.join("installed-from");
    let pip = venv.join("bin/pip");
    if pip.is_file() && std::fs::read_to_string(&stamp_file).is_ok_and(|s| s == stamp) {
        return Ok(());
    }
    eprintln!(
        "harness: installing a Python environment in {}",
        venv.display()
    );
    if venv.exists() {
        std::fs::remove_dir_all(venv).with_context(|| format!("removing {}", venv.display()))?;
    }
    run(
        Command::new("python3").arg("-m").arg("venv").arg(venv),
        "python3 -m venv",
    )
    .context("python3 with the venv module is needed (Debian: apt-get install python3-venv)")?;
    for install in installs {
        run(
            Command::new(&pip)
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(install),
            "pip install",
        )?;
    }
    std::fs::write(&stamp_file, stamp).with_context(|| format!("writing {}", stamp_file.display()))
}

/// Installs the reference stacks' environment unless it is up to date: every dependency from
/// `requirements.lock` (pinned, hashes required, wheels only), then the project itself,
/// editable, so its console scripts run the code in `crates/python`.
pub fn ensure_reference() -> anyhow::Result<()> {
    let project = project_dir();
    let lock = project.join("requirements.lock");
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let stamp = format!(
        "{}\n{}",
        read(&lock)?,
        read(&project.join("pyproject.toml"))?
    );
    ensure_venv(
        &reference_venv(),
        &stamp,
        &[
            vec![
                "--require-hashes".into(),
                "--only-binary".into(),
                ":all:".into(),
                "--requirement".into(),
                lock.into(),
            ],
            vec![
                "--no-deps".into(),
                "--no-build-isolation".into(),
                "--no-index".into(),
                "--editable".into(),
                project.into(),
            ],
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_and_its_lock_are_in_the_workspace() {
        let project = project_dir();
        assert!(project.join("pyproject.toml").is_file());
        let lock = std::fs::read_to_string(project.join("requirements.lock")).unwrap();
        // Every pinned requirement carries a hash, or pip's --require-hashes refuses the file.
        let pins = lock.lines().filter(|l| l.contains("==")).count();
        assert!(pins > 5, "{pins} pins");
        assert_eq!(
            lock.lines()
                .filter(|l| l.contains("==") && l.trim_end().ends_with('\\'))
                .count(),
            pins,
            "every pin is followed by its hashes"
        );
        assert!(script("server-fastapi").starts_with(target_dir()));
    }
}
