//! Records round-trip through JSON, runs measured by several load generators merge exactly,
//! and the report renders ratios with intervals, ties, flags and plots from records alone.
//! The records are made here, from known throughputs and latencies, so every figure the
//! report prints can be worked out by hand.

use std::path::Path;

use harness::DbKind;
use harness::stacks::roles::{PROBE_PAIR, PUBLISHED_TODO, PYTHON_BASELINE, RUST_LIMIT};
use loadgen::cell::{CellSummary, Stop};
use loadgen::cost::{COST_SCHEMA_VERSION, Category, CostRecord, Schedule};
use loadgen::engine::{ErrorCounts, LatencySummary, new_histogram};
use loadgen::record::{
    self, DbNetwork, Deployment, LoadModelKind, LoadgenUsage, Noise, Provenance, Record, Results,
    SCHEMA_VERSION, Series, ServerUsage, Trial, encode_histogram,
};
use loadgen::workload::WorkloadKind;

const COMPARISON: &str = "cmp-1";
const BASELINE: &str = "base-stack";

/// A trial record: `throughput` ok req/s over one second, every latency `latency_us`.
fn trial(
    stack: &str,
    workload: WorkloadKind,
    connections: usize,
    round: u32,
    throughput: f64,
    latency_us: u64,
) -> Record {
    let requests = throughput.round() as u64;
    let mut histogram = new_histogram();
    histogram.record_n(latency_us, requests).unwrap();
    let cell = format!("sqlite {workload} closed c={connections}");
    Record {
        schema_version: SCHEMA_VERSION,
        run_id: format!("{COMPARISON}/{cell}/{round}/{stack}/0"),
        stack: stack.to_owned(),
        db: Some(DbKind::Sqlite),
        workload,
        mix: None,
        path: None,
        load_model: LoadModelKind::Closed,
        connections,
        threads: 1,
        target_rate: None,
        fixed_requests: None,
        duration_seconds: 1.0,
        warmup_seconds: 0.25,
        seeded: 10_000,
        seeded_for_delete: 100_000,
        server_workers: Some(1),
        server_pool_size: Some(2),
        db_network: None,
        deployment: None,
        trial: Some(Trial {
            comparison: COMPARISON.to_owned(),
            cell,
            baseline: BASELINE.to_owned(),
            round,
            position: 0,
            attempt: 0,
            discarded: (round == 0).then(|| "warm-up round".to_owned()),
            target: 0.03,
        }),
        results: Results {
            requests,
            ok: requests,
            errors: ErrorCounts::default(),
            errors_total: 0,
            throughput,
            achieved_rate: throughput,
            late_sends: 0,
            ids_exhausted: false,
            measured_seconds: 1.0,
            latency_us: LatencySummary::from_histogram(&histogram),
            histogram: encode_histogram(&histogram).unwrap(),
            series: Series {
                interval_ms: 100,
                ok: vec![requests / 10; 10],
            },
            server: Some(ServerUsage {
                cpu_seconds: Some(0.5),
                peak_rss_bytes: Some(12 << 20),
                vmhwm_bytes: Some(13 << 20),
            }),
            requests_per_server_cpu_second: Some(requests as f64 / 0.5),
            loadgen: LoadgenUsage {
                cpu_seconds: 0.4,
                cores: 1,
                saturated: false,
                pacing_seconds: None,
                late_own: None,
            },
            noise: Noise {
                core_seconds: 2.0,
                steal_seconds: 0.01,
                database_cpu_seconds: 0.0,
                kernel_cpu_seconds: Some(0.01),
                front_cpu_seconds: None,
                other_cpu_seconds: 0.02,
            },
            clean_shutdown: None,
            integrity: None,
        },
        provenance: Provenance {
            git_commit: Some("0123456789abcdef0123456789abcdef01234567".to_owned()),
            git_dirty: Some(false),
            rustc: Some("rustc 1.95.0 (59807616e 2026-04-14)".to_owned()),
            build_profile: Some("bench-release".to_owned()),
            cpu_model: Some("Test CPU @ 3.0GHz".to_owned()),
            cores: 2,
            pinning: "server cores 0, loadgen cores 1".to_owned(),
            cpu_idle: Some("poll".to_owned()),
            hostname: Some("bench-host".to_owned()),
            date: format!("2026-05-01T10:{round:02}:00Z"),
            command: "loadgen matrix --servers base-stack,other-stack".to_owned(),
        },
    }
}

