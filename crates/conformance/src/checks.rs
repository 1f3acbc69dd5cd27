//! The checks: every route, every error row, the headers the contract names, and JSON bodies
//! byte for byte. Error sentences are the shared crate's, so every server must say exactly the
//! same thing for the same mistake.

use std::net::SocketAddr;

use shared::input::{self, ListQuery};
use shared::{ApiError, ErrorKind, allow};

use harness::client::{Request, Response};
use harness::{DbKind, Stack};

/// Runs every check against the server at `addr`, whose database is `db`, and returns the
/// failures, each one line naming the check.
pub fn run(addr: SocketAddr, db: DbKind, stack: &Stack) -> Vec<String> {
    let ctx = Ctx { addr, db, stack };
    let checks: &[(&str, Check)] = &[
        ("hello", hello),
        ("health", health),
        ("create, read, update, delete", crud),
        (
            "done defaults to false; unknown keys ignored",
            create_defaults,
        ),
        ("names stored verbatim", names_verbatim),
        ("name length counts characters", name_length),
        ("list order, pagination and bounds", list),
        ("sleep", sleep),
        ("fibonacci", fibonacci),
        ("400 for malformed JSON", malformed_json),
        ("422 for JSON of the wrong shape", wrong_shape),
        ("415 without application/json", content_types),
        ("413 above 64 KiB", body_limit),
        ("400/404 for task ids", task_ids),
        ("400 for bad query parameters", query_parameters),
        ("404 for unknown paths", unknown_paths),
        ("405 with allow", methods_not_allowed),
    ];
    let mut failures = Vec::new();
    for (name, check) in checks {
        if let Err(why) = check(&ctx) {
            failures.push(format!("{name}: {why}"));
        }
    }
    failures
}

type Outcome = Result<(), String>;

/// One named check of the suite.
type Check = fn(&Ctx) -> Outcome;

struct Ctx<'a> {
    addr: SocketAddr,
    db: DbKind,
    stack: &'a Stack,
}

impl Ctx<'_> {
    fn send(&self, request: &Request) -> Result<Response, String> {
        request
            .send(self.addr)
            .map_err(|err| format!("{request:?} failed: {err}"))
    }

    /// Sends `request` and checks the status and, when given, the exact body. Every error
    /// response must also be the contract's JSON error.
    fn expect(
        &self,
        request: &Request,
        status: u16,
        body: Option<&str>,
    ) -> Result<Response, String> {
        let response = self.send(request)?;
        let what = || format!("{} {}", request.line(), response.text());
        if response.status != status {
            return Err(format!(
                "expected {status}, got {} for {}",
                response.status,
                what()
            ));
        }
        if let Some(body) = body
            && response.body != body.as_bytes()
        {
            return Err(format!(
                "expected body {body:?}, got {:?} for {}",
                response.text(),
                what()
            ));
        }
        if status >= 400 {
            json_error(&response).map_err(|why| format!("{why} for {}", what()))?;
        }
        Ok(response)
    }

    fn create(&self, name: &str) -> Result<(i64, String), String> {
        let body = serde_json::json!({ "name": name }).to_string();
        let response = self.expect(&Request::new("POST", "/tasks").json(body), 201, None)?;
        let task: serde_json::Value =
            serde_json::from_slice(&response.body).map_err(|e| e.to_string())?;
        let id = task["id"]
            .as_i64()
            .ok_or("created task has no integer id")?;
        Ok((id, response.text()))
    }
}

