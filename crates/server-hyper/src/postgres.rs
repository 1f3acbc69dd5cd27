//! The PostgreSQL side of the store: tokio-postgres clients in a deadpool pool. Each connection
//! prepares every statement of the contract once, when it is opened (the six `Parse`s pipelined
//! in one round trip), so an operation is one `Bind`/`Execute` of a prepared statement and one
//! round trip.

use std::str::FromStr as _;

use anyhow::Context as _;
use deadpool::managed::{self, Metrics, Pool, RecycleError, RecycleResult};
use shared::input::ListQuery;
use shared::{ApiError, NewTask, Task, TaskUpdate, sql};
use tokio_postgres::{Client, NoTls, Row, Statement};

/// A connection and its prepared statements.
#[derive(Debug)]
pub struct Connection {
    client: Client,
    statements: Statements,
}

/// Every statement of [`sql::POSTGRES`] (but the migrations), prepared on one connection.
#[derive(Debug)]
struct Statements {
    insert: Statement,
    select: Statement,
    update: Statement,
    delete: Statement,
    list: Statement,
    ping: Statement,
}

/// Opens connections with one configuration.
#[derive(Debug)]
pub struct Manager {
    config: tokio_postgres::Config,
}

/// Opens a connection and runs its I/O on a task of its own, as tokio-postgres asks.
async fn connect(config: &tokio_postgres::Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!("a PostgreSQL connection ended: {err}");
        }
    });
    Ok(client)
}

impl managed::Manager for Manager {
    type Type = Connection;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<Connection, tokio_postgres::Error> {
        let client = connect(&self.config).await?;
        let sql = &sql::POSTGRES;
        let (insert, select, update, delete, list, ping) = tokio::try_join!(
            client.prepare(sql.insert),
            client.prepare(sql.select),
            client.prepare(sql.update),
            client.prepare(sql.delete),
            client.prepare(sql.list),
            client.prepare(sql.ping),
        )?;
        let statements = Statements {
            insert,
            select,
            update,
            delete,
            list,
            ping,
        };
        Ok(Connection { client, statements })
    }

    /// deadpool-postgres's default (`RecyclingMethod::Fast`): a connection whose socket closed
    /// (the server restarted, or ended the session) is replaced; no query is run to check.
    async fn recycle(
        &self,
        conn: &mut Connection,
        _: &Metrics,
    ) -> RecycleResult<tokio_postgres::Error> {
        if conn.client.is_closed() {
            Err(RecycleError::message("the connection is closed"))
        } else {
            Ok(())
        }
    }
}

/// A pool of PostgreSQL connections. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Postgres {
    pool: Pool<Manager>,
}

impl Postgres {
    /// Runs the migrations on a first connection (so an unreachable database is reported at
    /// once, with its cause), then opens the pool's `size` connections.
    pub async fn connect(url: &str, size: u32) -> anyhow::Result<Self> {
        let config = tokio_postgres::Config::from_str(url)?;
        let first = connect(&config).await?;
        first.batch_execute(sql::POSTGRES.migrate).await?;
        drop(first);
        let pool = crate::db::pool(Manager { config }, size)
            .await
            .context("cannot fill the connection pool")?;
        Ok(Self { pool })
    }

    /// A connection from the pool: 503 when none comes within the pool timeout.
    async fn conn(&self) -> Result<managed::Object<Manager>, ApiError> {
        self.pool
            .get()
            .await
            .map_err(|err| ApiError::unavailable(&err))
    }

    /// `SELECT 1`.
    pub async fn ping(&self) -> Result<(), ApiError> {
        let conn = self.conn().await?;
        conn.client
            .execute(&conn.statements.ping, &[])
            .await
            .map_err(|err| ApiError::unavailable(&err))?;
        Ok(())
    }

    pub async fn create(&self, task: NewTask) -> Result<Task, ApiError> {
        let conn = self.conn().await?;
        let row = conn
            .client
            .query_one(&conn.statements.insert, &[&task.name, &task.done])
            .await
            .map_err(|err| ApiError::unavailable(&err))?;
        task_of(&row)
    }

    /// `None` when there is no such task.
    pub async fn get(&self, id: i64) -> Result<Option<Task>, ApiError> {
        let conn = self.conn().await?;
        let row = conn
            .client
            .query_opt(&conn.statements.select, &[&id])
            .await
            .map_err(|err| ApiError::unavailable(&err))?;
        row.as_ref().map(task_of).transpose()
    }

    /// `None` when there is no such task.
    pub async fn update(&self, id: i64, task: TaskUpdate) -> Result<Option<Task>, ApiError> {
        let conn = self.conn().await?;
        let row = conn
            .client
            .query_opt(&conn.statements.update, &[&task.name, &task.done, &id])
            .await
            .map_err(|err| ApiError::unavailable(&err))?;
        row.as_ref().map(task_of).transpose()
    }

    /// Whether there was such a task.
    pub async fn delete(&self, id: i64) -> Result<bool, ApiError> {
        let conn = self.conn().await?;
        let deleted = conn
            .client
            .execute(&conn.statements.delete, &[&id])
            .await
            .map_err(|err| ApiError::unavailable(&err))?;
        Ok(deleted > 0)
    }

    pub async fn list(&self, query: ListQuery) -> Result<Vec<Task>, ApiError> {
        let conn = self.conn().await?;
        let rows = conn
            .client
            .query(&conn.statements.list, &[&query.limit, &query.offset])
            .await
            .map_err(|err| ApiError::unavailable(&err))?;
        rows.iter().map(task_of).collect()
    }

    /// Closes every idle connection.
    pub fn close(&self) {
        self.pool.close();
    }
}

/// A task from a row of `id, name, done`; a row that does not read as one is a bug (500).
fn task_of(row: &Row) -> Result<Task, ApiError> {
    let read = || -> Result<Task, tokio_postgres::Error> {
        Ok(Task {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            done: row.try_get(2)?,
        })
    };
    read().map_err(|err| ApiError::internal(&err))
}