/// Two cells of five counted rounds (and a warm-up round each):
/// - hello c=1: other-stack is 10 % faster in every round, whatever the drift;
/// - hello c=10: other-stack is +5 %, -5 %, +5 %, -5 %, 0: a tie;
///
/// and one other-stack trial with three 5xx answers.
fn records() -> Vec<Record> {
    let drift = [1.0, 0.9, 1.1, 0.95, 1.05];
    let mut out = Vec::new();
    for round in 0..=5u32 {
        let d = if round == 0 {
            0.5
        } else {
            drift[round as usize - 1]
        };
        out.push(trial(
            BASELINE,
            WorkloadKind::Hello,
            1,
            round,
            10_000.0 * d,
            100,
        ));
        out.push(trial(
            "other-stack",
            WorkloadKind::Hello,
            1,
            round,
            11_000.0 * d,
            90,
        ));
        let swing = [1.0, 1.05, 0.95, 1.05, 0.95, 1.0][round as usize];
        out.push(trial(
            BASELINE,
            WorkloadKind::Hello,
            10,
            round,
            40_000.0 * d,
            250,
        ));
        let mut r = trial(
            "other-stack",
            WorkloadKind::Hello,
            10,
            round,
            40_000.0 * d * swing,
            260,
        );
        if round == 3 {
            r.results.errors.status_5xx = 3;
            r.results.errors_total = 3;
        }
        out.push(r);
    }
    out
}

fn write_records(dir: &Path, records: &[Record]) -> std::path::PathBuf {
    let path = dir.join("records.jsonl");
    for r in records {
        record::append(&path, r).unwrap();
    }
    path
}

#[test]
fn records_round_trip_and_carry_the_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let records = records();
    let path = write_records(dir.path(), &records);
    assert_eq!(record::read_all(&path).unwrap(), records);
    let line = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let value: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(value["schema_version"], SCHEMA_VERSION);
    assert!(value["results"]["histogram"].is_string());
    assert_eq!(value["trial"]["round"], 0);
    // Another schema version is refused with a clear message, before its fields are read.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, r#"{"schema_version":1,"stack":"old"}"#).unwrap();
    let err = record::read_all(&bad).unwrap_err();
    assert!(
        format!("{err:#}").contains("schema_version 1 (this loadgen reads 2"),
        "{err:#}"
    );
}

#[test]
fn records_of_one_run_from_two_load_generators_merge_exactly() {
    let mut a = trial(BASELINE, WorkloadKind::Read, 64, 1, 6000.0, 100);
    let mut b = trial(BASELINE, WorkloadKind::Read, 64, 1, 4000.0, 1000);
    b.run_id = a.run_id.clone();
    b.results.series.ok = vec![400; 12];
    a.results.loadgen.saturated = false;
    b.results.loadgen.saturated = true;
    let merged = record::merge_runs(vec![a.clone(), b.clone()]).unwrap();
    assert_eq!(merged.len(), 1);
    let m = &merged[0].results;
    assert_eq!((m.requests, m.ok), (10_000, 10_000));
    assert_eq!(m.throughput, 10_000.0);
    assert_eq!(merged[0].connections, 128);
    // 6,000 answers at 100 µs and 4,000 at 1,000 µs: the median is 100, p90 is 1,000.
    assert_eq!(m.latency_us.p50, 100);
    assert_eq!(m.latency_us.p90, 1000);
    assert_eq!(
        record::decode_histogram(&m.histogram).unwrap().len(),
        10_000
    );
    assert_eq!(m.series.ok.len(), 12);
    assert_eq!(m.series.ok[0], 600 + 400);
    assert_eq!(m.series.ok[11], 400);
    assert!(m.loadgen.saturated);
    // Different runs stay apart; different stacks under one run id are refused.
    let mut c = b.clone();
    c.run_id = "other".to_owned();
    assert_eq!(record::merge_runs(vec![a.clone(), c]).unwrap().len(), 2);
    let mut d = b;
    d.stack = "other-stack".to_owned();
    assert!(record::merge(&[a, d]).is_err());
}

