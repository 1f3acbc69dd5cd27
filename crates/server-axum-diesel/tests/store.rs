//! The axum router over the deadpool-diesel store, on SQLite, driven with `oneshot`: the diesel
//! layer does the same work as the sqlx one (the router itself is tested in `server-axum`).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use server_axum_diesel::DeadpoolDiesel;
use shared::config::Database;
use tower::ServiceExt as _;

#[tokio::test]
async fn crud_round_trip_through_diesel() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = DeadpoolDiesel::connect(&Database::Sqlite(dir.path().join("todo.db")), 2)
        .await
        .expect("SQLite opens");
    let app = server_axum::app(store);
    let cases: &[(&str, &str, Option<&str>, StatusCode, &str)] = &[
        (
            "POST",
            "/tasks",
            Some(r#"{"name":"x'); DROP TABLE tasks;--"}"#),
            StatusCode::CREATED,
            r#"{"id":1,"name":"x'); DROP TABLE tasks;--","done":false}"#,
        ),
        (
            "POST",
            "/tasks",
            Some(r#"{"name":"b","done":true}"#),
            StatusCode::CREATED,
            r#"{"id":2,"name":"b","done":true}"#,
        ),
        (
            "PUT",
            "/tasks/2",
            Some(r#"{"name":"c","done":false}"#),
            StatusCode::OK,
            r#"{"id":2,"name":"c","done":false}"#,
        ),
        (
            "GET",
            "/tasks?limit=1&offset=1",
            None,
            StatusCode::OK,
            r#"[{"id":2,"name":"c","done":false}]"#,
        ),
        ("DELETE", "/tasks/1", None, StatusCode::NO_CONTENT, ""),
        (
            "DELETE",
            "/tasks/1",
            None,
            StatusCode::NOT_FOUND,
            r#"{"error":"task 1 not found"}"#,
        ),
        (
            "PUT",
            "/tasks/9",
            Some(r#"{"name":"c","done":false}"#),
            StatusCode::NOT_FOUND,
            r#"{"error":"task 9 not found"}"#,
        ),
        (
            "GET",
            "/health",
            None,
            StatusCode::OK,
            r#"{"status":"ok","db":"sqlite"}"#,
        ),
    ];
    for &(method, uri, body, status, expected) in cases {
        let mut request = Request::builder().method(method).uri(uri);
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let response = app
            .clone()
            .oneshot(
                request
                    .body(Body::from(body.unwrap_or_default().to_owned()))
                    .unwrap(),
            )
            .await
            .unwrap();
        let got = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            (got, &bytes[..]),
            (status, expected.as_bytes()),
            "{method} {uri}"
        );
    }
}
