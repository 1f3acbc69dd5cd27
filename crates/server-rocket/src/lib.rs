//! The todo API on **Rocket + diesel**: diesel's blocking calls on an r2d2 pool, run with
//! `spawn_blocking` as `rocket_sync_db_pools` does (see [`db`]).
//!
//! Run with `cargo run -p server-rocket`.

pub mod db;

use std::time::Duration;

use rocket::data::{ByteUnit, Data, FromData};
use rocket::fairing::AdHoc;
use rocket::http::{ContentType, Header, Method, Status};
use rocket::request::{FromRequest, Request};
use rocket::response::{self, Responder, Response};
use rocket::route::{self, Handler, Route};
use rocket::{Build, Rocket, State, catch, catchers, delete, get, post, put, routes};
use shared::input::{self, FromJsonBody, ListQuery};
use shared::{ApiError, ErrorKind, Health, NewTask, Store, TaskUpdate, allow};

use crate::db::R2d2Diesel;

/// Builds the application over `store` with Rocket's `config`: every route of the contract,
/// explicit 405 routes (Rocket 0.5 has none of its own) and a JSON catcher for everything else.
pub fn rocket(store: R2d2Diesel, config: rocket::Config) -> Rocket<Build> {
    use Method::{Delete, Get, Post, Put};
    let mut rocket = rocket::custom(config)
        .manage(store)
        .mount(
            "/",
            routes![
                hello, health, sleep, fibonacci, list, create, read, update, delete
            ],
        )
        .register("/", catchers![default_catcher])
        .attach(AdHoc::on_request("unknown paths stay unknown", |req, _| {
            Box::pin(async move { reject_unnormalized_path(req) })
        }));
    for (path, allowed, header) in [
        ("/", &[Get][..], allow::READ_ONLY),
        ("/health", &[Get], allow::READ_ONLY),
        ("/sleep", &[Get], allow::READ_ONLY),
        ("/fibonacci", &[Get], allow::READ_ONLY),
        ("/tasks", &[Get, Post], allow::TASKS),
        ("/tasks/<id>", &[Get, Put, Delete], allow::TASK),
    ] {
        rocket = rocket.mount("/", method_not_allowed_routes(path, allowed, header));
    }
    rocket
}

/// Rocket matches routes on the non-empty segments of a path, so `/tasks/` and `//tasks` would
/// reach `/tasks`. The contract treats them as unknown paths (as the other stacks do): send them
/// to a path no route serves, so the 404 catcher answers.
fn reject_unnormalized_path(req: &mut Request<'_>) {
    let path = req.uri().path().as_str();
    if path.contains("//") || (path.len() > 1 && path.ends_with('/')) {
        req.set_uri(rocket::http::uri::Origin::parse(UNROUTED).expect("a valid origin"));
    }
}

/// A path with no route: requests rewritten here end in the 404 catcher.
const UNROUTED: &str = "/.unrouted";

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

#[derive(Clone)]
struct MethodNotAllowed(&'static str);

#[rocket::async_trait]
impl Handler for MethodNotAllowed {
    async fn handle<'r>(&self, req: &'r Request<'_>, _data: Data<'r>) -> route::Outcome<'r> {
        let mut response = match Error(ApiError::of(ErrorKind::MethodNotAllowed)).respond_to(req) {
            Ok(response) => response,
            Err(status) => return route::Outcome::Error(status),
        };
        response.set_header(Header::new("allow", self.0));
        route::Outcome::Success(response)
    }
}

#[catch(default)]
fn default_catcher(status: Status, _req: &Request<'_>) -> Error {
    Error(ApiError::of(ErrorKind::from_status(status.code)))
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
    let body = data
        .open(ByteUnit::from(shared::MAX_BODY_BYTES))
        .into_bytes()
        .await
        .map_err(|_| ApiError::new(ErrorKind::BadRequest, "the request body could not be read"))?;
    if !body.is_complete() {
        return Err(ApiError::of(ErrorKind::PayloadTooLarge));
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
    Ok(JsonReply::ok(&store.get(input::parse_id(id)?).await?))
}

#[put("/tasks/<id>", data = "<body>")]
async fn update(
    store: &State<R2d2Diesel>,
    id: &str,
    body: JsonBody<TaskUpdate>,
) -> Result<JsonReply> {
    let id = input::parse_id(id)?;
    Ok(JsonReply::ok(&store.update(id, body.0?).await?))
}

#[delete("/tasks/<id>")]
async fn delete(store: &State<R2d2Diesel>, id: &str) -> Result<Status> {
    store.delete(input::parse_id(id)?).await?;
    Ok(Status::NoContent)
}

#[get("/tasks")]
async fn list(store: &State<R2d2Diesel>, query: RawQuery) -> Result<JsonReply> {
    let query = ListQuery::parse(query.0.as_deref())?;
    Ok(JsonReply::ok(&store.list(query).await?))
}
