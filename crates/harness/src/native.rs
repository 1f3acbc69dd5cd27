//! One table of requests and the exact responses the contract gives them, which every server's
//! framework-native test drives through its framework's own test client (tower's `oneshot`,
//! `actix_web::test`, Rocket's local `Client`): no socket, so a failure points at the
//! framework glue. The black-box suite (`conformance`) covers the rest over real sockets.

use shared::config::Database;

/// A request and the status and body it must get, on a fresh SQLite database, in table order.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub method: &'static str,
    pub uri: &'static str,
    /// A body sent with `content-type: application/json`.
    pub json: Option<&'static str>,
    pub status: u16,
    pub body: &'static str,
}

const fn case(
    method: &'static str,
    uri: &'static str,
    json: Option<&'static str>,
    status: u16,
    body: &'static str,
) -> Case {
    Case {
        method,
        uri,
        json,
        status,
        body,
    }
}

const NO_ROUTE: &str = r#"{"error":"no route matches this path"}"#;
const NOT_ALLOWED: &str = r#"{"error":"this method is not allowed on this path"}"#;
const BAD_ID: &str = r#"{"error":"the task id must be a base-10 integer that fits in 64 bits"}"#;

/// The cases, in the order they must be sent.
pub const CASES: &[Case] = &[
    case("GET", "/", None, 200, "Hello, World!"),
    case(
        "GET",
        "/health",
        None,
        200,
        r#"{"status":"ok","db":"sqlite"}"#,
    ),
    case(
        "POST",
        "/tasks",
        Some(r#"{"name":"a"}"#),
        201,
        r#"{"id":1,"name":"a","done":false}"#,
    ),
    case(
        "POST",
        "/tasks",
        Some(r#"{"name":"x'); DROP TABLE tasks;--","done":true}"#),
        201,
        r#"{"id":2,"name":"x'); DROP TABLE tasks;--","done":true}"#,
    ),
    case(
        "GET",
        "/tasks/1",
        None,
        200,
        r#"{"id":1,"name":"a","done":false}"#,
    ),
    case(
        "PUT",
        "/tasks/1",
        Some(r#"{"name":"b","done":true}"#),
        200,
        r#"{"id":1,"name":"b","done":true}"#,
    ),
    case(
        "PUT",
        "/tasks/1",
        Some(r#"{"name":"a"}"#),
        422,
        r#"{"error":"invalid task: missing field `done` at line 1 column 12"}"#,
    ),
    case(
        "GET",
        "/tasks?limit=1&offset=1",
        None,
        200,
        r#"[{"id":2,"name":"x'); DROP TABLE tasks;--","done":true}]"#,
    ),
    case(
        "GET",
        "/tasks?limit=0",
        None,
        400,
        r#"{"error":"query parameter limit must be an integer from 1 to 1000"}"#,
    ),
    case(
        "POST",
        "/tasks",
        Some("[]"),
        422,
        r#"{"error":"the request body must be a JSON object"}"#,
    ),
    case(
        "POST",
        "/tasks",
        Some(r#"{"name":" "}"#),
        422,
        r#"{"error":"name must not be empty or only white space"}"#,
    ),
    case("GET", "/tasks/abc", None, 400, BAD_ID),
    case("DELETE", "/tasks/1", None, 204, ""),
    case(
        "GET",
        "/tasks/1",
        None,
        404,
        r#"{"error":"task 1 not found"}"#,
    ),
    case(
        "PUT",
        "/tasks/9",
        Some(r#"{"name":"c","done":false}"#),
        404,
        r#"{"error":"task 9 not found"}"#,
    ),
    case("GET", "/nope", None, 404, NO_ROUTE),
    case("GET", "/tasks/1/x", None, 404, NO_ROUTE),
    case("GET", "/tasks/", None, 404, NO_ROUTE),
    case("DELETE", "/", None, 405, NOT_ALLOWED),
    case("PATCH", "/tasks", None, 405, NOT_ALLOWED),
    case(
        "GET",
        "/fibonacci?max=10",
        None,
        200,
        r#"{"count":6,"last":8}"#,
    ),
    case(
        "GET",
        "/sleep?ms=x",
        None,
        400,
        r#"{"error":"query parameter ms must be an integer from 0 to 10000"}"#,
    ),
];

/// Checks what a framework answered to each case, in order (one `(status, body)` per case);
/// panics listing every mismatch.
pub fn assert_answers(stack: &str, answers: &[(u16, Vec<u8>)]) {
    assert_eq!(answers.len(), CASES.len(), "{stack}: one answer per case");
    let wrong: Vec<String> = CASES
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
