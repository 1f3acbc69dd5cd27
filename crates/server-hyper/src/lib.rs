//! The todo API on **hyper** with no framework, over tokio-postgres and rusqlite: the reference
//! row, what the compared stacks' frameworks and ORMs are measured against. Routing is a
//! `match` on the path as sent and the method; every response is built whole, its body in one
//! buffer; the database work is one prepared statement per operation ([`db`]); the connections
//! are hyper's own ([`server`]). Everything else (input parsing and validation, errors, the
//! HTTP-layer rules, SQL, configuration, start and stop) is `shared`'s, as on every stack.
//!
//! Run with `cargo run -p server-hyper` (SQLite in `./todo.db`), or
//! `DATABASE_URL=postgres://... cargo run -p server-hyper`.

pub mod db;
pub mod postgres;
pub mod server;
pub mod sqlite;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use shared::input::{self, FromJsonBody, ListQuery};
use shared::{ApiError, ErrorKind, Health, NewTask, Store, TaskUpdate, allow};

/// A response, its whole body in one buffer: hyper writes its `content-length` and sends head
/// and body in one write.
pub type Reply = Response<Full<Bytes>>;

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static(shared::APPLICATION_JSON);
const TEXT_PLAIN: HeaderValue = HeaderValue::from_static(shared::TEXT_PLAIN);

/// The application over `store`: every route of the contract, the contract's HTTP-layer rules
/// ([`shared::http_rules`]) for every request, routed or not, and the JSON error for every
/// refusal. Cheap to clone if the store is.
#[derive(Debug, Clone)]
pub struct App<S> {
    store: S,
}

impl<S: Store> App<S> {
    /// The application over `store`.
    pub const fn new(store: S) -> Self {
        Self { store }
    }

    /// Answers one request. Any body type of hyper's will do: the server's connections give
    /// [`hyper::body::Incoming`], the native tests a [`Full`] body.
    pub async fn handle<B>(&self, request: Request<B>) -> Reply
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
    {
        self.route(request).await.unwrap_or_else(|err| error(&err))
    }

    /// Routes on the path as sent (an escape never stands for a route's own characters), then
    /// the method: 405 with `allow` for a method the path does not serve, 404 for any other path.
    async fn route<B>(&self, request: Request<B>) -> Result<Reply, ApiError>
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
    {
        shared::http1::check_head(&request)?;
        let read = matches!(*request.method(), Method::GET | Method::HEAD);
        let query = request.uri().query();
        match request.uri().path() {
            "/" | "/health" | "/sleep" | "/fibonacci" if !read => {
                Ok(method_not_allowed(allow::READ_ONLY))
            }
            "/" => Ok(text(shared::HELLO)),
            "/health" => {
                self.store.ping().await?;
                Ok(json(StatusCode::OK, &Health::ok(self.store.kind())))
            }
            "/sleep" => {
                let ms = input::parse_sleep(query)?;
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(text("OK"))
            }
            "/fibonacci" => {
                let max = input::parse_fibonacci(query)?;
                Ok(json(StatusCode::OK, &shared::task::fibonacci(max)))
            }
            "/tasks" if read => {
                let query = ListQuery::parse(query)?;
                Ok(json(StatusCode::OK, &self.store.list(query).await?))
            }
            "/tasks" if request.method() == Method::POST => {
                let task = json_body::<NewTask, _>(request).await?;
                let task = self.store.create(task).await?;
                let mut response = json(StatusCode::CREATED, &task);
                let location = HeaderValue::try_from(format!("/tasks/{}", task.id))
                    .map_err(|err| ApiError::internal(&err))?;
                response.headers_mut().insert(header::LOCATION, location);
                Ok(response)
            }
            "/tasks" => Ok(method_not_allowed(allow::TASKS)),
            path => {
                let Some(segment) = path
                    .strip_prefix("/tasks/")
                    .filter(|s| !s.is_empty() && !s.contains('/'))
                else {
                    return Err(ApiError::of(ErrorKind::NotFound));
                };
                let method = request.method();
                if !(read || method == Method::PUT || method == Method::DELETE) {
                    return Ok(method_not_allowed(allow::TASK));
                }
                // The segment as sent, decoded once by the shared rule; then the body, if any.
                let id = shared::http_rules::parse_id_segment(segment)?;
                if read {
                    Ok(json(StatusCode::OK, &self.store.get(id).await?))
                } else if method == Method::PUT {
                    let task = json_body::<TaskUpdate, _>(request).await?;
                    Ok(json(StatusCode::OK, &self.store.update(id, task).await?))
                } else {
                    self.store.delete(id).await?;
                    let mut response = Reply::default();
                    *response.status_mut() = StatusCode::NO_CONTENT;
                    Ok(response)
                }
            }
        }
    }
}

/// A JSON request body checked the contract's way: content type (415), size (413), then syntax
/// (400) and shape (422). A request refused from its head alone is refused before its body is
/// read, so one sent with `Expect: 100-continue` gets its answer without `100 Continue`.
async fn json_body<T, B>(request: Request<B>) -> Result<T, ApiError>
where
    T: FromJsonBody,
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let headers = request.headers();
    input::check_json_content_type(headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes))?;
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    input::check_content_length(length)?;
    let bytes = input::read_body(request.into_body().into_data_stream()).await?;
    T::from_json_body(&bytes)
}

fn reply(status: StatusCode, content_type: HeaderValue, body: Bytes) -> Reply {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

fn text(body: &'static str) -> Reply {
    reply(
        StatusCode::OK,
        TEXT_PLAIN,
        Bytes::from_static(body.as_bytes()),
    )
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Reply {
    reply(
        status,
        APPLICATION_JSON,
        shared::task::to_json(value).into(),
    )
}

/// The one error response: the shared error's status and JSON body.
pub fn error(err: &ApiError) -> Reply {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply(status, APPLICATION_JSON, err.body().into())
}

/// The 405 of a path that serves only the `allowed` methods.
fn method_not_allowed(allowed: &'static str) -> Reply {
    let mut response = error(&ApiError::of(ErrorKind::MethodNotAllowed));
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}
