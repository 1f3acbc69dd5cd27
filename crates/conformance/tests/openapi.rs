//! `openapi.yaml` (the contract as an OpenAPI document) against the servers' real behaviour:
//! its paths and methods are exactly the routes every server serves (the `allow` header of a
//! refused method on each path equals the documented methods; paths not in the document are
//! 404), every status the conformance suite observes is documented for its operation with the
//! documented content type and headers, and every documented status (but 503) is observed. The
//! `TaskName` pattern is checked against the shared validation, character by character.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use harness::client::{Request, Response};
use harness::server::Server;
use harness::{DbKind, Stack};
use serde_json::Value;

const METHODS: &[&str] = &[
    "get", "head", "post", "put", "delete", "patch", "options", "trace",
];

fn document() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    yaml_serde::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not valid YAML: {err}", path.display()))
}

/// Follows a local `$ref` (`#/components/...`), once or repeatedly.
fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..10 {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return value;
        };
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("only local references: {reference}"));
        value = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{reference} does not resolve"));
    }
    panic!("reference chain too long")
}

/// path template -> METHOD -> operation.
fn operations(doc: &Value) -> BTreeMap<String, BTreeMap<String, Value>> {
    let paths = doc["paths"].as_object().expect("paths is a map");
    paths
        .iter()
        .map(|(path, item)| {
            let ops = METHODS
                .iter()
                .filter_map(|m| item.get(*m).map(|op| (m.to_ascii_uppercase(), op.clone())))
                .collect();
            (path.clone(), ops)
        })
        .collect()
}

/// The documented response of `op` for `status`, resolved.
fn documented<'a>(doc: &'a Value, op: &'a Value, status: u16) -> Option<&'a Value> {
    op["responses"]
        .get(status.to_string())
        .map(|r| resolve(doc, r))
}

/// The template in `paths` that `path` (without query) matches; `{id}` matches one segment.
fn template_of<'a>(
    templates: impl IntoIterator<Item = &'a String>,
    path: &str,
) -> Option<&'a String> {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    templates.into_iter().find(|template| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(p, s)| (p.starts_with('{') && !s.is_empty()) || p == s)
    })
}

fn walk_refs(doc: &Value, value: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(reference) = map.get("$ref") {
                let reference = reference.as_str().expect("$ref is a string");
                assert!(
                    doc.pointer(reference.trim_start_matches('#')).is_some(),
                    "{reference} does not resolve"
                );
            }
            map.values().for_each(|v| walk_refs(doc, v));
        }
        Value::Array(items) => items.iter().for_each(|v| walk_refs(doc, v)),
        _ => {}
    }
}

