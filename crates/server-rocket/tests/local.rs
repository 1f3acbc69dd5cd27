//! Rocket-native tests with the local blocking `Client` (no socket): the explicit 405 routes,
//! the JSON catcher, the data guard and the r2d2 store over SQLite.

use rocket::http::{ContentType, Header, Status};
use rocket::local::blocking::Client;

/// Every request carries one `Host` header, as the contract requires.
fn host() -> Header<'static> {
    Header::new("host", "localhost")
}

fn client() -> (Client, tempfile::TempDir) {
    let (dir, database) = harness::native::sqlite();
    let store = server_rocket::db::connect(&database, 2).expect("SQLite opens");
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
fn answers_the_shared_cases() {
    let (client, _dir) = client();
    let answers: Vec<(u16, Vec<u8>)> = harness::native::cases()
        .into_iter()
        .map(|case| {
            let method = case.method.parse().expect("a method");
            let mut request = client.req(method, case.uri).header(host());
            if let Some(body) = case.json {
                request = request.header(ContentType::JSON).body(body);
            }
            let response = request.dispatch();
            let status = response.status().code;
            (status, response.into_bytes().unwrap_or_default())
        })
        .collect();
    harness::native::assert_answers("rocket-diesel", &answers);
}

#[test]
fn empty_segments_are_unknown_paths() {
    let (client, _dir) = client();
    for uri in ["//health", "/fibonacci/"] {
        let response = client.post(uri).header(host()).dispatch();
        assert_eq!(response.status(), Status::NotFound, "{uri}");
    }
}

#[test]
fn created_tasks_have_a_location_and_405s_an_allow_header() {
    let (client, _dir) = client();
    let created = client
        .post("/tasks")
        .header(host())
        .header(ContentType::JSON)
        .body(r#"{"name":"a"}"#)
        .dispatch();
    assert_eq!(created.headers().get_one("location"), Some("/tasks/1"));
    let refused = client.post("/tasks/1").header(host()).dispatch();
    assert_eq!(
        refused.headers().get_one("allow"),
        Some("GET, HEAD, PUT, DELETE")
    );
    let plain = client
        .post("/tasks")
        .header(host())
        .header(Header::new("content-type", "text/plain"))
        .body("{}")
        .dispatch();
    assert_eq!(plain.status(), Status::UnsupportedMediaType);
}
