//! The one error type: a kind, its HTTP status, and the JSON body `{"error":"<sentence>"}`.
//! Each server wraps [`ApiError`] once to turn it into its framework's response.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

/// What went wrong, as far as the client is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: malformed JSON, a malformed id, a bad query parameter.
    BadRequest,
    /// 404: no such task, or no such route.
    NotFound,
    /// 405: the path exists but not with this method.
    MethodNotAllowed,
    /// 408: the body stopped arriving for [`crate::BODY_READ_TIMEOUT`].
    RequestTimeout,
    /// 413: the body is larger than [`crate::MAX_BODY_BYTES`].
    PayloadTooLarge,
    /// 414: the request target is longer than the server's HTTP parser takes.
    UriTooLong,
    /// 415: `POST`/`PUT` without `content-type: application/json`.
    UnsupportedMediaType,
    /// 422: valid JSON of the wrong shape, or a name that fails validation.
    Unprocessable,
    /// 431: more or larger headers than the server's HTTP parser takes.
    HeadersTooLarge,
    /// 503: the database is unreachable or failing.
    Unavailable,
    /// 500: a bug on our side. Never caused by anything a client sends.
    Internal,
}

impl ErrorKind {
    /// The HTTP status code of this kind.
    pub const fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::RequestTimeout => 408,
            Self::PayloadTooLarge => 413,
            Self::UriTooLong => 414,
            Self::UnsupportedMediaType => 415,
            Self::Unprocessable => 422,
            Self::HeadersTooLarge => 431,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }

    /// The sentence a framework-generated error of this kind carries (a catcher, a fallback).
    pub const fn default_message(self) -> &'static str {
        match self {
            Self::BadRequest => "the request is malformed",
            Self::NotFound => "no route matches this path",
            Self::MethodNotAllowed => "this method is not allowed on this path",
            Self::RequestTimeout => "the request body stopped arriving for 10 seconds",
            Self::PayloadTooLarge => "the request body is larger than 65536 bytes",
            Self::UriTooLong => "the request target is too long",
            Self::UnsupportedMediaType => {
                "the request body must be sent with content-type: application/json"
            }
            Self::Unprocessable => "the request body is not a valid task",
            Self::HeadersTooLarge => "the request headers are too large",
            Self::Unavailable => "the database is unavailable, try again later",
            Self::Internal => "internal server error",
        }
    }

    /// The kind behind a status a framework produced on its own (Rocket's catchers).
    /// Any other client error becomes a 400; any other server error a 500.
    pub const fn from_status(status: u16) -> Self {
        match status {
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            408 => Self::RequestTimeout,
            413 => Self::PayloadTooLarge,
            414 => Self::UriTooLong,
            415 => Self::UnsupportedMediaType,
            422 => Self::Unprocessable,
            431 => Self::HeadersTooLarge,
            503 => Self::Unavailable,
            400..=499 => Self::BadRequest,
            _ => Self::Internal,
        }
    }
}

/// An error answer: its kind decides the status; its message is the one readable sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    kind: ErrorKind,
    message: Cow<'static, str>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The framework-level error of this kind, with its default sentence.
    pub const fn of(kind: ErrorKind) -> Self {
        Self {
            kind,
            message: Cow::Borrowed(kind.default_message()),
        }
    }

    pub fn task_not_found(id: i64) -> Self {
        Self::new(ErrorKind::NotFound, format!("task {id} not found"))
    }

    /// The database failed. The cause is logged here and never shown to the client.
    pub fn unavailable(cause: &dyn fmt::Display) -> Self {
        tracing::warn!("database error: {cause}");
        Self::of(ErrorKind::Unavailable)
    }

    /// A bug on our side. The cause is logged here and never shown to the client.
    pub fn internal(cause: &dyn fmt::Display) -> Self {
        tracing::error!("internal error: {cause}");
        Self::of(ErrorKind::Internal)
    }

    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub const fn status(&self) -> u16 {
        self.kind.status()
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body: `{"error":"<message>"}`.
    pub fn body(&self) -> String {
        crate::task::to_json(&ErrorBody {
            error: &self.message,
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status(), self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(feature = "sqlx")]
impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match err {
            E::ColumnDecode { .. }
            | E::ColumnNotFound(_)
            | E::Decode(_)
            | E::TypeNotFound { .. } => Self::internal(&err),
            _ => Self::unavailable(&err),
        }
    }
}

#[cfg(feature = "diesel")]
impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::Error as E;
        match err {
            E::DatabaseError(..) | E::BrokenTransactionManager => Self::unavailable(&err),
            _ => Self::internal(&err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_one_json_sentence() {
        let err = ApiError::new(ErrorKind::Unprocessable, "name must not be \"empty\"");
        assert_eq!(err.status(), 422);
        assert_eq!(err.body(), r#"{"error":"name must not be \"empty\""}"#);
    }

    #[test]
    fn statuses_round_trip() {
        use ErrorKind::*;
        for kind in [
            BadRequest,
            NotFound,
            MethodNotAllowed,
            RequestTimeout,
            PayloadTooLarge,
            UriTooLong,
            UnsupportedMediaType,
            Unprocessable,
            HeadersTooLarge,
            Unavailable,
            Internal,
        ] {
            assert_eq!(ErrorKind::from_status(kind.status()), kind);
        }
        assert_eq!(ErrorKind::from_status(418), BadRequest);
        assert_eq!(ErrorKind::from_status(502), Internal);
    }
}