#[test]
fn report_renders_ratios_ties_flags_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_records(dir.path(), &records());
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checks.jsonl"),
        dir.path().join("checks.jsonl"),
    )
    .unwrap();
    let out = loadgen::report::render_report(&path, dir.path()).unwrap();
    let md = std::fs::read_to_string(&out.summary).unwrap();

    // The headline: a clear 10 % lead (every round's ratio is 1.1: a zero-width interval), and
    // a tie, whose interval holds 1; the baseline's throughput is the geometric mean of its
    // five counted trials (the warm-up round left out).
    assert!(md.contains("## Which stack is faster"), "{md}");
    assert!(
        md.contains("| cell | base-stack ok req/s | other-stack vs base-stack |"),
        "{md}"
    );
    assert!(md.contains("| hello c=1 | 9,975 ±"), "{md}");
    assert!(md.contains("| 1.10x [1.10–1.10] |"), "{md}");
    assert!(md.contains("| hello c=10 | 39,900 ±"), "{md}");
    assert!(md.contains("tie [0.94–1.06]¹ |"), "{md}");
    // Precision: one of the two ratios is within the target.
    assert!(
        md.contains("1 of 2 ratios (50 %) have a 95 % interval within ±3 %"),
        "{md}"
    );
    assert!(md.contains("1 of them are ties"), "{md}");
    // Milliseconds per operation from the merged histograms, with the reliability verdicts.
    assert!(
        md.contains("| stack | hello c=1 | hello c=10 | reliability checks |"),
        "{md}"
    );
    assert!(md.contains("| base-stack | 0.100 | 0.250 |"), "{md}");
    assert!(
        md.contains("| other-stack | 0.090 | 0.260¹ | FAILED: schemathesis |"),
        "{md}"
    );
    // The sweep table: geometric means with intervals, ratios, percentiles, errors, trials.
    assert!(
        md.contains("| other-stack¹ | 10 | 39,8"),
        "the flagged stack is marked: {md}"
    );
    assert!(md.contains("| 0.260 | 0.260 | 0.260 | 3 | 5 |"), "{md}");
    // Flags name the round.
    assert!(md.contains("- other-stack¹ sqlite hello c=10:"), "{md}");
    assert!(md.contains("round 3: 3 errors of"), "{md}");
    // Efficiency, noise and provenance.
    assert!(md.contains("## Efficiency") && md.contains("12.0"), "{md}");
    assert!(md.contains("| sqlite hello c=1 | 12 | 2 | 0.5 % |"), "{md}");
    assert!(
        md.contains("Test CPU @ 3.0GHz")
            && md.contains("bench-release")
            && md.contains("rustc 1.95.0")
            && md.contains("2026-05-01T10:00:00Z … 2026-05-01T10:05:00Z"),
        "{md}"
    );

    // Plots: the forest plot of ratios, and throughput (with error bars) and p99 per sweep.
    let names: Vec<String> = out
        .plots
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "ratios-sqlite.svg",
            "throughput-sqlite-hello.svg",
            "p99-sqlite-hello.svg"
        ]
    );
    for (plot, name) in out.plots.iter().zip(&names) {
        let svg = std::fs::read_to_string(plot).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}"
        );
        assert!(
            md.contains(&format!("plots/{name}")),
            "summary links {name}"
        );
        assert!(!svg.contains("NaN"), "{name}");
    }
    let throughput = std::fs::read_to_string(&out.plots[1]).unwrap();
    assert_eq!(throughput.matches("<polyline").count(), 2);
    assert_eq!(
        throughput.matches("<path").count(),
        4,
        "an error bar per point"
    );
    let forest = std::fs::read_to_string(&out.plots[0]).unwrap();
    assert_eq!(forest.matches("<circle").count(), 2, "one row per ratio");
}

#[test]
fn a_cell_is_summed_up_in_a_line_per_stack() {
    let records = records();
    let lines = loadgen::report::analyse_cell(&records, "sqlite hello closed c=1", COMPARISON);
    assert_eq!(
        lines,
        [
            "base-stack: 9,975 ok req/s, baseline",
            "other-stack: 10,972 ok req/s, 1.10x [1.10–1.10] vs base-stack"
        ]
    );
    assert_eq!(
        loadgen::report::analyse_cell(&records, "sqlite hello closed c=1", "another"),
        ["no counted trials"]
    );
}

