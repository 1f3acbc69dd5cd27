//! The store: shared's [`Store`] over a pool of rusqlite connections ([`Sqlite`]) or of
//! tokio-postgres ones ([`Postgres`]), both in deadpool's managed pool, opened and sized as
//! every stack's pool is.

use deadpool::managed::{self, Pool, PoolError};
use shared::config::{Database, DbKind};
use shared::input::ListQuery;
use shared::{ApiError, NewTask, Store, Task, TaskUpdate};

use crate::postgres::Postgres;
use crate::sqlite::Sqlite;

/// A pool of connections to SQLite (with its watched file) or PostgreSQL. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(Sqlite),
    Postgres(Postgres),
}

impl Db {
    /// Opens the database, runs the migrations and opens a pool of `size` connections, all of
    /// them now, kept open (as every stack's pool is: see the README).
    pub async fn connect(database: &Database, size: u32) -> anyhow::Result<Self> {
        Ok(match database {
            Database::Sqlite(path) => Self::Sqlite(Sqlite::connect(path, size).await?),
            Database::Postgres(_) => {
                let url = database.driver_url().expect("a PostgreSQL database");
                Self::Postgres(Postgres::connect(&url, size).await?)
            }
        })
    }
}

/// A deadpool of `size` connections from `manager`, with the shared timeouts, every connection
/// opened now: a server then never has to open one while the database is short of them
/// (deadpool opens them lazily, and keeps those it has).
pub async fn pool<M: managed::Manager>(
    manager: M,
    size: u32,
) -> Result<Pool<M>, PoolError<M::Error>> {
    let size = size as usize;
    let pool = Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(shared::POOL_TIMEOUT))
        .create_timeout(Some(shared::POOL_TIMEOUT))
        .build()
        .expect("a runtime is given for the timeouts");
    let mut opened = Vec::with_capacity(size);
    for _ in 0..size {
        opened.push(pool.get().await?);
    }
    drop(opened);
    Ok(pool)
}

/// Runs the same call on whichever pool this is.
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $call:expr) => {
        match $db {
            Db::Sqlite($pool) => $call,
            Db::Postgres($pool) => $call,
        }
    };
}

impl Store for Db {
    fn kind(&self) -> DbKind {
        match self {
            Self::Sqlite(_) => DbKind::Sqlite,
            Self::Postgres(_) => DbKind::Postgres,
        }
    }

    async fn ping(&self) -> Result<(), ApiError> {
        on_pool!(self, |pool| pool.ping().await)
    }

    async fn create(&self, task: NewTask) -> Result<Task, ApiError> {
        on_pool!(self, |pool| pool.create(task).await)
    }

    async fn get(&self, id: i64) -> Result<Task, ApiError> {
        on_pool!(self, |pool| pool.get(id).await)?.ok_or_else(|| ApiError::task_not_found(id))
    }

    async fn update(&self, id: i64, task: TaskUpdate) -> Result<Task, ApiError> {
        on_pool!(self, |pool| pool.update(id, task).await)?
            .ok_or_else(|| ApiError::task_not_found(id))
    }

    async fn delete(&self, id: i64) -> Result<(), ApiError> {
        if on_pool!(self, |pool| pool.delete(id).await)? {
            Ok(())
        } else {
            Err(ApiError::task_not_found(id))
        }
    }

    async fn list(&self, query: ListQuery) -> Result<Vec<Task>, ApiError> {
        on_pool!(self, |pool| pool.list(query).await)
    }

    async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close(),
        }
    }
}
