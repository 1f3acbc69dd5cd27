//! actix-web-native tests with `actix_web::test` (no socket): resources, default services,
//! extractors and the error responder, over a SQLite `SqlxDb`.

use actix_web::http::StatusCode;
use actix_web::web::{self, Data};
use actix_web::{App, test};
use shared::config::Database;
use shared::sqlx_store::SqlxDb;

#[actix_web::test]
async fn routes_and_rejections() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let db = SqlxDb::connect(&Database::Sqlite(dir.path().join("todo.db")), 2)
        .await
        .expect("SQLite opens");
    let app = test::init_service(
        App::new()
            .app_data(Data::new(db))
            .configure(server_actix::configure)
            .default_service(web::to(server_actix::not_found)),
    )
    .await;
    let cases: &[(&str, &str, Option<&str>, u16, &str)] = &[
        ("GET", "/", None, 200, "Hello, World!"),
        (
            "HEAD",
            "/health",
            None,
            200,
            r#"{"status":"ok","db":"sqlite"}"#,
        ),
        (
            "POST",
            "/tasks",
            Some(r#"{"name":"a","done":true}"#),
            201,
            r#"{"id":1,"name":"a","done":true}"#,
        ),
        (
            "GET",
            "/tasks/1",
            None,
            200,
            r#"{"id":1,"name":"a","done":true}"#,
        ),
        (
            "PUT",
            "/tasks/1",
            Some(r#"{"name":"a"}"#),
            422,
            r#"{"error":"invalid task: missing field `done` at line 1 column 12"}"#,
        ),
        (
            "DELETE",
            "/tasks/2",
            None,
            404,
            r#"{"error":"task 2 not found"}"#,
        ),
        (
            "GET",
            "/sleep?ms=x",
            None,
            400,
            r#"{"error":"query parameter ms must be an integer from 0 to 10000"}"#,
        ),
        (
            "GET",
            "/tasks/1/x",
            None,
            404,
            r#"{"error":"no route matches this path"}"#,
        ),
        (
            "PUT",
            "/tasks",
            None,
            405,
            r#"{"error":"this method is not allowed on this path"}"#,
        ),
    ];
    for &(method, uri, body, status, expected) in cases {
        let mut request = test::TestRequest::default()
            .method(method.parse().expect("a method"))
            .uri(uri);
        if let Some(body) = body {
            request = request
                .insert_header(("content-type", "application/json"))
                .set_payload(body);
        }
        let response = test::call_service(&app, request.to_request()).await;
        assert_eq!(
            response.status(),
            StatusCode::from_u16(status).unwrap(),
            "{method} {uri}"
        );
        let bytes = test::read_body(response).await;
        assert_eq!(&bytes[..], expected.as_bytes(), "{method} {uri}");
    }
}