/// The report of `records`: the summary, its section under `heading` (to the end), the plots.
fn section_of(records: &[Record], heading: &str) -> (String, String, Vec<std::path::PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_records(dir.path(), records);
    let out = loadgen::report::render_report(&path, dir.path()).unwrap();
    let md = std::fs::read_to_string(&out.summary).unwrap();
    let section = md
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("no {heading:?}: {md}"))
        .to_owned();
    (md, section, out.plots)
}

#[test]
fn the_database_across_a_network_has_its_own_section() {
    // PostgreSQL read at 64 connections, pool 8: on the loopback, and 2 ms away, where the
    // baseline holds a pooled connection one round trip per request (Little's bound, 4,000
    // req/s) and the other stack two (2,000 req/s).
    let mut records = Vec::new();
    for round in 0..=3u32 {
        for (rtt_us, base, other) in [(0, 12_000.0, 11_000.0), (2_000, 4_000.0, 2_000.0)] {
            for (stack, throughput) in [(BASELINE, base), ("other-stack", other)] {
                let mut r = trial(stack, WorkloadKind::Read, 64, round, throughput, 2_000);
                let network = DbNetwork { rtt_us, pool: 8 };
                r.db = Some(DbKind::Postgres);
                r.db_network = Some(network);
                let cell = format!("postgres read closed c=64 {}", network.label());
                r.run_id = format!("{COMPARISON}/{cell}/{round}/{stack}/0");
                r.trial.as_mut().unwrap().cell = cell;
                records.push(r);
            }
        }
    }
    let (md, section, plots) = section_of(&records, "## The database across a network");
    assert!(section.contains("### read, 64 connections"), "{section}");
    assert!(
        section.contains(
            "| 8 | 0 | – | 12,000 ±0.0 % · 2.000 | 11,000 ±0.0 % (0.92x [0.92–0.92]) · 2.000 |"
        ),
        "{section}"
    );
    assert!(
        section.contains(
            "| 8 | 2 | 4,000 | 4,000 ±0.0 % · 2.000 · 1.0 | 2,000 ±0.0 % (0.50x [0.50–0.50]) · 2.000 · 2.0 |"
        ),
        "{section}"
    );
    assert!(
        plots
            .iter()
            .any(|p| p.ends_with("plots/network-read-c64-pool8.svg")),
        "{plots:?}"
    );
    // The scenario's cells stay out of the headline, which has no loopback cell to show.
    let headline = md.split("## How precise").next().unwrap();
    assert!(!headline.contains("rtt="), "{headline}");
}

#[test]
fn open_loop_cells_get_latency_by_offered_rate() {
    // read at 64 connections, offered 1,000, 4,000 and 16,000 req/s: the baseline holds all
    // three; the other stack's p99 passes 10 ms at 16,000, and a quarter of its sends are late.
    let mut records = Vec::new();
    for round in 0..=2u32 {
        for (rate, base_us, other_us) in [
            (1_000.0, 200, 250),
            (4_000.0, 300, 400),
            (16_000.0, 900, 20_000),
        ] {
            for (stack, latency_us) in [(BASELINE, base_us), ("other-stack", other_us)] {
                let mut r = trial(stack, WorkloadKind::Read, 64, round, rate, latency_us);
                r.load_model = LoadModelKind::Open;
                r.target_rate = Some(rate);
                if stack != BASELINE && rate > 10_000.0 {
                    r.results.late_sends = r.results.requests / 4;
                }
                let cell = format!("sqlite read open@{rate} c=64");
                r.run_id = format!("{COMPARISON}/{cell}/{round}/{stack}/0");
                r.trial.as_mut().unwrap().cell = cell;
                records.push(r);
            }
        }
    }
    // A third stack's probe served 500 req/s, under the lowest rate: the ladder left it out.
    let mut probe = trial("slow-stack", WorkloadKind::Read, 64, 0, 500.0, 100_000);
    probe.trial.as_mut().unwrap().discarded = Some(loadgen::cell::PROBE.to_owned());
    records.push(probe);
    let (md, section, plots) = section_of(&records, "## Latency at a fixed offered rate");
    assert!(
        section.contains("### read on sqlite, 64 connections"),
        "{section}"
    );
    assert!(!section.contains("slow-stack: p50"), "no column: {section}");
    assert!(
        section.contains(
            "| slow-stack | left out: its probe served 500 ok req/s, under the lowest rate |"
        ),
        "{section}"
    );
    assert!(
        section.contains("| 1,000 | 0.200 · 0.200 · 0.200, 0.0 % | 0.250 · 0.250 · 0.250, 0.0 % |"),
        "{section}"
    );
    assert!(
        section.contains(
            "| 16,000 | 0.900 · 0.900 · 0.900, 0.0 % | 20.015 · 20.015 · 20.015, 25.0 % |"
        ),
        "{section}"
    );
    assert!(section.contains("| base-stack | 16,000 |"), "{section}");
    assert!(section.contains("| other-stack | 4,000 |"), "{section}");
    for percentile in ["p50", "p99", "p99_9"] {
        let name = format!("plots/open-sqlite-read-c64-{percentile}.svg");
        assert!(plots.iter().any(|p| p.ends_with(&name)), "{name}");
    }
    // The fixed-rate cells stay out of the headline's ratios.
    let headline = md.split("## How precise").next().unwrap();
    assert!(!headline.contains("open @"), "{headline}");
}

