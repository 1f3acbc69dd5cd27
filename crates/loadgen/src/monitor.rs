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

/// [`cpu_seconds`] of a server's processes ([`process_tree`]: the server first, which must
/// be readable; a descendant that has exited meanwhile counts nothing).
pub fn tree_cpu_seconds(tree: &[u32]) -> anyhow::Result<f64> {
    let (&root, descendants) = tree.split_first().context("no process to measure")?;
    Ok(cpu_seconds(Some(root))?
        + descendants
            .iter()
            .map(|&p| cpu_seconds(Some(p)).unwrap_or(0.0))
            .sum::<f64>())
}

/// `root` and its descendants: a server of several processes (a supervisor and its worker
/// processes, as uvicorn and gunicorn run) is measured whole. From the parent field of every
/// `/proc/PID/stat`; just `root` when `/proc` cannot be listed.
pub fn process_tree(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = proc_stats()
        .filter_map(|(pid, stat)| {
            // The fields start at field 3 (state); the parent is field 4.
            let parent = stat_fields(&stat)?.nth(1)?.parse().ok()?;
            Some((pid, parent))
        })
        .collect();
    let mut tree = vec![root];
    let mut next = 0;
    while let Some(&parent) = tree.get(next) {
        tree.extend(
            parents
                .iter()
                .filter(|&&(_, p)| p == parent)
                .map(|&(pid, _)| pid),
        );
        next += 1;
    }
    tree
}

/// Every process's pid and `/proc/PID/stat` line (processes that exit meanwhile are skipped).
fn proc_stats() -> impl Iterator<Item = (u32, String)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse().ok()?;
            Some((pid, std::fs::read_to_string(e.path().join("stat")).ok()?))
        })
}

/// The fields of a `/proc/PID/stat` line from field 3 (state) on. The command name (field 2)
/// may hold spaces and parentheses, so they start after the last ')'.
fn stat_fields(stat: &str) -> Option<std::str::SplitWhitespace<'_>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace())
}

/// utime + stime in ticks from a `/proc/PID/stat` line (fields 14 and 15).
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let mut fields = stat_fields(stat)?;
    // The fields start at field 3; utime is field 14, i.e. index 11 here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The machine's CPU time since boot, all cores together, from `/proc/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SystemCpu {
    /// user, nice, system, irq and softirq (guest time is inside user).
    pub busy: f64,
    /// irq and softirq: interrupt work, such as delivering the measured requests' packets.
    pub interrupts: f64,
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
            interrupts: field(5) + field(6),
            steal: field(7),
        })
    }
}

/// CPU seconds of the processes a window accounts for by kind, from one pass over `/proc`
/// (processes that exit meanwhile are skipped).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessCpu {
    /// Every process whose command name is one of the database's (PostgreSQL's `postgres`,
    /// and the delay proxy standing for the network in front of it).
    pub database: f64,
    /// Every process whose command name is one of the server's reverse proxy's (nginx).
    pub front: f64,
    /// Kernel threads (writeback, journal, network and other per-core workers): work the
    /// kernel does on behalf of whatever runs, the measured requests included.
    pub kernel_threads: f64,
}

impl ProcessCpu {
    pub fn read(database: &[&str], front: &[&str]) -> Self {
        let mut ticks = (0u64, 0u64, 0u64);
        for (_, stat) in proc_stats() {
            let Some(cpu) = parse_stat_cpu_ticks(&stat) else {
                continue;
            };
            let name = command_name(&stat);
            if name.is_some_and(|name| database.contains(&name)) {
                ticks.0 += cpu;
            } else if name.is_some_and(|name| front.contains(&name)) {
                ticks.1 += cpu;
            } else if is_kernel_thread(&stat) {
                ticks.2 += cpu;
            }
        }
        Self {
            database: ticks.0 as f64 / clock_ticks(),
            front: ticks.1 as f64 / clock_ticks(),
            kernel_threads: ticks.2 as f64 / clock_ticks(),
        }
    }
}

/// The kernel's flag for its own threads (`PF_KTHREAD`, field 9 of `/proc/PID/stat`).
const PF_KTHREAD: u64 = 0x0020_0000;

fn is_kernel_thread(stat: &str) -> bool {
    // The fields start at field 3; flags is field 9, index 6 here.
    stat_fields(stat)
        .and_then(|mut fields| fields.nth(6))
        .and_then(|f| f.parse::<u64>().ok())
        .is_some_and(|flags| flags & PF_KTHREAD != 0)
}

/// Field 2 of a `/proc/PID/stat` line, without its parentheses.
fn command_name(stat: &str) -> Option<&str> {
    stat.get(stat.find('(')? + 1..stat.rfind(')')?)
}

/// A `kB` field of `/proc/PID/status` (VmRSS, VmHWM) in bytes, summed over `pids`; `None`
/// when none of them has it.
pub fn status_kb_field(pids: &[u32], field: &str) -> Option<u64> {
    pids.iter()
        .filter_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            status_field_bytes(&status, field)
        })
        .reduce(|a, b| a + b)
}

