//! The todo API on **actix-web + sqlx**: handlers are async and use the sqlx pool directly, the
//! way actix-web's own sqlx examples do; actix runs `WORKERS` single-threaded workers.
//!
//! Run with `cargo run -p server-actix`.

use std::future::{Ready, ready};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::web::{self, Data, ServiceConfig};
use actix_web::{App, FromRequest, HttpRequest, HttpResponse, ResponseError, guard};
use futures_util::future::LocalBoxFuture;
use shared::input::{self, FromJsonBody, ListQuery};
use shared::sqlx_store::SqlxDb;
use shared::{ApiError, ErrorKind, Health, NewTask, Store, TaskUpdate, allow};

type Db = Data<SqlxDb>;

/// The application over `db`: every route of the contract, JSON 404s for unknown paths, and
/// the contract's HTTP-layer rules ([`http_rules`]) for every request.
pub fn app(
    db: Db,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(db)
        .configure(configure)
        .default_service(web::to(not_found))
        .wrap(from_fn(http_rules))
}

/// The `Expect: 100-continue` service: a request to a route that takes JSON whose head alone
/// already earns a 415 or a 413 gets that answer at once, without `100 Continue`, as on the
/// other stacks; any other request gets its `100 Continue` and goes on.
pub async fn expect(req: actix_http::Request) -> Result<actix_http::Request, actix_web::Error> {
    use actix_web::HttpMessage as _;
    let takes_json = match *req.method() {
        actix_web::http::Method::POST => req.path() == "/tasks",
        actix_web::http::Method::PUT => req
            .path()
            .strip_prefix("/tasks/")
            .is_some_and(|id| !id.is_empty() && !id.contains('/')),
        _ => false,
    };
    if takes_json {
        let headers = req.headers();
        check_json_head(
            headers.get(header::CONTENT_TYPE),
            headers.get(header::CONTENT_LENGTH),
        )
        .map_err(|err| actix_web::Error::from(Error(err)))?;
    }
    Ok(req)
}

/// The checks a JSON body's head must pass: its content type (415) and declared size (413).
fn check_json_head(
    content_type: Option<&HeaderValue>,
    content_length: Option<&HeaderValue>,
) -> Result<(), ApiError> {
    input::check_json_content_type(content_type.map(HeaderValue::as_bytes))?;
    input::check_content_length(content_length.and_then(|v| v.to_str().ok()?.parse().ok()))
}

thread_local! {
    /// Decodes no escape of an ASCII character: routing then sees the path as sent.
    static RAW_PATH: actix_router::Quoter = actix_router::Quoter::new(b"", &(0u8..128).collect::<Vec<_>>());
}

