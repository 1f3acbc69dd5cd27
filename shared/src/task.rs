//! The task model, the bodies the API accepts, and the other JSON documents it answers with.

use serde::Serialize;

/// A stored task. Serialises exactly as `{"id":..,"name":..,"done":..}`, keys in that order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
#[cfg_attr(feature = "diesel", derive(diesel::Queryable, diesel::Selectable))]
#[cfg_attr(feature = "diesel", diesel(table_name = crate::schema::tasks))]
pub struct Task {
    pub id: i64,
    pub name: String,
    pub done: bool,
}

/// A validated `POST /tasks` body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "diesel", derive(diesel::Insertable))]
#[cfg_attr(feature = "diesel", diesel(table_name = crate::schema::tasks))]
pub struct NewTask {
    pub name: String,
    pub done: bool,
}

/// A validated `PUT /tasks/{id}` body: a full replacement of the task's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "diesel", derive(diesel::AsChangeset))]
#[cfg_attr(feature = "diesel", diesel(table_name = crate::schema::tasks))]
pub struct TaskUpdate {
    pub name: String,
    pub done: bool,
}

/// The body of `GET /health`: `{"status":"ok","db":"sqlite"}`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub db: &'static str,
}

impl Health {
    pub fn ok(kind: crate::DbKind) -> Self {
        Self {
            status: "ok",
            db: kind.name(),
        }
    }
}

/// The body of `GET /fibonacci`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Fibonacci {
    pub count: u32,
    pub last: u64,
}

/// Counts the Fibonacci numbers 1, 1, 2, 3, 5, ... that are `<= max`, and the last of them.
/// `max` is at most 2^62 (the contract's bound), so the sums below cannot overflow a `u64`.
pub fn fibonacci(max: u64) -> Fibonacci {
    let (mut a, mut b) = (1u64, 1u64);
    let mut out = Fibonacci { count: 0, last: 0 };
    while a <= max {
        out.count += 1;
        out.last = a;
        (a, b) = (b, a + b);
    }
    out
}

/// Serialises a response document; our documents are plain structs, so this cannot fail.
pub fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("response documents always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fibonacci_matches_the_contract() {
        let check =
            |max, count, last| assert_eq!(fibonacci(max), Fibonacci { count, last }, "max={max}");
        check(1, 2, 1);
        check(2, 3, 2);
        check(4, 4, 3);
        check(100_000_000, 39, 63_245_986);
        check(1 << 62, 90, 2_880_067_194_370_816_120);
    }

    #[test]
    fn task_json_has_keys_in_contract_order() {
        let task = Task {
            id: 7,
            name: "a \"b\"".into(),
            done: true,
        };
        assert_eq!(to_json(&task), r#"{"id":7,"name":"a \"b\"","done":true}"#);
    }
}
