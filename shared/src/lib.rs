//! The one schema/model crate shared by every server: task types, input validation, the error
//! kinds with their status codes and JSON body, configuration, how a server process starts and
//! stops, SQL, migrations, the database stores behind the `sqlx` and `diesel` features, and,
//! behind `hyper`, the connection wrapper that gives hyper's own parse errors the JSON body. It
//! knows no web framework.

pub mod config;
pub mod error;
pub mod http_rules;
pub mod input;
pub mod process;
pub mod sql;
pub mod sqlite_file;
pub mod store;
pub mod task;

#[cfg(feature = "diesel")]
pub mod diesel_store;
#[cfg(feature = "hyper")]
pub mod http1;
#[cfg(feature = "hyper")]
pub mod parse_errors;
#[cfg(feature = "diesel")]
pub mod schema;
#[cfg(feature = "sqlx")]
pub mod sqlx_store;

pub use config::{DbKind, Settings};
pub use error::{ApiError, ErrorKind};
pub use store::Store;
pub use task::{Health, NewTask, Task, TaskUpdate};

/// The largest request body any server accepts, in bytes (the contract's 64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a server lets in-flight requests finish after SIGTERM or SIGINT.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a request waits for a pooled database connection before answering 503.
pub const POOL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a client may take to send a request's line and headers (from its first byte, or from
/// the connection's start) before the server closes the connection. Bounds slow-header clients
/// ("slowloris"), which would otherwise hold a connection and its memory forever.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a request body may stop arriving (no new bytes) before the server gives up on it
/// with a 408.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long an idle keep-alive connection is kept open, where the framework lets us choose
/// (axum's is its header-read timeout, which also bounds the wait for the next request).
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The body of `GET /`.
pub const HELLO: &str = "Hello, World!";

/// The content type of `GET /` and `GET /sleep`.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// The content type of every JSON response.
pub const APPLICATION_JSON: &str = "application/json";

/// The `allow` header of a 405, per path. `HEAD` is served wherever `GET` is.
pub mod allow {
    /// `/`, `/health`, `/sleep`, `/fibonacci`.
    pub const READ_ONLY: &str = "GET, HEAD";
    /// `/tasks`.
    pub const TASKS: &str = "GET, HEAD, POST";
    /// `/tasks/{id}`.
    pub const TASK: &str = "GET, HEAD, PUT, DELETE";
}
