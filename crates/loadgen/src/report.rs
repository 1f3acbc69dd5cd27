//! Renders `summary.md` and SVG plots from records alone (and, when they lie beside the
//! records, the reliability verdicts of `checks.jsonl`, the cells' outcomes of `cells.jsonl`
//! and the instruction counts of `cost.jsonl`). Records of one run from several load generators are merged first.
//!
//! Each cell (database, workload, load, connections) is analysed once ([`analyse`]): every
//! stack's geometric-mean throughput with its 95 % interval, its ratio to the cell's baseline
//! with the interval of [`crate::stats::paired_ratio`] over the rounds, and its latency from
//! the merged histograms of its trials. One function per section of the summary; tables
//! through [`Table`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use harness::stacks::roles::{PROBE_PAIR, PUBLISHED_TODO, PYTHON_BASELINE, RUST_LIMIT};
use harness::{DbKind, Runtime};

use crate::cell::CellSummary;
use crate::checks::Checks;
use crate::cost::{self, Category, CostRecord, Schedule};
use crate::engine::{LatencySummary, new_histogram};
use crate::record::{self, DbNetwork, Deployment, Flag, LoadModelKind, Record, decode_histogram};
use crate::stats::{self, Interval};
use crate::svg::{Chart, Forest, ForestRow, Series, render, render_forest};
use crate::table::Table;
use crate::workload::WorkloadKind;

/// What identifies a cell: the same for every stack measured in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CellKey {
    pub db: Option<DbKind>,
    pub workload: WorkloadKind,
    /// "closed" or "open @ R req/s".
    pub load: String,
    pub connections: usize,
    /// The database across a network, in a scenario that puts it there.
    pub network: Option<DbNetwork>,
    /// The deployment scenario's hops around the server.
    pub deployment: Option<Deployment>,
}

impl CellKey {
    pub fn of(r: &Record) -> Self {
        Self {
            db: r.db,
            workload: r.workload,
            load: load_label(r),
            connections: r.connections,
            network: r.db_network,
            deployment: r.deployment,
        }
    }

    /// `read c=64` (with the load model when it is not the closed loop, and the network or the
    /// deployment's hops when there are any: `read c=64 rtt=2ms pool=8`, `read c=64 nginx`).
    pub fn label(&self) -> String {
        let mut label = if self.load == CLOSED {
            format!("{} c={}", self.workload, self.connections)
        } else {
            format!("{} {} c={}", self.workload, self.load, self.connections)
        };
        if let Some(network) = self.network {
            label = format!("{label} {}", network.label());
        }
        if let Some(deployment) = self.deployment {
            label = format!("{label} {}", deployment.label());
        }
        label
    }
}

/// One stack in one cell.
#[derive(Debug, Clone)]
pub struct StackResult<'a> {
    pub stack: String,
    /// The trials that count.
    pub records: Vec<&'a Record>,
    /// Geometric-mean ok requests per second with its 95 % interval (two trials or more).
    pub throughput: Option<Interval>,
    /// Ratio of throughput to the cell's baseline, paired by round.
    pub ratio: Option<Interval>,
    /// From the merged histograms of every counted trial.
    pub latency: LatencySummary,
}

impl StackResult<'_> {
    /// The throughput to print: the geometric mean, or the one value there is.
    pub fn throughput_value(&self) -> f64 {
        self.throughput.map_or_else(
            || mean(self.records.iter().map(|r| r.results.throughput)),
            |i| i.estimate,
        )
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

    /// Sum of `f` over the trials.
    fn total(&self, f: impl Fn(&Record) -> f64) -> f64 {
        self.records.iter().map(|r| f(r)).sum()
    }
}

/// Every stack of one cell, the baseline first, then in the registry's order.
#[derive(Debug, Clone)]
pub struct CellResult<'a> {
    pub key: CellKey,
    pub baseline: Option<String>,
    pub stacks: Vec<StackResult<'a>>,
}

impl CellResult<'_> {
    pub fn stack(&self, name: &str) -> Option<&StackResult<'_>> {
        self.stacks.iter().find(|s| s.stack == name)
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Where a stack sorts: the registry's order, then by name.
fn stack_order(name: &str) -> (usize, String) {
    let index = harness::STACKS
        .iter()
        .position(|s| s.name == name)
        .unwrap_or(usize::MAX);
    (index, name.to_owned())
}

/// The cells of the records that count, each with its stacks analysed.
pub fn analyse(records: &[Record]) -> Vec<CellResult<'_>> {
    let mut cells: BTreeMap<CellKey, BTreeMap<(usize, String), Vec<&Record>>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.counts()) {
        cells
            .entry(CellKey::of(r))
            .or_default()
            .entry(stack_order(&r.stack))
            .or_default()
            .push(r);
    }
    cells
        .into_iter()
        .map(|(key, stacks)| {
            let baseline = stacks
                .values()
                .flatten()
                .find_map(|r| r.trial.as_ref().map(|t| t.baseline.clone()));
            let mut results: Vec<StackResult<'_>> = stacks
                .into_iter()
                .map(|((_, stack), records)| {
                    let throughputs: Vec<f64> =
                        records.iter().map(|r| r.results.throughput).collect();
                    StackResult {
                        latency: merged_latency(&records),
                        throughput: stats::geometric_mean(&throughputs),
                        ratio: None,
                        records,
                        stack,
                    }
                })
                .collect();
            if let Some(b) = &baseline
                && let Some(base) = results.iter().find(|s| &s.stack == b).cloned()
            {
                for s in results.iter_mut().filter(|s| &s.stack != b) {
                    s.ratio = round_ratio(&s.records, &base.records);
                }
            }
            if let Some(b) = &baseline
                && let Some(i) = results.iter().position(|s| &s.stack == b)
            {
                let base = results.remove(i);
                results.insert(0, base);
            }
            CellResult {
                key,
                baseline,
                stacks: results,
            }
        })
        .collect()
}

/// The throughput ratio `subject / reference` of two stacks of one cell, paired by round
/// (each round's trials ran within seconds of each other): [`stats::paired_ratio`], `None`
/// without two rounds in common.
fn round_ratio(subject: &[&Record], reference: &[&Record]) -> Option<Interval> {
    let by_round: BTreeMap<(&str, u32), f64> = reference
        .iter()
        .filter_map(|r| {
            let t = r.trial.as_ref()?;
            Some(((t.comparison.as_str(), t.round), r.results.throughput))
        })
        .collect();
    let pairs: Vec<(f64, f64)> = subject
        .iter()
        .filter_map(|r| {
            let t = r.trial.as_ref()?;
            Some((
                r.results.throughput,
                *by_round.get(&(t.comparison.as_str(), t.round))?,
            ))
        })
        .collect();
    stats::paired_ratio(&pairs)
}

/// Latency percentiles of the merged histograms (the recorded summary for a lone record
/// whose histogram does not decode).
fn merged_latency(records: &[&Record]) -> LatencySummary {
    let mut merged = new_histogram();
    for r in records {
        match decode_histogram(&r.results.histogram) {
            Ok(h) => {
                if merged.add(&h).is_err() {
                    return records[0].results.latency_us;
                }
            }
            Err(_) => return records[0].results.latency_us,
        }
    }
    LatencySummary::from_histogram(&merged)
}