/// A count of `per_request` instructions, `http` of them in the HTTP layer.
fn cost(stack: &str, workload: WorkloadKind, run: usize, per_request: u64) -> CostRecord {
    let requests = 1000;
    CostRecord {
        schema_version: COST_SCHEMA_VERSION,
        stack: stack.to_owned(),
        db: DbKind::Sqlite,
        workload,
        run,
        invocation: "2026-05-01T10:00:00Z".to_owned(),
        warmup: 200,
        requests,
        settle_ms: 20.0,
        seeded: 1000,
        errors: 0,
        instructions: per_request * requests as u64,
        per_request: per_request as f64,
        split: [
            (Category::Http, per_request * requests as u64 / 4),
            (Category::Database, per_request * requests as u64 / 2),
        ]
        .into(),
        build_profile: Some("bench-release".to_owned()),
        valgrind: "valgrind-3.19.0".to_owned(),
        schedule: Schedule::RunToBlock,
        git_commit: None,
        date: "2026-05-01T10:00:00Z".to_owned(),
    }
}

/// The summary of the records at `path` with `costs` written beside them as `cost.jsonl`.
fn summary_with_costs(dir: &Path, path: &Path, costs: &[CostRecord]) -> String {
    let lines: Vec<String> = costs
        .iter()
        .map(|c| serde_json::to_string(c).unwrap())
        .collect();
    std::fs::write(dir.join("cost.jsonl"), lines.join("\n")).unwrap();
    let out = loadgen::report::render_report(path, dir).unwrap();
    std::fs::read_to_string(&out.summary).unwrap()
}

#[test]
fn report_renders_instruction_counts_with_their_agreement_and_split() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_records(dir.path(), &records());
    let costs = [
        cost(BASELINE, WorkloadKind::Read, 1, 400_000),
        cost(BASELINE, WorkloadKind::Read, 2, 400_400),
        cost("other-stack", WorkloadKind::Read, 1, 600_000),
        cost("other-stack", WorkloadKind::Read, 2, 612_000),
    ];
    let md = summary_with_costs(dir.path(), &path, &costs);
    assert!(
        md.contains("## Instructions per request (callgrind)"),
        "{md}"
    );
    // Means of the two runs, the other stack as a ratio to the first.
    assert!(md.contains("| read | 400k | 606k (1.51x) |"), "{md}");
    // 0.1 % apart for the baseline, 2 % for the other: one of two within 1 %.
    assert!(
        md.contains("1 of 2 counts taken in 2 processes agree within")
            && md.contains("is 2.0 % (other-stack read)"),
        "{md}"
    );
    assert!(
        md.contains("more counted, each 20 ms after the response"),
        "{md}"
    );
    // One command: no column to compare with.
    assert!(!md.contains("Column to column"), "{md}");
    // The split: a quarter HTTP, half database, per request.
    assert!(
        md.contains("| read | base-stack | 100k | — | 200k |"),
        "{md}"
    );
}

