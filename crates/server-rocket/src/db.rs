//! Rocket's database layer: diesel connections in an r2d2 pool, each blocking call run on
//! tokio's blocking pool with `spawn_blocking`, which is what `rocket_sync_db_pools` does
//! (`conn.run(..)`). The pool is built here rather than by `rocket_sync_db_pools` only so that
//! SQLite connections get the contract's pragmas (that crate hard-codes a 1 s busy timeout).
//! Like `rocket_sync_db_pools`, r2d2's defaults are kept: each checkout is validated.

use anyhow::Context as _;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use shared::config::Database;
use shared::diesel_store::TaskStore;
use shared::{ApiError, Store};

/// An r2d2 pool of diesel connections to SQLite or PostgreSQL.
#[derive(Clone)]
pub enum R2d2Diesel {
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
    Postgres(Pool<ConnectionManager<PgConnection>>),
}

impl R2d2Diesel {
    /// Opens one connection and runs the migrations (so an unreachable database is reported at
    /// once, with its cause), then builds the pool. Blocking: call it before serving.
    pub fn connect(database: &Database, size: u32) -> anyhow::Result<Self> {
        Ok(match database {
            Database::Sqlite(path) => Self::Sqlite(pool(&path.to_string_lossy(), size)?),
            Database::Postgres(url) => Self::Postgres(pool(url, size)?),
        })
    }
}

#[derive(Debug)]
struct Prepare;

impl<C: TaskStore + Connection> CustomizeConnection<C, diesel::r2d2::Error> for Prepare {
    fn on_acquire(&self, conn: &mut C) -> Result<(), diesel::r2d2::Error> {
        conn.prepare().map_err(diesel::r2d2::Error::QueryError)
    }
}

fn pool<C: TaskStore + R2D2Connection + 'static>(
    url: &str,
    size: u32,
) -> anyhow::Result<Pool<ConnectionManager<C>>> {
    let mut first = C::establish(url)?;
    first.prepare()?;
    first.migrate()?;
    drop(first);
    let pool = Pool::builder()
        .max_size(size)
        .connection_timeout(shared::POOL_TIMEOUT)
        .connection_customizer(Box::new(Prepare))
        .build(ConnectionManager::new(url))
        .context("cannot fill the connection pool")?;
    Ok(pool)
}

/// Takes a connection from `pool` and runs `op` on it, both on a blocking thread.
async fn run<C, T>(
    pool: &Pool<ConnectionManager<C>>,
    op: impl FnOnce(&mut C) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError>
where
    C: TaskStore + R2D2Connection + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().map_err(|err| ApiError::unavailable(&err))?;
        op(&mut conn)
    })
    .await
    .map_err(|err| ApiError::internal(&err))?
}

impl Store for R2d2Diesel {
    shared::diesel_store_methods!(R2d2Diesel, run);

    /// r2d2 closes its connections when the last handle to the pool is dropped.
    async fn close(&self) {}
}