/// One line per stack of one cell of one comparison: its ratio to the baseline and its
/// throughput (what `loadgen matrix` prints after each cell).
pub fn analyse_cell(records: &[Record], cell: &str, comparison: &str) -> Vec<String> {
    let mine: Vec<Record> = records
        .iter()
        .filter(|r| {
            r.trial
                .as_ref()
                .is_some_and(|t| t.cell == cell && t.comparison == comparison)
        })
        .cloned()
        .collect();
    let cells = analyse(&mine);
    let Some(result) = cells.first() else {
        return vec!["no counted trials".to_owned()];
    };
    result
        .stacks
        .iter()
        .map(|s| {
            let versus = match (&s.ratio, &result.baseline) {
                (Some(ratio), Some(base)) => format!("{} vs {base}", ratio.ratio_text()),
                (None, Some(base)) if *base == s.stack => "baseline".to_owned(),
                _ => "no ratio".to_owned(),
            };
            format!(
                "{}{}: {} ok req/s, {versus}",
                s.stack,
                s.markers(),
                thousands(s.throughput_value())
            )
        })
        .collect()
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

/// `1 worker`, `3 workers`.
fn counted(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

fn mib(bytes: f64) -> String {
    format!("{:.1}", bytes / 1_048_576.0)
}

fn percent(v: f64) -> String {
    format!("{:.1} %", 100.0 * v)
}

/// `12,345 ±1.8 %`, or the value alone without an interval.
fn with_interval(value: f64, interval: Option<Interval>) -> String {
    match interval {
        Some(i) => format!("{} ±{:.1} %", thousands(value), 100.0 * i.half_width()),
        None => thousands(value),
    }
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

/// What `report` wrote.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub summary: PathBuf,
    pub plots: Vec<PathBuf>,
}

/// Reads `cells.jsonl` beside the records (empty when there is none).
fn read_cells(path: &Path) -> anyhow::Result<Vec<CellSummary>> {
    crate::record::jsonl_lines(path)?
        .into_iter()
        .map(|(n, l)| {
            serde_json::from_str(&l)
                .with_context(|| format!("{}:{n}: not a cell summary", path.display()))
        })
        .collect()
}

/// Renders `summary.md` and `plots/*.svg` into `out_dir` from the records in `records_path`
/// (and `checks.jsonl` and `cells.jsonl` beside it, if there).
pub fn render_report(records_path: &Path, out_dir: &Path) -> anyhow::Result<Rendered> {
    let records = record::merge_runs(record::read_all(records_path)?)?;
    anyhow::ensure!(
        !records.is_empty(),
        "{} holds no records",
        records_path.display()
    );
    std::fs::create_dir_all(out_dir.join("plots"))
        .with_context(|| format!("creating {}", out_dir.display()))?;
    let checks = Checks::read(&records_path.with_file_name("checks.jsonl"))?;
    let cells = read_cells(&records_path.with_file_name("cells.jsonl"))?;
    let costs = cost::read_all(&records_path.with_file_name("cost.jsonl"))?;
    let inputs = Inputs {
        records: &records,
        checks: &checks,
        cells: &cells,
        costs: &costs,
    };
    let (markdown, plots) = render_markdown(
        &inputs,
        &harness::cargo::portable(&records_path.display().to_string()),
    );
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

/// What a report is rendered from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// Merged by run id.
    pub records: &'a [Record],
    pub checks: &'a Checks,
    pub cells: &'a [CellSummary],
    /// Instruction counts (`cost.jsonl`), if any.
    pub costs: &'a [CostRecord],
}

/// What every section reads.
struct Sections<'a> {
    inputs: Inputs<'a>,
    /// The closed-loop cells with the database on the loopback and no hops: every section
    /// but the scenarios'.
    cells: Vec<CellResult<'a>>,
    /// The cells with the database across a network.
    network: Vec<CellResult<'a>>,
    /// The deployment scenario's cells.
    deployment: Vec<CellResult<'a>>,
    /// The open-loop cells (a fixed offered rate), on the loopback.
    open: Vec<CellResult<'a>>,
    dbs: BTreeSet<Option<DbKind>>,
}

impl<'a> Sections<'a> {
    /// The cells of one concurrency sweep (database, workload, load), in connection order.
    fn sweeps(&self) -> BTreeMap<(Option<DbKind>, WorkloadKind, String), Vec<&CellResult<'a>>> {
        let mut sweeps: BTreeMap<_, Vec<&CellResult<'a>>> = BTreeMap::new();
        for c in &self.cells {
            sweeps
                .entry((c.key.db, c.key.workload, c.key.load.clone()))
                .or_default()
                .push(c);
        }
        sweeps
    }

    /// The cells of the published todo benchmark's shape on `db`: `GET /`, create, read,
    /// update and delete at 1 and 10 connections, closed loop, in that order (those measured).
    fn todo_cells(&self, db: Option<DbKind>) -> Vec<&CellResult<'a>> {
        const OPS: [WorkloadKind; 5] = [
            WorkloadKind::Hello,
            WorkloadKind::Create,
            WorkloadKind::Read,
            WorkloadKind::Update,
            WorkloadKind::Delete,
        ];
        OPS.iter()
            .flat_map(|&w| [1, 10].map(|c| (w, c)))
            .filter_map(|(w, c)| {
                self.cells.iter().find(|cell| {
                    cell.key.db == db
                        && cell.key.workload == w
                        && cell.key.connections == c
                        && cell.key.load == CLOSED
                })
            })
            .collect()
    }

    /// Every stack name, baseline stacks first, then in the registry's order.
    fn stacks(&self) -> Vec<String> {
        let set: BTreeSet<(usize, String)> = self
            .cells
            .iter()
            .chain(&self.network)
            .chain(&self.deployment)
            .chain(&self.open)
            .flat_map(|c| c.stacks.iter().map(|s| stack_order(&s.stack)))
            .collect();
        set.into_iter().map(|(_, name)| name).collect()
    }
}

/// The Markdown summary and the plots (file name, SVG text).
pub fn render_markdown(inputs: &Inputs<'_>, source: &str) -> (String, Vec<(String, String)>) {
    let (deployment, direct): (Vec<_>, Vec<_>) = analyse(inputs.records)
        .into_iter()
        .partition(|c| c.key.deployment.is_some());
    let (network, loopback): (Vec<_>, Vec<_>) =
        direct.into_iter().partition(|c| c.key.network.is_some());
    let (open, cells) = loopback.into_iter().partition(|c| c.key.load != CLOSED);
    let ctx = Sections {
        inputs: *inputs,
        cells,
        network,
        deployment,
        open,
        dbs: inputs.records.iter().map(|r| r.db).collect(),
    };
    let mut plots = Vec::new();
    let mut md = header(&ctx, source);
    md += &which_is_faster(&ctx, &mut plots);
    md += &against_the_references(&ctx, &mut plots);
    md += &precision(&ctx);
    md += &ms_per_operation(&ctx);
    md += &reliability(inputs.checks);
    md += &concurrency_sweeps(&ctx, &mut plots);
    md += &fixed_offered_rate(&ctx, &mut plots);
    md += &across_a_network(&ctx, &mut plots);
    md += &deployment_hops(&ctx, &mut plots);
    md += &efficiency(&ctx);
    md += &instructions(inputs.costs);
    md += &noise(&ctx);
    md += &flagged(&ctx);
    md += &provenance(inputs.records);
    (md, plots)
}

fn header(ctx: &Sections<'_>, source: &str) -> String {
    let counted = ctx.inputs.records.iter().filter(|r| r.counts()).count();
    let markers: Vec<String> = Flag::ALL
        .iter()
        .map(|f| format!("{} {}", f.marker(), f.meaning()))
        .collect();
    format!(
        "# Benchmark summary\n\n\
         Generated by `loadgen report` from `{source}` ({} records, {counted} counted). \
         Each cell's servers ran side by side; the load visited them one short trial at a time, \
         in a new random order every round. A ratio is the geometric mean of the per-round \
         ratios to the cell's baseline with its 95 % confidence interval (Student's t on the \
         logarithms), printed `1.12x [1.06–1.18]`, or `tie` when the interval holds 1. \
         Throughputs are geometric means over the trials with the half-width of their 95 % \
         interval; latency percentiles come from the trials' merged histograms.\n\n\
         Markers: {}\n\n\
         Stacks: {}.\n\n",
        ctx.inputs.records.len(),
        markers.join("; "),
        ctx.stacks()
            .iter()
            .map(|name| stack_legend(name))
            .collect::<Vec<_>>()
            .join("; ")
    )
}

/// A stack's name with what it is, from the registry: `axum-sqlx` (axum + sqlx), and for a
/// reference row, that it is one (the rows the compared stacks are judged against).
fn stack_legend(name: &str) -> String {
    match harness::stacks::find(name) {
        Some(stack) if stack.kind == harness::Kind::Reference => {
            format!("`{name}` ({}, a reference row)", stack.title)
        }
        Some(stack) => format!("`{name}` ({})", stack.title),
        None => format!("`{name}`"),
    }
}

/// (1) The headline: each stack's throughput ratio to the baseline in every cell, per
/// database, with a forest plot.
fn which_is_faster(ctx: &Sections<'_>, plots: &mut Vec<(String, String)>) -> String {
    let mut md = "## Which stack is faster\n\n".to_owned();
    let stacks = ctx.stacks();
    for &db in &ctx.dbs {
        let cells: Vec<&CellResult<'_>> = ctx
            .cells
            .iter()
            .filter(|c| c.key.db == db && c.baseline.is_some())
            .collect();
        let Some(baseline) = cells.first().and_then(|c| c.baseline.clone()) else {
            continue;
        };
        let others: Vec<&String> = stacks.iter().filter(|s| **s != baseline).collect();
        let header = ["cell".to_owned(), format!("{baseline} ok req/s")]
            .into_iter()
            .chain(others.iter().map(|s| format!("{s} vs {baseline}")));
        let mut table = Table::new(header, &format!("lr{}", "r".repeat(others.len())));
        let mut rows = Vec::new();
        for c in &cells {
            let base = c.stack(&baseline);
            let cells_text = others.iter().map(|s| {
                c.stack(s).map_or_else(
                    || "–".to_owned(),
                    |r| r.ratio.map_or_else(|| "–".to_owned(), |i| i.ratio_text()) + &r.markers(),
                )
            });
            let base_text = base.map_or_else(
                || "–".to_owned(),
                |b| with_interval(b.throughput_value(), b.throughput) + &b.markers(),
            );
            table.row([c.key.label(), base_text].into_iter().chain(cells_text));
            for s in &others {
                if let Some(ratio) = c.stack(s).and_then(|r| r.ratio) {
                    rows.push(ForestRow {
                        label: c.key.label(),
                        group: (*s).clone(),
                        estimate: ratio.estimate,
                        low: ratio.low,
                        high: ratio.high,
                    });
                }
            }
        }
        let name = format!("ratios-{}.svg", db_label(db));
        let _ = write!(
            md,
            "### {}: throughput relative to {baseline}\n\n{}![ratios](plots/{name})\n\n",
            db_label(db),
            table.render()
        );
        plots.push((
            name,
            render_forest(&Forest {
                title: format!("{}: throughput relative to {baseline}", db_label(db)),
                x_label: format!("ratio to {baseline} (95 % interval, log scale)"),
                rows,
            }),
        ));
    }
    md
}