#[test]
fn counts_of_the_ordinary_schedule_give_way_to_run_to_block_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_records(dir.path(), &records());
    let shared = |mut c: CostRecord| {
        c.schedule = Schedule::Shared;
        c.invocation = "2026-04-01T10:00:00Z".to_owned();
        c
    };
    let costs = [
        shared(cost(BASELINE, WorkloadKind::Read, 1, 350_000)),
        shared(cost(BASELINE, WorkloadKind::Read, 2, 380_000)),
        cost(BASELINE, WorkloadKind::Read, 1, 400_000),
        cost(BASELINE, WorkloadKind::Read, 2, 400_400),
    ];
    let md = summary_with_costs(dir.path(), &path, &costs);
    assert!(md.contains("| read | 400k |"), "{md}");
    assert!(
        md.contains("on a core of its own at real-time priority"),
        "{md}"
    );
    assert!(
        md.contains("2 count(s) taken under the kernel's ordinary scheduling are set aside"),
        "{md}"
    );
    // Only one run-to-block command: no columns to compare.
    assert!(!md.contains("Column to column"), "{md}");
    // With the shared counts alone, the table is theirs and says how they vary.
    let md = summary_with_costs(dir.path(), &path, &costs[..2]);
    assert!(md.contains("| read | 365k |"), "{md}");
    assert!(md.contains("valgrind's serialised scheduler"), "{md}");
    assert!(!md.contains("set aside"), "{md}");
    // Set-aside counts are not answered wrongly; a wrong answer voids a count of either kind.
    assert!(!md.contains("answered wrongly"), "{md}");
    let mut voided = costs.to_vec();
    voided[3].errors = 1;
    let md = summary_with_costs(dir.path(), &path, &voided);
    assert!(
        md.contains("2 count(s) taken under the kernel's ordinary scheduling are set aside")
            && md.contains("1 count(s) had requests answered wrongly"),
        "{md}"
    );
}

#[test]
fn two_cost_commands_are_compared_column_to_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_records(dir.path(), &records());
    let later = |mut c: CostRecord| {
        c.invocation = "2026-05-01T11:00:00Z".to_owned();
        c
    };
    let costs = [
        cost(BASELINE, WorkloadKind::Read, 1, 400_000),
        cost(BASELINE, WorkloadKind::Read, 2, 400_400),
        cost("other-stack", WorkloadKind::Read, 1, 600_000),
        cost(BASELINE, WorkloadKind::Hello, 1, 10_000),
        // The second command: read medians 400,100 (0.05 % off) and 612,000 (2 % off);
        // hello, which the first counted too, 10,050 (0.5 % off).
        later(cost(BASELINE, WorkloadKind::Read, 1, 400_000)),
        later(cost(BASELINE, WorkloadKind::Read, 2, 400_200)),
        later(cost("other-stack", WorkloadKind::Read, 1, 612_000)),
        later(cost(BASELINE, WorkloadKind::Hello, 1, 10_050)),
    ];
    let md = summary_with_costs(dir.path(), &path, &costs);
    assert!(
        md.contains(
            "Column to column: the commands started at 2026-05-01T10:00:00Z and \
             2026-05-01T11:00:00Z (each its own processes) agree within 1 % on 2 of 3 counts; \
             the widest difference is 2.0 % (other-stack read). Over 1 %: other-stack read 2.0 %."
        ),
        "{md}"
    );
}

