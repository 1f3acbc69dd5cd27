//! The todo API on **Rocket + diesel**: diesel's blocking calls on an r2d2 pool, run with
//! `spawn_blocking` as `rocket_sync_db_pools` does (see [`db`]).
//!
//! Run with `cargo run -p server-rocket`.

pub mod db;
pub mod http_layer;

use std::time::Duration;

use tokio::io::AsyncReadExt as _;

use rocket::data::{ByteUnit, Data, FromData};
use rocket::http::{ContentType, Header, Method, Status};
use rocket::request::{FromRequest, Request};
use rocket::response::{self, Responder, Response};
use rocket::route::{self, Handler, Route};
use rocket::{Build, Rocket, State, delete, get, post, put, routes};
use shared::http_rules::parse_id_segment;
use shared::input::{self, FromJsonBody, ListQuery};
use shared::{ApiError, ErrorKind, Health, NewTask, Store, TaskUpdate};

use crate::db::R2d2Diesel;

/// Builds the application over `store` with Rocket's `config`: every route of the contract,
/// explicit 405 routes (Rocket 0.5 has none of its own), and the contract's HTTP layer
/// ([`http_layer`]: a request fairing and the JSON catcher for everything else).
pub fn rocket(store: R2d2Diesel, config: rocket::Config) -> Rocket<Build> {
    let mut rocket = rocket::custom(config)
        .manage(store)
        .mount(
            "/",
            routes![
                hello, health, sleep, fibonacci, list, create, read, update, delete
            ],
        )
        .register("/", vec![http_layer::catcher()])
        .attach(http_layer::HttpRules);
    for (path, allowed, header) in http_layer::PATHS {
        rocket = rocket.mount("/", method_not_allowed_routes(path, allowed, header));
    }
    rocket
}

/// Routes answering 405 for every method `path` does not serve. HEAD is served wherever GET is
/// (Rocket answers it from the GET route).
fn method_not_allowed_routes(path: &str, allowed: &[Method], header: &'static str) -> Vec<Route> {
    use Method::*;
    [Get, Put, Post, Delete, Options, Head, Trace, Connect, Patch]
        .into_iter()
        .filter(|method| {
            let served = allowed.contains(method) || (*method == Head && allowed.contains(&Get));
            !served
        })
        .map(|method| Route::ranked(100, method, path, MethodNotAllowed(header)))
        .collect()
}

/// 405 with the contract's JSON error and an `allow` header listing `allowed`.
fn method_not_allowed(req: &Request<'_>, allowed: &'static str) -> response::Result<'static> {
    let mut response = Error(ApiError::of(ErrorKind::MethodNotAllowed)).respond_to(req)?;
    response.set_header(Header::new("allow", allowed));
    Ok(response)
}

#[derive(Clone)]
struct MethodNotAllowed(&'static str);

#[rocket::async_trait]
impl Handler for MethodNotAllowed {
    async fn handle<'r>(&self, req: &'r Request<'_>, _data: Data<'r>) -> route::Outcome<'r> {
        match method_not_allowed(req, self.0) {
            Ok(response) => route::Outcome::Success(response),
            Err(status) => route::Outcome::Error(status),
        }
    }
}

/// The one error response: the shared error's status and JSON body.
#[derive(Debug)]
pub struct Error(pub ApiError);

impl From<ApiError> for Error {
    fn from(err: ApiError) -> Self {
        Self(err)
    }
}

impl<'r> Responder<'r, 'static> for Error {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let status = Status::from_code(self.0.status()).unwrap_or(Status::InternalServerError);
        Response::build_from((ContentType::JSON, self.0.body()).respond_to(req)?)
            .status(status)
            .ok()
    }
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// A JSON document answered with `status` and, for a creation, a `location` header.
pub struct JsonReply {
    status: Status,
    body: String,
    location: Option<String>,
}

impl JsonReply {
    fn ok<T: serde::Serialize>(value: &T) -> Self {
        Self {
            status: Status::Ok,
            body: shared::task::to_json(value),
            location: None,
        }
    }
}

impl<'r> Responder<'r, 'static> for JsonReply {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build_from((ContentType::JSON, self.body).respond_to(req)?);
        response.status(self.status);
        if let Some(location) = self.location {
            response.raw_header("location", location);
        }
        response.ok()
    }
}