/// The published todo benchmark (FastAPI + SQLAlchemy vs Rocket + diesel vs axum + diesel on
/// SQLite, 2 workers, 1 and 10 client threads of Python `requests`): axum + diesel's time per
/// operation as a share of FastAPI's. It gave one figure for `GET /` (FastAPI's about 25 %
/// slower) and ranges over the database operations.
fn published_todo_share(workload: WorkloadKind, connections: usize) -> Option<&'static str> {
    use WorkloadKind::{Create, Delete, Hello, Read, Update};
    match (workload, connections) {
        (Hello, _) => Some("~0.80"),
        (Create | Read | Update | Delete, 1) => Some("0.35–0.42"),
        (Create | Read | Update | Delete, 10) => Some("0.64–0.75"),
        _ => None,
    }
}

/// The published axum vs BlackSheep (uvicorn) probes, under 6,000 JMeter users.
fn published_probe(workload: WorkloadKind) -> Option<&'static str> {
    match workload {
        WorkloadKind::Sleep => Some("576 vs 536 req/s: 1.07x (`/async`, a 2 ms sleep)"),
        WorkloadKind::Fibonacci => Some("1,380 vs 1,012 req/s: 1.36x"),
        _ => None,
    }
}

/// (1b) The todo benchmark's shape told against the reference rows: every stack's time per
/// operation relative to the Python baseline and to the Rust limit, beside the published
/// figures; the `/sleep` and `/fibonacci` probes with BlackSheep beside axum; what a request
/// costs each row in CPU and memory. Empty without a reference row in the run.
fn against_the_references(ctx: &Sections<'_>, plots: &mut Vec<(String, String)>) -> String {
    let stacks = ctx.stacks();
    let references: Vec<&str> = [PYTHON_BASELINE, RUST_LIMIT]
        .into_iter()
        .filter(|r| stacks.iter().any(|s| s == r))
        .collect();
    let probes = probe_table(ctx);
    if references.is_empty() && probes.is_empty() {
        return String::new();
    }
    let mut md = format!(
        "## Against the reference rows\n\n\
         Time per operation relative to `{PYTHON_BASELINE}` (the Python baseline of the \
         published comparisons) and to `{RUST_LIMIT}` (hyper with the database drivers, no \
         framework and no ORM: what a framework and an ORM cost). With the same connections in \
         a closed loop, time per operation is connections / throughput, so a time ratio is the \
         inverse of the throughput ratio, paired by round the same way: `0.085x [0.078–0.093]` is \
         about a twelfth of the reference's time, `tie` an interval holding 1. The reference's own \
         row gives its milliseconds per operation. The published row is the todo benchmark's \
         figure for `{PUBLISHED_TODO}` against FastAPI (SQLite, 2 workers, 1 and 10 \
         client threads of Python `requests`).\n\n"
    );
    for &db in &ctx.dbs {
        let cells = ctx.todo_cells(db);
        for &reference in &references {
            if !cells.iter().any(|c| c.stack(reference).is_some()) {
                continue;
            }
            let header =
                std::iter::once("stack".to_owned()).chain(cells.iter().map(|c| c.key.label()));
            let mut table = Table::new(header, &format!("l{}", "r".repeat(cells.len())));
            let mut rows = Vec::new();
            table.row(
                std::iter::once(format!("{reference} (ms per operation)")).chain(cells.iter().map(
                    |c| {
                        c.stack(reference)
                            .map_or_else(|| "–".to_owned(), |r| ms(r.latency.mean) + &r.markers())
                    },
                )),
            );
            for stack in stacks.iter().filter(|s| *s != reference) {
                let ratios = cells.iter().map(|c| {
                    let time = c.stack(stack).zip(c.stack(reference)).and_then(|(s, r)| {
                        round_ratio(&s.records, &r.records).map(|i| (i.inverse(), s.markers()))
                    });
                    if let Some((i, _)) = time {
                        rows.push(ForestRow {
                            label: c.key.label(),
                            group: stack.clone(),
                            estimate: i.estimate,
                            low: i.low,
                            high: i.high,
                        });
                    }
                    time.map_or_else(|| "–".to_owned(), |(i, markers)| i.ratio_text() + &markers)
                });
                table.row(std::iter::once(stack.clone()).chain(ratios));
            }
            if reference == PYTHON_BASELINE {
                table.row(
                    std::iter::once(format!("published: {PUBLISHED_TODO}")).chain(
                        cells.iter().map(|c| {
                            published_todo_share(c.key.workload, c.key.connections)
                                .unwrap_or("–")
                                .to_owned()
                        }),
                    ),
                );
            }
            let title = format!(
                "{}: time per operation relative to {reference}",
                db_label(db)
            );
            let name = format!("time-vs-{reference}-{}.svg", db_label(db));
            let _ = write!(
                md,
                "### {title}\n\n{}![time relative to {reference}](plots/{name})\n\n",
                table.render()
            );
            plots.push((
                name,
                render_forest(&Forest {
                    title,
                    x_label: format!(
                        "time per operation / {reference}'s (95 % interval, log scale)"
                    ),
                    rows,
                }),
            ));
        }
        if !cells.is_empty() {
            md += &request_costs(&cells, &stacks, db);
        }
    }
    md + &probes + &sync_and_async(ctx)
}

/// The published sync-vs-async claim: synchronous Python frameworks under uWSGI or gunicorn,
/// behind nginx with pgbouncer, beat the async ones (its closest pair below).
const PUBLISHED_SYNC_VS_ASYNC: &str = "uWSGI + Bottle (16 workers) 5,497 req/s with a P99 of \
     32 ms against Uvicorn + Starlette (5 workers) 4,952 req/s with a P99 of 75 ms, `ab -c100`: \
     1.11x the throughput";

/// The Python rows in the deployment cells with nginx and pgbouncer both (the published
/// comparison's deployment): throughput, p99 and the throughput ratio to the Python baseline,
/// paired by round, beside the published claim. Empty without such a cell holding the baseline.
fn sync_and_async(ctx: &Sections<'_>) -> String {
    let cells: Vec<&CellResult<'_>> = ctx
        .deployment
        .iter()
        .filter(|c| {
            c.key
                .deployment
                .is_some_and(|d| d.nginx && d.pgbouncer.is_some())
                && c.stack(PYTHON_BASELINE).is_some()
        })
        .collect();
    if cells.is_empty() {
        return String::new();
    }
    let python: Vec<String> = ctx
        .stacks()
        .into_iter()
        .filter(|s| harness::stacks::find(s).is_some_and(|s| s.runtime == Runtime::Python))
        .collect();
    let header = std::iter::once("stack".to_owned()).chain(cells.iter().map(|c| {
        format!(
            "{}: ok req/s · p99 ms · vs {PYTHON_BASELINE}",
            c.key.label()
        )
    }));
    let mut table = Table::new(header, &format!("l{}", "r".repeat(cells.len())));
    for stack in &python {
        let workers = cells
            .iter()
            .find_map(|c| c.stack(stack))
            .and_then(|s| s.records.first()?.server_workers)
            .map_or_else(String::new, |w| format!(" ({})", counted(w, "worker")));
        table.row(
            std::iter::once(format!("{stack}{workers}")).chain(cells.iter().map(|c| {
                let (Some(s), Some(base)) = (c.stack(stack), c.stack(PYTHON_BASELINE)) else {
                    return "–".to_owned();
                };
                let ratio = if stack == PYTHON_BASELINE {
                    "baseline".to_owned()
                } else {
                    round_ratio(&s.records, &base.records)
                        .map_or_else(|| "–".to_owned(), |i| i.ratio_text())
                };
                format!(
                    "{}{} · {} · {ratio}",
                    with_interval(s.throughput_value(), s.throughput),
                    s.markers(),
                    ms(s.latency.p99 as f64)
                )
            })),
        );
    }
    format!(
        "### The published sync-vs-async claim: Python behind nginx and pgbouncer\n\n\
         The Python rows in the deployment cells with both hops, each server with its \
         recommended worker processes; the ratio is throughput to `{PYTHON_BASELINE}`'s, paired \
         by round. Published: {PUBLISHED_SYNC_VS_ASYNC}.\n\n{}",
        table.render()
    )
}