#[test]
fn reference_rows_get_time_ratios_beside_the_published_figures() {
    // Four rounds with drift every stack shares. hello c=1 and read c=10: FastAPI 1,000 and
    // 500 req/s, hyper-raw 10x that, axum-diesel 8x (an eighth of FastAPI's time, 1.25x
    // hyper's); sleep c=64: axum-sqlx 16,000 req/s, BlackSheep 12,800 (1.25x).
    let drift = [1.0, 0.9, 1.1, 1.0];
    let mut records = Vec::new();
    let cells = [
        (WorkloadKind::Hello, 1, 1_000.0),
        (WorkloadKind::Read, 10, 500.0),
        (WorkloadKind::Sleep, 64, 1_000.0),
    ];
    for (round, d) in drift.iter().enumerate() {
        for (workload, connections, base) in cells {
            let stacks: &[(&str, f64)] = if workload == WorkloadKind::Sleep {
                &[
                    (PYTHON_BASELINE, 1.0),
                    (PROBE_PAIR.0, 16.0),
                    (PROBE_PAIR.1, 12.8),
                ]
            } else {
                &[
                    (PYTHON_BASELINE, 1.0),
                    (RUST_LIMIT, 10.0),
                    (PUBLISHED_TODO, 8.0),
                ]
            };
            for &(stack, factor) in stacks {
                let throughput = base * factor * d;
                let latency_us = (connections as f64 * 1e6 / (base * factor)).round() as u64;
                let mut r = trial(
                    stack,
                    workload,
                    connections,
                    round as u32 + 1,
                    throughput,
                    latency_us,
                );
                r.trial.as_mut().unwrap().baseline = PYTHON_BASELINE.to_owned();
                records.push(r);
            }
        }
    }
    let (_, section, plots) = section_of(&records, "## Against the reference rows");
    let section = section.split("\n## ").next().unwrap();
    assert!(
        section.contains("### sqlite: time per operation relative to fastapi-sqlalchemy"),
        "{section}"
    );
    assert!(
        section.contains("| stack | hello c=1 | read c=10 |"),
        "only the todo benchmark's cells: {section}"
    );
    assert!(
        section.contains("| fastapi-sqlalchemy (ms per operation) | 1.000 | 20.008 |"),
        "{section}"
    );
    assert!(
        section.contains("| hyper-raw | 0.100x [0.100–0.100] | 0.100x [0.100–0.100] |"),
        "{section}"
    );
    assert!(
        section.contains("| axum-diesel | 0.13x [0.13–0.13] | 0.13x [0.13–0.13] |"),
        "{section}"
    );
    assert!(
        section.contains("| published: axum-diesel | ~0.80 | 0.64–0.75 |"),
        "{section}"
    );
    assert!(
        section.contains("### sqlite: time per operation relative to hyper-raw"),
        "{section}"
    );
    assert!(
        section.contains("| hyper-raw (ms per operation) | 0.100 | 2.000 |"),
        "{section}"
    );
    assert!(
        section.contains("| fastapi-sqlalchemy | 10.00x [10.00–10.00] | 10.00x [10.00–10.00] |"),
        "{section}"
    );
    assert!(
        section.contains("| axum-diesel | 1.25x [1.25–1.25] | 1.25x [1.25–1.25] |"),
        "{section}"
    );
    // Stacks not measured in a cell show a dash, never a figure.
    assert!(section.contains("| axum-sqlx | – | – |"), "{section}");
    // What a request costs: requests per CPU-second with one client (0.5 s of CPU per trial).
    assert!(
        section.contains("| stack | hello c=1 req per CPU-s | peak RSS MiB |"),
        "{section}"
    );
    assert!(
        section.contains("| hyper-raw | 20,000 | 12.0 |"),
        "{section}"
    );
    // The probes, paired by round, beside the published figures.
    assert!(
        section.contains("| sleep c=64 | 15,960 ±")
            && section.contains("| 1.25x [1.25–1.25] | 576 vs 536 req/s: 1.07x"),
        "{section}"
    );
    for name in [
        "time-vs-fastapi-sqlalchemy-sqlite.svg",
        "time-vs-hyper-raw-sqlite.svg",
    ] {
        assert!(
            plots.iter().any(|p| p.ends_with(format!("plots/{name}"))),
            "{plots:?}"
        );
        assert!(section.contains(&format!("(plots/{name})")), "{section}");
    }
}

#[test]
fn a_run_without_reference_rows_has_no_reference_section() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_records(dir.path(), &records());
    let out = loadgen::report::render_report(&path, dir.path()).unwrap();
    let md = std::fs::read_to_string(&out.summary).unwrap();
    assert!(!md.contains("## Against the reference rows"), "{md}");
}

