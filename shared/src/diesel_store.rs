//! The diesel servers' database layer: blocking operations on one connection, written once for
//! both databases ([`TaskStore`]), and the [`Store`] over them ([`DieselStore`]), generic over
//! how a server pools connections and runs blocking calls off its async workers
//! ([`BlockingPool`]), as its framework documents.

use std::future::Future;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::config::{Database, DbKind};
use crate::error::ApiError;
use crate::input::ListQuery;
use crate::schema::tasks;
use crate::sql;
use crate::sqlite_file::SqliteFile;
use crate::store::Store;
use crate::task::{NewTask, Task, TaskUpdate};

/// The task operations, one SQL statement each, on a blocking diesel connection.
pub trait TaskStore {
    /// Per-connection set-up (SQLite's pragmas), run when the pool opens the connection.
    fn prepare(&mut self) -> QueryResult<()>;
    fn migrate(&mut self) -> QueryResult<()>;
    fn ping(&mut self) -> Result<(), ApiError>;
    fn create(&mut self, task: &NewTask) -> Result<Task, ApiError>;
    fn get(&mut self, id: i64) -> Result<Task, ApiError>;
    fn update(&mut self, id: i64, task: &TaskUpdate) -> Result<Task, ApiError>;
    fn delete(&mut self, id: i64) -> Result<(), ApiError>;
    fn list(&mut self, query: ListQuery) -> Result<Vec<Task>, ApiError>;
}

/// The same diesel code for each connection type: diesel's DSL is generic, but spelling out its
/// trait bounds for a generic function costs more than stamping it out twice.
macro_rules! task_store {
    ($conn:ty, $prepare:expr, $migration:expr) => {
        impl TaskStore for $conn {
            fn prepare(&mut self) -> QueryResult<()> {
                match $prepare {
                    "" => Ok(()),
                    pragmas => self.batch_execute(pragmas),
                }
            }

            fn migrate(&mut self) -> QueryResult<()> {
                self.batch_execute($migration)
            }

            fn ping(&mut self) -> Result<(), ApiError> {
                diesel::sql_query("SELECT 1").execute(self)?;
                Ok(())
            }

            fn create(&mut self, task: &NewTask) -> Result<Task, ApiError> {
                Ok(diesel::insert_into(tasks::table)
                    .values(task)
                    .returning(Task::as_returning())
                    .get_result(self)?)
            }

            fn get(&mut self, id: i64) -> Result<Task, ApiError> {
                tasks::table
                    .find(id)
                    .select(Task::as_select())
                    .get_result(self)
                    .optional()?
                    .ok_or_else(|| ApiError::task_not_found(id))
            }

            fn update(&mut self, id: i64, task: &TaskUpdate) -> Result<Task, ApiError> {
                diesel::update(tasks::table.find(id))
                    .set(task)
                    .returning(Task::as_returning())
                    .get_result(self)
                    .optional()?
                    .ok_or_else(|| ApiError::task_not_found(id))
            }

            fn delete(&mut self, id: i64) -> Result<(), ApiError> {
                match diesel::delete(tasks::table.find(id)).execute(self)? {
                    0 => Err(ApiError::task_not_found(id)),
                    _ => Ok(()),
                }
            }

            fn list(&mut self, query: ListQuery) -> Result<Vec<Task>, ApiError> {
                Ok(tasks::table
                    .order(tasks::id.asc())
                    .limit(query.limit)
                    .offset(query.offset)
                    .select(Task::as_select())
                    .load(self)?)
            }
        }
    };
}

task_store!(SqliteConnection, sql::SQLITE_PRAGMAS, sql::SQLITE.migrate);
task_store!(PgConnection, "", sql::POSTGRES.migrate);

/// A pool of blocking diesel connections of type `C`, and the server's way of running a
/// blocking call on one of them off its async workers (deadpool's `interact`, or r2d2 under
/// `spawn_blocking`).
pub trait BlockingPool<C>: Clone + Send + Sync + 'static {
    /// Takes a connection (503 when none comes within the pool timeout) and runs `op` on it on
    /// a blocking thread.
    fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut C) -> Result<T, ApiError> + Send + 'static,
    ) -> impl Future<Output = Result<T, ApiError>> + Send;

    /// Closes the pool at shutdown (nothing, for pools that close when dropped).
    fn close(&self) {}
}

/// The URL diesel connects to `database` with: PostgreSQL's as given; for SQLite a `file:`
/// URI that may create the file (`create`: the first connection, which runs the migrations)
/// or must find it (every pooled connection, see [`SqliteFile`]).
pub fn connection_url(database: &Database, create: bool) -> String {
    match database {
        Database::Sqlite(path) => {
            let mut uri = String::from("file:");
            for c in path.to_string_lossy().chars() {
                match c {
                    '%' => uri.push_str("%25"),
                    '?' => uri.push_str("%3f"),
                    '#' => uri.push_str("%23"),
                    c => uri.push(c),
                }
            }
            uri.push_str(if create { "?mode=rwc" } else { "?mode=rw" });
            uri
        }
        Database::Postgres(_) => database.driver_url().expect("a PostgreSQL database"),
    }
}

/// The [`Store`] of a diesel server: a pool of SQLite connections (with the watched file) or
/// of PostgreSQL ones.
#[derive(Debug, Clone)]
pub enum DieselStore<S, P> {
    Sqlite(S, SqliteFile),
    Postgres(P),
}

impl<S, P> DieselStore<S, P>
where
    S: BlockingPool<SqliteConnection>,
    P: BlockingPool<PgConnection>,
{
    /// A SQLite store over `pool`, watching the file at `path`, which exists by now.
    pub fn sqlite(pool: S, path: &std::path::Path) -> std::io::Result<Self> {
        Ok(Self::Sqlite(pool, SqliteFile::open(path)?))
    }

    /// Runs the blocking `op` on a connection of whichever database this is (on SQLite,
    /// checking the file before and after).
    async fn on<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut dyn TaskStore) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        match self {
            Self::Sqlite(pool, file) => {
                file.check()?;
                let result = pool.run(move |conn| op(conn)).await;
                file.check()?;
                result
            }
            Self::Postgres(pool) => pool.run(move |conn| op(conn)).await,
        }
    }
}

impl<S, P> Store for DieselStore<S, P>
where
    S: BlockingPool<SqliteConnection>,
    P: BlockingPool<PgConnection>,
{
    fn kind(&self) -> DbKind {
        match self {
            Self::Sqlite(..) => DbKind::Sqlite,
            Self::Postgres(_) => DbKind::Postgres,
        }
    }

    async fn ping(&self) -> Result<(), ApiError> {
        self.on(|conn| conn.ping()).await
    }

    async fn create(&self, task: NewTask) -> Result<Task, ApiError> {
        self.on(move |conn| conn.create(&task)).await
    }

    async fn get(&self, id: i64) -> Result<Task, ApiError> {
        self.on(move |conn| conn.get(id)).await
    }

    async fn update(&self, id: i64, task: TaskUpdate) -> Result<Task, ApiError> {
        self.on(move |conn| conn.update(id, &task)).await
    }

    async fn delete(&self, id: i64) -> Result<(), ApiError> {
        self.on(move |conn| conn.delete(id)).await
    }

    async fn list(&self, query: ListQuery) -> Result<Vec<Task>, ApiError> {
        self.on(move |conn| conn.list(query)).await
    }

    async fn close(&self) {
        match self {
            Self::Sqlite(pool, _) => pool.close(),
            Self::Postgres(pool) => pool.close(),
        }
    }
}
