//! The todo API on **axum + diesel**: the same axum router as `server-axum`, over diesel's
//! blocking connections in a `deadpool-diesel` pool, each query run with `interact` on a
//! blocking thread (as axum's own diesel example does), never on an async worker.
//!
//! Run with `cargo run -p server-axum-diesel`.

use anyhow::Context as _;
use deadpool_diesel::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use diesel::{Connection, PgConnection, SqliteConnection};
use shared::config::Database;
use shared::diesel_store::TaskStore;
use shared::{ApiError, Store};

/// A deadpool of diesel connections to SQLite or PostgreSQL.
#[derive(Clone)]
pub enum DeadpoolDiesel {
    Sqlite(Pool<Manager<SqliteConnection>>),
    Postgres(Pool<Manager<PgConnection>>),
}

impl DeadpoolDiesel {
    /// Opens one connection and runs the migrations (so an unreachable database is reported at
    /// once, with its cause), then builds the pool.
    pub async fn connect(database: &Database, size: u32) -> anyhow::Result<Self> {
        Ok(match database {
            Database::Sqlite(path) => Self::Sqlite(pool(&path.to_string_lossy(), size).await?),
            Database::Postgres(url) => Self::Postgres(pool(url, size).await?),
        })
    }
}

async fn pool<C>(url: &str, size: u32) -> anyhow::Result<Pool<Manager<C>>>
where
    C: TaskStore + Connection + Send + 'static,
    Manager<C>: deadpool::managed::Manager<
            Type = deadpool_diesel::Connection<C>,
            Error = deadpool_diesel::Error,
        >,
{
    let owned = url.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut first = C::establish(&owned)?;
        first.prepare()?;
        first.migrate()?;
        Ok(())
    })
    .await??;

    let prepare =
        deadpool::managed::Hook::async_fn(|conn: &mut deadpool_diesel::Connection<C>, _| {
            Box::pin(async move {
                conn.interact(|conn| conn.prepare())
                    .await
                    .map_err(|err| deadpool::managed::HookError::Message(err.to_string().into()))?
                    .map_err(|err| {
                        deadpool::managed::HookError::Backend(deadpool_diesel::Error::Ping(err))
                    })
            })
        });
    // `Verified` runs `SELECT 1` on every checkout, as r2d2's `test_on_check_out` and sqlx's
    // `test_before_acquire` do by default: after a database restart the pool then replaces its
    // dead connections instead of failing one request with each. (deadpool's default, `Fast`,
    // only notices a connection that diesel already marked broken.)
    let config = ManagerConfig {
        recycling_method: RecyclingMethod::Verified,
    };
    Pool::builder(Manager::<C>::from_config(url, Runtime::Tokio1, config))
        .max_size(size as usize)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(shared::POOL_TIMEOUT))
        .create_timeout(Some(shared::POOL_TIMEOUT))
        .post_create(prepare)
        .build()
        .context("cannot build the connection pool")
}

/// Takes a connection from `pool` and runs `op` on it on a blocking thread.
async fn interact<C, T>(
    pool: &Pool<Manager<C>>,
    op: impl FnOnce(&mut C) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError>
where
    C: TaskStore + Connection + Send + 'static,
    T: Send + 'static,
    Manager<C>: deadpool::managed::Manager<
            Type = deadpool_diesel::Connection<C>,
            Error = deadpool_diesel::Error,
        >,
{
    let conn = pool
        .get()
        .await
        .map_err(|err| ApiError::unavailable(&err))?;
    conn.interact(op)
        .await
        .map_err(|err| ApiError::internal(&err))?
}

impl Store for DeadpoolDiesel {
    shared::diesel_store_methods!(DeadpoolDiesel, interact);

    async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close(),
            Self::Postgres(pool) => pool.close(),
        }
    }
}