#[test]
fn the_python_rows_behind_nginx_and_pgbouncer_are_set_beside_the_published_claim() {
    // PostgreSQL read at 64 connections, direct and behind nginx and pgbouncer: in the second,
    // the sync-worker stack (three processes) serves 1.2x FastAPI's 400 req/s in every round,
    // whatever the drift; a Rust stack is measured too, and stays out of this table.
    const SYNC: &str = "flask-sqlalchemy";
    let drift = [1.0, 0.9, 1.1, 1.0];
    let mut records = Vec::new();
    for (round, d) in drift.iter().enumerate() {
        for deployment in [
            Deployment {
                nginx: false,
                pgbouncer: None,
            },
            Deployment {
                nginx: true,
                pgbouncer: Some(harness::deploy::PoolMode::Session),
            },
        ] {
            for (stack, factor, workers) in [
                (PYTHON_BASELINE, 1.0, 1),
                (SYNC, 1.2, 3),
                (PROBE_PAIR.0, 20.0, 1),
            ] {
                let throughput = 400.0 * factor * d;
                let mut r = trial(
                    stack,
                    WorkloadKind::Read,
                    64,
                    round as u32 + 1,
                    throughput,
                    50_000,
                );
                r.db = Some(DbKind::Postgres);
                r.server_workers = Some(workers);
                r.deployment = Some(deployment);
                let cell = format!("postgres read closed c=64 {}", deployment.label());
                r.run_id = format!("{COMPARISON}/{cell}/{}/{stack}/0", round + 1);
                let t = r.trial.as_mut().unwrap();
                t.cell = cell;
                t.baseline = PYTHON_BASELINE.to_owned();
                records.push(r);
            }
        }
    }
    let (_, section, _) = section_of(
        &records,
        "### The published sync-vs-async claim: Python behind nginx and pgbouncer",
    );
    let section = section.split("\n## ").next().unwrap();
    assert!(
        section.contains("5,497 req/s with a P99 of 32 ms") && section.contains("4,952 req/s"),
        "the published figures: {section}"
    );
    assert!(
        section.contains(
            "| stack | read c=64 nginx+pgbouncer(session): ok req/s · p99 ms · vs fastapi-sqlalchemy |"
        ),
        "only the cell with both hops: {section}"
    );
    assert!(
        section.contains("| fastapi-sqlalchemy (1 worker) | 399 ±")
            && section.contains("· baseline |"),
        "{section}"
    );
    assert!(
        section.contains("| flask-sqlalchemy (3 workers) | 479 ±")
            && section.contains("· 1.20x [1.20–1.20] |"),
        "{section}"
    );
    assert!(
        !section.contains(PROBE_PAIR.0),
        "Python rows only: {section}"
    );
}

#[test]
fn the_precision_table_gives_each_cells_trial_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_records(dir.path(), &records());
    let cell = |name: &str, trial_ms: Option<f64>, shortest_trial_ms: Option<f64>| {
        let summary = CellSummary {
            cell: name.to_owned(),
            baseline: BASELINE.to_owned(),
            stacks: vec![BASELINE.to_owned(), "other-stack".to_owned()],
            rounds: 7,
            stop: Stop::Budget,
            target: 0.03,
            seconds: 30.0,
            redone: 0,
            trial_ms,
            shortest_trial_ms,
            unclean_shutdowns: Vec::new(),
            run: COMPARISON.to_owned(),
        };
        serde_json::to_string(&summary).unwrap()
    };
    let lines = [
        cell("sqlite hello closed c=1", Some(100.0), Some(100.0)),
        cell("sqlite read closed c=10", Some(400.0), Some(100.0)),
        // From before each stack's trials were fitted to its own rate.
        cell("sqlite read closed c=64", Some(235.0), None),
        // From before trials were fitted at all.
        cell("sqlite read closed c=256", None, None),
    ];
    std::fs::write(dir.path().join("cells.jsonl"), lines.join("\n")).unwrap();
    let out = loadgen::report::render_report(&path, dir.path()).unwrap();
    let md = std::fs::read_to_string(&out.summary).unwrap();
    for row in [
        "| sqlite hello closed c=1 | 7 | 100 | time budget spent |",
        "| sqlite read closed c=10 | 7 | 100–400 | time budget spent |",
        "| sqlite read closed c=64 | 7 | 235 | time budget spent |",
        "| sqlite read closed c=256 | 7 | - | time budget spent |",
    ] {
        assert!(md.contains(row), "{row} in {md}");
    }
}
