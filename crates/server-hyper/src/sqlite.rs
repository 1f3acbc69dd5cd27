//! The SQLite side of the store: rusqlite connections in a deadpool pool, opened as every stack
//! opens them (the shared pragmas), each operation one cached prepared statement
//! (`prepare_cached`) run on a blocking thread (`spawn_blocking`), never on an async worker.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use deadpool::managed::{self, Metrics, Pool, RecycleResult};
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, Row, params};
use shared::input::ListQuery;
use shared::sqlite_file::SqliteFile;
use shared::{ApiError, NewTask, Task, TaskUpdate, sql};

/// Opens connections to one database file that exists already: pooled connections never
/// create it (see [`SqliteFile`]).
#[derive(Debug)]
pub struct Manager {
    path: PathBuf,
}

/// Opens `path` read-write (creating it only if `create`), as a plain file name (no `file:`
/// URIs), without SQLite's own mutex (a connection is used by one thread at a time), and runs
/// the shared pragmas on it.
fn open(path: &Path, create: bool) -> rusqlite::Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    conn.execute_batch(sql::SQLITE_PRAGMAS)?;
    Ok(conn)
}

impl managed::Manager for Manager {
    type Type = Connection;
    type Error = std::io::Error;

    async fn create(&self) -> std::io::Result<Connection> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || open(&path, false))
            .await?
            .map_err(std::io::Error::other)
    }

    /// A SQLite connection does not go bad while its file is there; the file is checked around
    /// every operation.
    async fn recycle(&self, _: &mut Connection, _: &Metrics) -> RecycleResult<std::io::Error> {
        Ok(())
    }
}

/// A pool of connections to the SQLite file the server opened, and the watch on that file.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sqlite {
    pool: Pool<Manager>,
    file: SqliteFile,
}

impl Sqlite {
    /// Creates the file if it is missing and runs the migrations on a first connection (so a
    /// file that cannot be opened is reported at once, with its cause), then opens the pool's
    /// `size` connections, which must find the file.
    pub async fn connect(path: &Path, size: u32) -> anyhow::Result<Self> {
        let first = path.to_owned();
        tokio::task::spawn_blocking(move || -> rusqlite::Result<()> {
            let conn = open(&first, true)?;
            conn.execute_batch(sql::SQLITE.migrate)?;
            conn.close().map_err(|(_, err)| err)
        })
        .await??;
        let file = SqliteFile::open(path)?;
        let pool = crate::db::pool(
            Manager {
                path: path.to_owned(),
            },
            size,
        )
        .await
        .context("cannot fill the connection pool")?;
        Ok(Self { pool, file })
    }

    /// Takes a connection (503 when none comes within the pool timeout) and runs `op` on it on
    /// a blocking thread, checking the file before and after.
    async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.file.check()?;
        let conn = self
            .pool
            .get()
            .await
            .map_err(|err| ApiError::unavailable(&err))?;
        // The connection goes back to the pool from the blocking thread, once `op` is done.
        let result = tokio::task::spawn_blocking(move || op(&conn))
            .await
            .map_err(|err| ApiError::internal(&err))?;
        self.file.check()?;
        result.map_err(|err| error(&err))
    }

    /// `SELECT 1`.
    pub async fn ping(&self) -> Result<(), ApiError> {
        self.run(|conn| {
            conn.prepare_cached(sql::SQLITE.ping)?
                .query_row([], |_| Ok(()))
        })
        .await
    }

    pub async fn create(&self, task: NewTask) -> Result<Task, ApiError> {
        self.run(move |conn| {
            conn.prepare_cached(sql::SQLITE.insert)?
                .query_row(params![task.name, task.done], task_of)
        })
        .await
    }

    /// `None` when there is no such task.
    pub async fn get(&self, id: i64) -> Result<Option<Task>, ApiError> {
        self.run(move |conn| {
            conn.prepare_cached(sql::SQLITE.select)?
                .query_row([id], task_of)
                .optional()
        })
        .await
    }

    /// `None` when there is no such task.
    pub async fn update(&self, id: i64, task: TaskUpdate) -> Result<Option<Task>, ApiError> {
        self.run(move |conn| {
            conn.prepare_cached(sql::SQLITE.update)?
                .query_row(params![task.name, task.done, id], task_of)
                .optional()
        })
        .await
    }

    /// Whether there was such a task.
    pub async fn delete(&self, id: i64) -> Result<bool, ApiError> {
        self.run(move |conn| Ok(conn.prepare_cached(sql::SQLITE.delete)?.execute([id])? > 0))
            .await
    }

    pub async fn list(&self, query: ListQuery) -> Result<Vec<Task>, ApiError> {
        self.run(move |conn| {
            conn.prepare_cached(sql::SQLITE.list)?
                .query_map([query.limit, query.offset], task_of)?
                .collect()
        })
        .await
    }

    /// Closes every idle connection (on a blocking thread: closing one may checkpoint the WAL).
    pub async fn close(&self) {
        let pool = self.pool.clone();
        if let Err(err) = tokio::task::spawn_blocking(move || pool.close()).await {
            tracing::warn!("closing the SQLite pool failed: {err}");
        }
    }
}

/// A task from a row of `id, name, done`.
fn task_of(row: &Row<'_>) -> rusqlite::Result<Task> {
    Ok(Task {
        id: row.get(0)?,
        name: row.get(1)?,
        done: row.get(2)?,
    })
}

/// A failed statement: a row that does not read as a task is a bug (500); anything else is the
/// database failing (503).
fn error(err: &rusqlite::Error) -> ApiError {
    use rusqlite::Error as E;
    match err {
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::InvalidColumnIndex(_)
        | E::InvalidColumnName(_)
        | E::InvalidColumnType(..)
        | E::InvalidParameterCount(..) => ApiError::internal(err),
        _ => ApiError::unavailable(err),
    }
}
