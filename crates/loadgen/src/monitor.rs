//! What loadgen watches while it measures: a process's CPU seconds and memory, the machine's
//! CPU time (steal included) and the database's processes from `/proc`, and the cores the
//! server and the load generator are pinned to.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use nix::unistd::Pid;

/// Clock ticks per second for `/proc/*/stat` times.
pub fn clock_ticks() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// utime + stime of a process (all its threads) in seconds; `pid = None` means this process.
pub fn cpu_seconds(pid: Option<u32>) -> anyhow::Result<f64> {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_owned(),
        |p| format!("/proc/{p}/stat"),
    );
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat_cpu_ticks(&stat)
        .map(|t| t as f64 / clock_ticks())
        .with_context(|| format!("parsing {path}"))
}

/// utime + stime in ticks from a `/proc/PID/stat` line (fields 14 and 15).
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // `after` starts at field 3 (state); utime is field 14, i.e. index 11 here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The machine's CPU time since boot, all cores together, from `/proc/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SystemCpu {
    /// user, nice, system, irq and softirq (guest time is inside user).
    pub busy: f64,
    /// Time the hypervisor ran other guests while this one wanted the core.
    pub steal: f64,
}

impl SystemCpu {
    pub fn read() -> anyhow::Result<Self> {
        let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        Self::parse(&stat, clock_ticks()).context("parsing /proc/stat")
    }

    /// From the `cpu` line: user nice system idle iowait irq softirq steal ...
    pub fn parse(stat: &str, ticks_per_second: f64) -> Option<Self> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        let field = |i: usize| v.get(i).copied().unwrap_or(0) as f64 / ticks_per_second;
        Some(Self {
            busy: field(0) + field(1) + field(2) + field(5) + field(6),
            steal: field(7),
        })
    }
}

/// CPU seconds (utime + stime) of every process whose command name is `name`, e.g. all of
/// PostgreSQL's (`postgres`); processes that exit meanwhile are skipped.
pub fn cpu_seconds_named(name: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let ticks: u64 = dir
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| command_name(stat) == Some(name))
        .filter_map(|stat| parse_stat_cpu_ticks(&stat))
        .sum();
    ticks as f64 / clock_ticks()
}

/// Field 2 of a `/proc/PID/stat` line, without its parentheses.
fn command_name(stat: &str) -> Option<&str> {
    stat.get(stat.find('(')? + 1..stat.rfind(')')?)
}

/// A `kB` field of `/proc/PID/status` (VmRSS, VmHWM) in bytes.
pub fn status_kb_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_bytes(&status, field)
}

pub fn status_field_bytes(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// Samples a process's VmRSS every `every` until stopped; reports the peak.
#[derive(Debug)]
pub struct RssSampler {
    stop: Arc<tokio::sync::Notify>,
    handle: tokio::task::JoinHandle<u64>,
}

impl RssSampler {
    pub fn start(pid: u32, every: Duration) -> Self {
        let stop = Arc::new(tokio::sync::Notify::new());
        let notified = stop.clone();
        let handle = tokio::spawn(async move {
            let mut peak = 0;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        peak = peak.max(status_kb_field(pid, "VmRSS").unwrap_or(0));
                    }
                    () = notified.notified() => break,
                }
            }
            peak.max(status_kb_field(pid, "VmRSS").unwrap_or(0))
        });
        Self { stop, handle }
    }

    /// Stops sampling and returns the peak RSS in bytes.
    pub async fn finish(self) -> u64 {
        self.stop.notify_one();
        self.handle.await.unwrap_or(0)
    }
}

/// Which cores the server and the load generator get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinning {
    pub server: Vec<usize>,
    pub loadgen: Vec<usize>,
}

impl Pinning {
    /// Splits the cores this process may use into two disjoint halves (server first, the
    /// rest for the load generator); `None` with fewer than two cores.
    pub fn auto() -> Option<Self> {
        let cores = allowed_cores();
        if cores.len() < 2 {
            return None;
        }
        let half = cores.len() / 2;
        Some(Self {
            server: cores[..half].to_vec(),
            loadgen: cores[half..].to_vec(),
        })
    }

    pub fn server_list(&self) -> String {
        core_list(&self.server)
    }

    pub fn describe(&self) -> String {
        format!(
            "server cores {}, loadgen cores {}",
            core_list(&self.server),
            core_list(&self.loadgen)
        )
    }

    /// Pins this process (and every thread it starts afterwards) to the load generator's cores.
    pub fn apply_to_self(&self) -> anyhow::Result<()> {
        let mut set = nix::sched::CpuSet::new();
        for &c in &self.loadgen {
            set.set(c).context("core index out of range")?;
        }
        nix::sched::sched_setaffinity(Pid::from_raw(0), &set).context("sched_setaffinity")
    }
}

/// Cores this process may run on.
pub fn allowed_cores() -> Vec<usize> {
    match nix::sched::sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..nix::sched::CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => (0..std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
            .collect(),
    }
}

fn core_list(cores: &[usize]) -> String {
    cores
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_and_status() {
        let stat = "1234 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 4 0 100 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(175));
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(status_field_bytes(status, "VmRSS"), Some(1024 * 1024));
        assert_eq!(status_field_bytes(status, "VmHWM"), Some(2048 * 1024));
        assert!(cpu_seconds(None).unwrap() >= 0.0);
        assert_eq!(command_name(stat), Some("my (odd) name"));
    }

    #[test]
    fn parses_the_machines_cpu_time() {
        let stat = "cpu  100 5 50 9000 20 3 2 40 0 0\ncpu0 50 2 25 4500 10 1 1 20 0 0\nintr 1\n";
        let cpu = SystemCpu::parse(stat, 100.0).unwrap();
        assert!((cpu.busy - 1.6).abs() < 1e-9, "{cpu:?}");
        assert!((cpu.steal - 0.4).abs() < 1e-9, "{cpu:?}");
        assert_eq!(SystemCpu::parse("intr 1\n", 100.0), None);
        assert!(SystemCpu::read().unwrap().busy > 0.0);
    }
}
