//! axum-native tests of the router over a SQLite `SqlxDb`, driven with `tower::ServiceExt::oneshot`
//! (no socket): the framework glue (extractors, rejections, fallbacks) answers as the contract says.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use shared::config::Database;
use shared::sqlx_store::SqlxDb;
use tower::ServiceExt as _;

async fn app() -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let db = SqlxDb::connect(&Database::Sqlite(dir.path().join("todo.db")), 2)
        .await
        .expect("SQLite opens");
    (server_axum::app(db), dir)
}

/// Sends one request and compares status and body with the expectation.
async fn check(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    status: u16,
    expected: &str,
) {
    let mut request = Request::builder().method(method).uri(uri);
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(Body::from(body.unwrap_or_default().to_owned()))
        .expect("a valid request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let got_status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    assert_eq!(
        (got_status, &bytes[..]),
        (StatusCode::from_u16(status).unwrap(), expected.as_bytes()),
        "{method} {uri}"
    );
}

#[tokio::test]
async fn routes_and_rejections() {
    let (app, _dir) = app().await;
    let cases: &[(&str, &str, Option<&str>, u16, &str)] = &[
        ("GET", "/", None, 200, "Hello, World!"),
        (
            "GET",
            "/health",
            None,
            200,
            r#"{"status":"ok","db":"sqlite"}"#,
        ),
        (
            "POST",
            "/tasks",
            Some(r#"{"name":"a"}"#),
            201,
            r#"{"id":1,"name":"a","done":false}"#,
        ),
        (
            "GET",
            "/tasks/1",
            None,
            200,
            r#"{"id":1,"name":"a","done":false}"#,
        ),
        (
            "PUT",
            "/tasks/1",
            Some(r#"{"name":"b","done":true}"#),
            200,
            r#"{"id":1,"name":"b","done":true}"#,
        ),
        (
            "GET",
            "/tasks?limit=5",
            None,
            200,
            r#"[{"id":1,"name":"b","done":true}]"#,
        ),
        ("POST", "/tasks", Some("{"), 400, ""),
        (
            "POST",
            "/tasks",
            Some("[]"),
            422,
            r#"{"error":"the request body must be a JSON object"}"#,
        ),
        (
            "GET",
            "/tasks/x",
            None,
            400,
            r#"{"error":"the task id must be a base-10 integer that fits in 64 bits"}"#,
        ),
        ("DELETE", "/tasks/1", None, 204, ""),
        (
            "GET",
            "/tasks/1",
            None,
            404,
            r#"{"error":"task 1 not found"}"#,
        ),
        (
            "GET",
            "/nope",
            None,
            404,
            r#"{"error":"no route matches this path"}"#,
        ),
        (
            "DELETE",
            "/",
            None,
            405,
            r#"{"error":"this method is not allowed on this path"}"#,
        ),
        (
            "GET",
            "/fibonacci?max=10",
            None,
            200,
            r#"{"count":6,"last":8}"#,
        ),
    ];
    for &(method, uri, body, status, expected) in cases {
        if status == 400 && expected.is_empty() {
            // The exact sentence carries serde's position; the status is what this test pins.
            let request = Request::builder()
                .method(method)
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/json");
            let response = app
                .clone()
                .oneshot(request.body(Body::from(body.unwrap().to_owned())).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            continue;
        }
        check(&app, method, uri, body, status, expected).await;
    }
}

#[tokio::test]
async fn method_not_allowed_names_the_allowed_methods() {
    let (app, _dir) = app().await;
    for (method, uri, allow) in [
        ("PATCH", "/tasks", "GET, HEAD, POST"),
        ("POST", "/tasks/1", "GET, HEAD, PUT, DELETE"),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], allow);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
}

#[tokio::test]
async fn bodies_need_json_content_type_and_fit_the_limit() {
    let (app, _dir) = app().await;
    let plain = Request::builder()
        .method("POST")
        .uri("/tasks")
        .body(Body::from(r#"{"name":"a"}"#))
        .unwrap();
    assert_eq!(
        app.clone().oneshot(plain).await.unwrap().status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let big = Request::builder()
        .method("POST")
        .uri("/tasks")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(vec![b' '; 70_000]))
        .unwrap();
    assert_eq!(
        app.clone().oneshot(big).await.unwrap().status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
}
