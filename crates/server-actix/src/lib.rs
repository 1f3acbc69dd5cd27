//! The todo API on **actix-web + sqlx**: handlers are async and use the sqlx pool directly, the
//! way actix-web's own sqlx examples do; actix runs `WORKERS` single-threaded workers.
//!
//! Run with `cargo run -p server-actix`.

use std::future::{Ready, ready};
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{self, Data, ServiceConfig};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, guard};
use futures_util::StreamExt as _;
use futures_util::future::LocalBoxFuture;
use shared::input::{self, FromJsonBody, ListQuery};
use shared::sqlx_store::SqlxDb;
use shared::{ApiError, ErrorKind, Health, NewTask, Store, TaskUpdate, allow};

type Db = Data<SqlxDb>;

/// Registers every route of the contract; the app must carry a `Data<SqlxDb>`.
/// Unknown paths are answered by [`not_found`], which the app sets as its default service.
pub fn configure(cfg: &mut ServiceConfig) {
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
pub async fn not_found() -> Error {
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
        let checked = input::check_json_content_type(
            headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes),
        )
        .and_then(|()| {
            let length = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok());
            input::check_content_length(length)
        });
        let mut payload = payload.take();
        Box::pin(async move {
            checked?;
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| {
                    ApiError::new(ErrorKind::BadRequest, "the request body could not be read")
                })?;
                if body.len() + chunk.len() > shared::MAX_BODY_BYTES {
                    return Err(Error(ApiError::of(ErrorKind::PayloadTooLarge)));
                }
                body.extend_from_slice(&chunk);
            }
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
        ready(
            input::parse_id(req.match_info().query("id"))
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
