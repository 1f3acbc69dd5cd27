//! Describes the machine a results folder was measured on (`machine.txt`).

use std::fmt::Write as _;
use std::process::Command;

/// The first line a command prints, or `unknown`.
fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The value of `key` in a `key: value` or `KEY=value` text.
fn field(text: &str, key: &str, separator: char) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(separator)?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Date, host, CPU, cores, memory, kernel, OS, rustc, PostgreSQL, and nginx and pgbouncer
/// where installed, one per line.
pub fn describe() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let uname = nix::sys::utsname::uname().ok();
    let kernel = uname.as_ref().map_or_else(
        || "unknown".to_owned(),
        |u| {
            format!(
                "{} {}",
                u.sysname().to_string_lossy(),
                u.release().to_string_lossy()
            )
        },
    );
    let memory = field(&read("/proc/meminfo"), "MemTotal", ':')
        .and_then(|kb| kb.trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or_else(
            || "unknown".to_owned(),
            |kb| format!("{:.1} GiB", kb as f64 / 1_048_576.0),
        );
    let postgres = harness::pg::bindir().map_or_else(
        |_| "unknown".to_owned(),
        |dir| first_line(&dir.join("postgres").to_string_lossy(), &["--version"]),
    );
    let lines = [
        ("recorded", loadgen::record::utc_now_rfc3339()),
        ("host", read("/proc/sys/kernel/hostname").trim().to_owned()),
        (
            "cpu",
            field(&read("/proc/cpuinfo"), "model name", ':').unwrap_or_default(),
        ),
        (
            "cores",
            std::thread::available_parallelism()
                .map_or(0, usize::from)
                .to_string(),
        ),
        ("memory", memory),
        ("kernel", kernel),
        (
            "os",
            field(&read("/etc/os-release"), "PRETTY_NAME", '=').unwrap_or_default(),
        ),
        ("rustc", first_line("rustc", &["--version"])),
        ("postgresql", postgres),
    ];
    let mut text = String::new();
    for (key, value) in lines {
        let _ = writeln!(text, "{key}: {value}");
    }
    // The deployment scenario's hops, where installed.
    for (key, value) in harness::deploy::versions() {
        if let Some(value) = value {
            let _ = writeln!(text, "{key}: {value}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields() {
        assert_eq!(field("a: 1\nb : two \n", "b", ':').as_deref(), Some("two"));
        assert_eq!(
            field("NAME=\"Debian\"\n", "NAME", '=').as_deref(),
            Some("Debian")
        );
        assert_eq!(field("x", "x", ':'), None);
        let text = describe();
        assert!(
            text.starts_with("recorded: ") && text.contains("\ncores: "),
            "{text}"
        );
    }
}