/// The contract's error: `content-type: application/json` and exactly `{"error":"<sentence>"}`.
pub fn json_error(response: &Response) -> Result<(), String> {
    if response.header("content-type") != Some("application/json") {
        return Err(format!(
            "error content-type is {:?}",
            response.header("content-type")
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&response.body)
        .map_err(|_| format!("error body is not JSON: {:?}", response.text()))?;
    let object = value.as_object().ok_or("error body is not an object")?;
    match (object.len(), object.get("error").and_then(|e| e.as_str())) {
        (1, Some(sentence)) if !sentence.trim().is_empty() => Ok(()),
        _ => Err(format!(
            "error body is not {{\"error\":\"<sentence>\"}}: {}",
            response.text()
        )),
    }
}

fn check_header(response: &Response, name: &str, expected: &str) -> Outcome {
    match response.header(name) {
        Some(value) if value == expected => Ok(()),
        other => Err(format!(
            "expected header {name}: {expected:?}, got {other:?}"
        )),
    }
}

fn task_json(id: i64, name: &str, done: bool) -> String {
    format!(
        r#"{{"id":{id},"name":{},"done":{done}}}"#,
        serde_json::to_string(name).expect("strings serialise")
    )
}

fn hello(ctx: &Ctx) -> Outcome {
    let response = ctx.expect(&Request::new("GET", "/"), 200, Some(shared::HELLO))?;
    check_header(&response, "content-type", "text/plain; charset=utf-8")
}

fn health(ctx: &Ctx) -> Outcome {
    let expected = format!(r#"{{"status":"ok","db":"{}"}}"#, ctx.db);
    let response = ctx.expect(&Request::new("GET", "/health"), 200, Some(&expected))?;
    check_header(&response, "content-type", "application/json")
}

fn crud(ctx: &Ctx) -> Outcome {
    let created = ctx.expect(
        &Request::new("POST", "/tasks").json(r#"{"name":"buy milk","done":true}"#),
        201,
        None,
    )?;
    let id: i64 = created
        .header("location")
        .and_then(|l| l.strip_prefix("/tasks/"))
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| format!("location header is {:?}", created.header("location")))?;
    if created.body != task_json(id, "buy milk", true).as_bytes() {
        return Err(format!("created body {:?}", created.text()));
    }
    check_header(&created, "content-type", "application/json")?;
    let read = ctx.expect(
        &Request::new("GET", &format!("/tasks/{id}")),
        200,
        Some(&task_json(id, "buy milk", true)),
    )?;
    check_header(&read, "content-type", "application/json")?;
    let path = format!("/tasks/{id}");
    ctx.expect(
        &Request::new("PUT", &path).json(r#"{"name":"buy oat milk","done":false}"#),
        200,
        Some(&task_json(id, "buy oat milk", false)),
    )?;
    ctx.expect(
        &Request::new("GET", &path),
        200,
        Some(&task_json(id, "buy oat milk", false)),
    )?;
    let deleted = ctx.expect(&Request::new("DELETE", &path), 204, None)?;
    if !deleted.body.is_empty() {
        return Err(format!("204 with a body: {:?}", deleted.text()));
    }
    let gone = ApiError::task_not_found(id).body();
    ctx.expect(&Request::new("GET", &path), 404, Some(&gone))?;
    ctx.expect(&Request::new("DELETE", &path), 404, Some(&gone))?;
    ctx.expect(
        &Request::new("PUT", &path).json(r#"{"name":"x","done":true}"#),
        404,
        Some(&gone),
    )?;
    Ok(())
}

fn create_defaults(ctx: &Ctx) -> Outcome {
    let response = ctx.expect(
        &Request::new("POST", "/tasks").json(r#"{"extra":[1,{"a":null}],"name":"n"}"#),
        201,
        None,
    )?;
    let (id, _) = ctx.create("other")?;
    let first = id - 1;
    if response.body != task_json(first, "n", false).as_bytes() {
        return Err(format!(
            "expected done=false and ids in sequence, got {:?}",
            response.text()
        ));
    }
    Ok(())
}

fn names_verbatim(ctx: &Ctx) -> Outcome {
    for name in [
        "  padded  ",
        r#"quotes " and ' and \ backslash"#,
        "Robert'); DROP TABLE tasks;--",
        "1 OR 1=1; SELECT * FROM tasks",
        "%s %d {} $1 ?",
        "tab\tnew\nline",
        "ünïcödé 漢字 🚀",
        "<script>alert(1)</script>",
    ] {
        let (id, body) = ctx.create(name)?;
        if body != task_json(id, name, false) {
            return Err(format!("created {name:?} as {body}"));
        }
        ctx.expect(
            &Request::new("GET", &format!("/tasks/{id}")),
            200,
            Some(&task_json(id, name, false)),
        )?;
    }
    Ok(())
}

fn name_length(ctx: &Ctx) -> Outcome {
    for (name, ok) in [
        ("a".repeat(200), true),
        ("é".repeat(200), true),
        ("🚀".repeat(200), true),
        ("a".repeat(201), false),
        ("🚀".repeat(201), false),
    ] {
        let body = serde_json::json!({ "name": name }).to_string();
        let request = Request::new("POST", "/tasks").json(body.clone());
        if ok {
            ctx.expect(&request, 201, None)?;
        } else {
            let expected = input::parse_new_task(body.as_bytes()).expect_err("too long");
            let expected = crate::expected_error_body(ctx.stack, &expected);
            ctx.expect(&request, 422, expected.as_deref())?;
        }
    }
    Ok(())
}

fn list(ctx: &Ctx) -> Outcome {
    // Other checks have created tasks too: learn the full list first, then page through it.
    for i in 0..105 {
        ctx.create(&format!("list item {i}"))?;
    }
    let all = ctx.expect(&Request::new("GET", "/tasks?limit=1000"), 200, None)?;
    let tasks: Vec<serde_json::Value> =
        serde_json::from_slice(&all.body).map_err(|e| e.to_string())?;
    let ids: Vec<i64> = tasks.iter().filter_map(|t| t["id"].as_i64()).collect();
    if ids.len() < 105 || ids.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("ids not ascending or missing: {} tasks", ids.len()));
    }
    check_header(&all, "content-type", "application/json")?;
    let page = |from: usize, to: usize| {
        let items: Vec<String> = tasks[from..to.min(tasks.len())]
            .iter()
            .map(|t| {
                task_json(
                    t["id"].as_i64().unwrap_or_default(),
                    t["name"].as_str().unwrap_or_default(),
                    t["done"] == true,
                )
            })
            .collect();
        format!("[{}]", items.join(","))
    };
    // Pages: the query, and the range of all tasks it must return.
    let pages = [
        ("", 0, 100),
        ("?limit=2", 0, 2),
        ("?limit=3&offset=5", 5, 8),
        ("?offset=100&limit=1", 100, 101),
        ("?limit=1&offset=1000000", 0, 0),
        ("?limit=1&offset=9223372036854775807", 0, 0),
        ("?limit=1000&unknown=1", 0, tasks.len()),
    ];
    for (query, from, to) in pages {
        let path = format!("/tasks{query}");
        ctx.expect(&Request::new("GET", &path), 200, Some(&page(from, to)))?;
    }
    Ok(())
}

fn sleep(ctx: &Ctx) -> Outcome {
    for path in ["/sleep", "/sleep?ms=0", "/sleep?ms=50"] {
        let response = ctx.expect(&Request::new("GET", path), 200, Some("OK"))?;
        check_header(&response, "content-type", "text/plain; charset=utf-8")?;
    }
    Ok(())
}

fn fibonacci(ctx: &Ctx) -> Outcome {
    for (path, body) in [
        ("/fibonacci", r#"{"count":39,"last":63245986}"#),
        ("/fibonacci?max=1", r#"{"count":2,"last":1}"#),
        ("/fibonacci?max=10", r#"{"count":6,"last":8}"#),
        (
            "/fibonacci?max=4611686018427387904",
            r#"{"count":90,"last":2880067194370816120}"#,
        ),
    ] {
        let response = ctx.expect(&Request::new("GET", path), 200, Some(body))?;
        check_header(&response, "content-type", "application/json")?;
    }
    Ok(())
}

/// Posts each body as JSON and expects the shared parser's exact error.
fn body_errors(ctx: &Ctx, method: &str, path: &str, bodies: &[&[u8]], status: u16) -> Outcome {
    for body in bodies {
        let expected = if method == "POST" {
            input::parse_new_task(body).map(drop)
        } else {
            input::parse_task_update(body).map(drop)
        }
        .expect_err("a bad body");
        if expected.status() != status {
            return Err(format!(
                "the table is wrong: {body:?} is a {}",
                expected.status()
            ));
        }
        ctx.expect(
            &Request::new(method, path).json(*body),
            status,
            crate::expected_error_body(ctx.stack, &expected).as_deref(),
        )?;
    }
    Ok(())
}

fn malformed_json(ctx: &Ctx) -> Outcome {
    let (id, _) = ctx.create("target")?;
    let bodies: &[&[u8]] = &[
        b"",
        b"   ",
        b"{",
        b"{\"name\":\"a\"",
        b"{\"name\":'a'}",
        b"nope",
        b"{\"name\":\"a\",\"done\":true} trailing",
        b"{\"name\":\"\xff\xfe\"}",
        b"\xc3\x28",
        b"{\"name\":\"a\",}",
    ];
    body_errors(ctx, "POST", "/tasks", bodies, 400)?;
    body_errors(ctx, "PUT", &format!("/tasks/{id}"), bodies, 400)
}

fn wrong_shape(ctx: &Ctx) -> Outcome {
    let (id, _) = ctx.create("target")?;
    let common: &[&[u8]] = &[
        b"[]",
        b"[\"a\",true]",
        b"\"a\"",
        b"null",
        b"42",
        b"true",
        b"{}",
        b"{\"done\":true}",
        b"{\"name\":1}",
        b"{\"name\":null}",
        b"{\"name\":[\"a\"]}",
        b"{\"name\":\"a\",\"done\":\"yes\"}",
        b"{\"name\":\"a\",\"done\":1}",
        b"{\"name\":\"\",\"done\":true}",
        b"{\"name\":\"  \\t\\n \",\"done\":true}",
        // Only invisible format characters (U+200B, U+FEFF, U+2060, U+00AD) and spaces.
        "{\"name\":\"\u{200b}\",\"done\":true}".as_bytes(),
        "{\"name\":\" \u{feff}\u{2060}\u{ad} \",\"done\":true}".as_bytes(),
        b"{\"name\":\"\\u200b\\ufeff\",\"done\":true}",
        b"{\"name\":\"a\\u0000b\",\"done\":true}",
        b"{\"name\":\"a\",\"name\":\"b\",\"done\":true}",
    ];
    body_errors(ctx, "POST", "/tasks", common, 422)?;
    body_errors(ctx, "PUT", &format!("/tasks/{id}"), common, 422)?;
    body_errors(
        ctx,
        "PUT",
        &format!("/tasks/{id}"),
        &[b"{\"name\":\"a\"}", b"{\"name\":\"a\",\"done\":null}"],
        422,
    )?;
    // A rejected update changes nothing.
    ctx.expect(
        &Request::new("GET", &format!("/tasks/{id}")),
        200,
        Some(&task_json(id, "target", false)),
    )?;
    Ok(())
}

fn content_types(ctx: &Ctx) -> Outcome {
    let (id, _) = ctx.create("target")?;
    let unsupported = ApiError::of(ErrorKind::UnsupportedMediaType).body();
    let body = r#"{"name":"a","done":true}"#;
    for (method, path) in [
        ("POST", "/tasks".to_owned()),
        ("PUT", format!("/tasks/{id}")),
    ] {
        ctx.expect(
            &Request::new(method, &path).body(body),
            415,
            Some(&unsupported),
        )?;
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonp",
            "",
        ] {
            ctx.expect(
                &Request::new(method, &path)
                    .header("content-type", ct)
                    .body(body),
                415,
                Some(&unsupported),
            )?;
        }
        for ct in [
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/json;charset=UTF-8",
        ] {
            let ok = if method == "POST" { 201 } else { 200 };
            ctx.expect(
                &Request::new(method, &path)
                    .header("content-type", ct)
                    .body(body),
                ok,
                None,
            )?;
        }
    }
    Ok(())
}

fn body_limit(ctx: &Ctx) -> Outcome {
    let (id, _) = ctx.create("target")?;
    let too_large = ApiError::of(ErrorKind::PayloadTooLarge).body();
    // Exactly 64 KiB of valid JSON (padded with spaces) is accepted; one byte more is not.
    let padded = |len: usize| {
        let mut body = br#"{"name":"big","done":true"#.to_vec();
        body.resize(len - 1, b' ');
        body.push(b'}');
        body
    };
    ctx.expect(
        &Request::new("POST", "/tasks").json(padded(65_536)),
        201,
        None,
    )?;
    ctx.expect(
        &Request::new("POST", "/tasks").json(padded(65_537)),
        413,
        Some(&too_large),
    )?;
    ctx.expect(
        &Request::new("POST", "/tasks").json(padded(65 * 1024)),
        413,
        Some(&too_large),
    )?;
    ctx.expect(
        &Request::new("PUT", &format!("/tasks/{id}")).json(padded(65 * 1024)),
        413,
        Some(&too_large),
    )?;
    // Without content-length (chunked), the limit still holds.
    let chunked = |len: usize| {
        let body = padded(len);
        let mut raw = b"POST /tasks HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for chunk in body.chunks(8192) {
            raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            raw.extend_from_slice(chunk);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        raw
    };
    let small =
        harness::client::send_raw(ctx.addr, &chunked(1000), false).map_err(|e| e.to_string())?;
    let large = harness::client::send_raw(ctx.addr, &chunked(65 * 1024), false)
        .map_err(|e| e.to_string())?;
    if small.status != 201 || large.status != 413 {
        return Err(format!(
            "chunked bodies: 1000 bytes gave {}, 65 KiB gave {}",
            small.status, large.status
        ));
    }
    json_error(&large)
}

fn task_ids(ctx: &Ctx) -> Outcome {
    let bad_id = input::parse_id("x").expect_err("not an id").body();
    for id in [
        "abc",
        "1.5",
        "1e3",
        "9223372036854775808",
        "-9223372036854775809",
        "0x10",
        "%20",
    ] {
        for method in ["GET", "DELETE"] {
            ctx.expect(
                &Request::new(method, &format!("/tasks/{id}")),
                400,
                Some(&bad_id),
            )?;
        }
        ctx.expect(
            &Request::new("PUT", &format!("/tasks/{id}")).json(r#"{"name":"a","done":true}"#),
            400,
            Some(&bad_id),
        )?;
    }
    for id in [0, -1, 9_223_372_036_854_775_807, -9_223_372_036_854_775_808] {
        let path = format!("/tasks/{id}");
        let gone = ApiError::task_not_found(id).body();
        ctx.expect(&Request::new("GET", &path), 404, Some(&gone))?;
        ctx.expect(&Request::new("DELETE", &path), 404, Some(&gone))?;
    }
    Ok(())
}

/// The bad query strings of each path, and the shared parser that refuses them (the servers
/// must answer its error exactly).
type BadQueries = (
    &'static str,
    &'static [&'static str],
    fn(&str) -> Option<ApiError>,
);

const BAD_QUERIES: [BadQueries; 3] = [
    (
        "/tasks",
        &[
            "limit=0",
            "limit=1001",
            "limit=-1",
            "limit=abc",
            "limit=",
            "limit=1.5",
            "offset=-1",
            "offset=x",
            "offset=99999999999999999999",
            "limit=10&offset=-5",
        ],
        |q| ListQuery::parse(Some(q)).err(),
    ),
    ("/sleep", &["ms=-1", "ms=10001", "ms=abc", "ms="], |q| {
        input::parse_sleep(Some(q)).err()
    }),
    (
        "/fibonacci",
        &[
            "max=0",
            "max=-3",
            "max=4611686018427387905",
            "max=x",
            "max=1e3",
        ],
        |q| input::parse_fibonacci(Some(q)).err(),
    ),
];

fn query_parameters(ctx: &Ctx) -> Outcome {
    for (path, queries, parse) in BAD_QUERIES {
        for query in queries {
            let expected = parse(query)
                .ok_or_else(|| format!("the shared parser accepts {path}?{query}"))?
                .body();
            let request = Request::new("GET", &format!("{path}?{query}"));
            ctx.expect(&request, 400, Some(&expected))?;
        }
    }
    Ok(())
}

fn unknown_paths(ctx: &Ctx) -> Outcome {
    let not_found = ApiError::of(ErrorKind::NotFound).body();
    for (method, path) in [
        ("GET", "/nope"),
        ("POST", "/nope"),
        ("GET", "/tasks/1/extra"),
        ("GET", "/task"),
        ("DELETE", "/health/x"),
        ("GET", "/index.html"),
    ] {
        ctx.expect(&Request::new(method, path), 404, Some(&not_found))?;
    }
    Ok(())
}

fn methods_not_allowed(ctx: &Ctx) -> Outcome {
    let (id, _) = ctx.create("target")?;
    let task_path = format!("/tasks/{id}");
    let not_allowed = ApiError::of(ErrorKind::MethodNotAllowed).body();
    let cases = [
        ("POST", "/", allow::READ_ONLY),
        ("DELETE", "/", allow::READ_ONLY),
        ("POST", "/health", allow::READ_ONLY),
        ("PUT", "/sleep", allow::READ_ONLY),
        ("PATCH", "/fibonacci", allow::READ_ONLY),
        ("PUT", "/tasks", allow::TASKS),
        ("DELETE", "/tasks", allow::TASKS),
        ("PATCH", "/tasks", allow::TASKS),
        ("POST", task_path.as_str(), allow::TASK),
        ("PATCH", task_path.as_str(), allow::TASK),
        ("OPTIONS", task_path.as_str(), allow::TASK),
    ];
    for (method, path, allowed) in cases {
        let response = ctx.expect(&Request::new(method, path), 405, Some(&not_allowed))?;
        check_header(&response, "allow", allowed)
            .map_err(|why| format!("{method} {path}: {why}"))?;
    }
    // The task survived the refused methods.
    ctx.expect(
        &Request::new("GET", &task_path),
        200,
        Some(&task_json(id, "target", false)),
    )?;
    Ok(())
}
