//! The todo API on **axum**, over any [`Store`]: with sqlx here (`cargo run -p server-axum`), and
//! with diesel in `server-axum-diesel`, which reuses this router so the two differ only in their
//! database layer.
//!
//! Run with `cargo run -p server-axum` (SQLite in `./todo.db`), or
//! `DATABASE_URL=postgres://... cargo run -p server-axum`.

use std::future::Future;
use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use axum::{Json, Router};
use hyper_util::service::TowerToHyperService;
use shared::input::{self, FromJsonBody, ListQuery};
use shared::{ApiError, ErrorKind, Health, NewTask, Settings, Store, TaskUpdate, allow};

/// Builds the application over `store`: every route of the contract, JSON errors for every
/// rejection, 404 and 405, and the contract's HTTP-layer rules ([`http_rules`]) for every
/// request, routed or not. Routes match the path as sent (axum's own way).
pub fn app<S: Store>(store: S) -> Router {
    Router::new()
        .route("/", read_only(get(hello)))
        .route("/health", read_only(get(health::<S>)))
        .route("/sleep", read_only(get(sleep)))
        .route("/fibonacci", read_only(get(fibonacci)))
        .route(
            "/tasks",
            get(list::<S>)
                .post(create::<S>)
                .fallback(method_not_allowed(allow::TASKS)),
        )
        .route(
            "/tasks/{id}",
            get(read::<S>)
                .put(update::<S>)
                .delete(delete::<S>)
                .fallback(method_not_allowed(allow::TASK)),
        )
        .fallback(|| async { Error(ApiError::of(ErrorKind::NotFound)) })
        .layer(axum::middleware::from_fn(http_rules))
        .with_state(store)
}

/// Answers 400 to a request that breaks the contract's HTTP-layer rules
/// ([`shared::http_rules`]), before it reaches a handler.
async fn http_rules(request: Request, next: axum::middleware::Next) -> Response {
    match shared::http1::check_head(&request) {
        Ok(()) => next.run(request).await,
        Err(err) => Error(err).into_response(),
    }
}

fn read_only<S: Clone + Send + Sync + 'static>(route: MethodRouter<S>) -> MethodRouter<S> {
    route.fallback(method_not_allowed(allow::READ_ONLY))
}

fn method_not_allowed(allowed: &'static str) -> impl Fn() -> std::future::Ready<Response> + Clone {
    move || {
        let mut response = Error(ApiError::of(ErrorKind::MethodNotAllowed)).into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allowed));
        std::future::ready(response)
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

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            [(header::CONTENT_TYPE, shared::APPLICATION_JSON)],
            self.0.body(),
        )
            .into_response()
    }
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// A JSON request body checked the contract's way: content type (415), size (413), then
/// syntax (400) and shape (422).
pub struct JsonBody<T>(pub T);

impl<T: FromJsonBody, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, _state: &S) -> Result<Self> {
        let headers = req.headers();
        input::check_json_content_type(
            headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes),
        )?;
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        input::check_content_length(length)?;
        let bytes = input::read_body(req.into_body().into_data_stream()).await?;
        Ok(Self(T::from_json_body(&bytes)?))
    }
}

/// The `{id}` of `/tasks/{id}`: 400 unless it is a base-10 `i64`.
pub struct TaskId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for TaskId {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        // A segment that is not UTF-8 once percent-decoded is no integer either: it gets the
        // same 400 as any other non-integer id.
        let segment = Path::<String>::from_request_parts(parts, state)
            .await
            .map_or_else(|_| String::new(), |Path(s)| s);
        Ok(Self(input::parse_id(&segment)?))
    }
}

async fn hello() -> &'static str {
    shared::HELLO
}

async fn health<S: Store>(State(store): State<S>) -> Result<Json<Health>> {
    store.ping().await?;
    Ok(Json(Health::ok(store.kind())))
}

async fn sleep(RawQuery(query): RawQuery) -> Result<&'static str> {
    let ms = input::parse_sleep(query.as_deref())?;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok("OK")
}

async fn fibonacci(RawQuery(query): RawQuery) -> Result<Json<shared::task::Fibonacci>> {
    let max = input::parse_fibonacci(query.as_deref())?;
    Ok(Json(shared::task::fibonacci(max)))
}

async fn create<S: Store>(
    State(store): State<S>,
    JsonBody(task): JsonBody<NewTask>,
) -> Result<Response> {
    let task = store.create(task).await?;
    let location = format!("/tasks/{}", task.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(task),
    )
        .into_response())
}

async fn read<S: Store>(State(store): State<S>, TaskId(id): TaskId) -> Result<Response> {
    Ok(Json(store.get(id).await?).into_response())
}

async fn update<S: Store>(
    State(store): State<S>,
    TaskId(id): TaskId,
    JsonBody(task): JsonBody<TaskUpdate>,
) -> Result<Response> {
    Ok(Json(store.update(id, task).await?).into_response())
}

async fn delete<S: Store>(State(store): State<S>, TaskId(id): TaskId) -> Result<StatusCode> {
    store.delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list<S: Store>(State(store): State<S>, RawQuery(query): RawQuery) -> Result<Response> {
    let query = ListQuery::parse(query.as_deref())?;
    Ok(Json(store.list(query).await?).into_response())
}

/// The whole life of an axum server after the shared start ([`shared::process::main`]): a
/// runtime of `WORKERS` threads, the store from `connect`, the start-up line, serving until
/// SIGTERM or SIGINT, at most [`shared::SHUTDOWN_GRACE`] for in-flight requests, then the pool
/// closed. Returns the process exit code.
pub fn run<S, F, Fut>(
    stack: &'static str,
    about: &'static str,
    connect: F,
) -> std::process::ExitCode
where
    S: Store,
    F: FnOnce(Settings) -> Fut,
    Fut: Future<Output = anyhow::Result<S>>,
{
    shared::process::main(stack, about, |settings, listener| {
        shared::process::runtime(settings.workers).block_on(serve(settings, listener, connect))
    })
}

async fn serve<S, F, Fut>(
    settings: Settings,
    listener: std::net::TcpListener,
    connect: F,
) -> anyhow::Result<()>
where
    S: Store,
    F: FnOnce(Settings) -> Fut,
    Fut: Future<Output = anyhow::Result<S>>,
{
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let addr = listener.local_addr()?;
    let store =
        shared::process::open_database(&settings.database, connect(settings.clone())).await?;
    let stop = shared::process::shutdown_signal();
    println!("{}", settings.listening_line(addr));

    let app = app(store.clone());
    // One service per connection, as `axum::serve` makes them (see `shared::http1::serve`).
    shared::http1::serve(
        listener,
        || TowerToHyperService::new(app.clone()),
        stop,
        false,
    )
    .await;
    store.close().await;
    Ok(())
}