/// Before routing: answers 400 to a request that breaks the contract's HTTP-layer rules
/// ([`shared::http_rules`]), and has the router match the path as sent, as the other stacks
/// do (actix decodes escapes such as `%74` before routing by default).
async fn http_rules(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let head = shared::http_rules::Head::new(
        req.uri()
            .path_and_query()
            .map_or(req.path(), |pq| pq.as_str())
            .as_bytes(),
        req.headers().get_all(header::HOST).count(),
        req.headers()
            .get_all(header::TRANSFER_ENCODING)
            .map(HeaderValue::as_bytes),
    );
    if let Err(err) = shared::http_rules::check_head(&head) {
        let response = Error(err).error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    let uri = req.uri().clone();
    RAW_PATH.with(|raw| req.match_info_mut().get_mut().update_with_quoter(&uri, raw));
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Registers every route of the contract; the app must carry a `Data<SqlxDb>`.
/// Unknown paths are answered by [`not_found`], which [`app`] sets as its default service.
fn configure(cfg: &mut ServiceConfig) {
    cfg.service(read_only("/", web::to(hello)))
        .service(read_only("/health", web::to(health)))
        .service(read_only("/sleep", web::to(sleep)))
        .service(read_only("/fibonacci", web::to(fibonacci)))
        .service(
            web::resource("/tasks")
                .route(get_or_head().to(list))
                .route(web::post().to(create))
                .default_service(web::to(|| method_not_allowed(allow::TASKS))),
        )
        .service(
            web::resource("/tasks/{id}")
                .route(get_or_head().to(read))
                .route(web::put().to(update))
                .route(web::delete().to(delete))
                .default_service(web::to(|| method_not_allowed(allow::TASK))),
        );
}

fn get_or_head() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

fn read_only(path: &str, handler: actix_web::Route) -> actix_web::Resource {
    web::resource(path)
        .route(handler.guard(guard::Any(guard::Get()).or(guard::Head())))
        .default_service(web::to(|| method_not_allowed(allow::READ_ONLY)))
}

async fn method_not_allowed(allowed: &'static str) -> HttpResponse {
    let mut response = Error(ApiError::of(ErrorKind::MethodNotAllowed)).error_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}

/// The default service: 404 with the JSON error.
async fn not_found() -> Error {
    Error(ApiError::of(ErrorKind::NotFound))
}

/// The one error response: the shared error's status and JSON body.
#[derive(Debug)]
pub struct Error(pub ApiError);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<ApiError> for Error {
    fn from(err: ApiError) -> Self {
        Self(err)
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .content_type(shared::APPLICATION_JSON)
            .body(self.0.body())
    }
}

impl actix_web::Responder for Error {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        self.error_response()
    }
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// A JSON request body checked the contract's way: content type (415), size (413), then
/// syntax (400) and shape (422).
pub struct JsonBody<T>(pub T);

impl<T: FromJsonBody + 'static> FromRequest for JsonBody<T> {
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let headers = req.headers();
        let checked = check_json_head(
            headers.get(header::CONTENT_TYPE),
            headers.get(header::CONTENT_LENGTH),
        );
        let payload = payload.take();
        Box::pin(async move {
            checked?;
            let body = input::read_body(payload).await?;
            Ok(Self(T::from_json_body(&body)?))
        })
    }
}

/// The `{id}` of `/tasks/{id}`: 400 unless it is a base-10 `i64`.
pub struct TaskId(pub i64);

impl FromRequest for TaskId {
    type Error = Error;
    type Future = Ready<Result<Self>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        // The segment as sent (see `http_rules`), decoded once by the shared rule.
        let segment = req.match_info().query("id");
        ready(
            shared::http_rules::parse_id_segment(segment)
                .map(Self)
                .map_err(Error),
        )
    }
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(shared::APPLICATION_JSON)
        .body(shared::task::to_json(value))
}

async fn hello() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(shared::TEXT_PLAIN)
        .body(shared::HELLO)
}

async fn health(db: Db) -> Result<HttpResponse> {
    db.ping().await?;
    Ok(json(StatusCode::OK, &Health::ok(db.kind())))
}

async fn sleep(req: HttpRequest) -> Result<HttpResponse> {
    let ms = input::parse_sleep(Some(req.query_string()))?;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(HttpResponse::Ok()
        .content_type(shared::TEXT_PLAIN)
        .body("OK"))
}

async fn fibonacci(req: HttpRequest) -> Result<HttpResponse> {
    let max = input::parse_fibonacci(Some(req.query_string()))?;
    Ok(json(StatusCode::OK, &shared::task::fibonacci(max)))
}

async fn create(db: Db, JsonBody(task): JsonBody<NewTask>) -> Result<HttpResponse> {
    let task = db.create(task).await?;
    let mut response = json(StatusCode::CREATED, &task);
    let location = HeaderValue::try_from(format!("/tasks/{}", task.id))
        .map_err(|err| ApiError::internal(&err))?;
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

async fn read(db: Db, TaskId(id): TaskId) -> Result<HttpResponse> {
    Ok(json(StatusCode::OK, &db.get(id).await?))
}

async fn update(
    db: Db,
    TaskId(id): TaskId,
    JsonBody(task): JsonBody<TaskUpdate>,
) -> Result<HttpResponse> {
    Ok(json(StatusCode::OK, &db.update(id, task).await?))
}

async fn delete(db: Db, TaskId(id): TaskId) -> Result<HttpResponse> {
    db.delete(id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list(db: Db, req: HttpRequest) -> Result<HttpResponse> {
    let query = ListQuery::parse(Some(req.query_string()))?;
    Ok(json(StatusCode::OK, &db.list(query).await?))
}
