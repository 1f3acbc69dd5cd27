//! Rocket's database layer: diesel connections in an r2d2 pool, each blocking call run on
//! tokio's blocking pool with `spawn_blocking`, which is what `rocket_sync_db_pools` does
//! (`conn.run(..)`). The pool is built here rather than by `rocket_sync_db_pools` only so that
//! SQLite connections get the contract's pragmas (that crate hard-codes a 1 s busy timeout).
//! Like `rocket_sync_db_pools`, r2d2's defaults are kept: each checkout is validated.

use anyhow::Context as _;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use shared::ApiError;
use shared::config::Database;
use shared::diesel_store::{BlockingPool, DieselStore, TaskStore, connection_url};

/// The store: an r2d2 pool of diesel connections to SQLite or PostgreSQL.
pub type R2d2Diesel = DieselStore<R2d2<SqliteConnection>, R2d2<PgConnection>>;

/// An r2d2 pool of diesel connections of type `C`; its connections close when the last handle
/// to it is dropped.
#[derive(Debug)]
pub struct R2d2<C: R2D2Connection + 'static>(Pool<ConnectionManager<C>>);

impl<C: R2D2Connection + 'static> Clone for R2d2<C> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// Opens one connection and runs the migrations (so an unreachable database is reported at
/// once, with its cause), then builds the pool. Blocking: call it before serving.
pub fn connect(database: &Database, size: u32) -> anyhow::Result<R2d2Diesel> {
    Ok(match database {
        Database::Sqlite(path) => DieselStore::sqlite(pool(database, size)?, path)?,
        Database::Postgres(_) => DieselStore::Postgres(pool(database, size)?),
    })
}

#[derive(Debug)]
struct Prepare;

impl<C: TaskStore + Connection> CustomizeConnection<C, diesel::r2d2::Error> for Prepare {
    fn on_acquire(&self, conn: &mut C) -> Result<(), diesel::r2d2::Error> {
        conn.prepare().map_err(diesel::r2d2::Error::QueryError)
    }
}

fn pool<C: TaskStore + R2D2Connection + 'static>(
    database: &Database,
    size: u32,
) -> anyhow::Result<R2d2<C>> {
    let mut first = C::establish(&connection_url(database, true))?;
    first.prepare()?;
    first.migrate()?;
    drop(first);
    let pool = Pool::builder()
        .max_size(size)
        .connection_timeout(shared::POOL_TIMEOUT)
        .connection_customizer(Box::new(Prepare))
        .build(ConnectionManager::new(connection_url(database, false)))
        .context("cannot fill the connection pool")?;
    Ok(R2d2(pool))
}

/// A connection from the pool, taken and used by `op` on a blocking thread.
impl<C: TaskStore + R2D2Connection + 'static> BlockingPool<C> for R2d2<C> {
    async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut C) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let pool = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|err| ApiError::unavailable(&err))?;
            op(&mut conn)
        })
        .await
        .map_err(|err| ApiError::internal(&err))?
    }
}
