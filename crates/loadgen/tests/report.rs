//! Records round-trip through JSON, and the report renders from the checked-in fixture alone.

use std::path::Path;

use loadgen::record::{self, Record, SCHEMA_VERSION};

fn fixture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/records.jsonl"
    ))
}

#[test]
fn records_round_trip_and_carry_the_schema_version() {
    let records = record::read_all(fixture()).unwrap();
    assert_eq!(records.len(), 24);
    for r in &records {
        let json = serde_json::to_string(r).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["schema_version"], SCHEMA_VERSION);
        assert!(value["results"]["latency_us"]["p99_9"].is_u64());
        assert!(value["provenance"]["git_commit"].is_string());
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, r);
    }
    // Appending writes one line per record that reads back identically.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/records.jsonl");
    for r in &records[..3] {
        record::append(&path, r).unwrap();
    }
    assert_eq!(record::read_all(&path).unwrap(), records[..3].to_vec());
    // Another schema version is refused with a clear message.
    let other = std::fs::read_to_string(fixture())
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .replace("\"schema_version\":1", "\"schema_version\":2");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, other).unwrap();
    let err = record::read_all(&bad).unwrap_err();
    assert!(format!("{err:#}").contains("schema_version 2"), "{err:#}");
}

#[test]
fn report_renders_medians_spreads_flags_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let out = loadgen::report::render_report(fixture(), dir.path()).unwrap();
    let md = std::fs::read_to_string(&out.summary).unwrap();

    // (1) ms per operation: axum hello at 1 connection, mean latency 83.3 / 81.0 / 78.7 µs.
    assert!(md.contains("## Milliseconds per operation"));
    assert!(
        md.contains(
            "| stack | hello c=1 | hello c=10 | create c=1 | create c=10 | reliability checks |"
        ),
        "{md}"
    );
    assert!(md.contains("| axum | 0.081 (0.079–0.083) |"), "{md}");
    // (2) throughput medians with spreads.
    assert!(md.contains("| axum | 1 | 12,345 (12,001–12,700) |"), "{md}");
    assert!(
        md.contains("| actix | 1 | 11,500 (11,000–11,900) |"),
        "{md}"
    );
    // Flags: actix create c=10 had 5xx in one repetition, axum hello c=10 saturated loadgen once;
    // the markers appear in every table where the combination does.
    assert!(md.contains("| actix¹ | 10 | 8,900 (8,800–9,050) |"), "{md}");
    assert!(
        md.contains("| axum² | 10 | 41,000 (40,000–42,000) |"),
        "{md}"
    );
    // The per-stack reliability verdicts from checks.jsonl beside the records.
    assert!(md.contains("| actix | 0.087 (0.084–0.091) | 0.220 (0.217–0.222) | 0.328 (0.318–0.345) | 1.124 (1.105–1.136)¹ | FAILED: schemathesis |"), "{md}");
    assert!(md.contains("| axum | 0.081 (0.079–0.083) | 0.244 (0.238–0.250)² | 0.323 (0.312–0.333) | 1.099 (1.075–1.111) | passed |"), "{md}");
    assert!(
        md.contains(
            "| actix | schemathesis | FAILED | `scripts/schemathesis.sh --quick` | 0123456789ab |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| axum² | 10 | 45,556 (44,444–46,667) |"),
        "efficiency table marks it too: {md}"
    );
    assert!(md.contains("actix¹ sqlite create closed c=10"), "{md}");
    assert!(md.contains("repetition 1: 3 errors of"), "{md}");
    assert!(md.contains("5xx 3"), "{md}");
    // (3) efficiency and provenance.
    assert!(
        md.contains("## Efficiency") && md.contains("| axum | 1 | 13,") && md.contains("12.0"),
        "{md}"
    );
    assert!(
        md.contains("Test CPU @ 3.0GHz")
            && md.contains("bench-release")
            && md.contains("rustc 1.95.0")
    );
    assert!(
        md.contains("2026-05-01T10:00:00Z … 2026-05-01T10:23:00Z"),
        "{md}"
    );
    assert!(md.contains("`loadgen matrix --servers axum="), "{md}");

    // Plots: throughput and p99 per db/workload, one polyline per stack.
    assert_eq!(out.plots.len(), 4);
    for plot in &out.plots {
        let svg = std::fs::read_to_string(plot).unwrap();
        assert!(svg.starts_with("<svg"), "{}", plot.display());
        assert!(svg.trim_end().ends_with("</svg>"), "{}", plot.display());
        assert_eq!(svg.matches("<polyline").count(), 2, "{}", plot.display());
        assert!(svg.contains(">axum<") && svg.contains(">actix<"));
        let name = plot.file_name().unwrap().to_string_lossy();
        assert!(
            md.contains(&format!("plots/{name}")),
            "summary links {name}"
        );
    }
}