/// Requests per server CPU-second in each of `cells` with one connection, and the peak RSS
/// over all of them, for every stack.
fn request_costs(cells: &[&CellResult<'_>], stacks: &[String], db: Option<DbKind>) -> String {
    let single: Vec<&&CellResult<'_>> = cells.iter().filter(|c| c.key.connections == 1).collect();
    let header = std::iter::once("stack".to_owned())
        .chain(
            single
                .iter()
                .map(|c| format!("{} req per CPU-s", c.key.label())),
        )
        .chain(["peak RSS MiB".to_owned()]);
    let mut table = Table::new(header, &format!("l{}r", "r".repeat(single.len())));
    for stack in stacks {
        let peak = cells
            .iter()
            .filter_map(|c| c.stack(stack).and_then(peak_rss))
            .max();
        table.row(
            std::iter::once(stack.clone())
                .chain(single.iter().map(|c| {
                    c.stack(stack)
                        .map_or_else(|| "–".to_owned(), requests_per_cpu_second)
                }))
                .chain([peak.map_or_else(|| "–".to_owned(), |b| mib(b as f64))]),
        );
    }
    format!(
        "### {}: what a request costs each row\n\n\
         Requests served per CPU-second of the server's processes (every worker process of a \
         Python server included) with one client, and the largest resident set over these \
         cells.\n\n{}",
        db_label(db),
        table.render()
    )
}

/// The `/sleep` and `/fibonacci` probes with the published pair side by side.
fn probe_table(ctx: &Sections<'_>) -> String {
    let (subject, reference) = PROBE_PAIR;
    let mut table = Table::new(
        [
            "probe".to_owned(),
            format!("{subject} ok req/s"),
            format!("{reference} ok req/s"),
            format!("{subject} vs {reference}"),
            "published (axum vs BlackSheep)".to_owned(),
        ],
        "lrrrl",
    );
    let mut any = false;
    for c in &ctx.cells {
        let (Some(published), Some(s), Some(r)) = (
            published_probe(c.key.workload),
            c.stack(subject),
            c.stack(reference),
        ) else {
            continue;
        };
        any = true;
        table.row([
            c.key.label(),
            with_interval(s.throughput_value(), s.throughput) + &s.markers(),
            with_interval(r.throughput_value(), r.throughput) + &r.markers(),
            round_ratio(&s.records, &r.records).map_or_else(|| "–".to_owned(), |i| i.ratio_text()),
            published.to_owned(),
        ]);
    }
    if !any {
        return String::new();
    }
    format!(
        "### The published probes: `/sleep` and `/fibonacci`\n\n\
         Throughput of {subject} and {reference} in the same cells, their ratio paired by round, \
         and the published figures (6,000 JMeter users).\n\n{}",
        table.render()
    )
}

/// (2) How narrow the intervals came out, and how each cell stopped.
fn precision(ctx: &Sections<'_>) -> String {
    let mut md = "## How precise\n\n".to_owned();
    let target = ctx
        .inputs
        .records
        .iter()
        .find_map(|r| r.trial.as_ref().map(|t| t.target))
        .unwrap_or(0.03);
    let mut widths: Vec<f64> = ctx
        .cells
        .iter()
        .flat_map(|c| {
            c.stacks
                .iter()
                .filter_map(|s| s.ratio.map(|r| r.half_width()))
        })
        .collect();
    if widths.is_empty() {
        md += "No paired trials: these records come from single runs, not a comparison.\n\n";
        return md;
    }
    widths.sort_by(f64::total_cmp);
    let within = widths.iter().filter(|&&w| w <= target).count();
    let quantile = |q: f64| widths[((widths.len() - 1) as f64 * q).round() as usize];
    let ties = ctx
        .cells
        .iter()
        .flat_map(|c| c.stacks.iter().filter_map(|s| s.ratio))
        .filter(Interval::is_tie)
        .count();
    let _ = write!(
        md,
        "{within} of {} ratios ({:.0} %) have a 95 % interval within ±{:.0} % (the target); \
         half-widths: median ±{:.1} %, 90th percentile ±{:.1} %, widest ±{:.1} %. \
         {ties} of them are ties.\n\n",
        widths.len(),
        100.0 * within as f64 / widths.len() as f64,
        100.0 * target,
        100.0 * quantile(0.5),
        100.0 * quantile(0.9),
        100.0 * quantile(1.0),
    );
    if ctx.inputs.cells.is_empty() {
        return md;
    }
    // Cells record their trial length since trials were fitted to the cell; older
    // summaries keep their table.
    let fitted = ctx.inputs.cells.iter().any(|c| c.trial_ms.is_some());
    let mut header = vec!["cell", "rounds"];
    if fitted {
        header.push("trial ms");
    }
    header.extend(["stopped because", "seconds", "redone trials"]);
    let mut table = Table::new(header, if fitted { "lrrlrr" } else { "lrlrr" });
    let mut total = 0.0;
    for c in ctx.inputs.cells {
        total += c.seconds;
        let mut row = vec![c.cell.clone(), c.rounds.to_string()];
        if fitted {
            row.push(match (c.shortest_trial_ms, c.trial_ms) {
                (Some(short), Some(long)) if format!("{short:.0}") != format!("{long:.0}") => {
                    format!("{short:.0}–{long:.0}")
                }
                (_, Some(long)) => format!("{long:.0}"),
                (_, None) => "-".to_owned(),
            });
        }
        row.extend([
            c.stop.describe().to_owned(),
            format!("{:.0}", c.seconds),
            c.redone.to_string(),
        ]);
        table.row(row);
    }
    let budget = ctx
        .inputs
        .cells
        .iter()
        .filter(|c| c.stop != crate::cell::Stop::Reached)
        .count();
    let _ = write!(
        md,
        "{} cells in {:.0} s of measurement; {budget} stopped before every interval reached the target.\n\n{}",
        ctx.inputs.cells.len(),
        total,
        table.render()
    );
    md
}

/// (3) Milliseconds per operation, the published todo benchmark's shape: mean latency at 1
/// and 10 connections, with each stack's reliability verdict.
fn ms_per_operation(ctx: &Sections<'_>) -> String {
    let mut md = "## Milliseconds per operation (mean latency, closed loop)\n\n".to_owned();
    let stacks = ctx.stacks();
    for &db in &ctx.dbs {
        let cells = ctx.todo_cells(db);
        if cells.is_empty() {
            continue;
        }
        let header = std::iter::once("stack".to_owned())
            .chain(cells.iter().map(|c| c.key.label()))
            .chain(["reliability checks".to_owned()]);
        let mut table = Table::new(header, &format!("l{}l", "r".repeat(cells.len())));
        for stack in &stacks {
            let values = cells.iter().map(|c| {
                c.stack(stack)
                    .map_or_else(|| "–".to_owned(), |s| ms(s.latency.mean) + &s.markers())
            });
            table.row(
                std::iter::once(stack.clone())
                    .chain(values)
                    .chain([ctx.inputs.checks.summary(stack)]),
            );
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

/// A column of a per-stack table: its heading and its cell.
type Column = (&'static str, fn(&StackResult<'_>) -> String);

/// Throughput and latency of one stack in one cell.
const SWEEP_COLUMNS: [Column; 7] = [
    ("ok req/s", |s| {
        with_interval(s.throughput_value(), s.throughput)
    }),
    ("vs baseline", |s| {
        s.ratio.map_or_else(|| "–".to_owned(), |i| i.ratio_text())
    }),
    ("p50 ms", |s| ms(s.latency.p50 as f64)),
    ("p99 ms", |s| ms(s.latency.p99 as f64)),
    ("p99.9 ms", |s| ms(s.latency.p99_9 as f64)),
    ("errors", |s| {
        thousands(s.total(|r| r.results.errors_total as f64))
    }),
    ("trials", |s| s.records.len().to_string()),
];

/// What one stack cost the server (and the load generator) in one cell.
const EFFICIENCY_COLUMNS: [Column; 4] = [
    ("requests per server CPU-s", requests_per_cpu_second),
    ("database CPU-s per 1,000 requests", |s| {
        let db = s.total(|r| r.results.noise.database_cpu_seconds);
        let requests = s.total(|r| r.results.requests as f64);
        if db > 0.0 && requests > 0.0 {
            format!("{:.3}", 1000.0 * db / requests)
        } else {
            "–".to_owned()
        }
    }),
    ("peak RSS MiB", |s| {
        peak_rss(s).map_or_else(|| "–".to_owned(), |b| mib(b as f64))
    }),
    ("loadgen CPU (of its cores)", |s| {
        let busy = s.total(|r| r.results.loadgen.cpu_seconds);
        let capacity = s.total(|r| r.results.measured_seconds * r.results.loadgen.cores as f64);
        if capacity > 0.0 {
            percent(busy / capacity)
        } else {
            "–".to_owned()
        }
    }),
];

/// Requests served per CPU-second of the server's processes.
fn requests_per_cpu_second(s: &StackResult<'_>) -> String {
    let cpu = s.total(|r| r.results.server.and_then(|u| u.cpu_seconds).unwrap_or(0.0));
    if cpu > 0.0 {
        thousands(s.total(|r| r.results.requests as f64) / cpu)
    } else {
        "–".to_owned()
    }
}

/// The largest resident set of the server's processes over the trials, in bytes.
fn peak_rss(s: &StackResult<'_>) -> Option<u64> {
    s.records
        .iter()
        .filter_map(|r| r.results.server.and_then(|u| u.peak_rss_bytes))
        .max()
}

/// One row per stack and connection count of a sweep, with `columns`, as Markdown.
fn sweep_table(cells: &[&CellResult<'_>], columns: &[Column]) -> String {
    let header = ["stack", "connections"]
        .into_iter()
        .chain(columns.iter().map(|(heading, _)| *heading));
    let mut table = Table::new(header, &format!("lr{}", "r".repeat(columns.len())));
    let mut rows: Vec<(&StackResult<'_>, usize)> = cells
        .iter()
        .flat_map(|c| c.stacks.iter().map(|s| (s, c.key.connections)))
        .collect();
    rows.sort_by_key(|(s, c)| (stack_order(&s.stack), *c));
    for (s, connections) in rows {
        let labels = [
            format!("{}{}", s.stack, s.markers()),
            connections.to_string(),
        ];
        table.row(
            labels
                .into_iter()
                .chain(columns.iter().map(|(_, cell)| cell(s))),
        );
    }
    table.render()
}

/// A plotted value of a stack's result, and its interval if it has one.
type PointOf = dyn Fn(&StackResult<'_>) -> (f64, Option<(f64, f64)>);

/// (4) Throughput and latency across each concurrency sweep, with its two plots.
fn concurrency_sweeps(ctx: &Sections<'_>, plots: &mut Vec<(String, String)>) -> String {
    let mut md = "## Throughput and latency across the concurrency sweep\n\n".to_owned();
    let stacks = ctx.stacks();
    for ((db, workload, load), cells) in &ctx.sweeps() {
        let db = db_label(*db);
        let _ = write!(
            md,
            "### {workload} on {db} ({load})\n\n{}",
            sweep_table(cells, &SWEEP_COLUMNS)
        );
        if load != CLOSED || cells.len() < 2 {
            continue;
        }
        let series_of = |f: &PointOf| {
            stacks
                .iter()
                .filter_map(|stack| {
                    let mut series = Series {
                        name: stack.clone(),
                        points: Vec::new(),
                        bars: Vec::new(),
                    };
                    for c in cells {
                        if let Some(s) = c.stack(stack) {
                            let x = c.key.connections as f64;
                            let (y, bar) = f(s);
                            series.points.push((x, y));
                            if let Some((lo, hi)) = bar {
                                series.bars.push((x, lo, hi));
                            }
                        }
                    }
                    (!series.points.is_empty()).then_some(series)
                })
                .collect()
        };
        let throughput = Chart {
            title: format!("{workload} on {db}: throughput"),
            x_label: "connections".into(),
            y_label: "ok requests/s (geometric mean, 95 % interval)".into(),
            log_x: true,
            log_y: false,
            series: series_of(&|s| (s.throughput_value(), s.throughput.map(|i| (i.low, i.high)))),
        };
        let p99 = Chart {
            title: format!("{workload} on {db}: p99 latency"),
            x_label: "connections".into(),
            y_label: "p99 latency ms (all trials, log)".into(),
            log_x: true,
            log_y: true,
            series: series_of(&|s| (s.latency.p99 as f64 / 1000.0, None)),
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
    md
}

/// The highest offered rate a stack "holds": p99 under this (microseconds) ...
const HELD_P99_US: u64 = 10_000;
/// ... and at most this share of sends late (the pacer's own lateness is about 0.02 %).
const HELD_LATE_SHARE: f64 = 0.001;

/// Latency at a fixed offered rate (open loop): per database, workload and connection count,
/// each stack's p50, p99 and p99.9 at every rate of the ladder, the highest rate it holds,
/// and the latency-against-rate plots (the "hockey stick").
fn fixed_offered_rate(ctx: &Sections<'_>, plots: &mut Vec<(String, String)>) -> String {
    if ctx.open.is_empty() {
        return String::new();
    }
    let mut md = format!(
        "## Latency at a fixed offered rate\n\n\
         Open loop: requests are sent on one timetable at the offered rate whatever the \
         answers, the same rates for every stack, and latency counts from each request's \
         scheduled send time, so a stall shows as the queue it causes (no coordinated \
         omission). A stack holds a rate when its p99 stays under {} ms with at most {} % of \
         sends late because all its connections were busy at their scheduled time.\n\n",
        HELD_P99_US / 1000,
        HELD_LATE_SHARE * 100.0
    );
    let all_stacks = ctx.stacks();
    let mut groups: BTreeMap<(Option<DbKind>, WorkloadKind, usize), Vec<&CellResult<'_>>> =
        BTreeMap::new();
    for c in &ctx.open {
        groups
            .entry((c.key.db, c.key.workload, c.key.connections))
            .or_default()
            .push(c);
    }
    for ((db, workload, connections), mut cells) in groups {
        cells.sort_by(|a, b| offered(a).total_cmp(&offered(b)));
        // A stack the ladder left out (its probe under the lowest rate) gets no column.
        let stacks: Vec<&String> = all_stacks
            .iter()
            .filter(|s| cells.iter().any(|c| c.stack(s).is_some()))
            .collect();
        let mut probed: BTreeMap<(usize, String), f64> = BTreeMap::new();
        for r in ctx.inputs.records.iter().filter(|r| {
            r.db == db
                && r.workload == workload
                && r.connections == connections
                && r.trial.as_ref().and_then(|t| t.discarded.as_deref()) == Some(crate::cell::PROBE)
                && !stacks.contains(&&r.stack)
        }) {
            let best = probed.entry(stack_order(&r.stack)).or_insert(0.0);
            *best = best.max(r.results.throughput);
        }
        let header = ["offered req/s".to_owned()].into_iter().chain(
            stacks
                .iter()
                .map(|s| format!("{s}: p50 · p99 · p99.9 ms, late")),
        );
        let mut table = Table::new(header, &format!("r{}", "r".repeat(stacks.len())));
        // The highest rate held, with the markers of its trials (a flagged rate still counts:
        // the flag is about the load generator or the machine, and is shown).
        let mut held: BTreeMap<&str, (f64, String)> = BTreeMap::new();
        for c in &cells {
            let rate = offered(c);
            table.row([thousands(rate)].into_iter().chain(stacks.iter().map(|s| {
                c.stack(s).map_or_else(
                    || "–".to_owned(),
                    |r| {
                        if holds(r) {
                            let best = held.entry(s.as_str()).or_insert((0.0, String::new()));
                            if rate > best.0 {
                                *best = (rate, r.markers());
                            }
                        }
                        format!(
                            "{} · {} · {}{}, {}",
                            ms(r.latency.p50 as f64),
                            ms(r.latency.p99 as f64),
                            ms(r.latency.p99_9 as f64),
                            r.markers(),
                            percent(late_share(r))
                        )
                    },
                )
            })));
        }
        let mut held_table = Table::new(["stack", "highest rate held, req/s"], "lr");
        for s in &stacks {
            held_table.row([
                (*s).clone(),
                held.get(s.as_str()).map_or_else(
                    || "none of these".to_owned(),
                    |(rate, markers)| format!("{}{markers}", thousands(*rate)),
                ),
            ]);
        }
        for ((_, s), throughput) in &probed {
            held_table.row([
                s.clone(),
                format!(
                    "left out: its probe served {} ok req/s, under the lowest rate",
                    thousands(*throughput)
                ),
            ]);
        }
        let _ = write!(
            md,
            "### {workload} on {}, {connections} connections\n\n{}\n{}",
            db_label(db),
            table.render(),
            held_table.render()
        );
        let mut images = Vec::new();
        for (label, pick) in [
            (
                "p50",
                (|l: &LatencySummary| l.p50) as fn(&LatencySummary) -> u64,
            ),
            ("p99", |l| l.p99),
            ("p99.9", |l| l.p99_9),
        ] {
            let series = stacks
                .iter()
                .map(|s| Series {
                    name: (*s).clone(),
                    points: cells
                        .iter()
                        .filter_map(|c| {
                            let r = c.stack(s)?;
                            Some((offered(c), pick(&r.latency) as f64 / 1000.0))
                        })
                        .collect(),
                    bars: Vec::new(),
                })
                .filter(|s| !s.points.is_empty())
                .collect();
            let name = format!(
                "open-{}-{workload}-c{connections}-{}.svg",
                db_label(db),
                label.replace('.', "_")
            );
            let chart = Chart {
                title: format!(
                    "{workload} on {}, {connections} connections: {label} latency by offered rate",
                    db_label(db)
                ),
                x_label: "offered rate, requests/s (log)".into(),
                y_label: format!("{label} latency ms (log)"),
                log_x: true,
                log_y: true,
                series,
            };
            images.push(plot(plots, name, label, &chart));
        }
        let _ = write!(md, "\n{}\n\n", images.join(" "));
    }
    md
}

/// Renders `chart` into the plot `name`; the Markdown image that shows it.
fn plot(plots: &mut Vec<(String, String)>, name: String, alt: &str, chart: &Chart) -> String {
    let image = format!("![{alt}](plots/{name})");
    plots.push((name, render(chart)));
    image
}

/// The offered rate of an open-loop cell.
fn offered(c: &CellResult<'_>) -> f64 {
    c.stacks
        .iter()
        .flat_map(|s| &s.records)
        .find_map(|r| r.target_rate)
        .unwrap_or(0.0)
}

/// The share of a stack's sends in a cell that left late because every connection was busy
/// (the load generator's own lateness aside: it flags the record when it matters).
fn late_share(r: &StackResult<'_>) -> f64 {
    let requests = r.total(|rec| rec.results.requests as f64);
    let late = r.total(|rec| {
        let own = rec.results.loadgen.late_own.unwrap_or(0);
        rec.results.late_sends.saturating_sub(own) as f64
    });
    if requests > 0.0 { late / requests } else { 0.0 }
}

fn holds(r: &StackResult<'_>) -> bool {
    r.latency.p99 < HELD_P99_US && late_share(r) <= HELD_LATE_SHARE
}

/// The database across a network: per workload and connection count, every stack's
/// throughput and p99 at each added round trip and pool size, beside Little's bound on the
/// pool (`pool / RTT` queries per second), with a plot of throughput against the round trip
/// per pool size.
fn across_a_network(ctx: &Sections<'_>, plots: &mut Vec<(String, String)>) -> String {
    if ctx.network.is_empty() {
        return String::new();
    }
    let mut md = "## The database across a network\n\n\
         PostgreSQL behind a proxy that holds every chunk for half the added round trip in each \
         direction (`harness::delay`), each server with the pool size shown. Little's law bounds \
         a pool of P connections, each held at least one round trip per query, to P / RTT \
         queries per second; one request is one query here. Where the load keeps the whole \
         pool busy (connections >= pool), `trips` is how many round trips each request held a \
         pooled connection for: (P / RTT) / throughput. Above 1, the driver or its pool talks \
         to the database more than once per query (a check on checkout, a prepare, a \
         transaction around the statement).\n\n"
        .to_owned();
    let stacks = ctx.stacks();
    for ((workload, connections), cells) in by_workload_and_connections(&ctx.network) {
        let header = [
            "pool".to_owned(),
            "added RTT ms".to_owned(),
            "pool / RTT".to_owned(),
        ]
        .into_iter()
        .chain(
            stacks
                .iter()
                .map(|s| format!("{s}: ok req/s · p99 ms · trips")),
        );
        let mut table = Table::new(header, &format!("rrr{}", "r".repeat(stacks.len())));
        let mut pools: BTreeMap<usize, Vec<&CellResult<'_>>> = BTreeMap::new();
        for c in &cells {
            let Some(network) = c.key.network else {
                continue;
            };
            let bound = network
                .query_bound()
                .map_or_else(|| "–".to_owned(), thousands);
            table.row(
                [
                    network.pool.to_string(),
                    network.rtt_ms().to_string(),
                    bound,
                ]
                .into_iter()
                .chain(stacks.iter().map(|s| {
                    c.stack(s).map_or_else(
                        || "–".to_owned(),
                        |r| {
                            let trips = network
                                .query_bound()
                                .filter(|_| connections >= network.pool)
                                .map(|b| format!(" · {:.1}", b / r.throughput_value()))
                                .unwrap_or_default();
                            let ratio = r
                                .ratio
                                .map(|i| format!(" ({})", i.ratio_text()))
                                .unwrap_or_default();
                            format!(
                                "{}{}{ratio} · {}{trips}",
                                with_interval(r.throughput_value(), r.throughput),
                                r.markers(),
                                ms(r.latency.p99 as f64)
                            )
                        },
                    )
                })),
            );
            pools.entry(network.pool).or_default().push(c);
        }
        let _ = write!(
            md,
            "### {workload}, {connections} connections\n\n{}",
            table.render()
        );
        let mut images = Vec::new();
        for (pool, cells) in pools {
            let mut series: Vec<Series> = stacks
                .iter()
                .map(|s| Series {
                    name: s.clone(),
                    points: Vec::new(),
                    bars: Vec::new(),
                })
                .collect();
            let mut bound = Series {
                name: format!("pool / RTT ({pool})"),
                points: Vec::new(),
                bars: Vec::new(),
            };
            for c in &cells {
                let Some(network) = c.key.network else {
                    continue;
                };
                let x = network.rtt_ms();
                for (line, stack) in series.iter_mut().zip(&stacks) {
                    if let Some(r) = c.stack(stack) {
                        line.points.push((x, r.throughput_value()));
                        if let Some(i) = r.throughput {
                            line.bars.push((x, i.low, i.high));
                        }
                    }
                }
                if let Some(b) = network.query_bound() {
                    bound.points.push((x, b));
                }
            }
            series.retain(|s| !s.points.is_empty());
            series.push(bound);
            let name = format!("network-{workload}-c{connections}-pool{pool}.svg");
            let chart = Chart {
                title: format!(
                    "{workload}, {connections} connections, pool {pool}: the database across a network"
                ),
                x_label: "round trip added to the database, ms".into(),
                y_label: "ok requests/s (log)".into(),
                log_x: false,
                log_y: true,
                series,
            };
            images.push(plot(plots, name, &format!("pool {pool}"), &chart));
        }
        let _ = write!(md, "{}\n\n", images.join(" "));
    }
    md
}

/// The deployment the published comparisons used: per workload and connection count, every
/// stack's throughput direct, and what each combination of nginx and pgbouncer changes.
fn deployment_hops(ctx: &Sections<'_>, plots: &mut Vec<(String, String)>) -> String {
    if ctx.deployment.is_empty() {
        return String::new();
    }
    let mut md = "## The deployment the published comparisons used\n\n\
         Each stack's server direct, behind nginx (a reverse proxy with keep-alive connections \
         to the server, one worker process per server core, on those cores), in front of \
         pgbouncer (between the server and PostgreSQL, in the pool mode shown), and both. Each \
         combination is a cell of its own, its stacks interleaved; a hop's cost is the \
         difference from the direct cell: the throughput ratio with a 95 % interval (Welch's, \
         unpaired: the cells ran at different times, so the machine's drift between them is \
         in the interval), the time it adds to each request (connections / throughput: what \
         a client waits on average, less the direct cell's), and the CPU it adds to each \
         request (the server, nginx, and PostgreSQL with pgbouncer, less the direct cell's).\n\n"
        .to_owned();
    let stacks = ctx.stacks();
    let hops = |d: Option<Deployment>| {
        d.map_or(0, |d| {
            u8::from(d.nginx) + 2 * u8::from(d.pgbouncer.is_some())
        })
    };
    for ((workload, connections), mut cells) in by_workload_and_connections(&ctx.deployment) {
        cells.sort_by_key(|c| (hops(c.key.deployment), c.key.deployment));
        let Some(direct) = cells.iter().find(|c| hops(c.key.deployment) == 0) else {
            continue;
        };
        let others = &cells[1..];
        let header = [
            "stack".to_owned(),
            "direct: ok req/s · CPU µs/req".to_owned(),
        ]
        .into_iter()
        .chain(others.iter().map(|c| {
            let label = c.key.deployment.map(Deployment::label).unwrap_or_default();
            format!("{label}: ratio · added µs/req · added CPU µs/req")
        }));
        let mut table = Table::new(header, &format!("lr{}", "r".repeat(others.len())));
        let mut rows = Vec::new();
        for stack in &stacks {
            let Some(base) = direct.stack(stack) else {
                continue;
            };
            let trials = |r: &StackResult<'_>| -> Vec<f64> {
                r.records.iter().map(|t| t.results.throughput).collect()
            };
            let base_trials = trials(base);
            let base_cpu = side_cpu_per_request(base);
            let base_wait = connections as f64 / base.throughput_value() * 1e6;
            let row = [
                stack.clone(),
                format!(
                    "{}{} · {base_cpu:.0}",
                    with_interval(base.throughput_value(), base.throughput),
                    base.markers()
                ),
            ]
            .into_iter()
            .chain(others.iter().map(|c| {
                c.stack(stack).map_or_else(
                    || "–".to_owned(),
                    |s| {
                        let ratio = crate::stats::unpaired_ratio(&trials(s), &base_trials);
                        if let Some(i) = ratio {
                            rows.push(ForestRow {
                                label: stack.clone(),
                                group: c.key.deployment.map(Deployment::label).unwrap_or_default(),
                                estimate: i.estimate,
                                low: i.low,
                                high: i.high,
                            });
                        }
                        let ratio = ratio.map_or_else(|| "–".to_owned(), |i| i.ratio_text());
                        let wait = connections as f64 / s.throughput_value() * 1e6 - base_wait;
                        let cpu = side_cpu_per_request(s) - base_cpu;
                        format!("{ratio}{} · {wait:+.0} · {cpu:+.0}", s.markers())
                    },
                )
            }));
            table.row(row);
        }
        let title = format!(
            "{workload} on PostgreSQL, {}",
            counted(connections, "connection")
        );
        let name = format!("deployment-{workload}-c{connections}.svg");
        let _ = write!(
            md,
            "### {title}\n\n{}\n![each hop's throughput ratio](plots/{name})\n\n",
            table.render()
        );
        plots.push((
            name,
            render_forest(&Forest {
                title: format!("{title}: throughput with the hops / direct"),
                x_label: "ratio to the same stack direct (95 % interval, log scale)".to_owned(),
                rows,
            }),
        ));
    }
    md
}

/// A scenario's cells grouped by workload and connection count.
fn by_workload_and_connections<'c, 'a>(
    cells: &'c [CellResult<'a>],
) -> BTreeMap<(WorkloadKind, usize), Vec<&'c CellResult<'a>>> {
    let mut groups: BTreeMap<_, Vec<&CellResult<'a>>> = BTreeMap::new();
    for c in cells {
        groups
            .entry((c.key.workload, c.key.connections))
            .or_default()
            .push(c);
    }
    groups
}

/// CPU microseconds per request on the serving side: the server, its reverse proxy, and the
/// database with what stands in front of it.
fn side_cpu_per_request(s: &StackResult<'_>) -> f64 {
    let cpu = s.total(|r| {
        let n = &r.results.noise;
        r.results.server.and_then(|u| u.cpu_seconds).unwrap_or(0.0)
            + n.front_cpu_seconds.unwrap_or(0.0)
            + n.database_cpu_seconds
    });
    let requests = s.total(|r| r.results.requests as f64);
    if requests > 0.0 {
        cpu / requests * 1e6
    } else {
        f64::NAN
    }
}

/// (5) What each request cost the server, the database and the load generator.
fn efficiency(ctx: &Sections<'_>) -> String {
    let mut md = "## Efficiency\n\n".to_owned();
    for ((db, workload, load), cells) in &ctx.sweeps() {
        let _ = write!(
            md,
            "### {workload} on {} ({load})\n\n{}",
            db_label(*db),
            sweep_table(cells, &EFFICIENCY_COLUMNS)
        );
    }
    md
}

/// A workload and a stack (in report order).
type CostKey = (WorkloadKind, (usize, String));

/// Counts of one stack x workload over its runs.
struct CostCell<'a> {
    runs: Vec<&'a CostRecord>,
}

impl CostCell<'_> {
    /// The median over the runs (the mean of the middle two for an even count).
    fn per_request(&self) -> f64 {
        crate::stats::median(self.runs.iter().map(|r| r.per_request).collect())
    }

    /// (max - min) / median of the runs' counts.
    fn spread(&self) -> f64 {
        let counts = self.runs.iter().map(|r| r.per_request);
        let max = counts.clone().fold(f64::MIN, f64::max);
        let min = counts.fold(f64::MAX, f64::min);
        (max - min) / self.per_request()
    }

    fn category(&self, category: Category) -> f64 {
        mean(
            self.runs
                .iter()
                .map(|r| r.split.get(&category).copied().unwrap_or(0) as f64 / r.requests as f64),
        )
    }
}

/// Counts grouped by workload and stack, each cell with its runs.
fn cost_cells<'a>(
    records: impl Iterator<Item = &'a CostRecord>,
) -> BTreeMap<CostKey, CostCell<'a>> {
    let mut cells: BTreeMap<CostKey, CostCell<'a>> = BTreeMap::new();
    for r in records {
        cells
            .entry((r.workload, stack_order(&r.stack)))
            .or_insert_with(|| CostCell { runs: Vec::new() })
            .runs
            .push(r);
    }
    cells
}

/// Thousands of instructions: `412k`, or `2.3k` below 100k (`100k`, not `100.0k`, from
/// 99,950 on).
fn kilo(v: f64) -> String {
    if v < 99_950.0 {
        format!("{:.1}k", v / 1000.0)
    } else {
        format!("{}k", thousands(v / 1000.0))
    }
}

/// (5b) The noise-free cost column: instructions per request under callgrind, split by the
/// crates they ran in, and how well the runs agree.
fn instructions(costs: &[CostRecord]) -> String {
    let answered: Vec<&CostRecord> = costs.iter().filter(|r| r.errors == 0).collect();
    // Counts taken under different schedules are different measurements: the run-to-block
    // ones stand where there are any.
    let schedule = if answered.iter().any(|r| r.schedule == Schedule::RunToBlock) {
        Schedule::RunToBlock
    } else {
        Schedule::Shared
    };
    let valid: Vec<&CostRecord> = answered
        .iter()
        .copied()
        .filter(|r| r.schedule == schedule)
        .collect();
    if valid.is_empty() {
        return String::new();
    }
    let cells = cost_cells(valid.iter().copied());
    let stacks: BTreeSet<(usize, String)> = cells.keys().map(|(_, s)| s.clone()).collect();
    let workloads: BTreeSet<WorkloadKind> = cells.keys().map(|(w, _)| *w).collect();
    let first = &valid[0];
    let pause = if first.settle_ms > 0.0 {
        format!(
            ", each {:.0} ms after the response before it",
            first.settle_ms
        )
    } else {
        String::new()
    };
    // What every count did, whatever the schedule.
    let counted = format!(
        "{} warm-up requests of a workload one at a time, then the counters were zeroed and {} \
         more counted{pause}. The figure is the server's instructions (every thread) over the \
         counted requests: it",
        first.warmup, first.requests
    );
    let mut md = match schedule {
        Schedule::Shared => format!(
            "## Instructions per request (callgrind)\n\n\
             Each server ran under valgrind's callgrind on SQLite with one worker; one client \
             sent {counted} does not depend on the machine's speed. It does vary between server \
             processes (thread interleaving under valgrind's serialised scheduler, per-process \
             hash seeds) and a little with the machine's load (so processes are counted one per \
             core), so each count is taken in several fresh processes; the table gives the \
             median, ratios to the first stack, and the spread is below. {}\n\n",
            first.valgrind
        ),
        Schedule::RunToBlock => format!(
            "## Instructions per request (callgrind)\n\n\
             Each server ran under valgrind's callgrind on SQLite with one worker, on a core of \
             its own at real-time priority: valgrind runs one thread at a time, and this way a \
             thread that hands work to another (a query to the database thread, its answer \
             back) runs on until it blocks, so the same requests interleave the threads alike in \
             every process. One client sent {counted} depends neither on the machine's speed nor \
             on which thread the kernel happens to run first. Each count is taken in several \
             fresh processes (hash seeds differ); the table gives the median, ratios to the first \
             stack, and the spread is below. {}\n\n",
            first.valgrind
        ),
    };
    let set_aside = answered.len() - valid.len();
    if set_aside > 0 {
        let _ = write!(
            md,
            "{set_aside} count(s) taken under the kernel's ordinary scheduling are set aside \
             (see cost.jsonl).\n\n"
        );
    }
    let baseline = stacks.iter().next().cloned();
    let mut header = vec!["workload".to_owned()];
    header.extend(stacks.iter().map(|(_, s)| s.clone()));
    let mut table = Table::new(header, &format!("l{}", "r".repeat(stacks.len())));
    for &workload in &workloads {
        let base = baseline
            .as_ref()
            .and_then(|b| cells.get(&(workload, b.clone())))
            .map(CostCell::per_request);
        let mut row = vec![workload.to_string()];
        for stack in &stacks {
            row.push(match cells.get(&(workload, stack.clone())) {
                Some(cell) => match base {
                    Some(base) if Some(stack) != baseline.as_ref() => format!(
                        "{} ({:.2}x)",
                        kilo(cell.per_request()),
                        cell.per_request() / base
                    ),
                    _ => kilo(cell.per_request()),
                },
                None => "—".to_owned(),
            });
        }
        table.row(row);
    }
    md += &table.render();

    let repeated: Vec<(&CostKey, f64)> = cells
        .iter()
        .filter(|(_, c)| c.runs.len() > 1)
        .map(|(k, c)| (k, c.spread()))
        .collect();
    if let Some((worst_key, worst)) = repeated.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
        let runs = cells.values().map(|c| c.runs.len()).max().unwrap_or(1);
        let within = repeated.iter().filter(|(_, s)| *s <= 0.01).count();
        let _ = write!(
            md,
            "Process to process: {within} of {} counts taken in {runs} processes agree within \
             1 %; the widest spread (max - min over the median) is {} ({} {}).\n\n",
            repeated.len(),
            percent(*worst),
            worst_key.1.1,
            worst_key.0
        );
    }
    md += &column_agreement(&valid);
    let voided = costs.len() - answered.len();
    if voided > 0 {
        let _ = write!(
            md,
            "{voided} count(s) had requests answered wrongly and are left out (see cost.jsonl).\n\n"
        );
    }

    md += "### Where the instructions go\n\n\
           Self instructions per request by the crate each function belongs to (generic code \
           counts where the first non-std crate its name mentions belongs; code inlined into a \
           caller counts as the caller's). http: the framework and HTTP layer; json: serde; \
           database: driver, ORM, pool and SQLite; runtime: tokio, futures, tracing; app: this \
           workspace's code; std: Rust's standard library; libc: the C library (memcpy, \
           system call wrappers).\n\n";
    let mut header = vec!["workload".to_owned(), "stack".to_owned()];
    header.extend(Category::ALL.iter().map(|c| c.name().to_owned()));
    let mut table = Table::new(header, &format!("ll{}", "r".repeat(Category::ALL.len())));
    for ((workload, (_, stack)), cell) in &cells {
        let mut row = vec![workload.to_string(), stack.clone()];
        row.extend(Category::ALL.iter().map(|&c| {
            let v = cell.category(c);
            if v > 0.0 { kilo(v) } else { "—".to_owned() }
        }));
        table.row(row);
    }
    md += &table.render();
    md
}

/// How well two columns agree: the counts of the first two `loadgen cost` commands, cell by
/// cell (the difference of their medians over the smaller). Empty with a single command.
fn column_agreement(valid: &[&CostRecord]) -> String {
    let mut commands: BTreeMap<&str, Vec<&CostRecord>> = BTreeMap::new();
    for &r in valid {
        commands.entry(r.invocation.as_str()).or_default().push(r);
    }
    let mut columns = commands
        .into_iter()
        .map(|(at, records)| (at, cost_cells(records.into_iter())));
    let (Some((first_at, first)), Some((second_at, second))) = (columns.next(), columns.next())
    else {
        return String::new();
    };
    let mut differences: Vec<(f64, &CostKey)> = first
        .iter()
        .filter_map(|(key, a)| {
            let (a, b) = (a.per_request(), second.get(key)?.per_request());
            Some(((a - b).abs() / a.min(b), key))
        })
        .collect();
    if differences.is_empty() {
        return String::new();
    }
    differences.sort_by(|x, y| y.0.total_cmp(&x.0));
    let within = differences.iter().filter(|(d, _)| *d <= 0.01).count();
    let (worst, (workload, (_, stack))) = differences[0];
    let mut md = format!(
        "Column to column: the commands started at {first_at} and {second_at} (each its own \
         processes) agree within 1 % on {within} of {} counts; the widest difference is {} \
         ({stack} {workload}).",
        differences.len(),
        percent(worst)
    );
    let over: Vec<String> = differences
        .iter()
        .filter(|(d, _)| *d > 0.01)
        .map(|(d, (w, (_, s)))| format!("{s} {w} {}", percent(*d)))
        .collect();
    if !over.is_empty() {
        let _ = write!(md, " Over 1 %: {}.", over.join(", "));
    }
    md + "\n\n"
}

/// (6) The machine during the trials: steal, other processes, and the trials redone.
fn noise(ctx: &Sections<'_>) -> String {
    let mut md = "## Noise\n\n".to_owned();
    let mut by_cell: BTreeMap<CellKey, Vec<&Record>> = BTreeMap::new();
    for r in ctx.inputs.records {
        by_cell.entry(CellKey::of(r)).or_default().push(r);
    }
    md += "CPU steal, the kernel's own work (interrupts and kernel threads: packets, writeback, \
           the journal, mostly done for the measured requests) and other processes' CPU as \
           shares of the machine's CPU time during the measured windows (all trials, discarded \
           ones included); a trial over the steal or other-CPU limit was redone. Within-trial \
           variation is the coefficient of variation of the 100 ms throughput series, median \
           over the counted trials.\n\n";
    let mut table = Table::new(
        [
            "cell",
            "trials",
            "discarded",
            "median steal",
            "max steal",
            "median kernel CPU",
            "median other CPU",
            "max other CPU",
            "within-trial variation",
        ],
        "lrrrrrrrr",
    );
    for (key, records) in &by_cell {
        let share = |f: fn(&Record) -> f64| -> Vec<f64> {
            let mut v: Vec<f64> = records
                .iter()
                .filter(|r| r.results.noise.core_seconds > 0.0)
                .map(|r| f(r) / r.results.noise.core_seconds)
                .collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let steal = share(|r| r.results.noise.steal_seconds);
        let other = share(|r| r.results.noise.other_cpu_seconds);
        let median = |v: &[f64]| {
            v.get(v.len() / 2)
                .map_or_else(|| "–".to_owned(), |x| percent(*x))
        };
        let max = |v: &[f64]| v.last().map_or_else(|| "–".to_owned(), |x| percent(*x));
        let mut cvs: Vec<f64> = records
            .iter()
            .filter(|r| r.counts())
            .filter_map(|r| series_cv(&r.results.series.ok))
            .collect();
        cvs.sort_by(f64::total_cmp);
        table.row([
            format!("{} {}", db_label(key.db), key.label()),
            records.len().to_string(),
            records.iter().filter(|r| !r.counts()).count().to_string(),
            median(&steal),
            max(&steal),
            // Older records counted the kernel's work as other processes'.
            if records
                .iter()
                .all(|r| r.results.noise.kernel_cpu_seconds.is_some())
            {
                median(&share(|r| {
                    r.results.noise.kernel_cpu_seconds.unwrap_or_default()
                }))
            } else {
                "–".to_owned()
            },
            median(&other),
            max(&other),
            median(&cvs),
        ]);
    }
    md + &table.render()
}

/// The coefficient of variation of a throughput series (its last, partial bucket aside).
fn series_cv(series: &[u64]) -> Option<f64> {
    let full = series.get(..series.len().checked_sub(1)?)?;
    if full.len() < 2 {
        return None;
    }
    let n = full.len() as f64;
    let m = full.iter().sum::<u64>() as f64 / n;
    if m <= 0.0 {
        return None;
    }
    let var = full.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / (n - 1.0);
    Some(var.sqrt() / m)
}

/// What went wrong in each flagged trial.
fn flag_details(r: &Record) -> Vec<String> {
    let res = &r.results;
    let mut parts = Vec::new();
    if res.errors_total > 0 {
        parts.push(format!(
            "{} errors of {} requests ({})",
            res.errors_total, res.requests, res.errors
        ));
    }
    if res.loadgen.saturated {
        parts.push(format!(
            "loadgen used {:.2} CPU-s on {} core(s) in {:.2} s",
            res.loadgen.cpu_seconds, res.loadgen.cores, res.measured_seconds
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

/// (7) Notes on every flagged stack of a cell, trial by trial.
fn flagged(ctx: &Sections<'_>) -> String {
    let mut md = "## Notes on flagged results\n\n".to_owned();
    let mut any = false;
    for c in &ctx.cells {
        for s in c.stacks.iter().filter(|s| !s.flags().is_empty()) {
            any = true;
            let _ = writeln!(
                md,
                "- {}{} {} {}:",
                s.stack,
                s.markers(),
                db_label(c.key.db),
                c.key.label()
            );
            for r in &s.records {
                let parts = flag_details(r);
                if !parts.is_empty() {
                    let which = r.trial.as_ref().map_or_else(
                        || format!("run {}", r.run_id),
                        |t| format!("round {}", t.round),
                    );
                    let _ = writeln!(md, "  - {which}: {}", parts.join("; "));
                }
            }
        }
    }
    if !any {
        md += "No result had errors, a saturated load generator, ids running out or an unclean shutdown.\n";
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
                // `cores` is what the load generator's process could run on (its pinning).
                format!(
                    "{} ({}; the load generator on {})",
                    or_unknown(&p.hostname),
                    or_unknown(&p.cpu_model),
                    counted(p.cores, "core")
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
            "idle cores",
            distinct(&|r| or_unknown(&r.provenance.cpu_idle)),
        ),
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
            "trial: warm-up / measured",
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
    fn instruction_counts_round_to_three_digits_without_a_spurious_decimal() {
        assert_eq!(kilo(9_601.0), "9.6k");
        assert_eq!(kilo(99_949.0), "99.9k");
        assert_eq!(kilo(99_950.0), "100k");
        assert_eq!(kilo(226_410.0), "226k");
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(12_345.4), "12,345");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_000_000.0), "1,000,000");
        assert_eq!(ms(1234.0), "1.234");
        let i = Interval {
            estimate: 1000.0,
            low: 980.0,
            high: 1015.0,
            n: 5,
        };
        assert_eq!(with_interval(1000.0, Some(i)), "1,000 ±2.0 %");
        assert_eq!(with_interval(1000.0, None), "1,000");
    }

    #[test]
    fn reference_rows_are_named_as_such() {
        assert_eq!(stack_legend("axum-sqlx"), "`axum-sqlx` (axum + sqlx)");
        let reference = harness::STACKS
            .iter()
            .find(|s| s.kind == harness::Kind::Reference)
            .expect("the registry has a reference row");
        assert!(stack_legend(reference.name).ends_with(", a reference row)"));
        assert_eq!(stack_legend("custom"), "`custom`");
    }

    #[test]
    fn within_trial_variation_ignores_the_partial_last_bucket() {
        assert_eq!(series_cv(&[100, 100, 100, 3]), Some(0.0));
        assert_eq!(series_cv(&[100, 3]), None);
        assert_eq!(series_cv(&[]), None);
        let cv = series_cv(&[90, 110, 5]).unwrap();
        assert!((cv - 0.1414).abs() < 1e-3, "{cv}");
    }
}
