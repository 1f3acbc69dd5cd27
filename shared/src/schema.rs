//! diesel's view of the `tasks` table (the same for SQLite and PostgreSQL).

diesel::table! {
    tasks (id) {
        id -> BigInt,
        name -> Text,
        done -> Bool,
    }
}
