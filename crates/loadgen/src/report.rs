//! Renders `summary.md` and SVG plots from records alone: medians over repetitions with their
//! spread, flags on every flagged combination, and a provenance section.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::checks::Checks;
use crate::record::{Flag, Record};
use crate::svg::{Chart, Series, render};
use crate::workload::WorkloadKind;

/// Identifies the repetitions of one combination.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    pub db: String,
    pub workload: WorkloadKind,
    /// "closed" or "open @ R/s".
    pub load: String,
    pub connections: usize,
    pub stack: String,
}

/// The repetitions of one combination.
#[derive(Debug, Clone)]
pub struct Group<'a> {
    pub records: Vec<&'a Record>,
}

impl Group<'_> {
    /// Values of `f` over the repetitions that have one.
    fn values(&self, f: impl Fn(&Record) -> Option<f64>) -> Vec<f64> {
        self.records
            .iter()
            .filter_map(|r| f(r))
            .filter(|v| v.is_finite())
            .collect()
    }

    pub fn flags(&self) -> BTreeSet<Flag> {
        self.records
            .iter()
            .flat_map(|r| r.results.flags())
            .collect()
    }

    fn markers(&self) -> String {
        self.flags().iter().map(|f| f.marker()).collect()
    }
}

/// Median, min and max.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }

    /// `median (min–max)`, or just the value for a single repetition.
    pub fn format(&self, f: impl Fn(f64) -> String) -> String {
        if self.n == 1 {
            f(self.median)
        } else {
            format!("{} ({}–{})", f(self.median), f(self.min), f(self.max))
        }
    }
}

/// An integer with thousands separators: 12,345.
pub fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Milliseconds from microseconds, three decimals.
pub fn ms(us: f64) -> String {
    format!("{:.3}", us / 1000.0)
}

fn mib(bytes: f64) -> String {
    format!("{:.1}", bytes / 1_048_576.0)
}

fn load_label(r: &Record) -> String {
    match r.target_rate {
        Some(rate) if r.load_model == "open" => format!("open @ {} req/s", thousands(rate)),
        _ => "closed".to_owned(),
    }
}

/// Groups records by combination.
pub fn group(records: &[Record]) -> BTreeMap<GroupKey, Group<'_>> {
    let mut map: BTreeMap<GroupKey, Group<'_>> = BTreeMap::new();
    for r in records {
        let key = GroupKey {
            db: r.db.clone(),
            workload: r.workload,
            load: load_label(r),
            connections: r.connections,
            stack: r.stack.clone(),
        };
        map.entry(key)
            .or_insert_with(|| Group {
                records: Vec::new(),
            })
            .records
            .push(r);
    }
    map
}

/// A cell without markers (rows whose label already carries them).
fn plain_cell(
    g: &Group<'_>,
    f: impl Fn(&Record) -> Option<f64>,
    fmt: impl Fn(f64) -> String,
) -> String {
    Spread::of(&g.values(f)).map_or_else(|| "–".to_owned(), |s| s.format(fmt))
}

/// A cell with the combination's markers.
fn cell(
    g: Option<&Group<'_>>,
    f: impl Fn(&Record) -> Option<f64>,
    fmt: impl Fn(f64) -> String,
) -> String {
    let Some(g) = g else { return "–".to_owned() };
    match Spread::of(&g.values(f)) {
        Some(s) => format!("{}{}", s.format(fmt), g.markers()),
        None => format!("–{}", g.markers()),
    }
}

/// (db, workload, load) of one concurrency sweep.
type SweepKey = (String, WorkloadKind, String);

/// What `report` wrote.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub summary: PathBuf,
    pub plots: Vec<PathBuf>,
}

