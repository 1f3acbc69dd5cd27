//! One table of requests and the exact responses the contract gives them, which every server's
//! framework-native test drives through its framework's own test client (tower's `oneshot`,
//! `actix_web::test`, Rocket's local `Client`): no socket, so a failure points at the
//! framework glue. The black-box suite (`conformance`) covers the rest over real sockets.

use shared::config::Database;

/// A request and the status and body it must get, on a fresh SQLite database, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    pub method: &'static str,
    pub uri: &'static str,
    /// A body sent with `content-type: application/json`.
    pub json: Option<&'static str>,
    pub status: u16,
    pub body: &'static str,
}

/// The table, as data: `native.tsv` beside this file.
const TABLE: &str = include_str!("native.tsv");

/// The cases, in the order they must be sent.
pub fn cases() -> Vec<Case> {
    TABLE
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| {
            let mut fields = line.splitn(5, '\t');
            let mut next = || fields.next().unwrap_or_default();
            let (method, uri, json, status, body) = (next(), next(), next(), next(), next());
            Case {
                method,
                uri,
                json: (json != "-").then_some(json),
                status: status
                    .parse()
                    .unwrap_or_else(|_| panic!("native.tsv: bad status in {line:?}")),
                body,
            }
        })
        .collect()
}

/// Checks what a framework answered to each case, in order (one `(status, body)` per case);
/// panics listing every mismatch.
pub fn assert_answers(stack: &str, answers: &[(u16, Vec<u8>)]) {
    let cases = cases();
    assert_eq!(answers.len(), cases.len(), "{stack}: one answer per case");
    let wrong: Vec<String> = cases
        .iter()
        .zip(answers)
        .filter(|(case, (status, body))| *status != case.status || body != case.body.as_bytes())
        .map(|(case, (status, body))| {
            format!(
                "{} {}: expected {} {}, got {status} {}",
                case.method,
                case.uri,
                case.status,
                case.body,
                String::from_utf8_lossy(body)
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{stack}:\n{}", wrong.join("\n"));
}

/// A temporary folder and a SQLite database in it, for a server's native tests.
pub fn sqlite() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let database = Database::Sqlite(dir.path().join("todo.db"));
    (dir, database)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses() {
        let cases = cases();
        assert_eq!(cases.len(), 22);
        let delete = Case {
            method: "DELETE",
            uri: "/tasks/1",
            json: None,
            status: 204,
            body: "",
        };
        assert!(cases.contains(&delete));
        assert!(
            cases
                .iter()
                .all(|c| c.uri.starts_with('/') && (200..600).contains(&c.status))
        );
        assert_eq!(cases[2].json, Some(r#"{"name":"a"}"#));
    }
}
