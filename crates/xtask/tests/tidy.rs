//! Tidy checks (rust-analyzer's `tidy.rs`): invariants of the source tree that no compiler
//! checks. Every Rust file opens with a `//!` line, the list of stacks exists once (the
//! registry), ARCHITECTURE.md's code map names every crate and module, no document or source
//! names a path of the machine it was written on, and the scripts stay thin.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    harness::cargo::workspace_root()
}

/// Every file below the root with one of `extensions`, build output, git's folder and
/// measured results aside.
fn files(extensions: &[&str]) -> Vec<PathBuf> {
    fn walk(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !(name.starts_with('.') || name == "target" || name == "results") {
                    walk(&path, extensions, out);
                }
            } else if extensions
                .iter()
                .any(|ext| path.extension().is_some_and(|e| e == *ext))
            {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), extensions, &mut out);
    out.sort();
    assert!(!out.is_empty(), "no {extensions:?} files found");
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

#[test]
fn every_rust_file_opens_with_a_doc_line() {
    let missing: Vec<String> = files(&["rs"])
        .iter()
        .filter(|path| !read(path).starts_with("//!"))
        .map(|path| relative(path))
        .collect();
    assert!(
        missing.is_empty(),
        "these files do not open with a `//!` line saying what they are for: {missing:?}"
    );
}

#[test]
fn the_stack_list_exists_once() {
    let registry = root().join("crates/harness/src/stacks.rs");
    let names: Vec<String> = harness::STACKS
        .iter()
        .flat_map(|s| [s.name, s.package])
        .map(|name| format!("\"{name}\""))
        .collect();
    let mut lists = Vec::new();
    for path in files(&["rs", "sh", "py"]) {
        if path == registry {
            continue;
        }
        let text = read(&path);
        let named: Vec<&String> = names.iter().filter(|n| text.contains(n.as_str())).collect();
        // A server names itself; two stacks in one file are a list that should come from
        // the registry.
        if named.len() > 1 {
            lists.push(format!("{} names {named:?}", relative(&path)));
        }
    }
    assert!(
        lists.is_empty(),
        "take these lists of stacks from harness::STACKS or harness::stack_tests!:\n{}",
        lists.join("\n")
    );
}

#[test]
fn the_code_map_names_every_crate_and_module() {
    let map = read(&root().join("ARCHITECTURE.md"));
    let mut missing = Vec::new();
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .expect("crates/ exists")
        .flatten()
        .map(|e| e.path())
        .collect();
    crates.extend([root().join("shared"), root().join("benches")]);
    for krate in crates {
        let name = relative(&krate);
        if !map.contains(&format!("### `{name}`")) {
            missing.push(format!("a `### `{name}`` heading"));
        }
        for file in files(&["rs"])
            .iter()
            .filter(|f| f.starts_with(krate.join("src")))
        {
            let stem = file.file_stem().unwrap_or_default().to_string_lossy();
            if ["lib", "main", "mod"].contains(&stem.as_ref()) {
                continue;
            }
            if !(map.contains(&format!("`{stem}.rs`")) || map.contains(&format!("`{stem}`"))) {
                missing.push(relative(file));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name: {missing:?}"
    );
}

#[test]
fn nothing_names_a_path_of_this_machine() {
    // Spelled in pieces so that this file does not name them itself.
    let prefixes = ["work", "farm", "home", "root", "Users"].map(|p| format!("/{p}/"));
    let mut found = Vec::new();
    for path in files(&["md", "rs", "sh", "toml", "yaml", "py"]) {
        for (n, line) in read(&path).lines().enumerate() {
            let absolute = prefixes.iter().any(|p| {
                line.match_indices(p.as_str())
                    .any(|(i, _)| !line[..i].ends_with(|c: char| c.is_alphanumeric() || c == '.'))
            });
            if absolute && !line.contains("://") {
                found.push(format!("{}:{}: {}", relative(&path), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "write these paths relative to the repository:\n{}",
        found.join("\n")
    );
}

#[test]
fn scripts_stay_thin() {
    for path in files(&["sh"]) {
        let text = read(&path);
        let code: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert!(
            code.len() <= 3 && code.iter().any(|l| l.starts_with("exec cargo xtask ")),
            "{} holds logic ({} lines of code): logic lives in crates/xtask; a script only calls it",
            relative(&path),
            code.len()
        );
    }
}