#[test]
fn document_is_well_formed() {
    let doc = document();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "an OpenAPI 3 document"
    );
    walk_refs(&doc, &doc);
    let ops = operations(&doc);
    let expected: BTreeMap<&str, &[&str]> = [
        ("/", &["GET", "HEAD"][..]),
        ("/health", &["GET", "HEAD"]),
        ("/tasks", &["GET", "HEAD", "POST"]),
        ("/tasks/{id}", &["GET", "HEAD", "PUT", "DELETE"]),
        ("/sleep", &["GET", "HEAD"]),
        ("/fibonacci", &["GET", "HEAD"]),
    ]
    .into();
    let found: BTreeMap<&str, Vec<&str>> = ops
        .iter()
        .map(|(path, methods)| (path.as_str(), methods.keys().map(String::as_str).collect()))
        .collect();
    let expected: BTreeMap<&str, Vec<&str>> = expected
        .into_iter()
        .map(|(p, m)| {
            (p, {
                let mut m = m.to_vec();
                m.sort_unstable();
                m
            })
        })
        .collect();
    assert_eq!(
        found, expected,
        "the documented routes are the contract's (and shared::allow's)"
    );
    let mut ids = BTreeSet::new();
    for (path, methods) in &ops {
        let uses_db = ["/health", "/tasks", "/tasks/{id}"].contains(&path.as_str());
        for (method, op) in methods {
            let what = format!("{method} {path}");
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{what} has an operationId"));
            assert!(ids.insert(id.to_owned()), "operationId {id} is unique");
            let codes: BTreeSet<&str> = op["responses"]
                .as_object()
                .expect("responses")
                .keys()
                .map(String::as_str)
                .collect();
            assert!(
                !codes.contains("500") && !codes.contains("default"),
                "{what}: never a 500"
            );
            assert_eq!(
                codes.contains("503"),
                uses_db,
                "{what}: 503 exactly where the database is used"
            );
            if op.get("requestBody").is_some() {
                for code in ["400", "413", "415", "422"] {
                    assert!(
                        codes.contains(code),
                        "{what} takes a body, so it documents {code}"
                    );
                }
                let body = resolve(&doc, &op["requestBody"]);
                assert_eq!(body["required"], true, "{what}: the body is required");
                let media: Vec<&String> = body["content"]
                    .as_object()
                    .expect("content")
                    .keys()
                    .collect();
                assert_eq!(media, ["application/json"], "{what}: JSON bodies only");
            }
            for (code, response) in op["responses"].as_object().expect("responses") {
                let response = resolve(&doc, response);
                let status: u16 = code
                    .parse()
                    .unwrap_or_else(|_| panic!("{what}: status {code} is a number"));
                if status >= 400 && method != "HEAD" {
                    let schema = &response["content"]["application/json"]["schema"];
                    assert_eq!(
                        schema["$ref"], "#/components/schemas/Error",
                        "{what} {code}: errors are the Error object"
                    );
                }
                if method == "HEAD" || status == 204 {
                    assert!(response.get("content").is_none(), "{what} {code}: no body");
                }
            }
        }
    }
    let created = documented(&doc, &ops["/tasks"]["POST"], 201).expect("POST /tasks documents 201");
    assert_eq!(
        created["headers"]["location"]["required"], true,
        "201 carries location"
    );
    let refused = resolve(&doc, &doc["components"]["responses"]["MethodNotAllowed"]);
    assert_eq!(
        refused["headers"]["allow"]["required"], true,
        "405 carries allow"
    );
    for (path, content) in [
        ("/", "text/plain; charset=utf-8"),
        ("/sleep", "text/plain; charset=utf-8"),
        ("/health", "application/json"),
        ("/tasks", "application/json"),
        ("/tasks/{id}", "application/json"),
        ("/fibonacci", "application/json"),
    ] {
        let ok = documented(&doc, &ops[path]["GET"], 200).expect("GET documents 200");
        let media: Vec<&String> = ok["content"].as_object().expect("content").keys().collect();
        assert_eq!(media, [content], "GET {path}");
    }
}

/// The `TaskName` schema accepts exactly the names `shared::input::validate_name` accepts:
/// every single character, and a table of longer names.
#[test]
fn name_pattern_is_the_validation() {
    let doc = document();
    let schema = &doc["components"]["schemas"]["TaskName"];
    let pattern = regex_lite::Regex::new(schema["pattern"].as_str().expect("a pattern"))
        .expect("the pattern compiles");
    let min = usize::try_from(schema["minLength"].as_u64().expect("minLength")).expect("small");
    let max = usize::try_from(schema["maxLength"].as_u64().expect("maxLength")).expect("small");
    assert_eq!(max, shared::input::MAX_NAME_CHARS);
    let schema_accepts =
        |name: &str| pattern.is_match(name) && (min..=max).contains(&name.chars().count());
    // The one difference the document states: its pattern cannot name supplementary-plane
    // characters, so names of only those format characters (and white space) match it.
    let blank_beyond_the_pattern = |name: &str| {
        !name.is_empty()
            && name.chars().any(|c| u32::from(c) > 0xFFFF)
            && name.chars().all(|c| {
                c.is_whitespace()
                    || (u32::from(c) > 0xFFFF
                        && shared::input::validate_name(&c.to_string()).is_err())
            })
    };
    let check = |name: &str| {
        let valid = shared::input::validate_name(name).is_ok();
        let expected = valid || blank_beyond_the_pattern(name);
        assert_eq!(
            schema_accepts(name),
            expected,
            "{name:?}: the schema and the servers' validation disagree"
        );
    };
    for c in (0..=0x10_FFFF).filter_map(char::from_u32) {
        check(&c.to_string());
        check(&format!("{c}{c}"));
        check(&format!("a{c}"));
    }
    for name in [
        "",
        " ",
        "  \t\n\r",
        "\u{85}\u{a0}\u{3000}",
        " a ",
        "a\0",
        "\0 ",
        "\u{feff}",
        "\u{200b}",
        "\u{180e}",
        "\u{e0001}\u{e0020}",
        " \u{1d173} ",
        &"x".repeat(200),
        &"x".repeat(201),
        &"🚀".repeat(200),
        &"🚀".repeat(201),
        &format!("{} ", " ".repeat(199)),
    ] {
        check(name);
    }
}

