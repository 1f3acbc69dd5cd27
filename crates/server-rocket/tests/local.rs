//! Rocket-native tests with the local blocking `Client` (no socket): the explicit 405 routes,
//! the JSON catcher, the data guard and the r2d2 store over SQLite.

use rocket::http::{ContentType, Header, Status};
use rocket::local::blocking::Client;
use server_rocket::db::R2d2Diesel;
use shared::config::Database;

fn client() -> (Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = R2d2Diesel::connect(&Database::Sqlite(dir.path().join("todo.db")), 2)
        .expect("SQLite opens");
    let config = rocket::Config {
        log_level: rocket::config::LogLevel::Off,
        ..rocket::Config::debug_default()
    };
    (
        Client::tracked(server_rocket::rocket(store, config)).expect("a valid Rocket"),
        dir,
    )
}

#[test]
fn routes_catchers_and_guards() {
    let (client, _dir) = client();
    let cases: &[(&str, &str, Option<&str>, Status, &str)] = &[
        ("GET", "/", None, Status::Ok, "Hello, World!"),
        (
            "POST",
            "/tasks",
            Some(r#"{"name":"a"}"#),
            Status::Created,
            r#"{"id":1,"name":"a","done":false}"#,
        ),
        (
            "PUT",
            "/tasks/1",
            Some(r#"{"name":"b","done":true}"#),
            Status::Ok,
            r#"{"id":1,"name":"b","done":true}"#,
        ),
        (
            "GET",
            "/tasks",
            None,
            Status::Ok,
            r#"[{"id":1,"name":"b","done":true}]"#,
        ),
        (
            "POST",
            "/tasks",
            Some(r#"{"name":" "}"#),
            Status::UnprocessableEntity,
            r#"{"error":"name must not be empty or only white space"}"#,
        ),
        (
            "GET",
            "/tasks/abc",
            None,
            Status::BadRequest,
            r#"{"error":"the task id must be a base-10 integer that fits in 64 bits"}"#,
        ),
        (
            "GET",
            "/tasks?limit=0",
            None,
            Status::BadRequest,
            r#"{"error":"query parameter limit must be an integer from 1 to 1000"}"#,
        ),
        ("DELETE", "/tasks/1", None, Status::NoContent, ""),
        (
            "GET",
            "/tasks/1",
            None,
            Status::NotFound,
            r#"{"error":"task 1 not found"}"#,
        ),
        (
            "GET",
            "/missing",
            None,
            Status::NotFound,
            r#"{"error":"no route matches this path"}"#,
        ),
        (
            "PATCH",
            "/tasks",
            None,
            Status::MethodNotAllowed,
            r#"{"error":"this method is not allowed on this path"}"#,
        ),
        (
            "GET",
            "/tasks/",
            None,
            Status::NotFound,
            r#"{"error":"no route matches this path"}"#,
        ),
        (
            "GET",
            "//health",
            None,
            Status::NotFound,
            r#"{"error":"no route matches this path"}"#,
        ),
        (
            "POST",
            "/fibonacci/",
            None,
            Status::NotFound,
            r#"{"error":"no route matches this path"}"#,
        ),
    ];
    for &(method, uri, body, status, expected) in cases {
        let method = method.parse().expect("a method");
        let mut request = client.req(method, uri);
        if let Some(body) = body {
            request = request.header(ContentType::JSON).body(body);
        }
        let response = request.dispatch();
        assert_eq!(response.status(), status, "{method} {uri}");
        assert_eq!(
            response.into_string().unwrap_or_default(),
            expected,
            "{method} {uri}"
        );
    }
}

#[test]
fn created_tasks_have_a_location_and_405s_an_allow_header() {
    let (client, _dir) = client();
    let created = client
        .post("/tasks")
        .header(ContentType::JSON)
        .body(r#"{"name":"a"}"#)
        .dispatch();
    assert_eq!(created.headers().get_one("location"), Some("/tasks/1"));
    let refused = client.post("/tasks/1").dispatch();
    assert_eq!(
        refused.headers().get_one("allow"),
        Some("GET, HEAD, PUT, DELETE")
    );
    let plain = client
        .post("/tasks")
        .header(Header::new("content-type", "text/plain"))
        .body("{}")
        .dispatch();
    assert_eq!(plain.status(), Status::UnsupportedMediaType);
}
