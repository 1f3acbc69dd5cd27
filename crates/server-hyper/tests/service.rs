//! hyper-native tests of the application over a SQLite `Db`, each request handed straight to
//! `App::handle`, the function hyper's `service_fn` calls (no socket): the shared table of cases
//! (`harness::native`), then what is this crate's own to get right: the `allow` header of a
//! 405, the `location` of a 201, a `HEAD`, and 415 and 413 from the body reader.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{self, HeaderMap};
use hyper::{Request, StatusCode};
use server_hyper::App;
use server_hyper::db::Db;

async fn app() -> (App<Db>, tempfile::TempDir) {
    let (dir, database) = harness::native::sqlite();
    let db = Db::connect(&database, 2).await.expect("SQLite opens");
    (App::new(db), dir)
}

/// Sends one request with `body` (of `content_type`, if given) and returns the status, the
/// body and the headers.
async fn send(
    app: &App<Db>,
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, Vec<u8>, HeaderMap) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "localhost");
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("a valid request");
    let (parts, body) = app.handle(request).await.into_parts();
    let bytes = body.collect().await.expect("a body").to_bytes();
    (parts.status.as_u16(), bytes.to_vec(), parts.headers)
}

#[tokio::test]
async fn answers_the_shared_cases() {
    let (app, _dir) = app().await;
    let mut answers = Vec::new();
    for case in harness::native::cases() {
        let content_type = case.json.map(|_| "application/json");
        let (status, body, _) = send(
            &app,
            case.method,
            case.uri,
            content_type,
            case.json.unwrap_or_default(),
        )
        .await;
        answers.push((status, body));
    }
    harness::native::assert_answers("hyper-raw", &answers);
}

#[tokio::test]
async fn method_not_allowed_names_the_allowed_methods() {
    let (app, _dir) = app().await;
    for (method, uri, allow) in [
        ("PATCH", "/tasks", "GET, HEAD, POST"),
        ("POST", "/tasks/1", "GET, HEAD, PUT, DELETE"),
        ("QUERY", "/health", "GET, HEAD"),
    ] {
        let (status, _, headers) = send(&app, method, uri, None, "").await;
        assert_eq!(status, 405, "{method} {uri}");
        assert_eq!(headers[header::ALLOW], allow);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    }
}

#[tokio::test]
async fn created_tasks_have_a_location_and_head_is_get() {
    let (app, _dir) = app().await;
    let json = Some("application/json");
    let (status, _, headers) = send(&app, "POST", "/tasks", json, r#"{"name":"a"}"#).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers[header::LOCATION], "/tasks/1");
    // hyper leaves out a `HEAD` response's body on the wire; the application answers as to `GET`.
    let (status, _, headers) = send(&app, "HEAD", "/tasks/1", None, "").await;
    assert_eq!(status, 200);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
}

#[tokio::test]
async fn bodies_need_json_content_type_and_fit_the_limit() {
    let (app, _dir) = app().await;
    let (status, _, _) = send(&app, "POST", "/tasks", None, r#"{"name":"a"}"#).await;
    assert_eq!(status, 415);
    let big = " ".repeat(70_000);
    let (status, _, _) = send(&app, "POST", "/tasks", Some("application/json"), &big).await;
    assert_eq!(status, 413);
}
