//! Renders `summary.md` and SVG plots from records alone: medians over repetitions with their
//! spread, flags on every flagged combination, and a provenance section. One function per
//! section of the summary; tables through [`Table`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use harness::DbKind;

use crate::checks::Checks;
use crate::record::{Flag, LoadModelKind, Record};
use crate::svg::{Chart, Series, render};
use crate::table::Table;
use crate::workload::WorkloadKind;

/// Identifies the repetitions of one combination.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    pub db: Option<DbKind>,
    pub workload: WorkloadKind,
    /// "closed" or "open @ R req/s".
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

    /// `median (min–max)` of `f` over the repetitions, without markers.
    fn cell(&self, f: impl Fn(&Record) -> Option<f64>, fmt: impl Fn(f64) -> String) -> String {
        Spread::of(&self.values(f)).map_or_else(|| "–".to_owned(), |s| s.format(fmt))
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

fn two_decimals(v: f64) -> String {
    format!("{v:.2}")
}

/// `sqlite`, `postgres`, or `unknown` for a server loadgen did not start.
pub fn db_label(db: Option<DbKind>) -> &'static str {
    db.map_or("unknown", DbKind::name)
}

const CLOSED: &str = "closed";

fn load_label(r: &Record) -> String {
    match (r.load_model, r.target_rate) {
        (LoadModelKind::Open, Some(rate)) => format!("open @ {} req/s", thousands(rate)),
        _ => CLOSED.to_owned(),
    }
}

