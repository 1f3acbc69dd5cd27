//! Requests to an axum `Router` through tower's `oneshot` (no socket), for the native tests of
//! both axum stacks (`server-axum-diesel` includes this file too).

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, header};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

/// Sends one request (`json` as an `application/json` body) and returns the status, the body
/// and the headers.
pub async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    json: Option<&str>,
) -> (u16, Vec<u8>, HeaderMap) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "localhost");
    if json.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(Body::from(json.unwrap_or_default().to_owned()))
        .expect("a valid request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("a body").to_bytes();
    (parts.status.as_u16(), bytes.to_vec(), parts.headers)
}

/// The router's answers to the shared table of cases (`harness::native::cases`), in order.
pub async fn answers(app: &Router) -> Vec<(u16, Vec<u8>)> {
    let mut answers = Vec::new();
    for case in harness::native::cases() {
        let (status, body, _) = send(app, case.method, case.uri, case.json).await;
        answers.push((status, body));
    }
    answers
}
