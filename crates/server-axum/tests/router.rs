//! axum-native tests of the router over a SQLite `SqlxDb`, driven with `tower::ServiceExt::oneshot`
//! (no socket): the shared table of cases (`harness::native`), then what is axum's own to get
//! right: the `allow` header of a 405, and 415 and 413 from the body extractor.

mod oneshot;

use axum::http::header;
use shared::sqlx_store::SqlxDb;

async fn app() -> (axum::Router, tempfile::TempDir) {
    let (dir, database) = harness::native::sqlite();
    let db = SqlxDb::connect(&database, 2).await.expect("SQLite opens");
    (server_axum::app(db), dir)
}

#[tokio::test]
async fn answers_the_shared_cases() {
    let (app, _dir) = app().await;
    harness::native::assert_answers("axum-sqlx", &oneshot::answers(&app).await);
}

#[tokio::test]
async fn method_not_allowed_names_the_allowed_methods() {
    let (app, _dir) = app().await;
    for (method, uri, allow) in [
        ("PATCH", "/tasks", "GET, HEAD, POST"),
        ("POST", "/tasks/1", "GET, HEAD, PUT, DELETE"),
    ] {
        let (status, _, headers) = oneshot::send(&app, method, uri, None).await;
        assert_eq!(status, 405);
        assert_eq!(headers[header::ALLOW], allow);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    }
}

#[tokio::test]
async fn bodies_need_json_content_type_and_fit_the_limit() {
    let (app, _dir) = app().await;
    let plain = axum::http::Request::post("/tasks")
        .header(header::HOST, "localhost")
        .body(axum::body::Body::from(r#"{"name":"a"}"#))
        .expect("a request");
    let response = tower::ServiceExt::oneshot(app.clone(), plain)
        .await
        .expect("infallible");
    assert_eq!(response.status(), 415);
    let big = " ".repeat(70_000);
    let (status, _, _) = oneshot::send(&app, "POST", "/tasks", Some(&big)).await;
    assert_eq!(status, 413);
}
