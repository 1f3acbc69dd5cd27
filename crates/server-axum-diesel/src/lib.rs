//! The todo API on **axum + diesel**: the same axum router as `server-axum`, over diesel's
//! blocking connections in a `deadpool-diesel` pool, each query run with `interact` on a
//! blocking thread (as axum's own diesel example does), never on an async worker.
//!
//! Run with `cargo run -p server-axum-diesel`.

use anyhow::Context as _;
use deadpool_diesel::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use diesel::{Connection, PgConnection, SqliteConnection};
use shared::ApiError;
use shared::config::Database;
use shared::diesel_store::{BlockingPool, DieselStore, TaskStore, connection_url};

/// The store: a deadpool of diesel connections to SQLite or PostgreSQL.
pub type DeadpoolDiesel = DieselStore<Deadpool<SqliteConnection>, Deadpool<PgConnection>>;

/// A deadpool of diesel connections of type `C`.
pub struct Deadpool<C: Send + 'static>(Pool<Manager<C>>)
where
    Manager<C>: Managed<C>;

/// What deadpool-diesel's manager is for a connection type it can pool.
pub trait Managed<C: Send + 'static>:
    deadpool::managed::Manager<Type = deadpool_diesel::Connection<C>, Error = deadpool_diesel::Error>
{
}

impl<C: Send + 'static, M> Managed<C> for M where
    M: deadpool::managed::Manager<
            Type = deadpool_diesel::Connection<C>,
            Error = deadpool_diesel::Error,
        >
{
}

impl<C: Send + 'static> Clone for Deadpool<C>
where
    Manager<C>: Managed<C>,
{
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<C: Send + 'static> std::fmt::Debug for Deadpool<C>
where
    Manager<C>: Managed<C>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Deadpool").field(&self.0.status()).finish()
    }
}

/// Opens one connection and runs the migrations (so an unreachable database is reported at
/// once, with its cause), then builds the pool.
pub async fn connect(database: &Database, size: u32) -> anyhow::Result<DeadpoolDiesel> {
    Ok(match database {
        Database::Sqlite(path) => DieselStore::sqlite(pool(database, size).await?, path)?,
        Database::Postgres(_) => DieselStore::Postgres(pool(database, size).await?),
    })
}

async fn pool<C>(database: &Database, size: u32) -> anyhow::Result<Deadpool<C>>
where
    C: TaskStore + Connection + Send + 'static,
    Manager<C>: Managed<C>,
{
    let first_url = connection_url(database, true);
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut first = C::establish(&first_url)?;
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
    let url = connection_url(database, false);
    let pool = Pool::builder(Manager::<C>::from_config(url, Runtime::Tokio1, config))
        .max_size(size as usize)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(shared::POOL_TIMEOUT))
        .create_timeout(Some(shared::POOL_TIMEOUT))
        .post_create(prepare)
        .build()
        .context("cannot build the connection pool")?;
    // Every connection is opened now and kept, as every stack's pool is (deadpool opens them
    // lazily and keeps those it has): a server then never has to open one while the database
    // is short of connections.
    let mut opened = Vec::with_capacity(size as usize);
    for _ in 0..size {
        opened.push(
            pool.get()
                .await
                .context("cannot fill the connection pool")?,
        );
    }
    drop(opened);
    Ok(Deadpool(pool))
}

/// A connection from the pool, with `op` run on it by `interact` on a blocking thread.
impl<C> BlockingPool<C> for Deadpool<C>
where
    C: TaskStore + Connection + Send + 'static,
    Manager<C>: Managed<C>,
{
    async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut C) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let conn = self
            .0
            .get()
            .await
            .map_err(|err| ApiError::unavailable(&err))?;
        conn.interact(op)
            .await
            .map_err(|err| ApiError::internal(&err))?
    }

    fn close(&self) {
        self.0.close();
    }
}