/// Documented statuses this test cannot provoke in passing: 503 needs a failing database
/// (`tests/faults.rs`), 408 a body that stops arriving for 10 s (`tests/http_layer.rs`).
const UNOBSERVED: [&str; 2] = ["503", "408"];

/// A request of `openapi-cases.tsv` and the status the conformance suite observes for it.
struct Case {
    method: String,
    path: String,
    content_type: Option<String>,
    body: Option<Vec<u8>>,
    status: u16,
}

/// The table of `openapi-cases.tsv` with its placeholders filled in: `{id}` is `id`, `{new}`
/// a task `create` makes, `<task>` and `<big>` the bodies the table's header describes.
fn cases(id: i64, mut create: impl FnMut() -> i64) -> Vec<Case> {
    let big = {
        let mut body = br#"{"name":"big","done":true"#.to_vec();
        body.resize(65_536, b' ');
        body.push(b'}');
        body
    };
    let none = |field: &str| (field != "-").then(|| field.to_owned());
    include_str!("openapi-cases.tsv")
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let [method, path, content_type, body, status] = fields[..] else {
                panic!("openapi-cases.tsv: not five fields: {line:?}");
            };
            let path = path.replace("{id}", &id.to_string());
            let path = if path.contains("{new}") {
                path.replace("{new}", &create().to_string())
            } else {
                path
            };
            let body = match body {
                "<task>" => Some(br#"{"name":"a","done":true}"#.to_vec()),
                "<big>" => Some(big.clone()),
                other => none(other).map(String::into_bytes),
            };
            Case {
                method: method.to_owned(),
                path,
                content_type: none(content_type),
                body,
                status: status.parse().expect("a status"),
            }
        })
        .collect()
}

fn send(server: &Server, case: &Case) -> Response {
    let mut request = Request::new(&case.method, &case.path);
    if let Some(ct) = &case.content_type {
        request = request.header("content-type", ct);
    }
    if let Some(body) = &case.body {
        request = request.body(body.clone());
    }
    request
        .send(server.addr())
        .unwrap_or_else(|err| panic!("{} {}: {err}", case.method, case.path))
}