/// Groups records by combination.
pub fn group(records: &[Record]) -> BTreeMap<GroupKey, Group<'_>> {
    let mut map: BTreeMap<GroupKey, Group<'_>> = BTreeMap::new();
    for r in records {
        let key = GroupKey {
            db: r.db,
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

/// What `report` wrote.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub summary: PathBuf,
    pub plots: Vec<PathBuf>,
}

/// Renders `summary.md` and `plots/*.svg` into `out_dir` from the records in `records_path`
/// (and the reliability verdicts in `checks.jsonl` beside it, if any).
pub fn render_report(records_path: &Path, out_dir: &Path) -> anyhow::Result<Rendered> {
    let records = crate::record::read_all(records_path)?;
    anyhow::ensure!(
        !records.is_empty(),
        "{} holds no records",
        records_path.display()
    );
    std::fs::create_dir_all(out_dir.join("plots"))
        .with_context(|| format!("creating {}", out_dir.display()))?;
    let checks = Checks::read(&records_path.with_file_name("checks.jsonl"))?;
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

/// What every section reads: the records, grouped, and the stacks and databases among them.
struct Sections<'a> {
    records: &'a [Record],
    groups: BTreeMap<GroupKey, Group<'a>>,
    stacks: BTreeSet<&'a str>,
    dbs: BTreeSet<Option<DbKind>>,
    checks: &'a Checks,
}

/// (db, workload, load) of one concurrency sweep, and its combinations.
type Sweeps<'g, 'a> =
    BTreeMap<(Option<DbKind>, WorkloadKind, String), Vec<(&'g GroupKey, &'g Group<'a>)>>;

impl<'a> Sections<'a> {
    fn new(records: &'a [Record], checks: &'a Checks) -> Self {
        Self {
            records,
            groups: group(records),
            stacks: records.iter().map(|r| r.stack.as_str()).collect(),
            dbs: records.iter().map(|r| r.db).collect(),
            checks,
        }
    }

    /// The combinations of each concurrency sweep, by stack and then connections.
    fn sweeps(&self) -> Sweeps<'_, 'a> {
        let mut sweeps: Sweeps<'_, 'a> = BTreeMap::new();
        for (k, g) in &self.groups {
            sweeps
                .entry((k.db, k.workload, k.load.clone()))
                .or_default()
                .push((k, g));
        }
        for rows in sweeps.values_mut() {
            rows.sort_by(|a, b| (&a.0.stack, a.0.connections).cmp(&(&b.0.stack, b.0.connections)));
        }
        sweeps
    }
}

/// The Markdown summary and the plots (file name, SVG text).
/// `checks` are the per-stack reliability verdicts (empty when none were recorded).
pub fn render_markdown(
    records: &[Record],
    source: &str,
    checks: &Checks,
) -> (String, Vec<(String, String)>) {
    let ctx = Sections::new(records, checks);
    let mut md = header(&ctx, source);
    md += &ms_per_operation(&ctx);
    md += &reliability(checks);
    let (sweeps, plots) = concurrency_sweeps(&ctx);
    md += &sweeps;
    md += &efficiency(&ctx);
    md += &flagged(&ctx);
    md += &provenance(records);
    (md, plots)
}

fn header(ctx: &Sections<'_>, source: &str) -> String {
    let repetitions: BTreeSet<u32> = ctx.records.iter().map(|r| r.repetition).collect();
    let markers: Vec<String> = Flag::ALL
        .iter()
        .map(|f| format!("{} {}", f.marker(), f.meaning()))
        .collect();
    format!(
        "# Benchmark summary\n\n\
         Generated by `loadgen report` from `{source}` ({} records, {} stack(s), {} repetition index(es)). \
         Every cell is the median over repetitions with the spread (min–max) in parentheses.\n\n\
         Markers: {}\n\n",
        ctx.records.len(),
        ctx.stacks.len(),
        repetitions.len(),
        markers.join("; ")
    )
}

/// (1) Milliseconds per operation, the published todo benchmark's shape: mean latency at 1
/// and 10 connections, with each stack's reliability verdict.
fn ms_per_operation(ctx: &Sections<'_>) -> String {
    const OPS: [WorkloadKind; 5] = [
        WorkloadKind::Hello,
        WorkloadKind::Create,
        WorkloadKind::Read,
        WorkloadKind::Update,
        WorkloadKind::Delete,
    ];
    let mut md = "## Milliseconds per operation (mean latency, closed loop)\n\n".to_owned();
    for &db in &ctx.dbs {
        let key = |workload, connections, stack: &str| GroupKey {
            db,
            workload,
            load: CLOSED.to_owned(),
            connections,
            stack: stack.to_owned(),
        };
        let cols: Vec<(WorkloadKind, usize)> = OPS
            .iter()
            .flat_map(|&w| [1, 10].map(|c| (w, c)))
            .filter(|&(w, c)| {
                ctx.groups.keys().any(|k| {
                    k.db == db && k.workload == w && k.connections == c && k.load == CLOSED
                })
            })
            .collect();
        if cols.is_empty() {
            continue;
        }
        let header = std::iter::once("stack".to_owned())
            .chain(cols.iter().map(|(w, c)| format!("{w} c={c}")))
            .chain(["reliability checks".to_owned()]);
        let mut table = Table::new(header, &format!("l{}l", "r".repeat(cols.len())));
        for stack in &ctx.stacks {
            let cells = cols.iter().map(|&(w, c)| {
                ctx.groups.get(&key(w, c, stack)).map_or_else(
                    || "–".to_owned(),
                    |g| g.cell(|r| Some(r.results.latency_us.mean), ms) + &g.markers(),
                )
            });
            let row = std::iter::once((*stack).to_owned())
                .chain(cells)
                .chain([ctx.checks.summary(stack)]);
            table.row(row);
        }
        let _ = write!(md, "### {}\n\n{}", db_label(db), table.render());
    }
    md
}

/// Each stack's reliability verdicts (`checks.jsonl`), or a note that none were recorded.
fn reliability(checks: &Checks) -> String {
    let mut md = "## Reliability checks\n\n".to_owned();
    if checks.is_empty() {
        md += "No verdicts recorded for this run (`cargo xtask reliability DIR` writes `DIR/checks.jsonl`).\n\n";
        return md;
    }
    md += "Conformance, hostile-input, database-fault, shutdown, OpenAPI and soak tests (`tests`) and \
           schemathesis against `openapi.yaml`, on SQLite and PostgreSQL.\n\n";
    let mut table = Table::new(["stack", "check", "verdict", "command", "commit"], "lllll");
    for (stack, verdicts) in checks.iter() {
        for v in verdicts {
            let verdict = if v.passed { "passed" } else { "FAILED" };
            let commit = v.commit.get(..12).unwrap_or(&v.commit);
            table.row([
                stack.clone(),
                v.check.clone(),
                verdict.to_owned(),
                format!("`{}`", v.command),
                commit.to_owned(),
            ]);
        }
    }
    md + &table.render()
}

/// A column of a per-combination table: its heading and its cell.
type Column = (&'static str, fn(&Group<'_>) -> String);

/// Throughput and latency of one combination.
const SWEEP_COLUMNS: [Column; 5] = [
    ("ok req/s", |g| {
        g.cell(|r| Some(r.results.throughput), thousands)
    }),
    ("p50 ms", |g| {
        g.cell(|r| Some(r.results.latency_us.p50 as f64), ms)
    }),
    ("p99 ms", |g| {
        g.cell(|r| Some(r.results.latency_us.p99 as f64), ms)
    }),
    ("p99.9 ms", |g| {
        g.cell(|r| Some(r.results.latency_us.p99_9 as f64), ms)
    }),
    ("errors", |g| {
        g.cell(|r| Some(r.results.errors_total as f64), thousands)
    }),
];

/// What one combination cost the server (and the load generator).
const EFFICIENCY_COLUMNS: [Column; 4] = [
    ("requests per server CPU-s", |g| {
        g.cell(|r| r.results.requests_per_server_cpu_second, thousands)
    }),
    ("server CPU-s", |g| {
        g.cell(|r| r.results.server_cpu_seconds, two_decimals)
    }),
    ("peak RSS MiB", |g| {
        g.cell(|r| r.results.server_peak_rss_bytes.map(|b| b as f64), mib)
    }),
    ("loadgen CPU-s", |g| {
        g.cell(|r| Some(r.results.loadgen_cpu_seconds), two_decimals)
    }),
];

/// One row per combination (stack with its markers, connections) with `columns`, as Markdown.
fn combinations(rows: &[(&GroupKey, &Group<'_>)], columns: &[Column]) -> String {
    let header = ["stack", "connections"]
        .into_iter()
        .chain(columns.iter().map(|(heading, _)| *heading));
    let mut table = Table::new(header, &format!("lr{}", "r".repeat(columns.len())));
    for (k, g) in rows {
        let labels = [
            format!("{}{}", k.stack, g.markers()),
            k.connections.to_string(),
        ];
        table.row(
            labels
                .into_iter()
                .chain(columns.iter().map(|(_, cell)| cell(g))),
        );
    }
    table.render()
}

/// (2) Throughput and latency across each concurrency sweep, with its two plots.
fn concurrency_sweeps(ctx: &Sections<'_>) -> (String, Vec<(String, String)>) {
    let mut md = "## Throughput and latency across the concurrency sweep\n\n".to_owned();
    let mut plots = Vec::new();
    for ((db, workload, load), rows) in &ctx.sweeps() {
        let db = db_label(*db);
        let table = combinations(rows, &SWEEP_COLUMNS);
        let _ = write!(md, "### {workload} on {db} ({load})\n\n{table}");
        if load != CLOSED {
            continue;
        }
        let series_of = |f: &dyn Fn(&Record) -> f64| -> Vec<Series> {
            ctx.stacks
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
        let throughput = Chart {
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
        let tp_name = format!("throughput-{db}-{workload}.svg");
        let p99_name = format!("p99-{db}-{workload}.svg");
        let _ = writeln!(
            md,
            "![throughput](plots/{tp_name}) ![p99](plots/{p99_name})\n"
        );
        plots.push((tp_name, render(&throughput)));
        plots.push((p99_name, render(&p99)));
    }
    (md, plots)
}

/// (3) What each request cost the server: requests per CPU-second, CPU, memory.
fn efficiency(ctx: &Sections<'_>) -> String {
    let mut md = "## Efficiency\n\n".to_owned();
    for ((db, workload, load), rows) in &ctx.sweeps() {
        let _ = write!(
            md,
            "### {workload} on {} ({load})\n\n{}",
            db_label(*db),
            combinations(rows, &EFFICIENCY_COLUMNS)
        );
    }
    md
}

/// What went wrong in each flagged repetition.
fn flag_details(r: &Record) -> Vec<String> {
    let res = &r.results;
    let mut parts = Vec::new();
    if res.errors_total > 0 {
        parts.push(format!(
            "{} errors of {} requests ({})",
            res.errors_total, res.requests, res.errors
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
    if let Some(i) = res.integrity.as_ref().filter(|i| !i.holds()) {
        parts.push(format!(
            "integrity: {} checks failed, {} wrong answers during the load ({})",
            i.failed,
            i.load_problems,
            i.samples.join("; ")
        ));
    }
    parts
}

/// Notes on every flagged combination, repetition by repetition.
fn flagged(ctx: &Sections<'_>) -> String {
    let mut md = "## Notes on flagged combinations\n\n".to_owned();
    let flagged: Vec<_> = ctx
        .groups
        .iter()
        .filter(|(_, g)| !g.flags().is_empty())
        .collect();
    if flagged.is_empty() {
        md += "No combination had errors, a saturated load generator, ids running out or an unclean shutdown.\n\n";
    }
    for (k, g) in flagged {
        let _ = writeln!(
            md,
            "- {}{} {} {} {} c={}:",
            k.stack,
            g.markers(),
            db_label(k.db),
            k.workload,
            k.load,
            k.connections
        );
        for r in &g.records {
            let parts = flag_details(r);
            if !parts.is_empty() {
                let _ = writeln!(md, "  - repetition {}: {}", r.repetition, parts.join("; "));
            }
        }
    }
    md.push('\n');
    md
}

/// Where, when and how the records were made.
fn provenance(records: &[Record]) -> String {
    let distinct = |f: &dyn Fn(&Record) -> String| -> String {
        let set: BTreeSet<String> = records.iter().map(f).collect();
        set.into_iter().collect::<Vec<_>>().join("; ")
    };
    let or_unknown = |o: &Option<String>| o.clone().unwrap_or_else(|| "unknown".to_owned());
    let or_question = |o: Option<usize>| o.map_or_else(|| "?".to_owned(), |v| v.to_string());
    let dates: BTreeSet<&str> = records.iter().map(|r| r.provenance.date.as_str()).collect();
    let commands: BTreeSet<&str> = records
        .iter()
        .map(|r| r.provenance.command.as_str())
        .collect();
    let lines = [
        (
            "machine",
            distinct(&|r| {
                let p = &r.provenance;
                format!(
                    "{} ({}, {} cores)",
                    or_unknown(&p.hostname),
                    or_unknown(&p.cpu_model),
                    p.cores
                )
            }),
        ),
        (
            "commit",
            distinct(&|r| {
                let dirty = r.provenance.git_dirty == Some(true);
                let note = if dirty { " (dirty tree)" } else { "" };
                format!("{}{note}", or_unknown(&r.provenance.git_commit))
            }),
        ),
        ("rustc", distinct(&|r| or_unknown(&r.provenance.rustc))),
        (
            "server build profile",
            distinct(&|r| or_unknown(&r.provenance.build_profile)),
        ),
        ("pinning", distinct(&|r| r.provenance.pinning.clone())),
        (
            "load generator threads",
            distinct(&|r| r.threads.to_string()),
        ),
        (
            "server workers / pool",
            distinct(&|r| {
                format!(
                    "{} / {}",
                    or_question(r.server_workers),
                    or_question(r.server_pool_size)
                )
            }),
        ),
        (
            "warm-up / duration",
            distinct(&|r| match r.fixed_requests {
                Some(n) => format!("{} s / {n} requests", r.warmup_seconds),
                None => format!("{} s / {} s", r.warmup_seconds, r.duration_seconds),
            }),
        ),
        (
            "dates (UTC)",
            format!(
                "{} … {}",
                dates.first().copied().unwrap_or("?"),
                dates.last().copied().unwrap_or("?")
            ),
        ),
    ];
    let mut md = "## Provenance\n\n".to_owned();
    for (what, value) in lines {
        let _ = writeln!(md, "- {what}: {value}");
    }
    md += "- commands:\n";
    for c in commands {
        let _ = writeln!(md, "  - `{c}`");
    }
    md
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
