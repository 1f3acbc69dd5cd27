//! Per-stack reliability verdicts (`checks.jsonl`, written by `scripts/reliability.sh` beside
//! `records.jsonl`): whether each stack passed its conformance, hostile-input, database-fault,
//! shutdown, OpenAPI and soak tests, and schemathesis. The report shows them next to the speed.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// The version of the `checks.jsonl` line format.
pub const SCHEMA_VERSION: u32 = 1;

/// One check's verdict for one stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub schema_version: u32,
    pub stack: String,
    /// What was run, e.g. `tests` or `schemathesis`.
    pub check: String,
    pub passed: bool,
    /// A check whose failure shows a limitation the README documents (the strict run without
    /// the frameworks' exemptions), not a defect.
    #[serde(default)]
    pub informational: bool,
    /// The command that produced the verdict.
    pub command: String,
    pub commit: String,
    pub date: String,
}

/// Verdicts by stack, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checks(BTreeMap<String, Vec<Verdict>>);

impl Checks {
    /// Reads `checks.jsonl`; a missing file means no checks were run.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let mut checks = Self::default();
        for (n, line) in crate::record::jsonl_lines(path)? {
            let verdict: Verdict = serde_json::from_str(&line)
                .with_context(|| format!("{}:{n}: not a check verdict", path.display()))?;
            anyhow::ensure!(
                verdict.schema_version == SCHEMA_VERSION,
                "{}:{n}: schema version {} (expected {SCHEMA_VERSION})",
                path.display(),
                verdict.schema_version
            );
            checks
                .0
                .entry(verdict.stack.clone())
                .or_default()
                .push(verdict);
        }
        Ok(checks)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The cell for `stack`: `passed`, `FAILED: <checks>` or `not run`, with the
    /// informational checks that failed named as documented limitations.
    pub fn summary(&self, stack: &str) -> String {
        let Some(verdicts) = self.0.get(stack) else {
            return "not run".to_owned();
        };
        let failed = |informational: bool| -> Vec<&str> {
            verdicts
                .iter()
                .filter(|v| !v.passed && v.informational == informational)
                .map(|v| v.check.as_str())
                .collect()
        };
        let (defects, limits) = (failed(false), failed(true));
        let verdict = if defects.is_empty() {
            "passed".to_owned()
        } else {
            format!("FAILED: {}", defects.join(", "))
        };
        if limits.is_empty() {
            verdict
        } else {
            format!("{verdict}; documented limitations ({})", limits.join(", "))
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Vec<Verdict>)> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(stack: &str, check: &str, passed: bool) -> String {
        serde_json::to_string(&Verdict {
            schema_version: SCHEMA_VERSION,
            stack: stack.into(),
            check: check.into(),
            passed,
            informational: check == "strict",
            command: "cmd".into(),
            commit: "abc".into(),
            date: "2026-11-23T00:00:00Z".into(),
        })
        .unwrap()
    }

    #[test]
    fn summarises_per_stack() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checks.jsonl");
        let text = [
            line("a", "tests", true),
            line("a", "schemathesis", true),
            line("a", "strict", false),
            line("b", "tests", false),
            line("b", "schemathesis", true),
            line("b", "strict", true),
        ];
        std::fs::write(&path, text.join("\n")).unwrap();
        let checks = Checks::read(&path).unwrap();
        assert_eq!(
            checks.summary("a"),
            "passed; documented limitations (strict)"
        );
        assert_eq!(checks.summary("b"), "FAILED: tests");
        assert_eq!(checks.summary("c"), "not run");
    }

    #[test]
    fn a_missing_file_is_no_checks_and_a_bad_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            Checks::read(&dir.path().join("none.jsonl"))
                .unwrap()
                .is_empty()
        );
        let bad = dir.path().join("bad.jsonl");
        std::fs::write(&bad, "{\"stack\":1}").unwrap();
        assert!(Checks::read(&bad).is_err());
    }
}