/// Renders `summary.md` and `plots/*.svg` into `out_dir` from the records in `records_path`.
pub fn render_report(records_path: &Path, out_dir: &Path) -> anyhow::Result<Rendered> {
    let records = crate::record::read_all(records_path)?;
    anyhow::ensure!(
        !records.is_empty(),
        "{} holds no records",
        records_path.display()
    );
    std::fs::create_dir_all(out_dir.join("plots"))
        .with_context(|| format!("creating {}", out_dir.display()))?;
    let checks_path = records_path.with_file_name("checks.jsonl");
    let checks = Checks::read(&checks_path)?;
    let (markdown, plots) = render_markdown(&records, &records_path.display().to_string(), &checks);
    let mut written = Vec::new();
    for (name, svg) in plots {
        let path = out_dir.join("plots").join(name);
        std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    let summary = out_dir.join("summary.md");
    std::fs::write(&summary, markdown).with_context(|| format!("writing {}", summary.display()))?;
    Ok(Rendered {
        summary,
        plots: written,
    })
}

/// Lists each stack's reliability verdicts (`checks.jsonl`), or says none were recorded.
fn reliability_section(md: &mut String, checks: &Checks) {
    let _ = writeln!(md, "## Reliability checks\n");
    if checks.is_empty() {
        let _ = writeln!(
            md,
            "No verdicts recorded for this run (`scripts/reliability.sh DIR` writes `DIR/checks.jsonl`).\n"
        );
        return;
    }
    let _ = writeln!(
        md,
        "Conformance, hostile-input, database-fault, shutdown, OpenAPI and soak tests (`tests`) and \
         schemathesis against `openapi.yaml`, on SQLite and PostgreSQL.\n"
    );
    let _ = writeln!(md, "| stack | check | verdict | command | commit |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    for (stack, verdicts) in checks.iter() {
        for v in verdicts {
            let verdict = if v.passed { "passed" } else { "FAILED" };
            let commit = v.commit.get(..12).unwrap_or(&v.commit);
            let _ = writeln!(
                md,
                "| {stack} | {} | {verdict} | `{}` | {commit} |",
                v.check, v.command
            );
        }
    }
    md.push('\n');
}

/// The Markdown summary and the plots (file name, SVG text).
/// `checks` are the per-stack reliability verdicts (empty when none were recorded).
pub fn render_markdown(
    records: &[Record],
    source: &str,
    checks: &Checks,
) -> (String, Vec<(String, String)>) {
    let groups = group(records);
    let dbs: BTreeSet<&str> = records.iter().map(|r| r.db.as_str()).collect();
    let stacks: BTreeSet<&str> = records.iter().map(|r| r.stack.as_str()).collect();
    let mut md = String::new();
    let mut plots = Vec::new();
    let reps = records
        .iter()
        .map(|r| r.repetition)
        .collect::<BTreeSet<_>>()
        .len();
    let _ = writeln!(md, "# Benchmark summary\n");
    let _ = writeln!(
        md,
        "Generated by `loadgen report` from `{source}` ({} records, {} stack(s), {} repetition index(es)). \
         Every cell is the median over repetitions with the spread (min–max) in parentheses.\n",
        records.len(),
        stacks.len(),
        reps
    );
    let _ = writeln!(
        md,
        "Markers: {}\n",
        Flag::ALL
            .map(|f| format!("{} {}", f.marker(), f.meaning()))
            .join("; ")
    );

    // (1) Milliseconds per operation, the published todo benchmark's shape.
    let _ = writeln!(
        md,
        "## Milliseconds per operation (mean latency, closed loop)\n"
    );
    let ops = [
        WorkloadKind::Hello,
        WorkloadKind::Create,
        WorkloadKind::Read,
        WorkloadKind::Update,
        WorkloadKind::Delete,
    ];
    for db in &dbs {
        let cols: Vec<(WorkloadKind, usize)> = ops
            .iter()
            .flat_map(|&w| [1, 10].map(|c| (w, c)))
            .filter(|&(w, c)| {
                groups.keys().any(|k| {
                    k.db == *db && k.workload == w && k.connections == c && k.load == "closed"
                })
            })
            .collect();
        if cols.is_empty() {
            continue;
        }
        let _ = writeln!(md, "### {db}\n");
        let _ = writeln!(
            md,
            "| stack | {} | reliability checks |",
            cols.iter()
                .map(|(w, c)| format!("{w} c={c}"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(md, "|---|{}---|", "---:|".repeat(cols.len()));
        for stack in &stacks {
            let cells: Vec<String> = cols
                .iter()
                .map(|&(w, c)| {
                    let key = GroupKey {
                        db: (*db).to_owned(),
                        workload: w,
                        load: "closed".to_owned(),
                        connections: c,
                        stack: (*stack).to_owned(),
                    };
                    cell(groups.get(&key), |r| Some(r.results.latency_us.mean), ms)
                })
                .collect();
            let _ = writeln!(
                md,
                "| {stack} | {} | {} |",
                cells.join(" | "),
                checks.summary(stack)
            );
        }
        md.push('\n');
    }
    reliability_section(&mut md, checks);

    // (2) Throughput and latency across the concurrency sweep, (3) efficiency.
    let mut sweeps: BTreeMap<SweepKey, Vec<(&GroupKey, &Group<'_>)>> = BTreeMap::new();
    for (k, g) in &groups {
        sweeps
            .entry((k.db.clone(), k.workload, k.load.clone()))
            .or_default()
            .push((k, g));
    }
    let _ = writeln!(
        md,
        "## Throughput and latency across the concurrency sweep\n"
    );
    for ((db, workload, load), rows) in &sweeps {
        let _ = writeln!(md, "### {workload} on {db} ({load})\n");
        let _ = writeln!(
            md,
            "| stack | connections | ok req/s | p50 ms | p99 ms | p99.9 ms | errors |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
        let mut sorted = rows.clone();
        sorted.sort_by(|a, b| (&a.0.stack, a.0.connections).cmp(&(&b.0.stack, b.0.connections)));
        for (k, g) in &sorted {
            let _ = writeln!(
                md,
                "| {}{} | {} | {} | {} | {} | {} | {} |",
                k.stack,
                g.markers(),
                k.connections,
                plain_cell(g, |r| Some(r.results.throughput), thousands),
                plain_cell(g, |r| Some(r.results.latency_us.p50 as f64), ms),
                plain_cell(g, |r| Some(r.results.latency_us.p99 as f64), ms),
                plain_cell(g, |r| Some(r.results.latency_us.p99_9 as f64), ms),
                plain_cell(g, |r| Some(r.results.errors_total as f64), thousands),
            );
        }
        md.push('\n');
        if load == "closed" {
            let file_stem = format!("{db}-{workload}");
            let series_of = |f: &dyn Fn(&Record) -> f64| -> Vec<Series> {
                stacks
                    .iter()
                    .filter_map(|stack| {
                        let points: Vec<(f64, f64)> = rows
                            .iter()
                            .filter(|(k, _)| k.stack == *stack)
                            .filter_map(|(k, g)| {
                                Spread::of(&g.values(|r| Some(f(r))))
                                    .map(|s| (k.connections as f64, s.median))
                            })
                            .collect();
                        (!points.is_empty()).then(|| Series {
                            name: (*stack).to_owned(),
                            points,
                        })
                    })
                    .collect()
            };
            let tp = Chart {
                title: format!("{workload} on {db}: throughput"),
                x_label: "connections".into(),
                y_label: "ok requests/s (median)".into(),
                log_x: true,
                log_y: false,
                series: series_of(&|r| r.results.throughput),
            };
            let p99 = Chart {
                title: format!("{workload} on {db}: p99 latency"),
                x_label: "connections".into(),
                y_label: "p99 latency ms (median, log)".into(),
                log_x: true,
                log_y: true,
                series: series_of(&|r| r.results.latency_us.p99 as f64 / 1000.0),
            };
            let tp_name = format!("throughput-{file_stem}.svg");
            let p99_name = format!("p99-{file_stem}.svg");
            let _ = writeln!(
                md,
                "![throughput](plots/{tp_name}) ![p99](plots/{p99_name})\n"
            );
            plots.push((tp_name, render(&tp)));
            plots.push((p99_name, render(&p99)));
        }
    }

    let _ = writeln!(md, "## Efficiency\n");
    for ((db, workload, load), rows) in &sweeps {
        let _ = writeln!(md, "### {workload} on {db} ({load})\n");
        let _ = writeln!(
            md,
            "| stack | connections | requests per server CPU-s | server CPU-s | peak RSS MiB | loadgen CPU-s |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
        let mut sorted = rows.clone();
        sorted.sort_by(|a, b| (&a.0.stack, a.0.connections).cmp(&(&b.0.stack, b.0.connections)));
        for (k, g) in &sorted {
            let _ = writeln!(
                md,
                "| {}{} | {} | {} | {} | {} | {} |",
                k.stack,
                g.markers(),
                k.connections,
                plain_cell(g, |r| r.results.requests_per_server_cpu_second, thousands),
                plain_cell(g, |r| r.results.server_cpu_seconds, |v| format!("{v:.2}")),
                plain_cell(
                    g,
                    |r| r.results.server_peak_rss_bytes.map(|b| b as f64),
                    mib
                ),
                plain_cell(
                    g,
                    |r| Some(r.results.loadgen_cpu_seconds),
                    |v| format!("{v:.2}")
                ),
            );
        }
        md.push('\n');
    }

    // Notes on flagged combinations.
    let flagged: Vec<_> = groups
        .iter()
        .filter(|(_, g)| !g.flags().is_empty())
        .collect();
    let _ = writeln!(md, "## Notes on flagged combinations\n");
    if flagged.is_empty() {
        let _ = writeln!(
            md,
            "No combination had errors, a saturated load generator, ids running out or an unclean shutdown.\n"
        );
    }
    for (k, g) in flagged {
        let _ = writeln!(
            md,
            "- {}{} {} {} {} c={}:",
            k.stack,
            g.markers(),
            k.db,
            k.workload,
            k.load,
            k.connections
        );
        for r in &g.records {
            let res = &r.results;
            let e = &res.errors;
            let mut parts = Vec::new();
            if res.errors_total > 0 {
                parts.push(format!(
                    "{} errors of {} requests (connect {}, io {}, timeout {}, 4xx {}, 5xx {}, other status {}, body mismatch {})",
                    res.errors_total, res.requests, e.connect, e.io, e.timeout, e.status_4xx, e.status_5xx, e.status_other, e.body_mismatch
                ));
            }
            if res.loadgen_saturated {
                parts.push(format!(
                    "loadgen used {:.2} CPU-s on {} core(s) in {:.2} s",
                    res.loadgen_cpu_seconds, res.loadgen_cores, res.measured_seconds
                ));
            }
            if res.clean_shutdown == Some(false) {
                parts.push("unclean shutdown".to_owned());
            }
            if res.ids_exhausted {
                parts.push(format!(
                    "delete ids ran out after {:.2} s",
                    res.measured_seconds
                ));
            }
            if !parts.is_empty() {
                let _ = writeln!(md, "  - repetition {}: {}", r.repetition, parts.join("; "));
            }
        }
    }
    md.push('\n');

    // Provenance.
    let _ = writeln!(md, "## Provenance\n");
    let distinct = |f: &dyn Fn(&Record) -> String| -> String {
        let set: BTreeSet<String> = records.iter().map(f).collect();
        set.into_iter().collect::<Vec<_>>().join("; ")
    };
    let or_unknown = |o: &Option<String>| o.clone().unwrap_or_else(|| "unknown".to_owned());
    let _ = writeln!(
        md,
        "- machine: {}",
        distinct(&|r| format!(
            "{} ({}, {} cores)",
            or_unknown(&r.provenance.hostname),
            or_unknown(&r.provenance.cpu_model),
            r.provenance.cores
        ))
    );
    let _ = writeln!(
        md,
        "- commit: {}",
        distinct(&|r| format!(
            "{}{}",
            or_unknown(&r.provenance.git_commit),
            if r.provenance.git_dirty == Some(true) {
                " (dirty tree)"
            } else {
                ""
            }
        ))
    );
    let _ = writeln!(
        md,
        "- rustc: {}",
        distinct(&|r| or_unknown(&r.provenance.rustc))
    );
    let _ = writeln!(
        md,
        "- server build profile: {}",
        distinct(&|r| or_unknown(&r.provenance.build_profile))
    );
    let _ = writeln!(
        md,
        "- pinning: {}",
        distinct(&|r| r.provenance.pinning.clone())
    );
    let _ = writeln!(
        md,
        "- load generator threads: {}",
        distinct(&|r| r.threads.to_string())
    );
    let _ = writeln!(
        md,
        "- server workers / pool: {}",
        distinct(&|r| format!(
            "{} / {}",
            r.server_workers
                .map_or_else(|| "?".to_owned(), |w| w.to_string()),
            r.server_pool_size
                .map_or_else(|| "?".to_owned(), |p| p.to_string())
        ))
    );
    let _ = writeln!(
        md,
        "- warm-up / duration: {}",
        distinct(&|r| match r.fixed_requests {
            Some(n) => format!("{} s / {n} requests", r.warmup_seconds),
            None => format!("{} s / {} s", r.warmup_seconds, r.duration_seconds),
        })
    );
    let dates: BTreeSet<&str> = records.iter().map(|r| r.provenance.date.as_str()).collect();
    let _ = writeln!(
        md,
        "- dates (UTC): {} … {}",
        dates.first().copied().unwrap_or("?"),
        dates.last().copied().unwrap_or("?")
    );
    let commands: BTreeSet<&str> = records
        .iter()
        .map(|r| r.provenance.command.as_str())
        .collect();
    let _ = writeln!(md, "- commands:");
    for c in commands {
        let _ = writeln!(md, "  - `{c}`");
    }
    (md, plots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_and_spreads() {
        assert_eq!(thousands(12_345.4), "12,345");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_000_000.0), "1,000,000");
        assert_eq!(ms(1234.0), "1.234");
        let s = Spread::of(&[3.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 10.0));
        assert_eq!(
            Spread::of(&[12_001.0, 12_345.0, 12_700.0])
                .unwrap()
                .format(thousands),
            "12,345 (12,001–12,700)"
        );
        assert_eq!(Spread::of(&[5.0]).unwrap().format(thousands), "5");
    }
}
