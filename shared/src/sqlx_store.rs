//! The sqlx servers' database layer: one pool of either database, one statement per operation.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};

use crate::config::{Database, DbKind};
use crate::error::ApiError;
use crate::input::ListQuery;
use crate::sql::{self, Statements};
use crate::sqlite_file::SqliteFile;
use crate::store::Store;
use crate::task::{NewTask, Task, TaskUpdate};

/// A connection pool to SQLite (with its watched file) or PostgreSQL. Cheap to clone.
#[derive(Debug, Clone)]
pub enum SqlxDb {
    Sqlite(SqlitePool, SqliteFile),
    Postgres(PgPool),
}

/// Runs the same code against whichever pool this is, with that database's statements. On
/// SQLite the file is checked before and after (see [`SqliteFile`]).
macro_rules! on_pool {
    ($db:expr, |$pool:ident, $sql:ident| $body:expr) => {
        match $db {
            SqlxDb::Sqlite($pool, file) => {
                file.check()?;
                let $sql: &Statements = &sql::SQLITE;
                let result = $body;
                file.check()?;
                result
            }
            SqlxDb::Postgres($pool) => {
                let $sql: &Statements = &sql::POSTGRES;
                $body
            }
        }
    };
}

impl SqlxDb {
    /// Opens the database, runs the migrations and builds a pool of `size` connections, all
    /// opened now and kept open (as every stack's pool is: see the README), so that a server
    /// never has to open one while the database is short of connections.
    /// One connection is opened first so that an unreachable database is reported at once,
    /// with its cause.
    pub async fn connect(database: &Database, size: u32) -> Result<Self, sqlx::Error> {
        match database {
            Database::Sqlite(path) => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .busy_timeout(std::time::Duration::from_secs(5))
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true);
                let mut first = options.connect().await?;
                sqlx::raw_sql(sql::SQLITE.migrate)
                    .execute(&mut first)
                    .await?;
                first.close().await?;
                let file = SqliteFile::open(path).map_err(sqlx::Error::Io)?;
                // Later connections must find the file: they never create another.
                let pool = SqlitePoolOptions::new()
                    .max_connections(size)
                    .min_connections(size)
                    .acquire_timeout(crate::POOL_TIMEOUT)
                    .connect_with(options.create_if_missing(false))
                    .await?;
                Ok(Self::Sqlite(pool, file))
            }
            Database::Postgres(_) => {
                let url = database.driver_url().expect("a PostgreSQL database");
                let options = PgConnectOptions::from_str(&url)?;
                let mut first = options.connect().await?;
                sqlx::raw_sql(sql::POSTGRES.migrate)
                    .execute(&mut first)
                    .await?;
                first.close().await?;
                let pool = PgPoolOptions::new()
                    .max_connections(size)
                    .min_connections(size)
                    .acquire_timeout(crate::POOL_TIMEOUT)
                    .connect_with(options)
                    .await?;
                Ok(Self::Postgres(pool))
            }
        }
    }
}

impl Store for SqlxDb {
    fn kind(&self) -> DbKind {
        match self {
            Self::Sqlite(..) => DbKind::Sqlite,
            Self::Postgres(_) => DbKind::Postgres,
        }
    }

    async fn ping(&self) -> Result<(), ApiError> {
        on_pool!(self, |pool, sql| sqlx::query(sql.ping)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    async fn create(&self, task: NewTask) -> Result<Task, ApiError> {
        let created = on_pool!(self, |pool, sql| {
            sqlx::query_as(sql.insert)
                .bind(&task.name)
                .bind(task.done)
                .fetch_one(pool)
                .await
        })?;
        Ok(created)
    }

    async fn get(&self, id: i64) -> Result<Task, ApiError> {
        let found = on_pool!(self, |pool, sql| sqlx::query_as(sql.select)
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        found.ok_or_else(|| ApiError::task_not_found(id))
    }

    async fn update(&self, id: i64, task: TaskUpdate) -> Result<Task, ApiError> {
        let updated = on_pool!(self, |pool, sql| {
            sqlx::query_as(sql.update)
                .bind(&task.name)
                .bind(task.done)
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        updated.ok_or_else(|| ApiError::task_not_found(id))
    }

    async fn delete(&self, id: i64) -> Result<(), ApiError> {
        let deleted = on_pool!(self, |pool, sql| {
            sqlx::query(sql.delete)
                .bind(id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        if deleted == 0 {
            Err(ApiError::task_not_found(id))
        } else {
            Ok(())
        }
    }

    async fn list(&self, query: ListQuery) -> Result<Vec<Task>, ApiError> {
        let tasks = on_pool!(self, |pool, sql| {
            sqlx::query_as(sql.list)
                .bind(query.limit)
                .bind(query.offset)
                .fetch_all(pool)
                .await
        })?;
        Ok(tasks)
    }

    async fn close(&self) {
        match self {
            Self::Sqlite(pool, _) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}
