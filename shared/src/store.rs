//! The task operations every database layer offers, whatever its pool or blocking strategy.
//! Web layers call these and nothing else; each call is one SQL statement.

use std::future::Future;

use crate::config::DbKind;
use crate::error::ApiError;
use crate::input::ListQuery;
use crate::task::{NewTask, Task, TaskUpdate};

pub trait Store: Clone + Send + Sync + 'static {
    /// Which database this store talks to (for `/health` and the start-up line).
    fn kind(&self) -> DbKind;
    /// `SELECT 1`.
    fn ping(&self) -> impl Future<Output = Result<(), ApiError>> + Send;
    fn create(&self, task: NewTask) -> impl Future<Output = Result<Task, ApiError>> + Send;
    /// 404 when there is no such task.
    fn get(&self, id: i64) -> impl Future<Output = Result<Task, ApiError>> + Send;
    /// 404 when there is no such task.
    fn update(
        &self,
        id: i64,
        task: TaskUpdate,
    ) -> impl Future<Output = Result<Task, ApiError>> + Send;
    /// 404 when there is no such task.
    fn delete(&self, id: i64) -> impl Future<Output = Result<(), ApiError>> + Send;
    fn list(&self, query: ListQuery) -> impl Future<Output = Result<Vec<Task>, ApiError>> + Send;
    /// Closes the pool at shutdown.
    fn close(&self) -> impl Future<Output = ()> + Send;
}