fn create(server: &Server) -> i64 {
    let response = Request::new("POST", "/tasks")
        .json(r#"{"name":"target"}"#)
        .send(server.addr())
        .expect("a response");
    assert_eq!(response.status, 201);
    let task: Value = serde_json::from_slice(&response.body).expect("a task");
    task["id"].as_i64().expect("an id")
}

/// Routes, methods, statuses, content types and headers of `stack` on `db` against the document.
fn matches_the_document(stack: &Stack, db: DbKind) {
    let doc = document();
    let ops = operations(&doc);
    let server = conformance::start(stack, db);
    let mut failures = Vec::new();

    // 1. Every documented path refuses every other method with 405 and exactly its methods.
    let id = create(&server);
    for (template, methods) in &ops {
        let path = template.replace("{id}", &id.to_string());
        let documented: BTreeSet<&str> = methods.keys().map(String::as_str).collect();
        for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            if documented.contains(method) {
                continue;
            }
            let response = Request::new(method, &path)
                .send(server.addr())
                .expect("a response");
            let allowed: BTreeSet<&str> = response
                .header("allow")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .collect();
            if response.status != 405 || allowed != documented {
                failures.push(format!(
                    "{method} {path}: expected 405 with allow {documented:?}, got {} allow {:?}",
                    response.status,
                    response.header("allow")
                ));
            }
            if response.header("content-type") != Some("application/json") {
                failures.push(format!(
                    "{method} {path}: 405 content-type {:?}",
                    response.header("content-type")
                ));
            }
        }
    }

    // 2. Paths the document does not have are 404, whatever the method.
    for path in [
        "/nope",
        "/task",
        "/TASKS",
        "/tasks/1/extra",
        "/health/x",
        "/index.html",
        "/fibonacci/1",
        "/sleep/1",
    ] {
        assert!(
            template_of(ops.keys(), path).is_none(),
            "{path} is not meant to be documented"
        );
        for method in ["GET", "POST", "DELETE"] {
            let response = Request::new(method, path)
                .send(server.addr())
                .expect("a response");
            if response.status != 404 {
                failures.push(format!(
                    "{method} {path} (not in the document): expected 404, got {}",
                    response.status
                ));
            }
        }
    }

    // 3. What the conformance suite observes, operation by operation: each status is documented
    //    for the operation, with its content type and required headers; each documented status
    //    (but those of `UNOBSERVED`) is observed.
    let cases = cases(id, || create(&server));
    let mut observed: BTreeSet<(String, String, String)> = BTreeSet::new();
    for case in &cases {
        let what = format!("{} {}", case.method, case.path);
        let template = template_of(ops.keys(), &case.path)
            .unwrap_or_else(|| panic!("{what}: no documented path"));
        let op = ops[template]
            .get(&case.method)
            .unwrap_or_else(|| panic!("{what}: no documented operation"));
        let response = send(&server, case);
        if response.status != case.status {
            failures.push(format!(
                "{what}: the suite expects {}, got {} {}",
                case.status,
                response.status,
                response.text()
            ));
            continue;
        }
        observed.insert((
            template.clone(),
            case.method.clone(),
            response.status.to_string(),
        ));
        let Some(doc_response) = documented(&doc, op, response.status) else {
            failures.push(format!(
                "{what}: {} is not documented for {} {template}",
                response.status, case.method
            ));
            continue;
        };
        match doc_response.get("content").and_then(Value::as_object) {
            Some(content) => {
                let ct = response.header("content-type").unwrap_or_default();
                if !content.contains_key(ct) {
                    failures.push(format!(
                        "{what}: content-type {ct:?} is not documented ({:?})",
                        content.keys().collect::<Vec<_>>()
                    ));
                }
                if ct == "application/json"
                    && serde_json::from_slice::<Value>(&response.body).is_err()
                {
                    failures.push(format!("{what}: the body is not JSON: {}", response.text()));
                }
            }
            None if !response.body.is_empty() => failures.push(format!(
                "{what}: a body where the document has none: {}",
                response.text()
            )),
            None => {}
        }
        for (name, header) in doc_response
            .get("headers")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if header["required"] == true && response.header(name).is_none() {
                failures.push(format!("{what}: documented header {name} is missing"));
            }
        }
    }
    for (template, methods) in &ops {
        for (method, op) in methods {
            for code in op["responses"].as_object().expect("responses").keys() {
                if !UNOBSERVED.contains(&code.as_str())
                    && !observed.contains(&(template.clone(), method.clone(), code.clone()))
                {
                    failures.push(format!(
                        "{method} {template}: documented {code} is never observed by this test"
                    ));
                }
            }
        }
    }
    conformance::finish(server, &format!("openapi.yaml on {db}"), &failures);
}

/// Paths with a trailing slash or an empty segment are not routes (the contract's routes are
/// exact): 404, like any unknown path.
fn trailing_slashes(stack: &Stack) {
    let server = conformance::start(stack, DbKind::Sqlite);
    let mut failures = Vec::new();
    for path in [
        "/tasks/",
        "/health/",
        "/fibonacci/",
        "/sleep/",
        "//tasks",
        "/tasks//1",
    ] {
        let response = Request::new("GET", path)
            .send(server.addr())
            .expect("a response");
        if response.status != 404 {
            failures.push(format!(
                "GET {path}: expected 404, got {} {}",
                response.status,
                response.text()
            ));
        }
    }
    conformance::finish(server, "paths that are not routes", &failures);
}

harness::stack_tests! {
    matches_the_document_sqlite: matches_the_document(DbKind::Sqlite);
    matches_the_document_postgres: matches_the_document(DbKind::Postgres);
    trailing_slashes_are_not_routes: trailing_slashes();
}
