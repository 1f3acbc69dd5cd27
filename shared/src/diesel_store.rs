//! The diesel servers' database layer: blocking operations on one connection, written once for
//! both databases. Callers run them off the async workers, as their framework documents.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::config::DbKind;
use crate::error::ApiError;
use crate::input::ListQuery;
use crate::schema::tasks;
use crate::sql;
use crate::task::{NewTask, Task, TaskUpdate};

/// The task operations, one SQL statement each, on a blocking diesel connection.
pub trait TaskStore {
    const KIND: DbKind;
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
    ($conn:ty, $kind:expr, $prepare:expr, $migration:expr) => {
        impl TaskStore for $conn {
            const KIND: DbKind = $kind;

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

task_store!(
    SqliteConnection,
    DbKind::Sqlite,
    sql::SQLITE_PRAGMAS,
    sql::SQLITE.migrate
);
task_store!(PgConnection, DbKind::Postgres, "", sql::POSTGRES.migrate);

/// The [`Store`](crate::Store) methods (all but `close`) of a diesel pool enum `$pools` with
/// variants `Sqlite(pool)` and `Postgres(pool)`, given `$run(pool, op)`: an async fn that runs the
/// blocking `op` on a pooled connection off the async workers. Invoke inside `impl Store for ...`,
/// so each diesel server writes only its pool and its way of running blocking calls.
#[macro_export]
macro_rules! diesel_store_methods {
    ($pools:ident, $run:path) => {
        fn kind(&self) -> $crate::DbKind {
            match self {
                $pools::Sqlite(_) => $crate::DbKind::Sqlite,
                $pools::Postgres(_) => $crate::DbKind::Postgres,
            }
        }

        async fn ping(&self) -> Result<(), $crate::ApiError> {
            $crate::diesel_store_methods!(@on $pools, $run, self, |conn| $crate::diesel_store::TaskStore::ping(conn))
        }

        async fn create(&self, task: $crate::NewTask) -> Result<$crate::Task, $crate::ApiError> {
            $crate::diesel_store_methods!(@on $pools, $run, self, |conn| $crate::diesel_store::TaskStore::create(conn, &task))
        }

        async fn get(&self, id: i64) -> Result<$crate::Task, $crate::ApiError> {
            $crate::diesel_store_methods!(@on $pools, $run, self, |conn| $crate::diesel_store::TaskStore::get(conn, id))
        }

        async fn update(&self, id: i64, task: $crate::TaskUpdate) -> Result<$crate::Task, $crate::ApiError> {
            $crate::diesel_store_methods!(@on $pools, $run, self, |conn| $crate::diesel_store::TaskStore::update(conn, id, &task))
        }

        async fn delete(&self, id: i64) -> Result<(), $crate::ApiError> {
            $crate::diesel_store_methods!(@on $pools, $run, self, |conn| $crate::diesel_store::TaskStore::delete(conn, id))
        }

        async fn list(
            &self,
            query: $crate::input::ListQuery,
        ) -> Result<Vec<$crate::Task>, $crate::ApiError> {
            $crate::diesel_store_methods!(@on $pools, $run, self, |conn| $crate::diesel_store::TaskStore::list(conn, query))
        }
    };
    // The same blocking operation on whichever pool `$store` is.
    (@on $pools:ident, $run:path, $store:expr, |$conn:ident| $op:expr) => {
        match $store {
            $pools::Sqlite(pool) => $run(pool, move |$conn| $op).await,
            $pools::Postgres(pool) => $run(pool, move |$conn| $op).await,
        }
    };
}