pub fn status_field_bytes(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// Samples the VmRSS of processes (a server's [`process_tree`], taken once when sampling
/// starts), summed, every `every` until stopped; reports the peak.
#[derive(Debug)]
pub struct RssSampler {
    stop: Arc<tokio::sync::Notify>,
    handle: tokio::task::JoinHandle<u64>,
}

impl RssSampler {
    pub fn start(pids: Vec<u32>, every: Duration) -> Self {
        let stop = Arc::new(tokio::sync::Notify::new());
        let notified = stop.clone();
        let handle = tokio::spawn(async move {
            let mut peak = 0;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        peak = peak.max(status_kb_field(&pids, "VmRSS").unwrap_or(0));
                    }
                    () = notified.notified() => break,
                }
            }
            peak.max(status_kb_field(&pids, "VmRSS").unwrap_or(0))
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

/// The kernel's PM QoS device: the CPU wake-up latency the machine must keep to, in µs.
pub const CPU_LATENCY_DEVICE: &str = "/dev/cpu_dma_latency";

/// Idle cores kept polling while this guard lives (`--cpu-idle poll`): the PM QoS CPU
/// latency limit set to 0 µs (what tuned's `latency-performance` profile does), so the idle
/// governor picks its polling state instead of halting. On a VM, a halted virtual CPU must be
/// woken by the hypervisor for every request that arrives while it idles, which is slow and
/// varies with the host's load: here it made a one-connection `GET /` take 80 µs instead of
/// 23 µs. But a polling core keeps its host core busy, and on this VM a full comparison with
/// polling cores measured less throughput where cores were busy and wider intervals, so the
/// comparison does not poll by default. The kernel drops the limit when the file is closed, so
/// it lasts exactly as long as the measurement.
#[derive(Debug)]
pub struct IdlePolling {
    _device: std::fs::File,
}

impl IdlePolling {
    /// Sets the limit through `device` ([`CPU_LATENCY_DEVICE`]; writable by root only).
    pub fn request(device: &std::path::Path) -> anyhow::Result<Self> {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(device)
            .with_context(|| format!("opening {}", device.display()))?;
        file.write_all(&0i32.to_ne_bytes())
            .with_context(|| format!("writing {}", device.display()))?;
        Ok(Self { _device: file })
    }
}

/// How idle cores wait during a measurement, for the records: "poll" while some process
/// holds the CPU latency limit at 0 µs, "halt" otherwise (the idle governor's choice), or
/// `None` where the limit cannot be read.
pub fn cpu_idle() -> Option<String> {
    let bytes = std::fs::read(CPU_LATENCY_DEVICE).ok()?;
    let limit = i32::from_ne_bytes(bytes.get(..4)?.try_into().ok()?);
    Some(if limit == 0 { "poll" } else { "halt" }.to_owned())
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
        assert!(!is_kernel_thread(stat));
        let kworker = "57 (kworker/0:1-events) I 2 0 0 0 -1 69238880 0 0 0 0 3 9 0 0 20 0";
        assert!(is_kernel_thread(kworker));
        assert_eq!(parse_stat_cpu_ticks(kworker), Some(12));
    }

    #[test]
    fn a_process_tree_holds_children_and_grandchildren() {
        // A shell whose child is a sleeping shell whose child is sleep.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sh -c 'sleep 30; true' & wait"])
            .spawn()
            .unwrap();
        let root = child.id();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let tree = loop {
            let tree = process_tree(root);
            if tree.len() >= 3 || std::time::Instant::now() > deadline {
                break tree;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(tree[0], root);
        assert_eq!(tree.len(), 3, "{tree:?}");
        let rss = status_kb_field(&tree, "VmRSS").unwrap();
        let own = status_kb_field(&[root], "VmRSS").unwrap();
        assert!(rss > own, "the tree's {rss} bytes against the root's {own}");
        assert!(tree_cpu_seconds(&tree).unwrap() >= cpu_seconds(Some(root)).unwrap());
        assert!(tree_cpu_seconds(&[]).is_err());
        for pid in tree.iter().rev() {
            let _ = nix::sys::signal::kill(
                Pid::from_raw(*pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = child.wait();
        assert_eq!(process_tree(u32::MAX), [u32::MAX]);
    }

    #[test]
    fn parses_the_machines_cpu_time() {
        let stat = "cpu  100 5 50 9000 20 3 2 40 0 0\ncpu0 50 2 25 4500 10 1 1 20 0 0\nintr 1\n";
        let cpu = SystemCpu::parse(stat, 100.0).unwrap();
        assert!((cpu.busy - 1.6).abs() < 1e-9, "{cpu:?}");
        assert!((cpu.steal - 0.4).abs() < 1e-9, "{cpu:?}");
        assert!((cpu.interrupts - 0.05).abs() < 1e-9, "{cpu:?}");
        assert_eq!(SystemCpu::parse("intr 1\n", 100.0), None);
        assert!(SystemCpu::read().unwrap().busy > 0.0);
    }

    #[test]
    fn idle_polling_writes_a_zero_limit() {
        let dir = tempfile::tempdir().unwrap();
        let device = dir.path().join("cpu_dma_latency");
        std::fs::write(&device, b"").unwrap();
        let guard = IdlePolling::request(&device).unwrap();
        assert_eq!(std::fs::read(&device).unwrap(), 0i32.to_ne_bytes());
        drop(guard);
        let missing = dir.path().join("no-such-device");
        let err = IdlePolling::request(&missing).unwrap_err();
        assert!(format!("{err:#}").contains("no-such-device"), "{err:#}");
    }
}