/// A JSON request body checked the contract's way: content type (415), size (413), then syntax
/// (400) and shape (422). The guard itself never fails, so the handler answers with the
/// contract's JSON error rather than a bare catcher status.
pub struct JsonBody<T>(pub Result<T, ApiError>);

#[rocket::async_trait]
impl<'r, T: FromJsonBody + Send + 'static> FromData<'r> for JsonBody<T> {
    type Error = std::convert::Infallible;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> rocket::data::Outcome<'r, Self> {
        rocket::data::Outcome::Success(Self(read_json(req, data).await))
    }
}

async fn read_json<T: FromJsonBody>(req: &Request<'_>, data: Data<'_>) -> Result<T, ApiError> {
    let headers = req.headers();
    input::check_json_content_type(headers.get_one("content-type").map(str::as_bytes))?;
    input::check_content_length(
        headers
            .get_one("content-length")
            .and_then(|v| v.parse().ok()),
    )?;
    // One byte over the limit is read, so that an oversized body is told from a full one.
    let limit = ByteUnit::from(shared::MAX_BODY_BYTES + 1);
    let chunks = futures_util::stream::unfold(data.open(limit), |mut stream| async move {
        let mut chunk = vec![0; 16 * 1024];
        match stream.read(&mut chunk).await {
            Ok(0) => None,
            Ok(n) => {
                chunk.truncate(n);
                Some((Ok(chunk), stream))
            }
            Err(err) => Some((Err(err), stream)),
        }
    });
    let body = input::read_body(Box::pin(chunks)).await?;
    if http_layer::body_unreadable(req) {
        return Err(ApiError::new(
            ErrorKind::BadRequest,
            "the request body could not be read",
        ));
    }
    T::from_json_body(&body)
}

/// The raw query string, for the shared parsers.
pub struct RawQuery(Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for RawQuery {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> rocket::request::Outcome<Self, Self::Error> {
        rocket::request::Outcome::Success(Self(req.uri().query().map(|q| q.as_str().to_owned())))
    }
}

#[get("/")]
fn hello() -> &'static str {
    shared::HELLO
}

#[get("/health")]
async fn health(store: &State<R2d2Diesel>) -> Result<JsonReply> {
    store.ping().await?;
    Ok(JsonReply::ok(&Health::ok(store.kind())))
}

#[get("/sleep")]
async fn sleep(query: RawQuery) -> Result<&'static str> {
    let ms = input::parse_sleep(query.0.as_deref())?;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok("OK")
}

#[get("/fibonacci")]
fn fibonacci(query: RawQuery) -> Result<JsonReply> {
    let max = input::parse_fibonacci(query.0.as_deref())?;
    Ok(JsonReply::ok(&shared::task::fibonacci(max)))
}

#[post("/tasks", data = "<body>")]
async fn create(store: &State<R2d2Diesel>, body: JsonBody<NewTask>) -> Result<JsonReply> {
    let task = store.create(body.0?).await?;
    let location = Some(format!("/tasks/{}", task.id));
    Ok(JsonReply {
        status: Status::Created,
        body: shared::task::to_json(&task),
        location,
    })
}

#[get("/tasks/<id>")]
async fn read(store: &State<R2d2Diesel>, id: &str) -> Result<JsonReply> {
    Ok(JsonReply::ok(&store.get(parse_id_segment(id)?).await?))
}

#[put("/tasks/<id>", data = "<body>")]
async fn update(
    store: &State<R2d2Diesel>,
    id: &str,
    body: JsonBody<TaskUpdate>,
) -> Result<JsonReply> {
    let id = parse_id_segment(id)?;
    Ok(JsonReply::ok(&store.update(id, body.0?).await?))
}

#[delete("/tasks/<id>")]
async fn delete(store: &State<R2d2Diesel>, id: &str) -> Result<Status> {
    store.delete(parse_id_segment(id)?).await?;
    Ok(Status::NoContent)
}

#[get("/tasks")]
async fn list(store: &State<R2d2Diesel>, query: RawQuery) -> Result<JsonReply> {
    let query = ListQuery::parse(query.0.as_deref())?;
    Ok(JsonReply::ok(&store.list(query).await?))
}
